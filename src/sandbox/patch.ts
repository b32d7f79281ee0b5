/**
 * Reading a git patch on the host. The list of what changed comes from the patch that will be
 * applied, never from a list the container made, so what is checked is what is applied.
 */
import type { ChangedFile, ChangeStatus } from './types.js'

/** A patch the parser cannot read is refused whole, with the line at fault. */
export class PatchParseError extends Error {
  override name = 'PatchParseError'
}

/** Every path a file section names, for the checks, and its summary. */
export interface PatchSection extends ChangedFile {
  /** every path named anywhere in the section's headers */
  mentioned: string[]
}

interface Draft {
  headerPaths: string[]
  from?: string
  to?: string
  status?: ChangeStatus
  oldMode?: string
  newMode?: string
  indexMode?: string
  binary: boolean
  hunks: boolean
  oldLeft: number
  newLeft: number
}

/** Splits a `git diff --binary` patch into file sections; PatchParseError on anything odd. */
export function parsePatch(patch: Buffer | string): PatchSection[] {
  const text = typeof patch === 'string' ? patch : patch.toString('latin1')
  if (text.length === 0) return []
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const sections: PatchSection[] = []
  let draft: Draft | undefined
  let inBody = false
  lines.forEach((line, index) => {
    const where = `patch line ${index + 1}`
    if (line.startsWith('diff --git ')) {
      if (draft) sections.push(finish(draft))
      draft = { headerPaths: splitGitHeader(line.slice(11), where), binary: false, hunks: false,
        oldLeft: 0, newLeft: 0 }
      inBody = false
      return
    }
    if (!draft) throw new PatchParseError(`${where}: text before the first \`diff --git\``)
    if (inBody) {
      readBodyLine(draft, line, where)
      return
    }
    inBody = readHeaderLine(draft, line, where)
  })
  if (draft) sections.push(finish(draft))
  return sections
}

/** Reads one extended header line; true once the content part begins. */
function readHeaderLine(d: Draft, line: string, where: string): boolean {
  const value = (prefix: string): string => line.slice(prefix.length)
  const pathOf = (prefix: string): string => unquote(value(prefix), where)
  if (line.startsWith('old mode ')) d.oldMode = value('old mode ')
  else if (line.startsWith('new mode ')) d.newMode = value('new mode ')
  else if (line.startsWith('deleted file mode ')) {
    d.status = 'deleted'
    d.oldMode = value('deleted file mode ')
  } else if (line.startsWith('new file mode ')) {
    d.status = 'added'
    d.newMode = value('new file mode ')
  } else if (line.startsWith('rename from ')) {
    d.status = 'renamed'
    d.from = pathOf('rename from ')
  } else if (line.startsWith('rename to ')) d.to = pathOf('rename to ')
  else if (line.startsWith('copy from ')) {
    d.status = 'copied'
    d.from = pathOf('copy from ')
  } else if (line.startsWith('copy to ')) d.to = pathOf('copy to ')
  else if (/^(similarity|dissimilarity) index \d+%$/.test(line)) return false
  else if (line.startsWith('index ')) d.indexMode = /^index \S+ (\d{6})$/.exec(line)?.[1]
  else if (line.startsWith('--- ')) d.from = stripPrefix(pathOf('--- '), 'a/', where)
  else if (line.startsWith('+++ ')) {
    d.to = stripPrefix(pathOf('+++ '), 'b/', where)
    return true
  } else if (line === 'GIT binary patch' || /^Binary files .* differ$/.test(line)) {
    d.binary = true
    return true
  } else throw new PatchParseError(`${where}: unexpected header line "${line.slice(0, 80)}"`)
  return false
}

/** A line of a binary patch: a length letter, then base85 characters. */
const BASE85_LINE = /^[A-Za-z][0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]+$/

function readBodyLine(d: Draft, line: string, where: string): void {
  if (d.binary) {
    if (line === '' || /^(literal|delta) \d+$/.test(line) || BASE85_LINE.test(line)) return
    throw new PatchParseError(`${where}: unexpected line in a binary patch "${line.slice(0, 80)}"`)
  }
  // Lines are counted as git apply counts them, so nothing after a hunk's end hides in it.
  // `\ No newline at end of file` follows the hunk's last line, after the counts ran out.
  if (line.startsWith('\\')) return
  if (d.oldLeft === 0 && d.newLeft === 0) {
    const hunk = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line)
    if (!hunk) {
      throw new PatchParseError(`${where}: expected a hunk header, got "${line.slice(0, 80)}"`)
    }
    d.oldLeft = Number(hunk[1] ?? 1)
    d.newLeft = Number(hunk[2] ?? 1)
    d.hunks = true
    return
  }
  const kind = line[0]
  if (kind === ' ') {
    d.oldLeft--
    d.newLeft--
  } else if (kind === '-') d.oldLeft--
  else if (kind === '+') d.newLeft--
  else {
    throw new PatchParseError(`${where}: unexpected line in a hunk "${line.slice(0, 80)}"`)
  }
  if (d.oldLeft < 0 || d.newLeft < 0) {
    throw new PatchParseError(`${where}: a hunk is longer than its header says`)
  }
}

function finish(d: Draft): PatchSection {
  if (d.oldLeft > 0 || d.newLeft > 0) {
    throw new PatchParseError(`the patch ends in the middle of a hunk of ${d.headerPaths[1]}`)
  }
  const [headerOld, headerNew] = d.headerPaths
  const oldPath = d.from === '/dev/null' ? headerOld : d.from ?? headerOld
  const path = d.to === '/dev/null' ? oldPath : d.to ?? headerNew
  const status: ChangeStatus = d.status
    ?? (d.oldMode && d.newMode && !d.hunks && !d.binary ? 'mode' : 'modified')
  const mode = status === 'deleted' ? undefined : d.newMode ?? d.indexMode ?? d.oldMode
  const mentioned = [...new Set([headerOld, headerNew, oldPath, path])]
  const file: PatchSection = { path, status, binary: d.binary, mentioned }
  if (mode) file.mode = mode
  if (status === 'renamed' || status === 'copied') file.oldPath = oldPath
  return file
}

/** The two paths of `diff --git a/<old> b/<new>`, quoted or not. */
function splitGitHeader(rest: string, where: string): string[] {
  if (rest.startsWith('"')) {
    const [first, after] = readQuoted(rest, where)
    const second = after.trimStart()
    const other = second.startsWith('"') ? readQuoted(second, where)[0] : second
    return [stripPrefix(first, 'a/', where), stripPrefix(other, 'b/', where)]
  }
  if (rest.endsWith('"')) {
    const open = rest.lastIndexOf(' "')
    if (open < 0) throw new PatchParseError(`${where}: unbalanced quotes in "${rest}"`)
    return [stripPrefix(latin1ToUtf8(rest.slice(0, open)), 'a/', where),
      stripPrefix(readQuoted(rest.slice(open + 1), where)[0], 'b/', where)]
  }
  // Unquoted and the same path on both sides (git quotes or renames otherwise): split in half.
  if ((rest.length - 1) % 2 === 0) {
    const half = (rest.length - 1) / 2
    const a = rest.slice(0, half)
    const b = rest.slice(half + 1)
    if (rest[half] === ' ' && a.slice(2) === b.slice(2)) {
      return [stripPrefix(latin1ToUtf8(a), 'a/', where), stripPrefix(latin1ToUtf8(b), 'b/', where)]
    }
  }
  // A rename with unquoted paths: the exact names come from the `rename` lines.
  const at = rest.indexOf(' b/')
  if (at < 0) throw new PatchParseError(`${where}: cannot read the paths of "diff --git ${rest}"`)
  return [stripPrefix(latin1ToUtf8(rest.slice(0, at)), 'a/', where),
    stripPrefix(latin1ToUtf8(rest.slice(at + 1)), 'b/', where)]
}

function stripPrefix(path: string, prefix: string, where: string): string {
  if (path === '/dev/null') return path
  if (!path.startsWith(prefix)) {
    throw new PatchParseError(`${where}: path "${path}" lacks the "${prefix}" prefix`)
  }
  return path.slice(prefix.length)
}

/** A path as git prints it: bare, or C-quoted with octal escapes for bytes of UTF-8. */
function unquote(raw: string, where: string): string {
  const text = raw.replace(/\t$/, '')
  return text.startsWith('"') ? readQuoted(text, where)[0] : latin1ToUtf8(text)
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13,
  '"': 34, '\\': 92 }

/** Reads a C-quoted string at the start of `text`; returns it and what follows. */
function readQuoted(text: string, where: string): [string, string] {
  const bytes: number[] = []
  let i = 1
  while (i < text.length && text[i] !== '"') {
    if (text[i] !== '\\') {
      bytes.push(text.charCodeAt(i++))
      continue
    }
    const next = text[i + 1]
    if (/[0-7]/.test(next ?? '')) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8))
      i += 4
    } else if (next !== undefined && next in ESCAPES) {
      bytes.push(ESCAPES[next])
      i += 2
    } else throw new PatchParseError(`${where}: bad escape in quoted path ${text}`)
  }
  if (text[i] !== '"') throw new PatchParseError(`${where}: unterminated quoted path ${text}`)
  return [Buffer.from(bytes).toString('utf8'), text.slice(i + 1)]
}

/** The patch is read as latin1 so that bytes survive; paths are UTF-8 and are decoded here. */
function latin1ToUtf8(text: string): string {
  return Buffer.from(text, 'latin1').toString('utf8')
}
