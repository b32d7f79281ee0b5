/**
 * Sanitizing a repository's `.git/config` before it enters the container: the checkout's
 * token and every other credential stay on the host.
 */
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Config sections dropped whole: credential helpers and anything pulled in from elsewhere. */
const DROPPED_SECTIONS = new Set(['credential', 'include', 'includeif'])
/** Variable names dropped in any section: headers carry tokens; the rest name host programs. */
const DROPPED_NAMES = new Set(['extraheader', 'cookiefile', 'fsmonitor', 'hookspath',
  'askpass', 'sshcommand'])
/** `scheme://user:password@` in a URL. */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi

/** One `section[.subsection].name` = value entry, in file order. */
export interface ConfigEntry {
  key: string
  value: string | undefined
}

/** Whether an entry may enter the container, and with what value. */
export function sanitizeEntry(entry: ConfigEntry): ConfigEntry | undefined {
  const key = entry.key.toLowerCase()
  const section = key.slice(0, key.indexOf('.'))
  const name = key.slice(key.lastIndexOf('.') + 1)
  if (DROPPED_SECTIONS.has(section) || DROPPED_NAMES.has(name)) return undefined
  // A URL with credentials in a subsection name (e.g. `url.<with token>.insteadOf`) goes whole.
  if (hasUserinfo(entry.key)) return undefined
  const value = entry.value?.replace(USERINFO, '$1')
  return { key: entry.key, value }
}

function hasUserinfo(text: string): boolean {
  USERINFO.lastIndex = 0
  return USERINFO.test(text)
}

/** Reads a config file's own entries, without following includes. */
export async function readConfig(file: string): Promise<ConfigEntry[]> {
  const { stdout } = await run('git', ['config', '--file', file, '--no-includes', '--list',
    '-z'], { env: gitEnv(), maxBuffer: 16 * 1024 * 1024 })
  return stdout.split('\0').filter(Boolean).map(item => {
    const newline = item.indexOf('\n')
    return newline < 0 ? { key: item, value: undefined }
      : { key: item.slice(0, newline), value: item.slice(newline + 1) }
  })
}

/**
 * Writes `source` without credentials to `target` (a new file), in one write: a `git config`
 * process per entry would cost a few milliseconds each on every sandbox start.
 */
export async function writeSanitizedConfig(source: string, target: string): Promise<void> {
  const entries = (await readConfig(source)).map(sanitizeEntry)
  await writeFile(target, formatConfig(entries.filter(e => e !== undefined)), { mode: 0o644 })
}

/**
 * Config entries in git's file syntax, each under its own section header so that file order
 * (which multi-valued keys such as `remote.*.fetch` depend on) is kept. Every value is quoted
 * and escaped, so no value can start a section or a comment.
 */
export function formatConfig(entries: readonly ConfigEntry[]): string {
  return entries.map(({ key, value }) => {
    const first = key.indexOf('.')
    const last = key.lastIndexOf('.')
    const section = key.slice(0, first)
    const name = key.slice(last + 1)
    const header = first === last ? `[${section}]`
      : `[${section} "${key.slice(first + 1, last).replace(/[\\"]/g, c => `\\${c}`)}"]`
    return `${header}\n\t${name} = ${quoteValue(value ?? 'true')}\n`
  }).join('')
}

function quoteValue(value: string): string {
  const escaped = value.replace(/[\\"\n\t\b]/g, c => ({ '\\': '\\\\', '"': '\\"',
    '\n': '\\n', '\t': '\\t', '\b': '\\b' })[c] ?? c)
  return `"${escaped}"`
}

/** git's environment on the host: the user's and system config play no part. */
export function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0' }
}
