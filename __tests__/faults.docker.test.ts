import { afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { sweepNetworks } from '../src/network/index.js'
import { sweepContainers } from '../src/sandbox/index.js'
import { disposeHostileRun, hostileRun, leftovers, type HostileRun }
  from './helpers/hostile-run.js'
import { closedPortUrl, errorReply, toolReply, type ScriptEntry }
  from './helpers/model-server.js'

const longCommand = toolReply('bash', { command: 'sleep 30', timeout_seconds: 20 })
const never = toolReply('finish', { summary: 'should never be asked for' })

describe('the sandbox failing under the run', () => {
  let run: HostileRun | undefined

  afterEach(async () => {
    if (run) expect(await leftovers(run.runId)).toEqual([])
    await disposeHostileRun(run)
    run = undefined
  })

  const attacks: Array<[string, (c: Docker.Container) => Promise<unknown>]> = [
    ['killed', c => c.kill()],
    ['removed', c => c.remove({ force: true })]
  ]
  test.each(attacks)('the container %s mid-command: failed, sandbox named, no more model calls',
    async (_how, attack) => {
      let attackedAt = 0
      const started = Date.now()
      run = await hostileRun({ inputs: { 'command-timeout': '30' },
        script: [longCommand, never],
        onStarted: runId => void setTimeout(() => {
          attackedAt = Date.now()
          void new Docker().listContainers({ filters: { label: [`airlock.run=${runId}`] } })
            .then(list => Promise.all(list.map(c => attack(new Docker().getContainer(c.Id)))))
        }, 1500) })
      const ended = Date.now()
      expect(run.result.outcome.kind).toBe('failed')
      expect(run.result.outcome.message).toMatch(/sandbox/i)
      expect(run.model.completions).toHaveLength(1)
      expect(attackedAt).toBeGreaterThan(started)
      expect(ended - attackedAt).toBeLessThan(5000)
      expect(run.verify()).toMatchObject({ ok: true, complete: true })
      expect(run.verify().events.at(-1)).toMatchObject({ type: 'outcome', kind: 'failed',
        ending: 'sandbox-failure' })
      // The "working on it" reply is replaced by the failure, not left behind.
      const replies = run.github.commentsOn(1).map(c => c.body)
      expect(replies).toHaveLength(1)
      expect(replies[0]).toMatch(/failed/i)
      expect(replies[0]).not.toMatch(/working on this/i)
    })
})

describe('a cancel (SIGTERM) mid-command', () => {
  let run: HostileRun | undefined

  afterEach(async () => {
    if (run) expect(await leftovers(run.runId)).toEqual([])
    await disposeHostileRun(run)
    run = undefined
  })

  test('ends cancelled within seconds, the log complete and verified', async () => {
    const controller = new AbortController()
    let abortedAt = 0
    run = await hostileRun({ inputs: { 'command-timeout': '30' }, script: [longCommand, never],
      signal: controller.signal, onStarted: () => void setTimeout(() => {
        abortedAt = Date.now()
        controller.abort()
      }, 1500) })
    expect(Date.now() - abortedAt).toBeLessThan(5000)
    expect(run.result.outcome.kind).toBe('cancelled')
    expect(run.model.completions).toHaveLength(1)
    expect(run.verify()).toMatchObject({ ok: true, complete: true })
    expect(run.verify().events.at(-1)).toMatchObject({ type: 'outcome', kind: 'cancelled' })
  })
})

describe('the engine going away mid-run', () => {
  let run: HostileRun | undefined
  let proxy: Server | undefined
  let socketDir: string | undefined
  const savedHost = process.env.DOCKER_HOST

  afterEach(async () => {
    process.env.DOCKER_HOST = savedHost
    if (savedHost === undefined) delete process.env.DOCKER_HOST
    if (run) {
      // The run could not sweep through a dead engine; the post step would, as here.
      await sweepContainers(run.runId)
      await sweepNetworks(run.runId)
      expect(await leftovers(run.runId)).toEqual([])
    }
    await disposeHostileRun(run)
    run = undefined
    await new Promise(resolve => proxy ? proxy.close(resolve) : resolve(undefined))
    if (socketDir) rmSync(socketDir, { recursive: true, force: true })
  })

  test('cut at the socket: failed within seconds, the sandbox named', async () => {
    // A proxy in front of the engine's socket stands in for a daemon restart, which would
    // disturb everything else on a shared machine.
    socketDir = mkdtempSync(join(tmpdir(), 'airlock-faults-engine-'))
    const path = join(socketDir, 'docker.sock')
    const open = new Set<Socket>()
    let cut = false
    proxy = createServer(client => {
      if (cut) return void client.destroy()
      const engine = connect('/var/run/docker.sock')
      open.add(client).add(engine)
      client.pipe(engine).pipe(client)
      const end = (): void => { client.destroy(); engine.destroy() }
      client.on('error', end).on('close', end)
      engine.on('error', end).on('close', end)
    })
    await new Promise<void>(resolve => proxy?.listen(path, resolve))
    process.env.DOCKER_HOST = `unix://${path}`
    let cutAt = 0
    run = await hostileRun({ inputs: { 'command-timeout': '30' }, script: [longCommand, never],
      onStarted: () => void setTimeout(() => {
        cut = true
        cutAt = Date.now()
        for (const socket of open) socket.destroy()
      }, 1500) })
    expect(run.result.outcome.kind).toBe('failed')
    expect(run.result.outcome.message).toMatch(/sandbox/i)
    expect(run.model.completions).toHaveLength(1)
    expect(Date.now() - cutAt).toBeLessThan(8000)
    expect(run.verify()).toMatchObject({ ok: true, complete: true })
  })
})

describe('the model failing, through the whole pipeline', () => {
  let run: HostileRun | undefined

  afterEach(async () => {
    if (run) expect(await leftovers(run.runId)).toEqual([])
    await disposeHostileRun(run)
    run = undefined
  })

  const manyTimes = (entry: ScriptEntry): ScriptEntry[] => Array.from({ length: 8 }, () => entry)
  // Every row has all four values: jest reads a missing one as a `done` callback.
  const cases: Array<[string, ScriptEntry[], RegExp, Record<string, string>]> = [
    ['a 429 storm', manyTimes(errorReply(429, 'Rate limit reached', 'rate_limit_exceeded',
      { 'retry-after-ms': '10' })), /model failed.*(429|rate)/i, { 'max-retries': '2' }],
    ['500s', manyTimes(errorReply(500, 'upstream exploded')), /model failed.*500/i,
      { 'max-retries': '2' }],
    ['a stalled response', manyTimes({ stall: true }), /model failed.*(time|abort)/i,
      { 'request-timeout-seconds': '1', 'max-retries': '1' }],
    ['malformed tool calls', manyTimes({ reply: { toolCalls: [{ name: 'bash',
      arguments: '{"command": "ls"' }] } }), /malformed tool calls/i, {}],
    ['a context-length error', manyTimes(errorReply(400, 'This model\'s maximum context length '
      + 'is 8192 tokens', 'context_length_exceeded')), /model failed.*context/i, {}]
  ]
  test.each(cases)('%s ends the run as failed, with the reason', async (name, script,
    message, inputs) => {
    run = await hostileRun({ script, inputs })
    expect(run.result.outcome.kind).toBe('failed')
    expect(run.result.outcome.message).toMatch(message)
    expect(run.verify()).toMatchObject({ ok: true, complete: true })
    expect(run.verify().events.at(-1)).toMatchObject({ type: 'outcome',
      ending: name === 'malformed tool calls' ? 'format-errors' : 'model-failure' })
    // The requester hears about it on the issue.
    expect(run.github.commentsOn(1).at(-1)?.body).toContain('Airlock: failed')
  })

  test('an endpoint that is down ends the run as failed, quickly', async () => {
    const started = Date.now()
    run = await hostileRun({ script: [never], baseUrl: await closedPortUrl(),
      inputs: { 'max-retries': '1' } })
    expect(run.result.outcome.kind).toBe('failed')
    expect(run.result.outcome.message).toMatch(/model failed.*connect/i)
    expect(Date.now() - started).toBeLessThan(15000)
    expect(run.verify()).toMatchObject({ ok: true, complete: true })
  })
})
