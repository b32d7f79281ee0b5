/**
 * The audit log: append-only JSON Lines with a hash chain, written by the action process so the
 * agent can neither edit nor delete it. Each event is redacted, chained and written with one
 * synchronous write, so a crash or a cancel loses at most the event in flight.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { CapturedOutput } from '../sandbox/types.js'
import { entryHash, GENESIS, sha256Hex } from './entry.js'
import type { StoredEventBody, StoredOutput } from './entry.js'
import { createRedactor } from './redact.js'
import type { Redactor } from './redact.js'
import type { AuditEvent, AuditSink } from './types.js'

/** The log file's name inside the audit directory. */
export const LOG_FILE = 'audit.jsonl'
/** The folder beside the log that holds command outputs, one file per distinct text. */
export const OUTPUTS_DIR = 'outputs'

export interface AuditLogOptions {
  /** the audit directory; created when missing; must not already hold a log */
  dir: string
  /** every secret value of the run; see `createRedactor` */
  secrets: readonly string[]
  runId: string
  /** largest stored output file in UTF-8 bytes; longer texts keep their head (default 1 MiB) */
  maxOutputFileBytes?: number
  /** all stored output files together; past it outputs are not stored (default 64 MiB) */
  maxOutputTotalBytes?: number
  /** the clock for `time`; tests pin it */
  now?: () => Date
}

/** The run's audit log; see the module comment and `entry.ts` for the stored form. */
export class AuditLog implements AuditSink {
  readonly dir: string
  readonly path: string
  readonly runId: string
  /** the redactor built from the run's secrets, for other writers of run data */
  readonly redact: Redactor
  private fd: number | undefined
  private seq = 0
  private prev = GENESIS
  private storedTotal = 0
  private readonly storedNames = new Set<string>()
  private readonly maxFile: number
  private readonly maxTotal: number
  private readonly now: () => Date

  private constructor(options: AuditLogOptions, fd: number) {
    this.dir = options.dir
    this.path = join(options.dir, LOG_FILE)
    this.runId = options.runId
    this.redact = createRedactor(options.secrets)
    this.fd = fd
    this.maxFile = options.maxOutputFileBytes ?? 1024 ** 2
    this.maxTotal = options.maxOutputTotalBytes ?? 64 * 1024 ** 2
    this.now = options.now ?? (() => new Date())
  }

  /** Creates the audit directory and an empty log in it; refuses to append to an old log. */
  static async create(options: AuditLogOptions): Promise<AuditLog> {
    if (!options.dir) throw new Error('AuditLog needs an audit directory (`dir`), got none.')
    if (!options.runId) throw new Error('AuditLog needs a run id (`runId`), got none.')
    mkdirSync(join(options.dir, OUTPUTS_DIR), { recursive: true })
    let fd: number
    try {
      fd = openSync(join(options.dir, LOG_FILE), 'wx')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new Error(`An audit log already exists at ${join(options.dir, LOG_FILE)}; a run `
          + 'writes a fresh log, so point `audit-dir` at an empty directory or remove the old '
          + 'one.', { cause: error })
      }
      throw error
    }
    return new AuditLog(options, fd)
  }

  /** Number of events written so far. */
  get count(): number {
    return this.seq
  }

  /** Redacts, chains and writes one event; returns once the line is written. */
  record(event: AuditEvent): void {
    if (this.fd === undefined) {
      throw new Error(`The audit log ${this.path} is closed; event ${event.type} was not written.`)
    }
    const body = this.storedBody(this.redact.deep(event))
    const entry: Record<string, unknown> = {
      seq: this.seq + 1, time: this.now().toISOString(), run: this.redact(this.runId),
      ...body, prev: this.prev
    }
    // A JSON round trip makes the object exactly what a reader will parse back (undefined
    // members gone, -0 as 0), so the hash is computed over what the verifier will see.
    const plain = JSON.parse(JSON.stringify(entry)) as Record<string, unknown>
    plain.hash = entryHash(plain)
    writeSync(this.fd, JSON.stringify(plain) + '\n')
    this.seq += 1
    this.prev = plain.hash as string
  }

  /** Closes the file; later `record` calls throw. Safe to call twice. */
  close(): void {
    if (this.fd === undefined) return
    closeSync(this.fd)
    this.fd = undefined
  }

  private storedBody(event: AuditEvent): StoredEventBody {
    if (event.type !== 'command') return event
    return {
      ...event, stdout: this.storeOutput(event.stdout), stderr: this.storeOutput(event.stderr)
    }
  }

  /** Writes an output text (already redacted) to its file and returns the reference. */
  private storeOutput(output: CapturedOutput): StoredOutput {
    const ref: StoredOutput = {
      storedBytes: 0, bytes: output.bytes, sha256: output.sha256, truncated: output.truncated
    }
    let data: Buffer = Buffer.from(output.text ?? '', 'utf8')
    if (data.length === 0) return ref
    if (data.length > this.maxFile) {
      data = cutAtCharBoundary(data, this.maxFile)
      ref.cut = 'file-cap'
    }
    const name = `${sha256Hex(data)}.txt`
    if (!this.storedNames.has(name)) {
      if (this.storedTotal + data.length > this.maxTotal) {
        return { ...ref, cut: 'total-cap' }
      }
      try {
        writeFileSync(join(this.dir, OUTPUTS_DIR, name), data, { flag: 'wx' })
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      this.storedNames.add(name)
      this.storedTotal += data.length
    }
    return { ...ref, stored: name, storedBytes: data.length }
  }
}

/** The longest prefix of at most `max` bytes that does not split a UTF-8 character. */
function cutAtCharBoundary(data: Buffer, max: number): Buffer {
  let end = max
  while (end > 0 && (data[end] & 0xc0) === 0x80) end--
  return data.subarray(0, end)
}
