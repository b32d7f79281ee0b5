/**
 * Keeps the conversation inside the model's context window by eliding the oldest tool
 * observations. It elides in chunks, down to well under the limit, so the message prefix
 * changes rarely and provider-side prompt caching keeps working between elisions.
 */
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import { estimateMessagesTokens } from '../model/usage.js'

/** Elide once the conversation passes this share of the window... */
const HIGH_WATER = 0.8
/** ...down to this share, so that the next elision is many turns away. */
const LOW_WATER = 0.5
/** The newest messages are never elided: the model needs what it just saw. */
const KEEP_RECENT = 6

/** Marks an observation replaced by a note. */
export const ELIDED_PREFIX = '[output elided to fit the context window'

/** Tokens of a conversation: the provider's last count plus an estimate for what came after. */
export function conversationTokens(messages: readonly ChatCompletionMessageParam[],
  reported?: { promptTokens: number; messageCount: number }): number {
  const estimate = estimateMessagesTokens(messages)
  if (!reported || reported.messageCount > messages.length) return estimate
  const added = estimateMessagesTokens(messages.slice(reported.messageCount))
  return Math.max(estimate, reported.promptTokens + added)
}

/**
 * Returns the conversation with the oldest tool observations elided until it is under
 * `targetTokens`, or the same array when nothing needed eliding. Elided messages are new
 * objects; the rest are kept as they are.
 */
export function elideObservations(messages: readonly ChatCompletionMessageParam[],
  targetTokens: number): ChatCompletionMessageParam[] {
  const out = [...messages]
  let tokens = estimateMessagesTokens(out)
  for (let i = 0; i < out.length - KEEP_RECENT && tokens > targetTokens; i++) {
    const m = out[i]
    if (m.role !== 'tool' || typeof m.content !== 'string' || m.content.startsWith(ELIDED_PREFIX)) {
      continue
    }
    const note = `${ELIDED_PREFIX}: ${m.content.length} characters]`
    tokens -= Math.floor((m.content.length - note.length) / 4)
    out[i] = { ...m, content: note }
  }
  return out
}

/** Elides only when the conversation nears the window; see the module comment. */
export function fitContext(messages: readonly ChatCompletionMessageParam[],
  contextTokens: number, reported?: { promptTokens: number; messageCount: number }):
  ChatCompletionMessageParam[] | undefined {
  if (conversationTokens(messages, reported) <= contextTokens * HIGH_WATER) return undefined
  return elideObservations(messages, contextTokens * LOW_WATER)
}
