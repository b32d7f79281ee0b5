/**
 * Cleans text a stranger wrote before the model reads it: whatever a person reading the issue
 * on github.com would not see is removed, so nothing can hide an instruction from the
 * reviewer that the model would still obey.
 *
 * Decisions: `<details>` is kept (its content is one click away, not hidden); HTML comments,
 * elements marked `hidden` or styled `display:none`/`visibility:hidden`, and every image
 * (whose alt text and URL a reader does not see) are removed; link titles (shown only on
 * hover) go, and so do link reference definitions, which never render (`[//]: # (…)` is the
 * usual Markdown comment), except that a definition a visible link uses keeps its URL; other
 * markup stays as text.
 */

/** Longest untrusted text passed on, in characters; the rest is cut with a note. */
export const MAX_UNTRUSTED_CHARS = 20_000

// Zero-width and formatting characters, bidirectional controls, invisible fillers, C0 and C1
// controls other than tab and newline, tag characters and variation selectors (both of
// which can smuggle whole hidden strings), as inclusive code point ranges.
const INVISIBLE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x00, 0x08], [0x0B, 0x1F], [0x7F, 0x9F], [0xAD, 0xAD], [0x34F, 0x34F], [0x61C, 0x61C],
  [0x115F, 0x1160], [0x17B4, 0x17B5], [0x180B, 0x180F], [0x200B, 0x200F], [0x202A, 0x202E],
  [0x2060, 0x206F], [0x3164, 0x3164], [0xFE00, 0xFE0F], [0xFEFF, 0xFEFF], [0xFFA0, 0xFFA0],
  [0xFFF9, 0xFFFB], [0xE0000, 0xE007F], [0xE0100, 0xE01EF]
]

function isInvisible(codePoint: number): boolean {
  return INVISIBLE_RANGES.some(([low, high]) => codePoint >= low && codePoint <= high)
}

function removeInvisible(text: string): string {
  let out = ''
  for (const char of text) {
    if (!isInvisible(char.codePointAt(0) as number)) out += char
  }
  return out
}

/** Returns the text as a reader of the rendered page would see it, capped at `maxChars`. */
export function cleanUntrusted(raw: string, maxChars = MAX_UNTRUSTED_CHARS): string {
  let text = raw.replace(/\r\n?/g, '\n').replace(/[\u2028\u2029]/g, '\n')
  text = removeHtmlComments(text)
  text = removeHiddenElements(text)
  text = removeImages(text)
  text = removeHiddenLinkText(text)
  text = removeInvisible(text)
  text = text.replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim()
  return capLength(text, maxChars)
}

function removeHtmlComments(text: string): string {
  // An unclosed comment hides everything after it on the page, so it goes to the end.
  return text.replace(/<!--[\s\S]*?(?:-->|$)/g, '')
}

const HIDDEN_OPEN = /<([a-z][a-z0-9-]*)\b([^>]*)>/gi

function isHiddenTag(attributes: string): boolean {
  return /(?:^|\s)hidden(?:\s|=|\/|$)/i.test(attributes)
    || /style\s*=\s*(["'])[^"']*\b(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0)/i
      .test(attributes)
    || /aria-hidden\s*=\s*["']?true/i.test(attributes)
}

/** Removes each hidden element with its content, counting nested tags of the same name. */
function removeHiddenElements(text: string): string {
  let out = text
  for (;;) {
    HIDDEN_OPEN.lastIndex = 0
    let match: RegExpExecArray | null
    let found: { start: number; end: number } | undefined
    while ((match = HIDDEN_OPEN.exec(out)) !== null) {
      if (!isHiddenTag(match[2])) continue
      const start = match.index
      const afterOpen = start + match[0].length
      const selfClosing = match[2].trimEnd().endsWith('/')
      found = { start, end: selfClosing ? afterOpen : closingEnd(out, match[1], afterOpen) }
      break
    }
    if (!found) return out
    out = out.slice(0, found.start) + out.slice(found.end)
  }
}

/** Where the element named `tag` opened before `from` ends; the text's end when unclosed. */
function closingEnd(text: string, tag: string, from: number): number {
  const tags = new RegExp(`<(/?)${tag}\\b[^>]*>`, 'gi')
  tags.lastIndex = from
  let depth = 1
  let match: RegExpExecArray | null
  while ((match = tags.exec(text)) !== null) {
    depth += match[1] ? -1 : 1
    if (depth === 0) return match.index + match[0].length
  }
  return text.length
}

function removeImages(text: string): string {
  return text
    .replace(/<img\b[^>]*>/gi, '[image]')
    .replace(/<picture\b[\s\S]*?(?:<\/picture\s*>|$)/gi, '[image]')
    .replace(/!\[[^\]]*\]\([^)]*\)/g, '[image]')
    .replace(/!\[[^\]]*\]\[[^\]]*\]/g, '[image]')
}

// `[label]: destination "title"`, the title optional and in any of its three quotings.
const DEFINITION = /^ {0,3}\[([^\]\n]+)\]:[ \t]*(<[^>\n]*>|\S+)[^\n]*$/gm
const INLINE_TITLE = /\]\(\s*(<[^>\n]*>|[^\s()]+)\s+(?:"[^"]*"|'[^']*'|\([^()]*\))\s*\)/g

/** Drops inline link titles, and reference definitions but the URL of one in use. */
function removeHiddenLinkText(text: string): string {
  const withoutTitles = text.replace(INLINE_TITLE, ']($1)')
  const used = (label: string): boolean => {
    const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    return new RegExp(`\\]\\[${escaped}\\]|\\[${escaped}\\](?!:)`, 'i').test(
      withoutTitles.replace(DEFINITION, ''))
  }
  return withoutTitles.replace(DEFINITION, (_line, label: string, destination: string) =>
    used(label) ? `[${label}]: ${destination}` : '')
}

function capLength(text: string, maxChars: number): string {
  const chars = Array.from(text)
  if (chars.length <= maxChars) return text
  const cut = chars.length - maxChars
  return `${chars.slice(0, maxChars).join('')}\n[… ${cut} more characters cut]`
}
