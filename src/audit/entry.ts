/**
 * One line of `audit.jsonl` as stored: the event, its envelope and its place in the hash chain.
 *
 * How an independent verifier recomputes `hash` for a line:
 * 1. parse the line as JSON and delete its `hash` member;
 * 2. serialize what is left canonically: objects with their members sorted by key (comparing
 *    UTF-16 code units, as JavaScript's default sort does), arrays in order, no whitespace,
 *    strings and numbers exactly as ECMAScript `JSON.stringify` writes them (for the values in
 *    this log that is the same text RFC 8785 prescribes);
 * 3. `hash` is the lowercase hex sha256 of that text's UTF-8 bytes.
 * `prev` is the `hash` of the line before, or {@link GENESIS} on the first line; `seq` counts
 * lines from 1. `schema/audit-event.schema.json` describes every member.
 */
import { createHash } from 'node:crypto'
import type { AuditEvent } from './types.js'

/** The `prev` of the first line. */
export const GENESIS = '0'.repeat(64)

/** Where audit.jsonl keeps a command's output instead of its text. */
export interface StoredOutput {
  /** file name under `outputs/`: the sha256 of the stored (redacted) text, plus `.txt` */
  stored?: string
  /** UTF-8 bytes of the stored file; 0 when nothing was stored */
  storedBytes: number
  /** set when the stored text is shorter than what the sandbox captured, and why */
  cut?: 'file-cap' | 'total-cap'
  /** bytes the command wrote in all */
  bytes: number
  /** sha256 of every byte the command wrote, before redaction */
  sha256: string
  /** true when the captured text held only head and tail of the stream */
  truncated: boolean
}

type CommandEvent = Extract<AuditEvent, { type: 'command' }>

/** An event as stored: command outputs replaced by references. */
export type StoredEventBody =
  | Exclude<AuditEvent, CommandEvent>
  | (Omit<CommandEvent, 'stdout' | 'stderr'> & { stdout: StoredOutput; stderr: StoredOutput })

/** The envelope every stored line carries around its event. */
export interface Envelope {
  seq: number
  /** ISO 8601 time the log received the event */
  time: string
  /** the run the log belongs to; every line of one log names the same run */
  run: string
  prev: string
  hash: string
}

/** One parsed line of audit.jsonl. */
export type StoredEvent = StoredEventBody & Envelope

/** The canonical text of a JSON value, as described at the top of this module. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value)
    // undefined and functions have no JSON text; as members they were dropped by the caller
    return text === undefined ? 'null' : text
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const members = Object.keys(value)
    .filter(k => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map(k => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
  return `{${members.join(',')}}`
}

/** The `hash` of a stored line: sha256 over the canonical text of everything but `hash`. */
export function entryHash(entry: Record<string, unknown>): string {
  const rest = { ...entry }
  delete rest.hash
  return sha256Hex(canonicalJson(rest))
}

/** Lowercase hex sha256 of a string's UTF-8 bytes or of a buffer. */
export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
