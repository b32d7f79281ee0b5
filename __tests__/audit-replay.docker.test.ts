import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAgent } from '../src/agent/loop.js'
import { executeTool } from '../src/agent/tools.js'
import { AuditLog } from '../src/audit/log.js'
import { replayRun, ReplayError } from '../src/audit/replay.js'
import type { AuditEvent } from '../src/audit/types.js'
import { verifyAuditLog } from '../src/audit/verify.js'
import { startSandbox, sweepContainers } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import { settingsWithDefaults } from '../src/settings.js'
import type { Settings } from '../src/settings.js'
import { ModelServer, toolReply } from './helpers/model-server.js'
import type { ScriptEntry } from './helpers/model-server.js'
import { eventValidator, logLines, writeLogLines } from './helpers/audit-files.js'
import { makeGitRepo } from './helpers/git-repo.js'

const IMAGE = 'airlock-test:bookworm'
const RUN_ID = `audit-replay-${process.pid}`
const SECRET = 'sk-replay-secret-123456'

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
  async function record(script: ScriptEntry[]): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-replay-audit-'))
    cleanup.push(dir)
    server = await ModelServer.start(script)
    settings = settingsWithDefaults({ model: 'scripted', 'api-key': SECRET,
      'base-url': server.baseUrl, image: IMAGE, 'command-timeout': '20' })
    const log = await AuditLog.create({ dir, secrets: settings.secrets, runId: RUN_ID })
    const started = Date.now()
    log.record({ type: 'run.start', runId: RUN_ID, airlockVersion: '0.1.0', mode: 'cli',
      settings: { model: 'scripted' } })
    sandbox = await startSandbox({ settings: settings.sandbox, repoDir: repo, runId: RUN_ID })
    log.record({ type: 'sandbox.start', containerId: sandbox.containerId, image: sandbox.image,
      workdir: sandbox.workdir, network: 'none' })
    const result = await runAgent({ sandbox, settings, audit: log,
      task: { instructions: 'Fix the typo.', origin: { kind: 'input', event: 'cli' } } })
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
    const validate = eventValidator()
    for (const line of logLines(dir)) {
      expect({ line: line.slice(0, 50), errors: validate(JSON.parse(line)) ? null
        : validate.errors }).toEqual({ line: line.slice(0, 50), errors: null })
    }
    return dir
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
