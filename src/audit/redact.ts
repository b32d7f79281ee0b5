/**
 * Redaction by value: every configured secret, and the encodings a command or a model is likely
 * to turn it into, is replaced by `***` before anything leaves the action process.
 */

/** What replaces a secret. */
export const REDACTED = '***'

/**
 * Secrets shorter than this are not redacted: a five-character value would blank out ordinary
 * words and numbers all over the log and the pull request, and is too short to be a real key.
 * Settings drop such values for the same reason.
 */
export const MIN_SECRET_LENGTH = 6

/** Replaces every secret form in a text; `deep` does the same for every string of a JSON value. */
export interface Redactor {
  (text: string): string
  /** A copy of a JSON value with every string (keys included) redacted. */
  deep<T>(value: T): T
}

/** Builds a redactor for the given secret values; with none it returns texts unchanged. */
export function createRedactor(secrets: readonly string[]): Redactor {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) continue
    for (const form of encodedForms(secret)) forms.add(form)
  }
  // Longest first, so that a form containing a shorter one is replaced whole.
  const sorted = [...forms].filter(f => f.length > 0).sort((a, b) => b.length - a.length)
  const pattern = sorted.length > 0 ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : null

  const redact = ((text: string): string =>
    pattern && text.length > 0 ? text.replace(pattern, REDACTED) : text) as Redactor
  redact.deep = <T>(value: T): T => (pattern ? deepRedact(value, redact) as T : value)
  return redact
}

/** The secret itself and how it looks base64-, hex- and URL-encoded. */
function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8')
  const hex = bytes.toString('hex')
  const forms = [secret, hex, hex.toUpperCase()]
  const url = encodeURIComponent(secret)
  forms.push(url, url.replace(/%20/g, '+'), url.replace(/%[0-9A-F]{2}/g, s => s.toLowerCase()))
  for (const core of base64Cores(bytes)) {
    forms.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'))
  }
  return forms
}

/**
 * Inside a longer base64 string a secret starts at one of three byte offsets modulo 3, and each
 * offset encodes it differently. For each offset this returns the run of characters that depend
 * only on the secret's bytes; the one or two characters at each edge mix in neighbouring bytes
 * and stay (they carry at most a few bits of the secret).
 */
function base64Cores(bytes: Buffer): string[] {
  const cores: string[] = []
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
    const first = Math.ceil((8 * offset) / 6)
    const end = Math.floor((8 * (offset + bytes.length)) / 6)
    const core = encoded.slice(first, end)
    if (core.length >= MIN_SECRET_LENGTH) cores.push(core)
  }
  return cores
}

function deepRedact(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value)
  if (Array.isArray(value)) return value.map(v => deepRedact(v, redact))
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, v] of Object.entries(value)) out[redact(key)] = deepRedact(v, redact)
    return out
  }
  return value
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}
