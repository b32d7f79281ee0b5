/** Reading, tampering with, validating and scanning audit directories in tests. */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { ValidateFunction } from 'ajv'

export function logLines(dir: string): string[] {
  return readFileSync(join(dir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean)
}

export function writeLogLines(dir: string, lines: string[]): void {
  writeFileSync(join(dir, 'audit.jsonl'), lines.map(l => l + '\n').join(''))
}

/** Every file under the audit directory, as text. */
export function allFiles(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter(e => e.isFile())
    .map(e => ({ path: join(e.parentPath, e.name),
      text: readFileSync(join(e.parentPath, e.name), 'utf8') }))
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

/**
 * The forms of a secret a leak would take, computed independently of the redactor: raw, hex,
 * URL-encoded, and for each of the three byte alignments a stretch from the middle of its
 * base64 (standard and URL-safe) that only the secret's bytes determine.
 */
export function leakForms(secret: string): string[] {
  const bytes = Buffer.from(secret)
  const forms = [secret, bytes.toString('hex'), bytes.toString('hex').toUpperCase(),
    encodeURIComponent(secret)]
  for (const prefix of ['', 'x', 'xy']) {
    const b64 = Buffer.concat([Buffer.from(prefix), bytes, Buffer.from('zz')]).toString('base64')
    // drop the first and the last two groups of four: they mix in prefix and suffix bits
    const middle = b64.slice(4, -8)
    forms.push(middle, middle.replace(/\+/g, '-').replace(/\//g, '_'))
  }
  return forms
}

let validator: ValidateFunction | undefined

/** The ajv validator for schema/audit-event.schema.json (draft 2020-12, formats checked). */
export function eventValidator(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync('schema/audit-event.schema.json', 'utf8'))
    const ajv = new Ajv2020({ allErrors: true, strict: true })
    addFormats.default(ajv)
    validator = ajv.compile(schema)
  }
  return validator
}

/**
 * Every line of `dir`'s audit.jsonl against schema/audit-event.schema.json, and the log
 * verified whole (chained, outputs matching, ending in an outcome). Returns the parsed lines.
 */
export function expectValidAuditLog(dir: string): Record<string, unknown>[] {
  const validate = eventValidator()
  const entries = logLines(dir).map(line => JSON.parse(line) as Record<string, unknown>)
  const valid = (entry: unknown): boolean => validate(entry)
  const invalid = entries.flatMap(entry => valid(entry) ? []
    : [{ seq: entry.seq, type: entry.type, errors: validate.errors }])
  expect(invalid).toEqual([])
  expect(entries.map(entry => [entry.seq, entry.hash === independentHash(entry)]))
    .toEqual(entries.map((_, i) => [i + 1, true]))
  expect(entries.at(-1)?.type).toBe('outcome')
  return entries
}

/**
 * A line's hash recomputed apart from the library, from the rule documented in
 * src/audit/entry.ts: sha256 of the line without `hash`, keys sorted, no whitespace.
 */
export function independentHash(line: string | Record<string, unknown>): string {
  const sortKeys = (v: unknown): unknown => Array.isArray(v) ? v.map(sortKeys)
    : v && typeof v === 'object'
      ? Object.fromEntries(Object.keys(v).sort().map(k => [k, sortKeys((v as never)[k])]))
      : v
  const entry = typeof line === 'string' ? JSON.parse(line) : { ...line }
  delete entry.hash
  return createHash('sha256').update(JSON.stringify(sortKeys(entry))).digest('hex')
}

/** The lines re-chained as a forger would: `prev` and `hash` recomputed from the first on. */
export function rechain(lines: readonly string[]): string[] {
  let prev = '0'.repeat(64)
  return lines.map(line => {
    const entry = JSON.parse(line) as Record<string, unknown>
    entry.prev = prev
    entry.hash = independentHash(entry)
    prev = entry.hash as string
    return JSON.stringify(entry)
  })
}
