/** What the model sees of long text: the head and the tail, with a note of what was cut. */

/** Default cap on one observation, in characters. */
export const MAX_OBSERVATION_CHARS = 10_000

/**
 * Keeps the first and last parts of `text` within `max` characters. The tail gets the larger
 * share because errors and summaries usually come last.
 */
export function capText(text: string, max: number = MAX_OBSERVATION_CHARS): string {
  if (text.length <= max) return text
  const head = Math.floor(max * 0.4)
  const tail = max - head
  const cut = text.length - head - tail
  return `${text.slice(0, head)}\n[... ${cut} characters cut from the middle ...]\n`
    + text.slice(text.length - tail)
}
