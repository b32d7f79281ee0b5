/**
 * A child process that writes an audit log as fast as it can until SIGTERM, then records a
 * `cancelled` outcome from its signal handler, as the action does when a run is cancelled.
 * Usage: node --import ./scripts/ts-loader.mjs audit-sigterm-fixture.ts <audit dir>
 */
import { createHash } from 'node:crypto'
import { AuditLog } from '../../src/audit/log.js'

const dir = process.argv[2]
const log = await AuditLog.create({ dir, secrets: ['fixture-secret-value'], runId: 'sigterm' })
const started = Date.now()
let step = 0

process.on('SIGTERM', () => {
  log.record({ type: 'outcome', kind: 'cancelled', message: 'The run was cancelled.',
    steps: step, tokens: 0, costUsd: 0, durationMs: Date.now() - started })
  log.close()
  process.exit(143)
})

log.record({ type: 'run.start', runId: 'sigterm', airlockVersion: '0.1.0', mode: 'cli',
  settings: {} })

function writeSome(): void {
  for (let i = 0; i < 20; i++) {
    step += 1
    const text = `line ${step} fixture-secret-value\n`.repeat(50)
    log.record({ type: 'command', step, phase: 'agent', command: `echo ${step}`, cwd: '.',
      exitCode: 0, timedOut: false, durationMs: 1,
      stdout: { text, bytes: text.length, sha256: sha256(text), truncated: false },
      stderr: { text: '', bytes: 0, sha256: sha256(''), truncated: false } })
  }
  if (step === 100) process.stdout.write('ready\n')
  setImmediate(writeSome)
}
writeSome()

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
