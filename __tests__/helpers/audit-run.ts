/**
 * A realistic run written through the real AuditLog API, with command outputs produced by real
 * processes (bash, git) on the host, and canary secrets planted in settings, messages, tool
 * arguments and outputs, raw and encoded.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../src/audit/log.js'
import type { AuditLogOptions } from '../../src/audit/log.js'
import type { CapturedOutput, CommandResult } from '../../src/sandbox/types.js'

/** An API key that must never appear in anything the log writes. */
export const CANARY_KEY = 'sk-canary-Zq8w3Rt5Yu7Io9PaLk'
/** A GitHub token that must never appear either. */
export const CANARY_TOKEN = 'ghp_canaryTok3n+/Ab9x_Qw7e'
export const CANARIES = [CANARY_KEY, CANARY_TOKEN]

/** Text a hostile agent might print, hoping a renderer runs it. */
export const HOSTILE = '<script>document.title="pwned"</script>'
  + '<img src=x onerror="document.title=\'pwned\'">::set-output name=x::pwned'

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function captured(data: Buffer): CapturedOutput {
  return { text: data.toString('utf8'), bytes: data.length, sha256: sha256(data), truncated: false }
}

/** Runs a bash command on the host and returns it as the sandbox would report it. */
export function runOnHost(command: string, cwd: string): CommandResult {
  const started = Date.now()
  const result = spawnSync('bash', ['-c', command], {
    cwd, maxBuffer: 64 * 1024 ** 2,
    env: { PATH: process.env.PATH, HOME: cwd, CANARY: CANARY_KEY, TOKEN: CANARY_TOKEN,
      GIT_CONFIG_NOSYSTEM: '1', LANG: 'C.UTF-8' }
  })
  return {
    command, exitCode: result.status ?? -1, timedOut: false, durationMs: Date.now() - started,
    stdout: captured(result.stdout), stderr: captured(result.stderr)
  }
}

export interface SampleRun {
  dir: string
  repo: string
  log: AuditLog
  patch: string
  commands: CommandResult[]
}

/** Writes a full run (run.start … outcome) into a fresh audit directory. */
export async function writeSampleRun(options: Partial<AuditLogOptions> = {}): Promise<SampleRun> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'airlock-audit-'))
  const repo = mkdtempSync(join(tmpdir(), 'airlock-audit-repo-'))
  const log = await AuditLog.create({ secrets: CANARIES, runId: 'run-42', ...options, dir })
  const commands: CommandResult[] = []
  const command = (step: number, text: string): void => {
    const result = runOnHost(text, repo)
    commands.push(result)
    log.record({ type: 'command', step, phase: 'agent', cwd: '.', ...result })
  }

  log.record({ type: 'run.start', runId: 'run-42', airlockVersion: '0.1.0', mode: 'action',
    settings: { model: 'gpt-test', apiKey: CANARY_KEY, note: `token ${CANARY_TOKEN}` } })
  log.record({ type: 'task', origin: 'issue', requester: 'octocat',
    url: 'https://github.com/o/r/issues/1', text: `Fix the greeting. ${HOSTILE}` })
  log.record({ type: 'sandbox.start', containerId: 'c0ffee', workdir: '/workspace/repo',
    network: 'none', image: { name: 'airlock-test:bookworm', id: 'sha256:' + 'a'.repeat(64),
      digests: [] } })
  runOnHost('git init -q -b main && git config user.email a@b && git config user.name a '
    + '&& printf "hello\\n" > greet.txt && git add . && git commit -qm init', repo)

  const system = { role: 'system', content: 'You are a careful coding agent.' }
  const user = { role: 'user', content: `Fix the greeting. The key is ${CANARY_KEY}, in base64 `
    + Buffer.from(`x${CANARY_KEY}`).toString('base64') }
  log.record({ type: 'model.request', step: 1, provider: 'loopback/gpt-test', model: 'gpt-test',
    messages: [system, user], tools: ['bash', 'write_file', 'finish'] })
  const call = { id: 'call_1', type: 'function',
    function: { name: 'bash', arguments: JSON.stringify({ command: 'cat greet.txt' }) } }
  log.record({ type: 'model.response', step: 1, provider: 'loopback/gpt-test', model: 'gpt-test',
    latencyMs: 420, finishReason: 'tool_calls', attempts: 1, costUsd: 0.0012,
    usage: { prompt: 900, completion: 40, cached: 0 },
    message: { role: 'assistant', content: `I will look (token ${CANARY_TOKEN}).`,
      tool_calls: [call] } })
  log.record({ type: 'tool.call', step: 1, callId: 'call_1', name: 'bash',
    arguments: call.function.arguments })
  command(1, 'cat greet.txt; printf "key=%s\\n" "$CANARY"; printf %s "ab$CANARY" | base64 -w0; '
    + 'echo; printf %s "$TOKEN" | od -An -tx1 | tr -d " \\n"; echo')
  log.record({ type: 'tool.result', step: 1, callId: 'call_1', name: 'bash', ok: true,
    observation: `hello\nkey=${CANARY_KEY}` })

  command(2, 'seq 1 400000')
  command(2, `printf '%s\\n' '${HOSTILE}'; echo "x${encodeURIComponent(CANARY_TOKEN)}" >&2; `
    + 'exit 3')
  writeFileSync(join(repo, 'greet.txt'), 'hello, world\n')
  log.record({ type: 'file.write', step: 3, path: 'greet.txt', bytes: 13,
    sha256: sha256('hello, world\n') })
  command(3, 'git diff --stat')
  const patch = runOnHost('git diff --binary', repo).stdout.text
  log.record({ type: 'changes', patchBytes: Buffer.byteLength(patch), patchSha256: sha256(patch),
    files: [{ path: 'greet.txt', status: 'modified', mode: '100644', binary: false }] })
  log.record({ type: 'outcome', kind: 'changes-published', message: 'Opened a draft pull request.',
    steps: 3, tokens: 1880, costUsd: 0.0031, durationMs: 65_000 })
  log.close()
  return { dir, repo, log, patch, commands }
}
