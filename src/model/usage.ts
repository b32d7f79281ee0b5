/** Token and cost accounting for one model turn. */
import type { ChatCompletion, ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import type { TokenUsage } from '../audit/types.js'
import type { Prices } from '../settings.js'

/** Rough tokens for a text: about four characters per token for English and code. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4)
}

/** Tokens of a conversation as the model would see it, estimated from its JSON. */
export function estimateMessagesTokens(messages: readonly ChatCompletionMessageParam[]): number {
  return estimateTokens(JSON.stringify(messages))
}

/**
 * The usage a response reports, or an estimate from character counts when it reports none
 * (some local servers and gateways leave it out); `estimated` says which.
 */
export function usageOf(response: ChatCompletion,
  messages: readonly ChatCompletionMessageParam[]): { usage: TokenUsage; estimated: boolean } {
  const u = response.usage
  if (u && Number.isFinite(u.prompt_tokens) && Number.isFinite(u.completion_tokens)) {
    return { estimated: false, usage: { prompt: u.prompt_tokens, completion: u.completion_tokens,
      cached: u.prompt_tokens_details?.cached_tokens ?? 0 } }
  }
  const reply = response.choices?.[0]?.message
  return { estimated: true, usage: { prompt: estimateMessagesTokens(messages),
    completion: estimateTokens(JSON.stringify(reply ?? '')), cached: 0 } }
}

/** USD for a turn; cached prompt tokens at their own price; zero without prices. */
export function costOf(usage: TokenUsage, prices: Prices | undefined): number {
  if (!prices) return 0
  const cached = Math.min(usage.cached, usage.prompt)
  return ((usage.prompt - cached) * prices.input + cached * prices.cachedInput
    + usage.completion * prices.output) / 1e6
}
