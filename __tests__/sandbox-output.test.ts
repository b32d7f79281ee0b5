import { createHash } from 'node:crypto'
import { FrameDemuxer, MarkerCutter } from '../src/sandbox/frames.js'
import { OutputCapture, RawCollector } from '../src/sandbox/output.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('OutputCapture', () => {
  it('keeps a short stream whole, with its byte count and digest', () => {
    const capture = new OutputCapture({ headBytes: 100, tailBytes: 100 })
    capture.write(Buffer.from('hello '))
    capture.write(Buffer.from('world\n'))
    const out = capture.finish()
    expect(out).toEqual({ text: 'hello world\n', bytes: 12,
      sha256: sha(Buffer.from('hello world\n')), truncated: false })
  })

  it('decodes a character split across chunks', () => {
    const bytes = Buffer.from('añ€😀z', 'utf8')
    const capture = new OutputCapture()
    for (const byte of bytes) capture.write(Buffer.from([byte]))
    expect(capture.finish().text).toBe('añ€😀z')
  })

  it('turns invalid bytes into U+FFFD', () => {
    const capture = new OutputCapture()
    capture.write(Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3]))
    expect(capture.finish().text).toBe('a\uFFFD\uFFFDb\uFFFD')
  })

  it('keeps head and tail of a flood and states the cut', () => {
    const capture = new OutputCapture({ headBytes: 1000, tailBytes: 500 })
    const all: Buffer[] = []
    for (let i = 0; i < 2000; i++) {
      const chunk = Buffer.from(`line ${String(i).padStart(5, '0')}\n`)
      all.push(chunk)
      capture.write(chunk)
    }
    const whole = Buffer.concat(all)
    const out = capture.finish()
    expect(out.truncated).toBe(true)
    expect(out.bytes).toBe(whole.length)
    expect(out.sha256).toBe(sha(whole))
    expect(out.text.startsWith('line 00000\n')).toBe(true)
    expect(out.text.endsWith('line 01999\n')).toBe(true)
    expect(out.text).toContain(`… [${whole.length - 1500} bytes cut] …`)
    expect(Buffer.byteLength(out.text)).toBeLessThan(1600)
  })

  it('never cuts inside a character at either end of the cut', () => {
    const capture = new OutputCapture({ headBytes: 7, tailBytes: 7 })
    capture.write(Buffer.from('€€€€€€€€€€', 'utf8'))
    const out = capture.finish()
    expect(out.text).not.toContain('\uFFFD')
    expect(out.text).toBe('€€\n… [18 bytes cut] …\n€€')
  })
})

describe('RawCollector', () => {
  it('reports overflow past its cap and keeps only what fits', () => {
    const raw = new RawCollector(4)
    raw.write(Buffer.from('abc'))
    raw.write(Buffer.from('def'))
    expect(raw.overflowed).toBe(true)
    expect(raw.content().toString()).toBe('abc')
  })
})

describe('FrameDemuxer', () => {
  const frame = (type: number, text: string): Buffer => {
    const payload = Buffer.from(text)
    const header = Buffer.alloc(8)
    header[0] = type
    header.writeUInt32BE(payload.length, 4)
    return Buffer.concat([header, payload])
  }

  it('splits stdout and stderr even when frames arrive a byte at a time', () => {
    const seen: string[] = []
    const demuxer = new FrameDemuxer((kind, payload) => seen.push(`${kind}:${payload}`))
    const wire = Buffer.concat([frame(1, 'out'), frame(2, 'err'), frame(1, '')])
    for (const byte of wire) demuxer.push(Buffer.from([byte]))
    expect(seen).toEqual(['1:out', '2:err', '1:'])
  })
})

describe('MarkerCutter', () => {
  it('finds a marker split across chunks and passes everything before it through', () => {
    const data: string[] = []
    let after = ''
    const cutter = new MarkerCutter(Buffer.from('NONCE'), c => data.push(c.toString()),
      rest => { after += rest.toString() })
    for (const piece of ['abcNO', 'N', 'CE 0', '\n']) cutter.push(Buffer.from(piece))
    expect(data.join('')).toBe('abc')
    expect(after).toBe(' 0\n')
    expect(cutter.done).toBe(true)
  })

  it('does not take a prefix of the marker for the marker', () => {
    const data: string[] = []
    const cutter = new MarkerCutter(Buffer.from('NONCE'), c => data.push(c.toString()),
      () => undefined)
    cutter.push(Buffer.from('NONC'))
    cutter.push(Buffer.from('X NON'))
    expect(cutter.done).toBe(false)
    cutter.push(Buffer.from('CE'))
    expect(data.join('')).toBe('NONCX ')
    expect(cutter.done).toBe(true)
  })

  it('cuts at the marker however the stream is split', () => {
    const marker = Buffer.from('0123456789abcdef')
    const wire = Buffer.concat([Buffer.from('output with 0123 and 0123456789abcde in it'),
      marker, Buffer.from(' 42\n')])
    for (let size = 1; size <= wire.length; size++) {
      for (let offset = 0; offset < size; offset += 3) {
        const data: Buffer[] = []
        const after: Buffer[] = []
        const cutter = new MarkerCutter(marker, c => data.push(Buffer.from(c)),
          r => after.push(Buffer.from(r)))
        const cuts = [0, offset]
        for (let at = offset + size; at < wire.length; at += size) cuts.push(at)
        cuts.push(wire.length)
        for (let i = 0; i + 1 < cuts.length; i++) cutter.push(wire.subarray(cuts[i], cuts[i + 1]))
        expect(Buffer.concat(data).toString()).toBe('output with 0123 and 0123456789abcde in it')
        expect(Buffer.concat(after).toString()).toBe(' 42\n')
      }
    }
  })
})
