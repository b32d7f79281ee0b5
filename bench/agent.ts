/**
 * Orchestration overhead of the agent loop per step. A 50-step scripted run (every step one
 * `bash` call) with a zero-latency model goes through the real sandbox, and is compared with
 * a minimal baseline loop against the same model server and the same container: one HTTP
 * call and one `docker exec` CLI call per step. Both are printed with their ratio. The loop
 * writes the real audit log (redaction, hash chain, output files), as a run does.
 *
 *   node_modules/.bin/node --import ./scripts/ts-loader.mjs bench/agent.ts [steps] [rounds]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AuditLog } from '../src/audit/log.js'
import type { AuditEvent, AuditSink } from '../src/audit/types.js'
import { runAgent } from '../src/agent/loop.js'
import { startSandbox } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import { settingsWithDefaults } from '../src/settings.js'
import { ModelServer, toolReply } from '../__tests__/helpers/model-server.js'

const run = promisify(execFile)
const STEPS = Number(process.argv[2] ?? 50)
const ROUNDS = Number(process.argv[3] ?? 3)
const IMAGE = process.env.AIRLOCK_TEST_IMAGE ?? 'airlock-test:bookworm'
const COMMAND = 'true'

/** The real audit log on disk, with the events also kept for reading the timings back. */
class TimedAudit implements AuditSink {
  events: AuditEvent[] = []
  private readonly log: AuditLog
  constructor(log: AuditLog) {
    this.log = log
  }

  record(event: AuditEvent): void {
    this.log.record(event)
    this.events.push(event)
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Per-step wall time of the agent loop, from the progress callback's clock. */
async function agentSteps(sandbox: Sandbox, server: ModelServer): Promise<{
  steps: number[]; ownMs: number[] }> {
  server.setScript((_, i) => toolReply(i < STEPS ? 'bash' : 'finish',
    i < STEPS ? { command: `${COMMAND} ${i}` } : { summary: 'done' }, { prompt: 10,
      completion: 5 }))
  const settings = settingsWithDefaults({ model: 'bench', 'base-url': server.baseUrl,
    'api-key': 'sk-bench-000000', 'max-steps': String(STEPS + 1), image: IMAGE })
  const marks: number[] = []
  const dir = await mkdtemp(join(tmpdir(), 'airlock-bench-audit-'))
  const log = await AuditLog.create({ dir, secrets: settings.secrets, runId: 'bench' })
  const audit = new TimedAudit(log)
  const started = performance.now()
  const result = await runAgent({ sandbox, settings, audit,
    task: { instructions: 'benchmark', origin: { kind: 'input', event: 'cli' } },
    onProgress: () => marks.push(performance.now()) })
    .finally(async () => {
      log.close()
      await rm(dir, { recursive: true, force: true })
    })
  if (result.ending.kind !== 'finished') throw new Error(`bench run ended ${result.ending.kind}`)
  const steps = marks.slice(0, STEPS).map((t, i) => t - (i === 0 ? started : marks[i - 1]))
  // Our own time: the step minus the model's latency and the command's own duration.
  const latencies = audit.events.flatMap(e => e.type === 'model.response' ? [e.latencyMs] : [])
  const commands = audit.events.flatMap(e => e.type === 'command' ? [e.durationMs] : [])
  const ownMs = steps.slice(1).map((s, i) => s - latencies[i + 1] - commands[i + 1])
  return { steps: steps.slice(1), ownMs }
}

/** The same work with nothing in between: a raw HTTP call and a `docker exec`. */
async function baselineSteps(containerId: string, workdir: string,
  server: ModelServer): Promise<number[]> {
  server.setScript(() => toolReply('bash', { command: COMMAND }, { prompt: 10, completion: 5 }))
  const times: number[] = []
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now()
    const res = await fetch(`${server.baseUrl}/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'go' }] }) })
    const body = await res.json() as { choices: { message: { tool_calls: {
      function: { arguments: string } }[] } }[] }
    const { command } = JSON.parse(body.choices[0].message.tool_calls[0].function.arguments)
    await run('docker', ['exec', '-w', workdir, containerId, 'sh', '-c', command])
    times.push(performance.now() - t0)
  }
  return times.slice(1)
}

async function main(): Promise<void> {
  const repo = await mkdtemp(join(tmpdir(), 'airlock-bench-repo-'))
  await writeFile(join(repo, 'README.md'), 'bench\n')
  await run('git', ['init', '-q', repo])
  await run('git', ['-C', repo, '-c', 'user.name=b', '-c', 'user.email=b@example.invalid',
    'commit', '-qam', 'init', '--allow-empty'])
  const server = await ModelServer.start([])
  const settings = settingsWithDefaults({ model: 'bench', image: IMAGE })
  const sandbox = await startSandbox({ settings: settings.sandbox, repoDir: repo,
    runId: `bench-${process.pid}` })
  try {
    const ours: number[] = []
    const own: number[] = []
    const base: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so neither side always runs on a warmer engine.
      const b = round % 2 ? await baselineSteps(sandbox.containerId, sandbox.workdir, server)
        : undefined
      const a = await agentSteps(sandbox, server)
      ours.push(...a.steps)
      own.push(...a.ownMs)
      base.push(...(b ?? await baselineSteps(sandbox.containerId, sandbox.workdir, server)))
    }
    const mOurs = median(ours)
    const mBase = median(base)
    console.log(`agent loop, ${STEPS} steps x ${ROUNDS} rounds, zero-latency model, `
      + `command \`${COMMAND}\` in ${IMAGE}`)
    const rows: [string, string][] = [
      ['airlock step (median)', `${mOurs.toFixed(2)} ms`],
      ['baseline step: fetch + docker exec (median)', `${mBase.toFixed(2)} ms`],
      ['ratio airlock / baseline', (mOurs / mBase).toFixed(2)],
      // The sandbox's durationMs is its host-side round trip, so this is the loop alone.
      ['loop overhead: step - model latency - command round trip (median)',
        `${median(own).toFixed(2)} ms (target <= 10 ms)`]
    ]
    for (const [name, value] of rows) console.log(`  ${name.padEnd(68)} ${value}`)
  } finally {
    await sandbox.remove()
    await server.close()
    await rm(repo, { recursive: true, force: true })
  }
}

await main()
