/**
 * Cost of the audit log per event. The same run of events (per step: a model request and
 * response, a tool call, a command with 8 KiB of output, a tool result) is written through
 * `AuditLog` (redaction of three secrets in all their forms, hash chain, outputs moved to
 * files) and through a baseline that only does `JSON.stringify` + `writeSync` per line.
 * A second part compares the redactor with a plain `split/join` of the raw secrets.
 *
 *   node_modules/.bin/node --import ./scripts/ts-loader.mjs bench/audit-log.ts [steps] [rounds]
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../src/audit/log.js'
import { createRedactor } from '../src/audit/redact.js'
import type { AuditEvent } from '../src/audit/types.js'

const STEPS = Number(process.argv[2] ?? 2000)
const ROUNDS = Number(process.argv[3] ?? 3)
const SECRETS = ['sk-bench-' + randomBytes(16).toString('hex'), 'ghp_' + randomBytes(18)
  .toString('base64url'), 'extra-secret-value-' + randomBytes(6).toString('hex')]

function text(bytes: number, seed: number): string {
  const line = `line ${seed} of some ordinary build output, nothing secret in it at all\n`
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes)
}

function stepEvents(step: number): AuditEvent[] {
  const out = text(8192, step)
  const sha = createHash('sha256').update(out).digest('hex')
  return [
    { type: 'model.request', step, provider: 'p', model: 'm', tools: ['bash'], fromIndex: step * 2,
      messages: [{ role: 'tool', content: text(2048, step) }] },
    { type: 'model.response', step, provider: 'p', model: 'm', latencyMs: 100,
      finishReason: 'tool_calls', attempts: 1, costUsd: 0.001,
      usage: { prompt: 1000, completion: 50, cached: 0 },
      message: { role: 'assistant', content: 'Running the tests.' } },
    { type: 'tool.call', step, callId: `c${step}`, name: 'bash',
      arguments: JSON.stringify({ command: `npm test -- part${step}` }) },
    { type: 'command', step, phase: 'agent', command: `npm test -- part${step}`, cwd: '.',
      exitCode: 0, timedOut: false, durationMs: 10,
      stdout: { text: out, bytes: out.length, sha256: sha, truncated: false },
      stderr: { text: 'warn\n', bytes: 5, sha256: sha, truncated: false } },
    { type: 'tool.result', step, callId: `c${step}`, name: 'bash', ok: true,
      observation: out.slice(0, 4096) }
  ]
}

const events = Array.from({ length: STEPS }, (_, i) => stepEvents(i + 1)).flat()

async function airlock(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-audit-'))
  const started = process.hrtime.bigint()
  const log = await AuditLog.create({ dir, secrets: SECRETS, runId: 'bench' })
  for (const event of events) log.record(event)
  log.close()
  const ns = Number(process.hrtime.bigint() - started)
  rmSync(dir, { recursive: true, force: true })
  return ns
}

/** Plain lines; with `files`, command outputs also go to files as the log stores them. */
function baseline(files: boolean): number {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-plain-'))
  mkdirSync(join(dir, 'outputs'))
  const started = process.hrtime.bigint()
  const fd = openSync(join(dir, 'plain.jsonl'), 'wx')
  let seq = 0
  for (const event of events) {
    if (files && event.type === 'command') {
      writeFileSync(join(dir, 'outputs', `${seq}.txt`), event.stdout.text, { flag: 'wx' })
      writeFileSync(join(dir, 'outputs', `${seq}e.txt`), event.stderr.text, { flag: 'wx' })
    }
    writeSync(fd, JSON.stringify({ seq: ++seq, time: new Date().toISOString(), ...event }) + '\n')
  }
  closeSync(fd)
  const ns = Number(process.hrtime.bigint() - started)
  rmSync(dir, { recursive: true, force: true })
  return ns
}

function redactors(): { ours: number; plain: number } {
  const redact = createRedactor(SECRETS)
  const big = text(8 * 1024 ** 2, 7) + SECRETS[0] + text(1024, 8)
  let t = process.hrtime.bigint()
  const a = redact(big)
  const ours = Number(process.hrtime.bigint() - t)
  t = process.hrtime.bigint()
  let b = big
  for (const s of SECRETS) b = b.split(s).join('***')
  const plain = Number(process.hrtime.bigint() - t)
  if (a !== b) throw new Error('the two redactions disagree on plain text')
  return { ours, plain }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const perEvent = (ns: number) => `${(ns / events.length / 1000).toFixed(1)} µs`

const ours: number[] = []
const base: number[] = []
const baseFiles: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  // alternate the order, so no side always gets a warm page cache
  if (round % 2 === 0) {
    ours.push(await airlock()); base.push(baseline(false)); baseFiles.push(baseline(true))
  } else {
    baseFiles.push(baseline(true)); base.push(baseline(false)); ours.push(await airlock())
  }
}
const red = Array.from({ length: ROUNDS }, redactors)
console.log(`audit log, ${events.length} events (${STEPS} steps), median of ${ROUNDS} rounds`)
console.log(`  AuditLog (redact + chain + outputs): ${perEvent(median(ours))} per event`)
console.log(`  baseline (stringify + writeSync):    ${perEvent(median(base))} per event`)
console.log(`  baseline + output files:             ${perEvent(median(baseFiles))} per event`)
console.log(`  ratio AuditLog / baseline:           ${(median(ours) / median(base)).toFixed(2)}`)
const withFiles = (median(ours) / median(baseFiles)).toFixed(2)
console.log(`  ratio AuditLog / baseline + files:   ${withFiles}`)
const mbps = (ns: number) => (8 / (ns / 1e9)).toFixed(0)
const ro = median(red.map(r => r.ours))
const rp = median(red.map(r => r.plain))
console.log(`redactor on 8 MiB, ${SECRETS.length} secrets`)
console.log(`  createRedactor (all encoded forms): ${mbps(ro)} MiB/s`)
console.log(`  baseline (split/join raw values):   ${mbps(rp)} MiB/s`)
console.log(`  ratio time redactor / baseline:     ${(ro / rp).toFixed(2)}`)
