/**
 * Byte-level plumbing of the attach stream: Docker's 8-byte frame headers that multiplex
 * stdout and stderr when there is no TTY, and the search for the end marker of a command.
 */

/** Splits Docker's multiplexed attach stream into stdout (1) and stderr (2) payloads. */
export class FrameDemuxer {
  private pending: Buffer = Buffer.alloc(0)
  private readonly onPayload: (stream: 1 | 2, payload: Buffer) => void

  constructor(onPayload: (stream: 1 | 2, payload: Buffer) => void) {
    this.onPayload = onPayload
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4)
      if (buf.length < 8 + size) break
      const type = buf[0]
      // Type 0 is stdin echoed back, which Docker never sends without a TTY; drop it.
      if (type === 1 || type === 2) this.onPayload(type, buf.subarray(8, 8 + size))
      buf = buf.subarray(8 + size)
    }
    // Keep only the unfinished frame, copied so the big chunk it came from can be freed.
    this.pending = Buffer.from(buf)
  }
}

/**
 * Passes bytes through until a marker appears, found even when it is split across chunks.
 * What follows the marker goes to `afterMarker`.
 */
export class MarkerCutter {
  private held: Buffer = Buffer.alloc(0)
  private found = false
  private readonly marker: Buffer
  private readonly onData: (chunk: Buffer) => void
  private readonly afterMarker: (rest: Buffer) => void

  constructor(marker: Buffer, onData: (chunk: Buffer) => void,
    afterMarker: (rest: Buffer) => void) {
    this.marker = marker
    this.onData = onData
    this.afterMarker = afterMarker
  }

  get done(): boolean {
    return this.found
  }

  push(chunk: Buffer): void {
    if (this.found) {
      this.afterMarker(chunk)
      return
    }
    // Only the seam between the held bytes and the chunk is copied, never the whole chunk,
    // so a flood makes no garbage in proportion to its size.
    const m = this.marker.length
    if (this.held.length > 0) {
      const seam = Buffer.concat([this.held, chunk.subarray(0, m - 1)])
      const at = seam.indexOf(this.marker)
      if (at >= 0 && at < this.held.length) {
        this.found = true
        if (at > 0) this.onData(seam.subarray(0, at))
        this.held = Buffer.alloc(0)
        this.afterMarker(chunk.subarray(at + m - seam.length + Math.min(chunk.length, m - 1)))
        return
      }
      if (chunk.length < m - 1) {
        this.keepTail(seam)
        return
      }
      this.onData(this.held)
      this.held = Buffer.alloc(0)
    }
    const at = chunk.indexOf(this.marker)
    if (at >= 0) {
      this.found = true
      if (at > 0) this.onData(chunk.subarray(0, at))
      this.afterMarker(chunk.subarray(at + m))
      return
    }
    this.keepTail(chunk)
  }

  /** Passes on all but the last marker-length-minus-one bytes, which may start the marker. */
  private keepTail(buf: Buffer): void {
    const keep = Math.min(buf.length, this.marker.length - 1)
    if (buf.length > keep) this.onData(buf.subarray(0, buf.length - keep))
    this.held = Buffer.from(buf.subarray(buf.length - keep))
  }
}
