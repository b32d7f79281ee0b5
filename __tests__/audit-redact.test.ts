import { createRedactor, MIN_SECRET_LENGTH } from '../src/audit/redact.js'
import { leakForms } from './helpers/audit-files.js'

const SECRET = 'p@ss w0rd/+?é-long'

describe('createRedactor', () => {
  const redact = createRedactor([SECRET])

  it('replaces the raw value wherever it appears', () => {
    expect(redact(`a${SECRET}b ${SECRET}`)).toBe('a***b ***')
  })

  it('replaces the base64 forms at every byte alignment, standard and URL-safe', () => {
    for (const prefix of ['', 'q', 'qq', 'qqq', 'some longer prefix ']) {
      for (const suffix of ['', 'z', 'zz', ' and a suffix']) {
        const data = Buffer.from(prefix + SECRET + suffix)
        for (const encoded of [data.toString('base64'), data.toString('base64url')]) {
          const out = redact(`token: ${encoded}\n`)
          expect(out).toContain('***')
          for (const form of leakForms(SECRET)) expect(out).not.toContain(form)
          // the edges are kept: what is cut is what depends on the secret alone
          expect(out.length).toBeGreaterThan('token: ***\n'.length)
        }
      }
    }
  })

  it('replaces hex in lower and upper case and URL-encoded forms', () => {
    const hex = Buffer.from(SECRET).toString('hex')
    expect(redact(`x=${hex};y=${hex.toUpperCase()}`)).toBe('x=***;y=***')
    expect(redact(`?q=${encodeURIComponent(SECRET)}&`)).toBe('?q=***&')
    expect(redact(`?q=${encodeURIComponent(SECRET).replace(/%20/g, '+')}&`)).toBe('?q=***&')
    const lowerPercent = encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, s => s.toLowerCase())
    expect(redact(lowerPercent)).toBe('***')
  })

  it('leaves values shorter than the minimum alone, and texts without secrets unchanged', () => {
    const short = 'x'.repeat(MIN_SECRET_LENGTH - 1)
    const r = createRedactor([short, '', SECRET])
    expect(r(`${short} and ${SECRET}`)).toBe(`${short} and ***`)
    expect(createRedactor([])('nothing to hide')).toBe('nothing to hide')
    expect(redact('nothing to hide')).toBe('nothing to hide')
  })

  it('treats secrets as literal text, not as patterns, and prefers the longest match', () => {
    const r = createRedactor(['a.b*c+d', 'token-123456', 'token-123456-extended'])
    expect(r('a.b*c+d axbbcd')).toBe('*** axbbcd')
    expect(r('token-123456-extended token-123456')).toBe('*** ***')
  })

  it('redacts every string of a JSON value, keys included, and keeps other values', () => {
    const value = { [SECRET]: [SECRET, 1, true, null, { nested: `x${SECRET}` }], n: 2 }
    expect(redact.deep(value)).toEqual({ '***': ['***', 1, true, null, { nested: 'x***' }],
      n: 2 })
    expect(value[SECRET][0]).toBe(SECRET) // the input is not modified
  })
})
