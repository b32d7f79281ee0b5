import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../src/audit/index.js'
import type { Reporter } from '../src/reporter.js'
import { runTask } from '../src/run.js'
import { settingsWithDefaults } from '../src/settings.js'
import type { Task } from '../src/task/types.js'

/** What the user would see of the run, line by line. */
function recordingReporter(lines: string[], warnings: string[]): Reporter {
  return { group: (_name, body) => body(), info: line => void lines.push(line),
    warning: line => void warnings.push(line), progress: () => undefined }
}

describe('a run whose Docker engine does not answer', () => {
  let dir: string
  let server: Server | undefined
  const sockets: Socket[] = []
  const savedHost = process.env.DOCKER_HOST

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-dead-engine-'))
  })

  afterEach(async () => {
    if (savedHost === undefined) delete process.env.DOCKER_HOST
    else process.env.DOCKER_HOST = savedHost
    for (const socket of sockets.splice(0)) socket.destroy()
    await new Promise<void>(resolve => (server ? server.close(() => resolve()) : resolve()))
    server = undefined
    rmSync(dir, { recursive: true, force: true })
  })

  async function run(): Promise<{ message: string; ms: number; lines: string[];
    warnings: string[] }> {
    const settings = settingsWithDefaults({ model: 'scripted', 'api-key': 'sk-dead-engine-1',
      'base-url': 'http://127.0.0.1:1/v1', image: 'airlock-test:bookworm' })
    const task: Task = { instructions: 'Change nothing.', origin: { kind: 'input',
      event: 'cli' } }
    const audit = await AuditLog.create({ dir: join(dir, 'audit'), secrets: settings.secrets,
      runId: 'dead-engine' })
    const lines: string[] = []
    const warnings: string[] = []
    const started = Date.now()
    try {
      const result = await runTask({ settings, task, repoDir: dir, runId: 'dead-engine', audit,
        reporter: recordingReporter(lines, warnings), signal: new AbortController().signal,
        startedAt: started })
      expect(result.outcome.kind).toBe('failed')
      return { message: result.outcome.message, ms: Date.now() - started, lines, warnings }
    } finally {
      audit.close()
    }
  }

  test('fails once, says what to do, and cleans up without pinging it again', async () => {
    // An engine that takes the connection and never answers: every ping waits its timeout.
    const socketPath = join(dir, 'docker.sock')
    server = createServer(socket => void sockets.push(socket))
    await new Promise<void>(resolve => server?.listen(socketPath, resolve))
    process.env.DOCKER_HOST = `unix://${socketPath}`
    const { message, ms, lines, warnings } = await run()
    expect(message).toContain(`No Docker engine answers at DOCKER_HOST=unix://${socketPath}`)
    expect(message).toMatch(/Start Docker.*socket.*or set DOCKER_HOST/)
    expect(message).not.toMatch(/scripts\//)
    // One ping timeout (5 s); the two sweeps would each add another.
    expect(ms).toBeLessThan(8000)
    expect(warnings).toEqual([])
    expect(lines.filter(line => /Nothing to remove/.test(line))).toEqual([
      `Nothing to remove: no Docker engine answered at DOCKER_HOST=unix://${socketPath} `
      + '(no answer in 5 s), so no container or network of this run exists.'])
  }, 30_000)

  test('names a socket that is not there', async () => {
    const socketPath = join(dir, 'missing.sock')
    process.env.DOCKER_HOST = `unix://${socketPath}`
    const { message, ms, warnings } = await run()
    expect(message).toMatch(`No Docker engine answers at DOCKER_HOST=unix://${socketPath} `
      + '(Error: connect ENOENT')
    expect(ms).toBeLessThan(3000)
    expect(warnings).toEqual([])
  })
})
