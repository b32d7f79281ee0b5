import { readSettings, settingsWithDefaults, SettingsError, defaultOf } from '../src/settings.js'
import { INPUTS } from '../src/inputs.js'

const withDefaults = (overrides: Record<string, string>) =>
  (name: string) => overrides[name] ?? defaultOf(name)

describe('settings', () => {
  it('reads every input at its default into typed settings', () => {
    const s = settingsWithDefaults({ model: 'm1', 'api-key': 'sk-primary-123' })
    expect(s.output).toBe('auto')
    expect(s.budgets).toEqual({ maxSteps: 40, timeoutMinutes: 30, maxTokens: 2000000,
      maxCostUsd: 5 })
    expect(s.sandbox.memoryBytes).toBe(4 * 1024 ** 3)
    expect(s.sandbox.nanoCpus).toBe(2e9)
    expect(s.sandbox.user).toBe('1000:1000')
    expect(s.changes.protectedPaths).toEqual(['.github/workflows/**'])
    expect(s.providers).toHaveLength(1)
    expect(s.providers[0].label).toBe('api.openai.com/m1')
    expect(s.secrets).toEqual(['sk-primary-123'])
  })

  it('names the input at fault', () => {
    expect(() => settingsWithDefaults({ 'max-steps': 'ten' })).toThrow(/`max-steps`.*number/)
    expect(() => settingsWithDefaults({ memory: 'lots' })).toThrow(/`memory`/)
    expect(() => settingsWithDefaults({ user: '0' })).toThrow(/must not be root/)
    expect(() => settingsWithDefaults({ 'read-only': 'yes' })).toThrow(SettingsError)
    expect(() => settingsWithDefaults({ network: 'allowlist' })).toThrow(/allowed-hosts/)
    expect(() => settingsWithDefaults({ 'setup-network': 'allowlist' }))
      .toThrow(/`setup-network` is `allowlist` but `allowed-hosts` is empty/)
    expect(settingsWithDefaults({ 'setup-network': 'allowlist', 'allowed-hosts': 'a.test' })
      .network).toMatchObject({ setup: 'allowlist', allowedHosts: ['a.test'] })
    expect(() => settingsWithDefaults({ 'base-url': 'https://u:p@x.example/v1' }))
      .toThrow(/credentials/)
  })

  it('reads fallback providers with keys from the environment only', () => {
    const yaml = '- model: m2\n  base-url: http://127.0.0.1:9/v1\n  api-key-env: SECOND_KEY\n'
      + '  input-price: 1\n  output-price: 4\n'
    const s = readSettings(withDefaults({ model: 'm1', 'fallback-providers': yaml }),
      { SECOND_KEY: 'sk-second-456' })
    expect(s.providers.map(p => p.label)).toEqual(['api.openai.com/m1', '127.0.0.1:9/m2'])
    expect(s.providers[1].prices).toEqual({ input: 1, output: 4, cachedInput: 1 })
    expect(s.secrets).toContain('sk-second-456')
    expect(() => readSettings(withDefaults({ 'fallback-providers': yaml }), {}))
      .toThrow(/SECOND_KEY/)
    expect(() => readSettings(withDefaults({ 'fallback-providers': '- model: x\n  api-key: k' }),
      {})).toThrow(/unknown key/)
  })

  it('has a description for every input', () => {
    for (const input of INPUTS) expect(input.description.length).toBeGreaterThan(10)
  })
})
