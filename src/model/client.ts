/**
 * Chat completions with tool calling against any OpenAI-compatible endpoint, with one retry
 * layer (see `retry.ts`) and ordered failover: when a provider keeps failing, the next one
 * answers this turn and every later one.
 */
import OpenAI from 'openai'
import type {
  ChatCompletion, ChatCompletionFunctionTool, ChatCompletionMessage, ChatCompletionMessageParam
} from 'openai/resources/chat/completions'
import type { AuditSink, TokenUsage } from '../audit/types.js'
import type { ProviderSettings } from '../settings.js'
import { ContextLengthError, ModelCancelled, ModelFailure } from './errors.js'
import { type BackoffPolicy, classifyError, DEFAULT_BACKOFF, retryDelayMs, sleep } from './retry.js'
import { costOf, usageOf } from './usage.js'

export interface ModelClientOptions {
  /** in order of preference */
  providers: readonly ProviderSettings[]
  requestTimeoutSeconds: number
  /** retries per request on one provider before the next takes over */
  maxRetries: number
  audit: AuditSink
  backoff?: BackoffPolicy
  random?: () => number
}

export interface ModelRequest {
  step: number
  messages: readonly ChatCompletionMessageParam[]
  tools: readonly ChatCompletionFunctionTool[]
  signal?: AbortSignal
}

/** One answered turn and what it cost. */
export interface ModelTurn {
  provider: string
  model: string
  message: ChatCompletionMessage
  finishReason: string
  usage: TokenUsage
  usageEstimated: boolean
  costUsd: number
  latencyMs: number
  /** attempts on the provider that answered */
  attempts: number
}

type Attempt =
  | { ok: true; turn: ModelTurn }
  | { ok: false; error: string }

/** The model endpoints of a run, tried in order. */
export class ModelClient {
  private readonly options: ModelClientOptions
  private readonly clients = new Map<number, OpenAI>()
  private readonly lastErrors = new Map<number, string>()
  private current = 0
  private recorded: readonly ChatCompletionMessageParam[] = []

  constructor(options: ModelClientOptions) {
    if (options.providers.length === 0) {
      throw new Error('No model provider configured: set `model` and `base-url`.')
    }
    this.options = options
  }

  /** The provider that answers the next request. */
  get provider(): ProviderSettings {
    return this.options.providers[Math.min(this.current, this.options.providers.length - 1)]
  }

  /**
   * Asks the current provider, failing over down the list. Throws `ContextLengthError` when
   * the conversation is too long, `ModelCancelled` on abort, `ModelFailure` when every
   * provider has failed.
   */
  async complete(request: ModelRequest): Promise<ModelTurn> {
    const { providers } = this.options
    while (this.current < providers.length) {
      const attempt = await this.tryProvider(this.current, request)
      if (attempt.ok) return attempt.turn
      this.lastErrors.set(this.current, attempt.error)
      this.current += 1
    }
    const detail = providers.map((p, i) => `${p.label}: ${this.lastErrors.get(i) ?? 'not tried'}`)
    throw new ModelFailure(`Every model provider failed. ${detail.join('; ')}. Check the `
      + 'base URL, model name and key of each provider, and the provider status pages.')
  }

  private async tryProvider(index: number, request: ModelRequest): Promise<Attempt> {
    const provider = this.options.providers[index]
    const client = this.clientFor(index)
    const { step, messages, tools, signal } = request
    this.recordRequest(step, provider, messages, tools)
    const attempts = this.options.maxRetries + 1
    let lastError = ''
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (signal?.aborted) throw new ModelCancelled()
      const started = Date.now()
      try {
        const response = await client.chat.completions.create(
          { model: provider.model, messages: [...messages], tools: [...tools] }, { signal })
        const missing = missingInReply(response)
        if (missing) {
          // Not retried: a provider that answers 200 without a message (a gateway that drops
          // tool calling, a content filter) answers the same way again; the next may not.
          return this.gaveUp(step, index, `the reply has no ${missing}; the provider answered `
            + 'HTTP 200 without a chat completion message', attempt)
        }
        return { ok: true, turn: this.turnOf(step, provider, response, messages,
          Date.now() - started, attempt) }
      } catch (error) {
        const verdict = classifyError(error)
        if (verdict.kind === 'aborted' || signal?.aborted) throw new ModelCancelled()
        const timeoutMs = this.options.requestTimeoutSeconds * 1000
        // Said by elapsed time, since the SDK's timeout error class does not survive every
        // runtime (under a VM-sandboxed test runner it arrives as a plain connection error).
        const timedOut = verdict.kind === 'retryable' && verdict.status === undefined
          && Date.now() - started >= timeoutMs - 50
        const message = timedOut
          ? `request timed out: no answer within ${this.options.requestTimeoutSeconds}s`
          : redact(verdict.message, provider.apiKey)
        lastError = verdict.status ? `HTTP ${verdict.status}: ${message}` : message
        if (verdict.kind === 'context-length') {
          this.options.audit.record({ type: 'model.error', step, provider: provider.label,
            message, status: verdict.status, retryable: false, attempt })
          throw new ContextLengthError(provider.label, message)
        }
        // The failover decision: a non-retryable answer (401, 403, 404, a 400 other than the
        // context window) moves to the next provider instead of ending the run. Asking the same
        // provider again would not change it, but such an error is about this provider's key,
        // model name, quota or tool support, which the next provider does not share. The cost:
        // a wrong key on the first provider costs one request before the fallback answers, and
        // the event says why the run moved on.
        if (verdict.kind !== 'retryable' || attempt === attempts) {
          return this.gaveUp(step, index, message, attempt, verdict.status,
            verdict.kind === 'retryable' ? 'retries-exhausted' : 'not-retryable', lastError)
        }
        this.options.audit.record({ type: 'model.error', step, provider: provider.label,
          message, status: verdict.status, retryable: true, attempt })
        const wait = retryDelayMs(attempt, this.options.backoff ?? DEFAULT_BACKOFF,
          verdict.retryAfterMs, this.options.random)
        await sleep(wait, signal).catch(() => {
          throw new ModelCancelled()
        })
      }
    }
    return { ok: false, error: lastError }
  }

  /** Records why this provider is left for this turn and every later one, and to whom. */
  private gaveUp(step: number, index: number, message: string, attempt: number,
    status?: number, why: 'not-retryable' | 'retries-exhausted' = 'not-retryable',
    error = status ? `HTTP ${status}: ${message}` : message): Attempt {
    const { providers, audit } = this.options
    const next = providers[index + 1]
    audit.record({ type: 'model.error', step, provider: providers[index].label, message, status,
      retryable: why === 'retries-exhausted', attempt, failover: next?.label,
      failoverReason: next ? why : undefined })
    return { ok: false, error }
  }

  private turnOf(step: number, provider: ProviderSettings, response: ChatCompletion,
    messages: readonly ChatCompletionMessageParam[], latencyMs: number,
    attempts: number): ModelTurn {
    const choice = response.choices[0]
    const message: ChatCompletionMessage = choice.message
    const { usage, estimated } = usageOf(response, messages)
    const turn: ModelTurn = {
      provider: provider.label, model: response.model || provider.model, message,
      finishReason: choice.finish_reason ?? 'unknown', usage, usageEstimated: estimated,
      costUsd: costOf(usage, provider.prices), latencyMs, attempts
    }
    this.options.audit.record({ type: 'model.response', step, provider: turn.provider,
      model: turn.model, latencyMs, finishReason: turn.finishReason, message, usage,
      costUsd: turn.costUsd, attempts, usageEstimated: estimated || undefined })
    return turn
  }

  /** Records the conversation, or only what was appended since the last record. */
  private recordRequest(step: number, provider: ProviderSettings,
    messages: readonly ChatCompletionMessageParam[],
    tools: readonly ChatCompletionFunctionTool[]): void {
    const prev = this.recorded
    const extends_ = prev.length > 0 && prev.length <= messages.length
      && prev.every((m, i) => messages[i] === m)
    this.options.audit.record({ type: 'model.request', step, provider: provider.label,
      model: provider.model, messages: extends_ ? messages.slice(prev.length) : [...messages],
      tools: tools.map(t => t.function.name), fromIndex: extends_ ? prev.length : undefined })
    this.recorded = [...messages]
  }

  private clientFor(index: number): OpenAI {
    let client = this.clients.get(index)
    if (!client) {
      const p = this.options.providers[index]
      client = new OpenAI({
        // Every credential and endpoint is explicit: the SDK must not pick up OPENAI_* from
        // the environment. Local servers (Ollama, vLLM) take any key, but the SDK wants one.
        // Shortcoming: the SDK still adds headers from OPENAI_CUSTOM_HEADERS when that is set,
        // and no option turns it off; a custom `fetch` that drops unknown headers would.
        apiKey: p.apiKey || 'no-key', adminAPIKey: null, organization: null, project: null,
        webhookSecret: null, baseURL: p.baseUrl,
        // Our retry layer is the only one; the SDK's timeout abandons a stalled request.
        maxRetries: 0, timeout: this.options.requestTimeoutSeconds * 1000,
        logLevel: 'off'
      })
      this.clients.set(index, client)
    }
    return client
  }
}

/** What a 200 answer lacks that every chat completion has, or undefined when it is whole. */
function missingInReply(response: ChatCompletion): string | undefined {
  const choices = (response as { choices?: unknown }).choices
  if (!Array.isArray(choices) || choices.length === 0) return '`choices`'
  const message = (choices[0] as { message?: unknown } | null)?.message
  if (message === null || typeof message !== 'object') return '`choices[0].message`'
  return undefined
}

function redact(text: string, secret: string): string {
  return secret.length >= 4 ? text.split(secret).join('***') : text
}
