/**
 * Text for a terminal. What the command line prints comes partly from the agent (commands,
 * their output, file names), and a terminal obeys escape sequences: one could move the cursor,
 * rewrite earlier lines, set the window title or, on some terminals, answer back with input.
 * Every such sequence and every control character but newline and tab is removed.
 */

const ESC = 0x1b
const BEL = 0x07
/** C1's one-character CSI, which some terminals take like `ESC [` */
const CSI = 0x9b
/** after ESC: OSC, DCS, SOS, PM and APC, each a string that runs to BEL or `ESC \` */
const STRING_INTRODUCERS = ']PX^_'

/** Removes escape sequences and control characters; `\r\n` becomes `\n`. */
export function terminalSafe(text: string): string {
  const source = text.replace(/\r\n/g, '\n')
  let out = ''
  for (let i = 0; i < source.length; i += 1) {
    const code = source.charCodeAt(i)
    if (code === ESC) i = escapeEnd(source, i)
    else if (code === CSI) i = csiEnd(source, i + 1)
    else if (!isControl(code)) out += source[i]
  }
  return out
}

function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f)
}

/** The index of the last character of the escape sequence that starts at `start`. */
function escapeEnd(text: string, start: number): number {
  const next = text[start + 1]
  if (next === undefined) return start
  if (next === '[') return csiEnd(text, start + 2)
  if (STRING_INTRODUCERS.includes(next)) {
    for (let i = start + 2; i < text.length; i += 1) {
      const code = text.charCodeAt(i)
      if (code === BEL) return i
      if (code === ESC && text[i + 1] === '\\') return i + 1
    }
    return text.length - 1
  }
  return start + 1
}

/** Parameters and intermediates (0x20-0x3f) from `from`, then the final byte (0x40-0x7e). */
function csiEnd(text: string, from: number): number {
  let i = from
  while (i < text.length && text.charCodeAt(i) >= 0x20 && text.charCodeAt(i) <= 0x3f) i += 1
  const code = text.charCodeAt(i)
  return code >= 0x40 && code <= 0x7e ? i : i - 1
}
