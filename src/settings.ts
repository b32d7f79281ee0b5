/**
 * The only place that turns raw inputs (action inputs or CLI flags, both plain strings)
 * into typed, validated settings. Every message names the input at fault.
 */
import { parse as parseYaml } from 'yaml'
import { INPUTS } from './inputs.js'

/** Reads one raw input by its kebab-case name; empty or missing is `''`. */
export type InputSource = (name: string) => string

export type OutputMode = 'auto' | 'pull-request' | 'comment' | 'patch' | 'none' | 'branch'
export type NetworkMode = 'none' | 'allowlist' | 'open'

export interface Prices {
  /** USD per million tokens */
  input: number
  output: number
  cachedInput: number
}

export interface ProviderSettings {
  /** a short name for logs and the audit record: the host of the base URL and the model */
  label: string
  model: string
  baseUrl: string
  /** the key itself; never logged */
  apiKey: string
  prices?: Prices
}

export interface SandboxSettings {
  image: string
  user: string
  memoryBytes: number
  nanoCpus: number
  pidsLimit: number
  tmpSizeBytes: number
  commandTimeoutSeconds: number
  readOnly: boolean
}

export interface NetworkSettings {
  agent: NetworkMode
  setup: NetworkMode
  allowedHosts: string[]
}

export interface Budgets {
  maxSteps: number
  timeoutMinutes: number
  maxTokens: number
  maxCostUsd: number
}

export interface ChangePolicy {
  protectedPaths: string[]
  maxChangedFiles: number
  maxPatchBytes: number
}

export interface GitHubSettings {
  token: string
  triggerLabel: string
  triggerPhrase: string
  allowedBots: string[]
  allowedForks: string[]
  branchPrefix: string
  baseBranch: string
  draft: boolean
}

export interface Settings {
  task: string
  output: OutputMode
  repositoryPath: string
  /** first the primary provider, then the fallbacks in order */
  providers: ProviderSettings[]
  requestTimeoutSeconds: number
  maxRetries: number
  contextTokens: number
  budgets: Budgets
  sandbox: SandboxSettings
  network: NetworkSettings
  setup: string[]
  verify: string[]
  verifyRequired: boolean
  changes: ChangePolicy
  github: GitHubSettings
  /** every secret value known to the run: keys, the token, the `secrets` input */
  secrets: string[]
  auditDir: string
  artifactName: string
}

/** A bad input: the message names the input and what to do. */
export class SettingsError extends Error {
  override name = 'SettingsError'
}

/** Reads every input through `source` and validates it. `env` resolves `api-key-env`. */
export function readSettings(source: InputSource, env: NodeJS.ProcessEnv = process.env): Settings {
  const get = (name: string): string => (source(name) ?? '').trim()
  const num = (name: string, opts: { min?: number; integer?: boolean } = {}): number =>
    parseNumber(name, get(name), opts)
  const bool = (name: string): boolean => parseBoolean(name, get(name))

  const prices = parsePrices('', get('input-price'), get('output-price'),
    get('cached-input-price'))
  const primary: ProviderSettings = {
    label: '', model: get('model'), baseUrl: parseUrl('base-url', get('base-url')),
    apiKey: source('api-key') ?? '', prices
  }
  primary.label = providerLabel(primary)
  const providers = [primary, ...parseFallbacks(get('fallback-providers'), env)]

  const settings: Settings = {
    task: source('task') ?? '',
    output: oneOf('output', get('output'),
      ['auto', 'pull-request', 'comment', 'patch', 'none', 'branch'] as const),
    repositoryPath: get('repository-path') || '.',
    providers,
    requestTimeoutSeconds: num('request-timeout-seconds', { min: 1 }),
    maxRetries: num('max-retries', { min: 0, integer: true }),
    contextTokens: num('context-tokens', { min: 1024, integer: true }),
    budgets: {
      maxSteps: num('max-steps', { min: 1, integer: true }),
      timeoutMinutes: num('timeout-minutes', { min: 0.05 }),
      maxTokens: num('max-tokens', { min: 1, integer: true }),
      maxCostUsd: num('max-cost-usd', { min: 0 })
    },
    sandbox: {
      image: required('image', get('image')),
      user: parseUser(get('user')),
      memoryBytes: parseBytes('memory', get('memory')),
      nanoCpus: Math.round(num('cpus', { min: 0.01 }) * 1e9),
      pidsLimit: num('pids-limit', { min: 16, integer: true }),
      tmpSizeBytes: parseBytes('tmp-size', get('tmp-size')),
      commandTimeoutSeconds: num('command-timeout', { min: 1 }),
      readOnly: bool('read-only')
    },
    network: {
      agent: oneOf('network', get('network'), ['none', 'allowlist', 'open'] as const),
      setup: oneOf('setup-network', get('setup-network'), ['none', 'allowlist', 'open'] as const),
      allowedHosts: parseList(get('allowed-hosts')).map(h => parseHostPattern(h))
    },
    setup: parseLines(source('setup') ?? ''),
    verify: parseLines(source('verify') ?? ''),
    verifyRequired: bool('verify-required'),
    changes: {
      protectedPaths: parseList(get('protected-paths')),
      maxChangedFiles: num('max-changed-files', { min: 1, integer: true }),
      maxPatchBytes: num('max-patch-bytes', { min: 1, integer: true })
    },
    github: {
      token: source('github-token') ?? '',
      triggerLabel: get('trigger-label'),
      triggerPhrase: get('trigger-phrase'),
      allowedBots: parseList(get('allowed-bots')),
      allowedForks: parseList(get('allowed-forks')),
      branchPrefix: get('branch-prefix'),
      baseBranch: get('base-branch'),
      draft: bool('draft')
    },
    secrets: [],
    auditDir: get('audit-dir'),
    artifactName: get('artifact-name') || 'airlock-audit'
  }
  if (settings.network.agent === 'allowlist' && settings.network.allowedHosts.length === 0) {
    throw new SettingsError('Input `network` is `allowlist` but `allowed-hosts` is empty: list '
      + 'the hosts the agent may reach, or set `network: none`.')
  }
  if (settings.network.setup === 'allowlist' && settings.network.allowedHosts.length === 0) {
    throw new SettingsError('Input `setup-network` is `allowlist` but `allowed-hosts` is empty: '
      + 'list the hosts setup commands may reach, or set `setup-network: none`.')
  }
  settings.secrets = collectSecrets(settings, source('secrets') ?? '')
  return settings
}

/** Reads settings with every input at its documented default, then `overrides` on top. */
export function settingsWithDefaults(overrides: Record<string, string> = {},
  env: NodeJS.ProcessEnv = process.env): Settings {
  return readSettings(name => overrides[name] ?? defaultOf(name), env)
}

/** The documented default of an input, as the runner would fill it in. */
export function defaultOf(name: string): string {
  const spec = INPUTS.find(i => i.name === name)
  if (!spec) throw new Error(`unknown input ${name}`)
  // The token default is an expression only the runner can evaluate.
  if (spec.default?.startsWith('${{')) return ''
  return spec.default ?? ''
}

function collectSecrets(settings: Settings, extra: string): string[] {
  const values = [
    ...settings.providers.map(p => p.apiKey),
    settings.github.token,
    ...extra.split(/\r?\n/).map(s => s.trim())
  ]
  // Very short values would redact ordinary words; such a value is no secret worth the name.
  return [...new Set(values.filter(v => v.length >= 6))]
}

function parseFallbacks(raw: string, env: NodeJS.ProcessEnv): ProviderSettings[] {
  if (!raw) return []
  let doc: unknown
  try {
    doc = parseYaml(raw)
  } catch (error) {
    throw new SettingsError(`Input \`fallback-providers\` is not valid YAML: ${String(error)}`)
  }
  if (!Array.isArray(doc)) {
    throw new SettingsError('Input `fallback-providers` must be a YAML list of providers, '
      + 'each with `model`, `base-url` and `api-key-env`.')
  }
  return doc.map((entry, index) => {
    const where = `\`fallback-providers\` entry ${index + 1}`
    if (typeof entry !== 'object' || entry === null) {
      throw new SettingsError(`${where} must be a mapping with \`model\`, \`base-url\` and `
        + '`api-key-env`.')
    }
    const e = entry as Record<string, unknown>
    const known = ['model', 'base-url', 'api-key-env', 'input-price', 'output-price',
      'cached-input-price']
    const unknown = Object.keys(e).filter(k => !known.includes(k))
    if (unknown.length > 0) {
      throw new SettingsError(`${where} has unknown key(s) ${unknown.join(', ')}; known keys: `
        + `${known.join(', ')}. Keys go in environment variables named by \`api-key-env\`.`)
    }
    const str = (k: string): string => (e[k] === undefined ? '' : String(e[k])).trim()
    const keyEnv = str('api-key-env')
    const apiKey = keyEnv ? env[keyEnv] ?? '' : ''
    if (keyEnv && !apiKey) {
      throw new SettingsError(`${where}: environment variable ${keyEnv} (its \`api-key-env\`) `
        + 'is empty; pass the key to the step as that variable.')
    }
    const provider: ProviderSettings = {
      label: '',
      model: required(`${where} \`model\``, str('model')),
      baseUrl: parseUrl(`${where} \`base-url\``, str('base-url')),
      apiKey,
      prices: parsePrices(`${where} `, str('input-price'), str('output-price'),
        str('cached-input-price'))
    }
    provider.label = providerLabel(provider)
    return provider
  })
}

function providerLabel(p: ProviderSettings): string {
  let host = p.baseUrl
  try {
    host = new URL(p.baseUrl).host
  } catch {
    // an unparsable URL was already refused; keep the raw text for the label
  }
  return `${host}/${p.model}`
}

function parsePrices(where: string, input: string, output: string,
  cached: string): Prices | undefined {
  if (!input && !output && !cached) return undefined
  const n = (name: string, raw: string): number =>
    raw ? parseNumber(`${where}${name}`, raw, { min: 0 }) : 0
  const inputPrice = n('input-price', input)
  return {
    input: inputPrice,
    output: n('output-price', output),
    cachedInput: cached ? n('cached-input-price', cached) : inputPrice
  }
}

function required(name: string, value: string): string {
  if (!value) throw new SettingsError(`Input \`${name}\` is required but empty.`)
  return value
}

function parseUrl(name: string, raw: string): string {
  if (!raw) throw new SettingsError(`Input \`${name}\` is required but empty.`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new SettingsError(`Input \`${name}\` is not a URL: "${raw}". Give the full endpoint, `
      + 'e.g. https://api.openai.com/v1.')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SettingsError(`Input \`${name}\` must be an http(s) URL, not ${url.protocol}`)
  }
  if (url.username || url.password) {
    throw new SettingsError(`Input \`${name}\` carries credentials in the URL; pass the key as `
      + '`api-key` instead.')
  }
  return raw.replace(/\/+$/, '')
}

function parseNumber(name: string, raw: string,
  opts: { min?: number; integer?: boolean }): number {
  const value = Number(raw)
  if (raw === '' || !Number.isFinite(value)) {
    throw new SettingsError(`Input \`${name}\` must be a number, got "${raw}".`)
  }
  if (opts.integer && !Number.isInteger(value)) {
    throw new SettingsError(`Input \`${name}\` must be a whole number, got "${raw}".`)
  }
  if (opts.min !== undefined && value < opts.min) {
    throw new SettingsError(`Input \`${name}\` must be at least ${opts.min}, got "${raw}".`)
  }
  return value
}

/** The YAML 1.2 core schema's booleans, as `core.getBooleanInput` takes them. */
function parseBoolean(name: string, raw: string): boolean {
  if (['true', 'True', 'TRUE'].includes(raw)) return true
  if (['false', 'False', 'FALSE'].includes(raw)) return false
  throw new SettingsError(`Input \`${name}\` must be \`true\` or \`false\`, got "${raw}".`)
}

function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(raw)) return raw as T
  throw new SettingsError(`Input \`${name}\` must be one of ${allowed.join(', ')}; got "${raw}".`)
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

function parseBytes(name: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(raw)
  if (!match) {
    throw new SettingsError(`Input \`${name}\` must be a size such as 512m or 4g, got "${raw}".`)
  }
  const bytes = Math.floor(Number(match[1]) * BYTE_UNITS[match[2].toLowerCase()])
  if (bytes < 16 * 1024 ** 2) {
    throw new SettingsError(`Input \`${name}\` must be at least 16m, got "${raw}".`)
  }
  return bytes
}

function parseUser(raw: string): string {
  const match = /^(\d+)(?::(\d+))?$/.exec(raw)
  if (!match) {
    throw new SettingsError(`Input \`user\` must be a numeric uid or uid:gid, got "${raw}".`)
  }
  if (match[1] === '0' || match[2] === '0') {
    throw new SettingsError('Input `user` must not be root (uid or gid 0): commands run as an '
      + 'unprivileged user so that a container escape starts with nothing.')
  }
  return match[2] ? raw : `${raw}:${raw}`
}

function parseHostPattern(raw: string): string {
  const host = raw.toLowerCase()
  if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) {
    throw new SettingsError(`Input \`allowed-hosts\` has "${raw}", which is not a host name or `
      + '`*.domain` pattern.')
  }
  return host
}

/** Splits a list given one per line or comma-separated; blanks and `#` comments dropped. */
export function parseList(raw: string): string[] {
  return raw.split(/[\n,]/).map(s => s.trim()).filter(s => s && !s.startsWith('#'))
}

/** Splits a multi-line input into commands, one per non-blank line. */
function parseLines(raw: string): string[] {
  return raw.split(/\r?\n/).map(s => s.trim()).filter(s => s && !s.startsWith('#'))
}
