/**
 * The one retry layer for model requests (the SDK's own retries are off). Retried: 429 (after
 * the server's `retry-after-ms` / `retry-after`, capped), 408, every 5xx, timeouts and
 * connection errors. Never retried: any other 4xx, which will not change by asking again.
 */
import { APIConnectionError, APIError, APIUserAbortError } from 'openai'

export interface BackoffPolicy {
  /** delay before the first retry, before jitter */
  baseMs: number
  /** the largest delay the doubling reaches */
  capMs: number
  /** the longest we honour a server's `retry-after` */
  retryAfterCapMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 30_000,
  retryAfterCapMs: 60_000 }

/** How one failed attempt is to be treated. */
export type ErrorClass =
  | { kind: 'retryable'; status?: number; retryAfterMs?: number; message: string }
  | { kind: 'context-length'; status: number; message: string }
  | { kind: 'fatal'; status?: number; message: string }
  | { kind: 'aborted' }

const CONTEXT_MESSAGE = /maximum context length|context[ _-]?(length|window)|too many tokens|prompt is too long/i

/** Sorts an error thrown by the `openai` client into the retry policy's classes. */
export function classifyError(error: unknown): ErrorClass {
  if (error instanceof APIUserAbortError) return { kind: 'aborted' }
  // Timeouts are a subclass of connection errors: both mean "no answer", worth another try.
  if (error instanceof APIConnectionError) {
    return { kind: 'retryable', message: describeCause(error) }
  }
  if (error instanceof APIError) {
    const status = error.status ?? 0
    const message = error.message
    if (status === 429) {
      return { kind: 'retryable', status, message, retryAfterMs: retryAfterMs(error.headers) }
    }
    if (status === 408 || status >= 500) return { kind: 'retryable', status, message }
    if ((status === 400 || status === 413)
      && (error.code === 'context_length_exceeded' || CONTEXT_MESSAGE.test(message))) {
      return { kind: 'context-length', status, message }
    }
    return { kind: 'fatal', status, message }
  }
  return { kind: 'fatal', message: error instanceof Error ? error.message : String(error) }
}

function describeCause(error: APIConnectionError): string {
  const cause = (error as { cause?: unknown }).cause
  const detail = cause instanceof Error ? (cause as NodeJS.ErrnoException).code ?? cause.message
    : ''
  return detail ? `${error.message} (${detail})` : error.message
}

/** The server's requested wait, from `retry-after-ms` or `retry-after` (seconds or a date). */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? NaN)
  if (Number.isFinite(ms) && ms >= 0) return ms
  const raw = headers?.get('retry-after')
  if (!raw) return undefined
  const seconds = Number(raw)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(raw)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * The wait before retry number `attempt` (1-based): the server's `retry-after` when given,
 * else capped exponential backoff with jitter so that many clients do not retry in step.
 */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, retryAfter?: number,
  random: () => number = Math.random): number {
  if (retryAfter !== undefined) return Math.min(retryAfter, policy.retryAfterCapMs)
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1))
  return Math.round(ceiling * (0.5 + random() * 0.5))
}

/** Waits `ms`, or rejects with the signal's reason as soon as it fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
