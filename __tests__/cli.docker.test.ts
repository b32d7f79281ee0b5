/**
 * The `airlock` command from the built bundle (`bin/airlock.js` → `dist/index.js`), as a
 * person runs it: a child process with a plain environment, a temp git repository, the
 * scripted model and the real Docker engine. Needs `npm run bundle` first.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Docker from 'dockerode'
import { helpText } from '../src/cli-args.js'
import { BUNDLE, NODE } from './helpers/action-runner.js'
import { expectValidAuditLog } from './helpers/audit-files.js'
import { TEST_IMAGE } from './helpers/docker-sandbox.js'
import { createPublishRepos, gitIn, type PublishRepos } from './helpers/git-publish-repo.js'
import { closedPortUrl, ModelServer, toolReply, type ScriptEntry }
  from './helpers/model-server.js'

const BIN = fileURLToPath(new URL('../bin/airlock.js', import.meta.url))
const API_KEY = 'sk-cli-test-key-9876543210'
const docker = new Docker()

interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

const fixTypo: ScriptEntry[] = [
  toolReply('edit_file', { path: 'README.md', old_text: 'Teh', new_text: 'The' }),
  toolReply('finish', { summary: 'Fixed the typo.' })
]

describe('the airlock command, from the bundle', () => {
  let home: string
  let repos: PublishRepos
  let model: ModelServer | undefined
  /** audit directories the runs wrote; each one's run must have left no container */
  const auditDirs: string[] = []

  beforeAll(() => {
    if (!existsSync(BUNDLE)) throw new Error('dist/index.js is missing: run `npm run bundle`.')
    home = mkdtempSync(join(tmpdir(), 'airlock-cli-home-'))
    repos = createPublishRepos()
  })
  afterAll(() => {
    rmSync(home, { recursive: true, force: true })
    repos.remove()
  })
  afterEach(async () => {
    await model?.close()
    model = undefined
    for (const dir of auditDirs.splice(0)) {
      const runId = runIdOf(dir)
      if (!runId) continue
      const left = await docker.listContainers({ all: true,
        filters: { label: [`airlock.run=${runId}`] } })
      await Promise.all(left.map(c => docker.getContainer(c.Id).remove({ force: true })))
      expect(left).toEqual([])
    }
  })

  /** Runs `airlock ARGS` with only PATH, HOME and `env`; `onStart` gets the child. */
  function airlock(args: string[], env: Record<string, string> = {},
    onStart?: (child: ReturnType<typeof spawn>) => void): Promise<CliRun> {
    const child = spawn(NODE, [BIN, ...args], { cwd: home,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env,
        ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
    onStart?.(child)
    return new Promise((resolve, reject) => {
      child.on('error', reject)
      child.on('close', code => resolve({ code, stdout, stderr }))
    })
  }

  /** A fresh checkout of the test repository and a fresh audit directory. */
  function workspace(): { repo: string; audit: string } {
    const root = mkdtempSync(join(home, 'ws-'))
    const repo = join(root, 'repo')
    gitIn(root, 'clone', '--quiet', repos.bare, repo)
    const audit = join(root, 'audit')
    auditDirs.push(audit)
    return { repo, audit }
  }

  async function runWith(script: ScriptEntry[], flags: string[] = [],
    env: Record<string, string> = {}): Promise<CliRun & { repo: string; audit: string }> {
    // One test may run several times; each run's server is closed before the next starts.
    await model?.close()
    model = await ModelServer.start(script)
    const { repo, audit } = workspace()
    const run = await airlock(['run', '--repo', repo, '--task', 'Fix the typo in README.md.',
      '--model', 'scripted', '--base-url', model.baseUrl, '--image', TEST_IMAGE,
      '--memory', '512m', '--cpus', '1', '--audit-dir', audit, ...flags],
    { AIRLOCK_API_KEY: API_KEY, ...env })
    return { ...run, repo, audit }
  }

  test('--help and each command\'s help print the documented text and exit 0', async () => {
    const general = await airlock(['--help'])
    expect(general).toEqual({ code: 0, stdout: `${helpText()}\n`, stderr: '' })
    for (const command of ['run', 'replay', 'verify', 'demo'] as const) {
      const own = await airlock([command, '--help'])
      expect(own.code).toBe(0)
      expect(own.stdout).toBe(`${helpText(command)}\n`)
    }
    expect((await airlock(['help', 'run'])).stdout).toBe(`${helpText('run')}\n`)
  })

  test('run writes a patch by default, progress as plain lines, the key only from the env',
    async () => {
      const run = await runWith(fixTypo)
      expect(run.stderr).not.toContain('\r')
      expect(run.code).toBe(0)
      expect(run.stdout).toMatch(/^outcome: changes-published — the patch was written to /)
      const patchPath = /^patch-path: *(.+)$/m.exec(run.stdout)?.[1] ?? ''
      expect(patchPath).toBe(join(run.audit, 'changes.patch'))
      const patch = readFileSync(patchPath, 'utf8')
      expect(patch).toContain('-Teh greeting.')
      expect(patch).toContain('+The greeting.')
      gitIn(run.repo, 'apply', '--check', patchPath)
      expect(gitIn(run.repo, 'status', '--porcelain')).toBe('')
      // One plain progress line per model step, then the phases.
      const steps = run.stderr.split('\n').filter(l => /^ {2}step \d+\/40 /.test(l))
      expect(steps.map(l => l.slice(0, 22))).toEqual(['  step 1/40 edit_file:',
        '  step 2/40 finish: Fi'])
      expect(run.stderr).toContain('▸ Running the agent\n')
      expect(model?.completions[0].headers.authorization).toBe(`Bearer ${API_KEY}`)
      for (const text of [run.stdout, run.stderr, readFileSync(join(run.audit, 'audit.jsonl'),
        'utf8'), readFileSync(join(run.audit, 'transcript.html'), 'utf8')]) {
        expect(text).not.toContain(API_KEY)
      }

      const verified = await airlock(['verify', run.audit])
      expect(verified.code).toBe(0)
      expect(verified.stdout).toMatch(/^ok: \d+ events, .* outcome changes-published\n$/)

      const replayDir = join(run.audit, '..', 'replay')
      auditDirs.push(replayDir)
      const replay = await airlock(['replay', run.audit, '--repo', run.repo, '--audit-dir',
        replayDir, '--json'])
      expect(replay.code).toBe(0)
      const replayed = JSON.parse(replay.stdout) as Record<string, unknown>
      expect(replayed).toMatchObject({ outcome: 'changes-published', 'tool-calls': 2 })
      expect(readFileSync(String(replayed['patch-path']))).toEqual(readFileSync(patchPath))
      expect((await airlock(['verify', replayDir])).code).toBe(0)
    })

  test('verify names the first event that does not match and exits 1', async () => {
    const run = await runWith(fixTypo)
    expect(run.code).toBe(0)
    const log = join(run.audit, 'audit.jsonl')
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n')
    const target = lines.findIndex(l => JSON.parse(l).type === 'task')
    lines[target] = lines[target].replace('Fix the typo', 'Delete the repo')
    writeFileSync(log, `${lines.join('\n')}\n`)
    const seq = (JSON.parse(lines[target]) as { seq: number }).seq

    const plain = await airlock(['verify', run.audit])
    expect(plain.code).toBe(1)
    expect(plain.stdout).toMatch(new RegExp(`^NOT OK: event ${seq}: `))
    const json = await airlock(['verify', run.audit, '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, problem: { seq } })
  })

  test('--output branch commits once on a local branch; --json prints the outcome',
    async () => {
      const run = await runWith(fixTypo, ['--output', 'branch', '--json'])
      expect(run.code).toBe(0)
      const result = JSON.parse(run.stdout) as Record<string, unknown>
      expect(result).toMatchObject({ outcome: 'changes-published', steps: 2, tokens: 240,
        'cost-usd': 0, 'audit-path': run.audit })
      const branch = String(result.branch)
      expect(branch).toMatch(/^airlock\//)
      expect(gitIn(run.repo, 'rev-list', '--count', `main..${branch}`)).toBe('1')
      expect(gitIn(run.repo, 'diff', '--name-only', 'main', branch)).toBe('README.md')
      expect(gitIn(run.repo, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('main')
      expect(readFileSync(join(run.repo, 'README.md'), 'utf8')).toContain('Teh')
    })

  test('each outcome has its own exit code', async () => {
    const noChanges = await runWith([toolReply('finish', { summary: 'Nothing to do.' })])
    expect(noChanges.code).toBe(3)
    expect(noChanges.stdout).toMatch(/^outcome: no-changes — the agent finished without /)

    const budget = await runWith([toolReply('bash', { command: 'true' })],
      ['--max-steps', '1'])
    expect(budget.code).toBe(5)
    expect(budget.stdout).toMatch(/^outcome: budget-exhausted/)
    // The log says which budget, as data, in the form the schema publishes.
    expect(expectValidAuditLog(budget.audit).at(-1)).toMatchObject({ type: 'outcome',
      kind: 'budget-exhausted', ending: 'budget-exhausted', budget: 'steps' })

    const refused = await runWith([
      toolReply('write_file', { path: '.github/workflows/ci.yml', content: 'on: push\n' }),
      toolReply('finish', { summary: 'Changed CI.' })])
    expect(refused.code).toBe(4)
    expect(refused.stdout).toMatch(/^outcome: refused/)

    const down = await closedPortUrl()
    const failed = await runWith([], ['--base-url', down, '--max-retries', '0'])
    expect(failed.code).toBe(1)
    expect(failed.stdout).toMatch(/^outcome: failed — the model failed/)

    const usage = await airlock(['run', '--model', 'm'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toBe('airlock: Say what to do with --task TEXT or --task-file FILE.\n')
    const secret = await airlock(['run', '--api-key', API_KEY])
    expect(secret.code).toBe(2)
    expect(secret.stderr).toContain('set it in the environment variable AIRLOCK_API_KEY or '
      + 'OPENAI_API_KEY instead')
  })

  test('SIGTERM cancels the run: exit 130, no container, a log ending cancelled', async () => {
    model = await ModelServer.start([toolReply('bash', { command: 'sleep 120' })])
    const { repo, audit } = workspace()
    let child: ReturnType<typeof spawn> | undefined
    const running = airlock(['run', '--repo', repo, '--task', 'Wait.', '--model', 'scripted',
      '--base-url', model.baseUrl, '--image', TEST_IMAGE, '--audit-dir', audit],
    { AIRLOCK_API_KEY: API_KEY }, started => { child = started })
    try {
      expect(await waitForProcess(audit, 'sleep 120')).toBe(true)
      child?.kill('SIGTERM')
      const run = await running
      expect(run.code).toBe(130)
      expect(run.stdout).toMatch(/^outcome: cancelled/)
      expect(run.stderr).toContain('cancelling: stopping the agent and removing the sandbox')
    } finally {
      child?.kill('SIGKILL')
    }
    const verified = await airlock(['verify', audit, '--json'])
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, outcome: 'cancelled' })
  })

  test('demo replays the recorded run from the bundle and leaves a patch and a transcript',
    async () => {
      const out = join(mkdtempSync(join(home, 'demo-')), 'out')
      auditDirs.push(out)
      const demo = await airlock(['demo', '--audit-dir', out, '--json'])
      expect(demo.code).toBe(0)
      const result = JSON.parse(demo.stdout) as Record<string, string>
      expect(result.outcome).toBe('changes-published')
      // The recording matches the sandbox as it is now: every command gives what it gave then.
      expect(result.message).toBe('the replayed changes are identical to the recorded ones')
      expect(readFileSync(result['patch-path'], 'utf8')).toMatch(/^diff --git /)
      expect(readFileSync(result.transcript, 'utf8')).toContain('<html')
      expect((await airlock(['verify', out])).code).toBe(0)
    })
})

/** Polls the run's containers until one runs a process whose command line has `needle`. */
async function waitForProcess(auditDir: string, needle: string, timeoutMs = 30000):
  Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const runId = runIdOf(auditDir)
    const all = runId ? await docker.listContainers({
      filters: { label: [`airlock.run=${runId}`] } }) : []
    for (const info of all) {
      const top = await docker.getContainer(info.Id).top()
        .catch(() => undefined) as { Processes?: string[][] } | undefined
      if (top?.Processes?.some(p => p.join(' ').includes(needle))) return true
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return false
}

function runIdOf(auditDir: string): string | undefined {
  const log = join(auditDir, 'audit.jsonl')
  if (!existsSync(log)) return undefined
  const first = JSON.parse(readFileSync(log, 'utf8').split('\n')[0]) as { runId?: string }
  return first.runId
}
