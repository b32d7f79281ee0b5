/**
 * Checks an audit directory the way a maintainer's own tool would: every line's hash, the
 * chain from line to line, the files the log refers to, and that the run reached an outcome.
 * A log is only `ok` when all four hold.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { entryHash, GENESIS, sha256Hex } from './entry.js'
import type { StoredEvent, StoredOutput } from './entry.js'
import { LOG_FILE, OUTPUTS_DIR } from './log.js'

/** The first thing found wrong, by line number (1-based) and, when it parsed, its `seq`. */
export interface VerifyProblem {
  line: number
  seq?: number
  reason: string
}

export interface VerifyResult {
  /** `intact` and `complete`: the whole record of a run that ended, nothing altered */
  ok: boolean
  /** every line is unaltered and chained, and every referenced output file matches its name */
  intact: boolean
  /** the last event is an `outcome` */
  complete: boolean
  /** the events that parsed, in file order, up to the first problem */
  events: StoredEvent[]
  /**
   * set when `ok` is false: the first line that is wrong, or, for an intact log without an
   * outcome, the line after the last one present
   */
  problem?: VerifyProblem
  /** set when the log is intact but has no outcome: the last event that is there */
  lastEvent?: { seq: number; type: string }
}

/** Verifies `audit.jsonl` and the `outputs/` folder in `dir`; never throws for a bad log. */
export function verifyAuditLog(dir: string): VerifyResult {
  const path = join(dir, LOG_FILE)
  if (!existsSync(path)) {
    return fail([], { line: 0, reason: `no audit log at ${path}` })
  }
  const text = readFileSync(path, 'utf8')
  if (text.length > 0 && !text.endsWith('\n')) {
    const line = text.split('\n').length
    return fail([], { line, reason: 'the last line is cut off (no newline at its end)' })
  }
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n')
  const events: StoredEvent[] = []
  let prev = GENESIS
  let run: string | undefined
  for (const [index, raw] of lines.entries()) {
    const line = index + 1
    const entry = parseLine(raw)
    if (typeof entry === 'string') return fail(events, { line, reason: entry })
    const seq = typeof entry.seq === 'number' ? entry.seq : undefined
    const problem = checkEntry(entry, line, prev, run)
      ?? checkOutputs(dir, entry as unknown as StoredEvent)
    if (problem) return fail(events, { line, seq, reason: problem })
    run ??= entry.run as string
    prev = entry.hash as string
    events.push(entry as unknown as StoredEvent)
  }
  const last = events.at(-1)
  if (last?.type === 'outcome') return { ok: true, intact: true, complete: true, events }
  // The chain cannot show a removed tail: every line left still checks. Only the missing
  // outcome does, so a log without one fails, naming where it stops. A run that crashed
  // before writing its outcome looks the same; the two cannot be told apart from the log.
  // A signed or externally anchored last hash (the artifact's digest) would tell them apart.
  const reason = last
    ? `the log ends at event ${last.seq} (${last.type}) without an outcome: the run crashed `
      + 'before it ended, or lines were removed from the end'
    : 'the log is empty: it has no events and no outcome'
  return { ok: false, intact: true, complete: false, events,
    lastEvent: last && { seq: last.seq, type: last.type },
    problem: { line: lines.length + 1, reason } }
}

function fail(events: StoredEvent[], problem: VerifyProblem): VerifyResult {
  return { ok: false, intact: false, complete: events.at(-1)?.type === 'outcome', events,
    problem }
}

function parseLine(raw: string): Record<string, unknown> | string {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return 'the line is not valid JSON'
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'the line is not a JSON object'
  }
  return value as Record<string, unknown>
}

function checkEntry(entry: Record<string, unknown>, line: number, prev: string,
  run: string | undefined): string | undefined {
  if (typeof entry.hash !== 'string' || typeof entry.prev !== 'string') {
    return 'the line has no `hash` or `prev`'
  }
  if (entryHash(entry) !== entry.hash) {
    return 'the content does not match its hash: the line was altered'
  }
  if (entry.seq !== line) {
    return `seq is ${String(entry.seq)} where ${line} was expected: a line before it was `
      + 'removed, inserted or moved'
  }
  if (entry.prev !== prev) {
    return 'prev does not match the hash of the line before: a line was removed, inserted or moved'
  }
  if (run !== undefined && entry.run !== run) {
    return `the line belongs to run ${String(entry.run)}, not ${run}`
  }
  return undefined
}

function checkOutputs(dir: string, event: StoredEvent): string | undefined {
  if (event.type !== 'command') return undefined
  for (const [stream, ref] of [['stdout', event.stdout], ['stderr', event.stderr]] as const) {
    const problem = checkOutput(dir, ref)
    if (problem) return `${stream} output ${problem}`
  }
  return undefined
}

function checkOutput(dir: string, ref: StoredOutput | undefined): string | undefined {
  if (!ref?.stored) return undefined
  if (!/^[0-9a-f]{64}\.txt$/.test(ref.stored)) return `has a bad file name: ${ref.stored}`
  const file = join(dir, OUTPUTS_DIR, ref.stored)
  if (!existsSync(file)) return `file ${OUTPUTS_DIR}/${ref.stored} is missing`
  const data = readFileSync(file)
  if (`${sha256Hex(data)}.txt` !== ref.stored) {
    return `file ${OUTPUTS_DIR}/${ref.stored} was altered (its sha256 does not match its name)`
  }
  return undefined
}

/** The stored text of one command output, or undefined when none was stored or it is gone. */
export function readStoredOutput(dir: string, ref: StoredOutput | undefined): string | undefined {
  if (!ref?.stored || !/^[0-9a-f]{64}\.txt$/.test(ref.stored)) return undefined
  const file = join(dir, OUTPUTS_DIR, ref.stored)
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined
}
