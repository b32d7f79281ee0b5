import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { runAgent } from '../src/agent/loop.js'
import { executeTool } from '../src/agent/tools.js'
import type { StoredEvent } from '../src/audit/entry.js'
import { AuditLog } from '../src/audit/log.js'
import { replayRun, ReplayError } from '../src/audit/replay.js'
import type { AuditEvent } from '../src/audit/types.js'
import { verifyAuditLog } from '../src/audit/verify.js'
import { runCli, type Terminal } from '../src/cli.js'
import { publicSettings } from '../src/record.js'
import { startSandbox, sweepContainers } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import { settingsWithDefaults } from '../src/settings.js'
import type { Settings } from '../src/settings.js'
import { ModelServer, toolReply } from './helpers/model-server.js'
import type { ScriptEntry } from './helpers/model-server.js'
import { expectValidAuditLog, logLines, rechain, writeLogLines } from './helpers/audit-files.js'
import { makeGitRepo } from './helpers/git-repo.js'

const IMAGE = 'airlock-test:bookworm'
const RUN_ID = `audit-replay-${process.pid}`
const SECRET = 'sk-replay-secret-123456'
const TASK = 'Fix the typo.'

function makeRepo(): Promise<string> {
  return makeGitRepo('airlock-replay-repo-', { 'greet.sh': '#!/bin/sh\necho "helo, world"\n' })
}

describe('replayRun in the real sandbox', () => {
  const cleanup: string[] = []
  let repo: string
  let settings: Settings
  let server: ModelServer | undefined
  let sandbox: Sandbox | undefined

  beforeEach(async () => {
    repo = await makeRepo()
    cleanup.push(repo)
  })
  afterEach(async () => {
    await sandbox?.remove()
    sandbox = undefined
    await server?.close()
    server = undefined
  })
  afterAll(async () => {
    await sweepContainers(RUN_ID)
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true })
  })

  /** Records a full run through the real agent loop, a scripted model and the real log. */
  async function record(script: ScriptEntry[], inputs: Record<string, string> = {},
    verify: string[] = []): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-replay-audit-'))
    cleanup.push(dir)
    server = await ModelServer.start(script)
    settings = settingsWithDefaults({ model: 'scripted', 'api-key': SECRET,
      'base-url': server.baseUrl, image: IMAGE, 'command-timeout': '20', ...inputs })
    const log = await AuditLog.create({ dir, secrets: settings.secrets, runId: RUN_ID })
    const started = Date.now()
    log.record({ type: 'run.start', runId: RUN_ID, airlockVersion: '0.1.0', mode: 'cli',
      settings: publicSettings(settings) })
    log.record({ type: 'task', origin: 'issue', requester: 'octocat', text: TASK })
    sandbox = await startSandbox({ settings: settings.sandbox, repoDir: repo, runId: RUN_ID })
    log.record({ type: 'sandbox.start', containerId: sandbox.containerId, image: sandbox.image,
      workdir: sandbox.workdir, network: 'none' })
    const result = await runAgent({ sandbox, settings, audit: log,
      task: { instructions: TASK, origin: { kind: 'input', event: 'cli' } } })
    for (const command of verify) {
      log.record({ type: 'command', phase: 'verify', cwd: sandbox.workdir,
        ...await sandbox.run(command) })
    }
    const changes = await sandbox.extractChanges()
    log.record({ type: 'changes', files: changes.files, patchBytes: changes.patch.length,
      patchSha256: createHash('sha256').update(changes.patch).digest('hex') })
    log.record({ type: 'outcome', message: result.summary,
      kind: changes.files.length > 0 ? 'changes-published' : 'no-changes',
      steps: result.steps, tokens: result.usage.prompt + result.usage.completion,
      costUsd: result.costUsd, durationMs: Date.now() - started })
    log.close()
    await sandbox.remove()
    sandbox = undefined
    expect(verifyAuditLog(dir)).toMatchObject({ ok: true, complete: true })
    // the events the real agent loop wrote follow the published schema
    expectValidAuditLog(dir)
    return dir
  }

  /** `airlock replay DIR` in this process, into a new audit directory. */
  async function replayCli(dir: string, flags: string[] = []): Promise<{ code: number
    out: string; events: StoredEvent[] }> {
    const out = join(await mkdtemp(join(tmpdir(), 'airlock-replay-out-')), 'replay')
    cleanup.push(dirname(out))
    let text = ''
    const term: Terminal = { out: t => { text += t }, err: () => undefined, isTty: false }
    const code = await runCli(['replay', dir, '--repo', repo, '--audit-dir', out,
      '--image', IMAGE, ...flags], {}, term)
    expectValidAuditLog(out)
    return { code, out: text, events: verifyAuditLog(out).events }
  }

  function deps(events: AuditEvent[] = []) {
    return {
      startSandbox: (image: string) => startSandbox({ settings: { ...settings.sandbox, image },
        repoDir: repo, runId: RUN_ID }),
      executeTool,
      commandTimeoutSeconds: 20,
      audit: { record: (e: AuditEvent) => { events.push(e) } }
    }
  }

  it('reproduces a deterministic run: same patch, every command the same', async () => {
    const dir = await record([
      toolReply('edit_file', { path: 'greet.sh', old_text: 'helo', new_text: 'hello' }),
      toolReply('bash', { command: 'sh greet.sh && id -u && ls' }),
      toolReply('write_file', { path: 'NOTES.md', content: 'fixed\n' }),
      toolReply('bash', { command: 'git status --short; exit 2' }),
      toolReply('finish', { summary: 'Fixed the typo.' })])
    const events: AuditEvent[] = []
    const result = await replayRun(dir, deps(events))
    expect(result).toMatchObject({ identical: true, toolCalls: 5, commands: 2,
      firstDivergence: undefined })
    expect(result.image).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(result.replayedPatchSha256).toBe(result.recordedPatchSha256)
    expect(result.patch.toString()).toContain('+echo "hello, world"')
    const commands = events.filter(e => e.type === 'command')
    expect(commands.map(c => [c.phase, c.exitCode])).toEqual([['replay', 0], ['replay', 2]])
    expect(await sweepContainers(RUN_ID)).toBe(0) // replay removed its own sandbox
    const recordedChanges = verifyAuditLog(dir).events.find(e => e.type === 'changes')
    expect(result.files).toEqual(recordedChanges?.type === 'changes' && recordedChanges.files)
    expect(events[0]).toEqual({ type: 'task', origin: 'issue', requester: 'octocat',
      url: undefined, text: TASK })

    // the command line's replay writes the recorded task and the real file list
    const cli = await replayCli(dir)
    expect(cli.code).toBe(0)
    expect(cli.events.map(e => e.type).slice(0, 3)).toEqual(['run.start', 'task',
      'sandbox.start'])
    expect(cli.events.find(e => e.type === 'task')).toMatchObject({ origin: 'issue',
      requester: 'octocat', text: TASK })
    expect(cli.events.find(e => e.type === 'changes')).toMatchObject({
      files: [expect.objectContaining({ path: 'NOTES.md', status: 'added' }),
        expect.objectContaining({ path: 'greet.sh', status: 'modified' })] })
    const html = readFileSync(join(cli.out.match(/^transcript:\s+(\S+)$/m)![1]), 'utf8')
    expect(html).toContain(`<b>Task:</b> ${TASK}</p>`)
    expect(html).toContain('<dt>Model</dt><dd>none called (a replay)</dd>')
  })

  it('replays with the recorded user, command timeout and read-only mode; a flag wins',
    async () => {
      const dir = await record([
        toolReply('bash', { command: 'id -u; touch new.txt && echo wrote || echo refused' }),
        toolReply('write_file', { path: 'new2.txt', content: 'x' }),
        toolReply('bash', { command: 'sleep 5' }),
        toolReply('finish', { summary: 'Looked around.' })],
      { 'read-only': 'true', 'command-timeout': '2', user: '1234:1234' })
      const recorded = verifyAuditLog(dir).events.filter(e => e.type === 'command')
      expect(recorded.map(c => c.timedOut)).toEqual([false, true])

      const same = await replayCli(dir)
      expect(same.out).toMatch(/^outcome: changes-published — the replayed changes are identical/)
      expect(same.code).toBe(0)
      expect(same.events[0]).toMatchObject({ type: 'run.start', mode: 'replay',
        settings: { sandbox: { readOnly: true, commandTimeoutSeconds: 2, user: '1234:1234' } } })
      const replayed = same.events.filter(e => e.type === 'command')
      expect(replayed.map(c => [c.exitCode, c.timedOut])).toEqual(
        recorded.map(c => [c.exitCode, c.timedOut]))
      expect(replayed.map(c => c.stdout.sha256)).toEqual(recorded.map(c => c.stdout.sha256))
      expect(same.events.filter(e => e.type === 'file.write')).toHaveLength(0)

      // a read-only run changes nothing either way, so only the commands tell
      const other = await replayCli(dir, ['--user', '1000:1000'])
      expect(other.events[0]).toMatchObject({ settings: { sandbox: { user: '1000:1000',
        readOnly: true } } })
      expect(other.code).toBe(0)
      expect(other.out).toContain('outcome: changes-published — the replayed changes are '
        + 'identical to the recorded ones, but a command\'s result was not; first difference: ')
      expect(other.out).toMatch(/first difference: command 1 \(step 1\), ".+": stdout differs\n/)
    })

  it('runs the recorded verify commands too, whose files are part of the changes',
    async () => {
      const dir = await record([
        toolReply('edit_file', { path: 'greet.sh', old_text: 'helo', new_text: 'hello' }),
        toolReply('finish', { summary: 'Fixed the typo.' })], {},
      ['sh greet.sh > verify-report.txt && cat verify-report.txt'])
      const recordedChanges = verifyAuditLog(dir).events.find(e => e.type === 'changes')
      expect(recordedChanges?.type === 'changes' && recordedChanges.files.map(f => f.path))
        .toEqual(['greet.sh', 'verify-report.txt'])
      const events: AuditEvent[] = []
      const result = await replayRun(dir, deps(events))
      expect(result).toMatchObject({ identical: true, toolCalls: 2, commands: 1,
        firstDivergence: undefined })
      expect(events.filter(e => e.type === 'command').map(c => c.type === 'command'
        && c.command)).toEqual(['sh greet.sh > verify-report.txt && cat verify-report.txt'])
    })

  it('names the forged command when a recorded command was altered and re-chained',
    async () => {
      const dir = await record([
        toolReply('bash', { command: 'echo one' }),
        toolReply('bash', { command: 'echo two' }),
        toolReply('bash', { command: 'echo three' }),
        toolReply('finish', { summary: 'Counted.' })])
      const pristine = logLines(dir)
      // A forger edits what the agent ran, in the tool call and the command event alike, and
      // recomputes the chain so that verify passes.
      const forge = (lines: string[], which: ('tool.call' | 'command')[]): string[] =>
        rechain(lines.map(line => {
          const entry = JSON.parse(line)
          if (!which.includes(entry.type)) return line
          if (entry.type === 'command' && entry.command === 'echo two') {
            entry.command = 'echo TWO'
          }
          if (entry.type === 'tool.call' && entry.arguments.includes('echo two')) {
            entry.arguments = JSON.stringify({ command: 'echo TWO' })
          }
          return JSON.stringify(entry)
        }))
      writeLogLines(dir, forge(pristine, ['tool.call', 'command']))
      expect(verifyAuditLog(dir)).toMatchObject({ ok: true })
      const both = await replayRun(dir, deps())
      expect(both.firstDivergence).toMatchObject({ index: 2, step: 2, command: 'echo TWO',
        reason: 'stdout differs' })

      // only the command event edited: the replay runs what the model asked for
      writeLogLines(dir, forge(pristine, ['command']))
      expect(verifyAuditLog(dir)).toMatchObject({ ok: true })
      const one = await replayRun(dir, deps())
      expect(one.firstDivergence).toMatchObject({ index: 2, step: 2, command: 'echo two',
        reason: 'a different command ran at this position; the record has: echo TWO' })
      expect(one.identical).toBe(true) // echo changes no file: only the commands tell
    })

  it('replays an intact log whose outcome is missing', async () => {
    const dir = await record([toolReply('write_file', { path: 'a.txt', content: 'a\n' }),
      toolReply('finish', { summary: 'done' })])
    writeLogLines(dir, logLines(dir).slice(0, -1))
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false, intact: true, complete: false })
    const result = await replayRun(dir, deps())
    expect(result).toMatchObject({ identical: true, toolCalls: 2 })
  })

  it('names the first command whose output differs, and the patch differs', async () => {
    const dir = await record([
      toolReply('bash', { command: 'echo same' }),
      toolReply('bash', { command: 'od -An -N8 -tx8 /dev/urandom | tee random.txt' }),
      toolReply('bash', { command: 'echo after' }),
      toolReply('finish', { summary: 'Wrote a random number.' })])
    const result = await replayRun(dir, deps())
    expect(result.identical).toBe(false)
    expect(result.replayedPatchSha256).not.toBe(result.recordedPatchSha256)
    expect(result.firstDivergence).toMatchObject({ index: 2, step: 2,
      command: 'od -An -N8 -tx8 /dev/urandom | tee random.txt', reason: 'stdout differs' })
    expect(result.firstDivergence?.recorded?.stdoutSha256)
      .not.toBe(result.firstDivergence?.replayed?.stdoutSha256)
    expect(await sweepContainers(RUN_ID)).toBe(0)
  })

  it('refuses a log that does not verify, before starting anything', async () => {
    const dir = await record([toolReply('bash', { command: 'echo hi' }),
      toolReply('finish', { summary: 'done' })])
    const lines = logLines(dir)
    lines.splice(2, 1)
    writeLogLines(dir, lines)
    let started = false
    await expect(replayRun(dir, { ...deps(), startSandbox: async () => {
      started = true
      throw new Error('not reached')
    } })).rejects.toThrow(ReplayError)
    expect(started).toBe(false)
  })
})
