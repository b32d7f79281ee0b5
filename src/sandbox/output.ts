/**
 * Capture of one output stream of a command: every byte is counted and hashed, only a head
 * and a tail stay in memory, so a flood costs the host nothing beyond the caps.
 */
import { createHash, type Hash } from 'node:crypto'
import type { CapturedOutput } from './types.js'

/** How much of a stream is kept in memory. */
export interface CaptureLimits {
  headBytes: number
  tailBytes: number
}

/** Half a mebibyte at each end: one MiB per stream for the record. */
export const DEFAULT_CAPTURE_LIMITS: CaptureLimits = {
  headBytes: 512 * 1024, tailBytes: 512 * 1024
}

/** Where the bytes of one stream go while a command runs. */
export interface ByteSink {
  write(chunk: Buffer): void
}

/** Keeps the head and the tail of a stream and describes the rest. */
export class OutputCapture implements ByteSink {
  private readonly limits: CaptureLimits
  private readonly hash: Hash = createHash('sha256')
  private readonly head: Buffer[] = []
  private headLength = 0
  private tail: Buffer[] = []
  private tailLength = 0
  private total = 0

  constructor(limits: CaptureLimits = DEFAULT_CAPTURE_LIMITS) {
    this.limits = limits
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.total += chunk.length
    this.hash.update(chunk)
    let rest = chunk
    const room = this.limits.headBytes - this.headLength
    if (room > 0) {
      const taken = rest.subarray(0, room)
      this.head.push(taken)
      this.headLength += taken.length
      rest = rest.subarray(taken.length)
    }
    if (rest.length > 0) this.pushTail(rest)
  }

  /** The record of the stream; call once, after the last write. */
  finish(): CapturedOutput {
    const cut = this.total - this.headLength - this.tailLength
    const sha256 = this.hash.digest('hex')
    if (cut === 0) {
      const text = decodeAll([...this.head, ...this.tail])
      return { text, bytes: this.total, sha256, truncated: false }
    }
    const head = Buffer.concat(this.head)
    const headEnd = utf8Boundary(head, head.length)
    const tail = Buffer.concat(this.tail)
    const tailStart = skipContinuation(tail)
    const cutBytes = cut + (head.length - headEnd) + tailStart
    const text = decodeAll([head.subarray(0, headEnd)])
      + `\n… [${cutBytes} bytes cut] …\n` + decodeAll([tail.subarray(tailStart)])
    return { text, bytes: this.total, sha256, truncated: true }
  }

  private pushTail(chunk: Buffer): void {
    // Copy: the chunk may be a view into a larger buffer that would stay alive with it.
    this.tail.push(Buffer.from(chunk))
    this.tailLength += chunk.length
    while (this.tailLength - this.tail[0].length >= this.limits.tailBytes) {
      this.tailLength -= this.tail.shift()!.length
    }
    if (this.tailLength > this.limits.tailBytes) {
      const excess = this.tailLength - this.limits.tailBytes
      this.tail[0] = this.tail[0].subarray(excess)
      this.tailLength -= excess
    }
  }
}

/** Collects a stream whole, up to a cap, for file contents and patches. */
export class RawCollector implements ByteSink {
  private readonly chunks: Buffer[] = []
  private length = 0
  /** bytes seen in all, including any beyond the cap */
  total = 0
  private readonly maxBytes: number

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes
  }

  write(chunk: Buffer): void {
    this.total += chunk.length
    if (this.length + chunk.length > this.maxBytes) return
    this.chunks.push(Buffer.from(chunk))
    this.length += chunk.length
  }

  /** true when the stream was longer than the cap and the content is incomplete */
  get overflowed(): boolean {
    return this.total > this.length
  }

  content(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

/** Decodes pieces of one byte stream as UTF-8; a character split between pieces survives. */
export function decodeAll(pieces: Buffer[]): string {
  const decoder = new TextDecoder('utf-8', { fatal: false })
  let text = ''
  for (const piece of pieces) text += decoder.decode(piece, { stream: true })
  return text + decoder.decode()
}

/** The largest offset ≤ end that does not split a UTF-8 character. */
function utf8Boundary(buf: Buffer, end: number): number {
  let i = end
  // Step back over at most three continuation bytes to the lead byte of the last character.
  while (i > 0 && end - i < 3 && (buf[i - 1] & 0xc0) === 0x80) i--
  if (i === 0) return end
  const lead = buf[i - 1]
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1
  return end - (i - 1) >= need ? end : i - 1
}

/** The number of continuation bytes a cut left at the start of a buffer (at most three). */
function skipContinuation(buf: Buffer): number {
  let i = 0
  while (i < buf.length && i < 3 && (buf[i] & 0xc0) === 0x80) i++
  return i
}
