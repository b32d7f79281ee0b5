import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions'
import type { AuditSink } from '../src/audit/types.js'
import { ModelClient, type ModelClientOptions } from '../src/model/client.js'
import { ContextLengthError, ModelCancelled, ModelFailure } from '../src/model/errors.js'
import { retryAfterMs, retryDelayMs } from '../src/model/retry.js'
import type { ProviderSettings } from '../src/settings.js'
import {
  closedPortUrl, errorReply, ModelServer, textReply, toolReply, type Script
} from './helpers/model-server.js'
import { MemoryAudit } from './helpers/memory-audit.js'

const tools: ChatCompletionFunctionTool[] = [{ type: 'function', function: { name: 'bash',
  parameters: { type: 'object', properties: { command: { type: 'string' } } } } }]
const messages = [{ role: 'user' as const, content: 'hello' }]
const fastBackoff = { baseMs: 5, capMs: 20, retryAfterCapMs: 2000 }

function provider(baseUrl: string, name: string, key = `sk-${name}-secret-key`):
  ProviderSettings {
  return { label: `${name}/m`, model: `model-${name}`, baseUrl, apiKey: key,
    prices: { input: 2, output: 8, cachedInput: 0.5 } }
}

describe('model client', () => {
  const servers: ModelServer[] = []
  const serve = async (script: Script): Promise<ModelServer> => {
    const s = await ModelServer.start(script)
    servers.push(s)
    return s
  }
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(s => s.close()))
  })

  const client = (providers: ProviderSettings[], audit: AuditSink,
    extra: Partial<ModelClientOptions> = {}): ModelClient =>
    new ModelClient({ providers, requestTimeoutSeconds: 5, maxRetries: 2, audit,
      backoff: fastBackoff, ...extra })

  it('sends the conversation and tools, and accounts tokens and cost', async () => {
    const server = await serve([toolReply('bash', { command: 'ls' },
      { prompt: 1000, completion: 200, cached: 400 })])
    const saved = { ...process.env }
    // The client must use only what it is given, never these.
    process.env.OPENAI_API_KEY = 'sk-from-env'
    process.env.OPENAI_BASE_URL = 'http://127.0.0.1:9/v1'
    process.env.OPENAI_ORG_ID = 'org-from-env'
    try {
      const audit = new MemoryAudit()
      const turn = await client([provider(server.baseUrl, 'a')], audit)
        .complete({ step: 1, messages, tools })
      expect(turn.message.tool_calls?.[0]).toMatchObject({ type: 'function',
        function: { name: 'bash', arguments: '{"command":"ls"}' } })
      expect(turn.usage).toEqual({ prompt: 1000, completion: 200, cached: 400 })
      expect(turn.usageEstimated).toBe(false)
      // 600 uncached at 2, 400 cached at 0.5, 200 out at 8 (USD per million)
      expect(turn.costUsd).toBeCloseTo((600 * 2 + 400 * 0.5 + 200 * 8) / 1e6, 12)
      const [req] = server.completions
      expect(req.headers.authorization).toBe('Bearer sk-a-secret-key')
      expect(req.headers['openai-organization']).toBeUndefined()
      expect(req.body).toMatchObject({ model: 'model-a', messages,
        tools: [{ type: 'function', function: { name: 'bash' } }] })
      expect(audit.of('model.request')[0]).toMatchObject({ step: 1, provider: 'a/m',
        tools: ['bash'], messages })
      expect(audit.of('model.response')[0]).toMatchObject({ provider: 'a/m', attempts: 1,
        finishReason: 'tool_calls', usage: turn.usage })
    } finally {
      process.env = saved
    }
  })

  it('honours retry-after on 429 and retries 5xx, then answers', async () => {
    const server = await serve([
      errorReply(429, 'slow down', 'rate_limit_exceeded', { 'retry-after-ms': '300' }),
      errorReply(500, 'boom'), errorReply(503, 'overloaded'), textReply('done')])
    const audit = new MemoryAudit()
    const turn = await client([provider(server.baseUrl, 'a')], audit, { maxRetries: 3 })
      .complete({ step: 1, messages, tools })
    expect(turn.message.content).toBe('done')
    expect(turn.attempts).toBe(4)
    const times = server.completions.map(r => r.atMs)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(290)
    expect(audit.of('model.error').map(e => [e.status, e.retryable, e.attempt]))
      .toEqual([[429, true, 1], [500, true, 2], [503, true, 3]])
  })

  it('waits the seconds of a standard retry-after header on 429', async () => {
    const server = await serve([
      errorReply(429, 'rate limited', 'rate_limit_exceeded', { 'retry-after': '1' }),
      textReply('after the wait')])
    const audit = new MemoryAudit()
    // the jittered backoff alone would wait at most 5 ms here
    const turn = await client([provider(server.baseUrl, 'a')], audit)
      .complete({ step: 1, messages, tools })
    expect(turn.message.content).toBe('after the wait')
    const [first, second] = server.completions.map(r => r.atMs)
    expect(second - first).toBeGreaterThanOrEqual(990)
    expect(second - first).toBeLessThan(1900)
    expect(audit.of('model.error')).toEqual([expect.objectContaining({ status: 429,
      retryable: true, attempt: 1 })])
  })

  it('abandons a stalled request after the timeout and retries it', async () => {
    const server = await serve([{ stall: true }, textReply('after stall')])
    const audit = new MemoryAudit()
    const turn = await client([provider(server.baseUrl, 'a')], audit,
      { requestTimeoutSeconds: 0.3 }).complete({ step: 1, messages, tools })
    expect(turn.message.content).toBe('after stall')
    expect(server.completions).toHaveLength(2)
    expect(audit.of('model.error')[0]).toMatchObject({ retryable: true, attempt: 1 })
    expect(audit.of('model.error')[0].message).toMatch(/timed out/i)
  })

  it('never retries another 4xx, and fails over to the next provider', async () => {
    const bad = await serve([errorReply(401, 'invalid key sk-a-secret-key')])
    const good = await serve([textReply('from b'), textReply('again b')])
    const audit = new MemoryAudit()
    const c = client([provider(bad.baseUrl, 'a'), provider(good.baseUrl, 'b')], audit)
    const turn = await c.complete({ step: 1, messages, tools })
    expect(bad.completions).toHaveLength(1)
    expect(turn.provider).toBe('b/m')
    const [error] = audit.of('model.error')
    expect(error).toMatchObject({ status: 401, retryable: false, failover: 'b/m',
      failoverReason: 'not-retryable' })
    expect(error.message).not.toContain('sk-a-secret-key')
    // the next turn goes straight to the provider that works
    expect((await c.complete({ step: 2, messages, tools })).provider).toBe('b/m')
    expect(bad.completions).toHaveLength(1)
  })

  it('fails over when a provider is down (closed port) and records it', async () => {
    const down = await closedPortUrl()
    const good = await serve([textReply('from b')])
    const audit = new MemoryAudit()
    const turn = await client([provider(down, 'a'), provider(good.baseUrl, 'b')], audit,
      { maxRetries: 1 }).complete({ step: 3, messages, tools })
    expect(turn.provider).toBe('b/m')
    const errors = audit.of('model.error')
    expect(errors.map(e => [e.provider, e.attempt, e.retryable, e.failover, e.failoverReason]))
      .toEqual([['a/m', 1, true, undefined, undefined],
        ['a/m', 2, true, 'b/m', 'retries-exhausted']])
    expect(errors[0].message).toMatch(/connection|ECONNREFUSED/i)
    expect(audit.of('model.response')[0]).toMatchObject({ step: 3, provider: 'b/m' })
  })

  it('names every provider\'s last error, never a key, when all are exhausted', async () => {
    const a = await serve(() => errorReply(502, 'bad gateway'))
    const down = await closedPortUrl()
    const audit = new MemoryAudit()
    const failure = await client([provider(a.baseUrl, 'a'), provider(down, 'b')], audit,
      { maxRetries: 1 }).complete({ step: 1, messages, tools }).catch(e => e)
    expect(failure).toBeInstanceOf(ModelFailure)
    expect(failure.message).toMatch(/a\/m: HTTP 502: .*bad gateway/)
    expect(failure.message).toMatch(/b\/m: .*Connection error/i)
    expect(failure.message).not.toMatch(/secret-key/)
    expect(a.completions).toHaveLength(2)
  })

  it('fails over on a 400 that is not about the context, and says so', async () => {
    const a = await serve([errorReply(400, '\'tools\' is not supported with this model')])
    const b = await serve([textReply('from b')])
    const audit = new MemoryAudit()
    const turn = await client([provider(a.baseUrl, 'a'), provider(b.baseUrl, 'b')], audit)
      .complete({ step: 1, messages, tools })
    expect(turn.provider).toBe('b/m')
    expect(a.completions).toHaveLength(1)
    expect(audit.of('model.error')).toEqual([expect.objectContaining({ status: 400,
      retryable: false, failover: 'b/m', failoverReason: 'not-retryable' })])
  })

  it.each([
    ['no choices', { choices: [] }, '`choices`'],
    ['no choices member', {}, '`choices`'],
    ['a choice without a message', { choices: [{ index: 0, finish_reason: 'stop' }] },
      '`choices[0].message`']
  ])('gives a clear model error for a reply with %s', async (_, shape, missing) => {
    const body = { id: 'x', object: 'chat.completion', created: 1, model: 'model-a', ...shape }
    const a = await serve(() => ({ status: 200, body }))
    const audit = new MemoryAudit()
    const failure = await client([provider(a.baseUrl, 'a')], audit)
      .complete({ step: 4, messages, tools }).catch(e => e)
    expect(failure).toBeInstanceOf(ModelFailure)
    expect(failure.message).toContain(`a/m: the reply has no ${missing}; the provider answered `
      + 'HTTP 200 without a chat completion message')
    // not retried: the same provider would answer the same way
    expect(a.completions).toHaveLength(1)
    expect(audit.of('model.error')).toEqual([expect.objectContaining({ step: 4,
      provider: 'a/m', retryable: false, attempt: 1 })])
    expect(audit.of('model.response')).toHaveLength(0)
  })

  it('moves to the next provider after a reply without choices', async () => {
    const a = await serve([{ status: 200, body: { id: 'x', object: 'chat.completion',
      created: 1, model: 'model-a', choices: [] } }])
    const b = await serve([textReply('from b', null)])
    const audit = new MemoryAudit()
    const turn = await client([provider(a.baseUrl, 'a'), provider(b.baseUrl, 'b')], audit)
      .complete({ step: 1, messages, tools })
    expect(turn).toMatchObject({ provider: 'b/m', usageEstimated: true })
    expect(audit.of('model.error')[0]).toMatchObject({ failover: 'b/m',
      failoverReason: 'not-retryable' })
  })

  it('surfaces a context-length rejection as its own error, without failover', async () => {
    const a = await serve([errorReply(400, 'This model\'s maximum context length is 8192 '
      + 'tokens', 'context_length_exceeded')])
    const b = await serve([textReply('never')])
    const audit = new MemoryAudit()
    const error = await client([provider(a.baseUrl, 'a'), provider(b.baseUrl, 'b')], audit)
      .complete({ step: 1, messages, tools }).catch(e => e)
    expect(error).toBeInstanceOf(ContextLengthError)
    expect(b.completions).toHaveLength(0)
    expect(a.completions).toHaveLength(1)
    expect(audit.of('model.error')[0]).toMatchObject({ status: 400, retryable: false })
    expect(audit.of('model.error')[0].failover).toBeUndefined()
  })

  it('estimates usage from characters when the response has none, and says so', async () => {
    const server = await serve([textReply('x'.repeat(400), null)])
    const audit = new MemoryAudit()
    const turn = await client([provider(server.baseUrl, 'a')], audit)
      .complete({ step: 1, messages, tools })
    expect(turn.usageEstimated).toBe(true)
    expect(turn.usage.completion).toBeGreaterThanOrEqual(100)
    expect(turn.usage.prompt).toBeGreaterThan(0)
    expect(audit.of('model.response')[0].usageEstimated).toBe(true)
  })

  it('aborts the request in flight when the signal fires', async () => {
    const server = await serve([{ stall: true }])
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    const started = Date.now()
    const error = await client([provider(server.baseUrl, 'a')], new MemoryAudit(),
      { requestTimeoutSeconds: 30 })
      .complete({ step: 1, messages, tools, signal: controller.signal }).catch(e => e)
    expect(error).toBeInstanceOf(ModelCancelled)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(server.completions).toHaveLength(1)
  })

  it('records only the appended messages when the conversation grows', async () => {
    const server = await serve([textReply('one'), textReply('two')])
    const audit = new MemoryAudit()
    const c = client([provider(server.baseUrl, 'a')], audit)
    const conversation = [...messages]
    await c.complete({ step: 1, messages: conversation, tools })
    const added = { role: 'user' as const, content: 'more' }
    await c.complete({ step: 2, messages: [...conversation, added], tools })
    const [first, second] = audit.of('model.request')
    expect(first.fromIndex).toBeUndefined()
    expect(second).toMatchObject({ fromIndex: 1, messages: [added] })
    expect(server.completions[1].body.messages).toEqual([...messages, added])
  })
})

describe('retry policy', () => {
  it('reads retry-after-ms, retry-after seconds and dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250)
    expect(retryAfterMs(new Headers({ 'retry-after': '3' }))).toBe(3000)
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' }), now))
      .toBe(10_000)
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined()
    expect(retryAfterMs(undefined)).toBeUndefined()
  })

  it('backs off exponentially with jitter, capped, and caps retry-after', () => {
    const policy = { baseMs: 100, capMs: 1000, retryAfterCapMs: 5000 }
    expect(retryDelayMs(1, policy, undefined, () => 1)).toBe(100)
    expect(retryDelayMs(1, policy, undefined, () => 0)).toBe(50)
    expect(retryDelayMs(3, policy, undefined, () => 1)).toBe(400)
    expect(retryDelayMs(10, policy, undefined, () => 1)).toBe(1000)
    expect(retryDelayMs(2, policy, 60_000)).toBe(5000)
    expect(retryDelayMs(2, policy, 1200)).toBe(1200)
  })
})
