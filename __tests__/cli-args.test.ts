import { describe, expect, test } from '@jest/globals'
import {
  cliDefaultOf, cliInputSource, EXIT_CODES, helpText, parseArgs, secretEnvNames, UsageError
} from '../src/cli-args.js'
import { INPUTS } from '../src/inputs.js'
import type { OutcomeKind } from '../src/outcome.js'

describe('parseArgs', () => {
  test('no words, --help and -h all mean the general help', () => {
    for (const argv of [[], ['--help'], ['-h']]) {
      const args = parseArgs(argv)
      expect(args.command).toBe('help')
      expect(args.helpFor).toBeUndefined()
    }
  })

  test('`COMMAND --help` and `help COMMAND` ask for that command\'s help', () => {
    expect(parseArgs(['run', '--model', 'm', '--help'])).toMatchObject({ command: 'help',
      helpFor: 'run' })
    expect(parseArgs(['help', 'verify'])).toMatchObject({ command: 'help', helpFor: 'verify' })
    expect(() => parseArgs(['help', 'fly'])).toThrow('Unknown command "fly"')
  })

  test('every input flag, in both spellings, lands under its input name', () => {
    const args = parseArgs(['run', '--model', 'gpt-x', '--max-steps=7', '--task',
      'fix it', '--repo', '/tmp/r', '--json', '--task-file', 'task.md'])
    expect(args).toMatchObject({ command: 'run', repo: '/tmp/r', json: true,
      inputs: { model: 'gpt-x', 'max-steps': '7', task: 'fix it', 'task-file': 'task.md' } })
    for (const input of INPUTS.filter(i => !i.secret && !i.githubOnly
      && i.name !== 'repository-path')) {
      expect(parseArgs(['run', `--${input.name}`, 'v']).inputs[input.name]).toBe('v')
    }
    expect(parseArgs(['run', '--repository-path', 'sub']).repo).toBe('sub')
  })

  test('inputs that only mean something on GitHub are neither listed nor taken', () => {
    const githubOnly = INPUTS.filter(i => i.githubOnly).map(i => i.name)
    expect(githubOnly).toEqual(expect.arrayContaining(['trigger-label', 'trigger-phrase',
      'allowed-bots', 'allowed-forks', 'base-branch', 'draft', 'artifact-name']))
    const help = helpText('run')
    for (const name of githubOnly) {
      expect(help).not.toContain(`--${name} `)
      expect(() => parseArgs(['run', `--${name}`, 'x'])).toThrow(new UsageError(`--${name} only `
        + 'means something to the GitHub Action; the command line does not take it. '
        + '`airlock run --help` lists the flags it takes.'))
    }
    expect(help).toContain('--branch-prefix VALUE (default: airlock/)')
    expect(help).toMatch(/--output VALUE \(default: patch\)\n {6}Where the result goes: `patch`/)
  })

  test('positional words are kept for replay and verify', () => {
    expect(parseArgs(['verify', '/runs/a']).positional).toEqual(['/runs/a'])
  })

  test('each secret input is refused as a flag, naming the variable to use', () => {
    const secrets = INPUTS.filter(i => i.secret)
    expect(secrets.map(i => i.name).sort()).toEqual(['api-key', 'github-token', 'secrets'])
    for (const input of secrets) {
      const names = secretEnvNames(input.name)
      expect(names.length).toBeGreaterThan(0)
      for (const argv of [['run', `--${input.name}`, 'sk-xyz'], ['run', `--${input.name}=sk`]]) {
        let error: unknown
        try {
          parseArgs(argv)
        } catch (e) {
          error = e
        }
        expect(error).toBeInstanceOf(UsageError)
        expect((error as Error).message).toContain(`--${input.name} is a secret`)
        for (const name of names) expect((error as Error).message).toContain(name)
      }
    }
  })

  test('unknown commands and flags, and a flag without a value, are usage errors', () => {
    expect(() => parseArgs(['deploy'])).toThrow(/Unknown command "deploy"\. Commands: run/)
    expect(() => parseArgs(['run', '--modle', 'x'])).toThrow(
      'Unknown flag --modle. `airlock run --help` lists the flags.')
    expect(() => parseArgs(['run', '--model'])).toThrow('--model needs a value.')
  })
})

describe('cliInputSource', () => {
  test('flags first, then the CLI default; secrets only from the environment', () => {
    const args = parseArgs(['run', '--model', 'm1'])
    const source = cliInputSource(args, { OPENAI_API_KEY: 'sk-openai', GITHUB_TOKEN: 'ghp_t',
      AIRLOCK_SECRETS: 'one\ntwo' }, cliDefaultOf)
    expect(source('model')).toBe('m1')
    expect(source('output')).toBe('patch')
    expect(source('max-steps')).toBe('40')
    expect(source('api-key')).toBe('sk-openai')
    expect(source('github-token')).toBe('ghp_t')
    expect(source('secrets')).toBe('one\ntwo')
    const preferred = cliInputSource(args, { AIRLOCK_API_KEY: 'sk-airlock',
      OPENAI_API_KEY: 'sk-openai' }, cliDefaultOf)
    expect(preferred('api-key')).toBe('sk-airlock')
    expect(cliInputSource(args, {}, cliDefaultOf)('api-key')).toBe('')
  })
})

describe('help', () => {
  const general = helpText()
  const run = helpText('run')

  test('the general help names every command and every exit code', () => {
    for (const command of ['run', 'replay', 'verify', 'demo', 'help']) {
      expect(general).toContain(`airlock ${command}`)
    }
    const described = /Exit codes: ([\s\S]*)$/.exec(general)?.[1].replace(/\s+/g, ' ') ?? ''
    const words: Record<string, string> = { 'changes-published': 'changes published',
      failed: 'failed', usage: 'usage error', 'no-changes': 'no changes', refused: 'refused',
      'budget-exhausted': 'budget exhausted', cancelled: 'cancelled' }
    for (const [kind, code] of Object.entries(EXIT_CODES)) {
      expect(described).toContain(`${code} ${words[kind]}`)
    }
  })

  test('exit codes are distinct and cover every outcome', () => {
    const codes = Object.values(EXIT_CODES)
    expect(new Set(codes).size).toBe(codes.length)
    const outcomes: OutcomeKind[] = ['changes-published', 'no-changes', 'refused',
      'budget-exhausted', 'failed', 'cancelled']
    for (const kind of outcomes) expect(EXIT_CODES[kind]).toEqual(expect.any(Number))
  })

  test('run --help lists every input the CLI takes with its CLI default, and no secret flag',
    () => {
      for (const input of INPUTS) {
        if (input.secret || input.githubOnly) {
          expect(run).not.toContain(`--${input.name} `)
          continue
        }
        if (input.name === 'repository-path') continue
        const line = run.split('\n').find(l => l.startsWith(`  --${input.name} VALUE`))
        expect(line).toBeDefined()
        const value = cliDefaultOf(input.name)
        if (value) expect(line).toContain(`(default: ${value})`)
        else expect(line).not.toContain('default')
      }
      expect(run).toContain('--output VALUE (default: patch)')
      for (const own of ['--repo DIR', '--task-file FILE', '--json']) {
        expect(run).toContain(`  ${own}\n`)
      }
      for (const variable of ['AIRLOCK_API_KEY', 'OPENAI_API_KEY', 'AIRLOCK_SECRETS']) {
        expect(run).toContain(variable)
      }
      expect(run).not.toContain('${{')
    })

  test('every help line fits 100 columns', () => {
    for (const text of [general, run, helpText('replay'), helpText('verify'), helpText('demo')]) {
      for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(100)
    }
  })

  test('each subcommand\'s help names the flags it reads', () => {
    expect(helpText('replay')).toMatch(/--repo DIR.*--image IMAGE.*--audit-dir OUT.*--json/)
    expect(helpText('verify')).toContain('airlock verify DIR [--json]')
    expect(helpText('demo')).toContain('airlock demo [--audit-dir OUT] [--json]')
  })
})
