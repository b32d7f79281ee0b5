/**
 * The command line's words: subcommands, flags and help. Each action input `foo-bar` is the
 * flag `--foo-bar`; secret inputs are read from environment variables only, because a
 * command line is visible to every process on the machine and lands in shell history.
 */
import { INPUTS } from './inputs.js'
import { defaultOf, type InputSource } from './settings.js'

export type Command = 'run' | 'replay' | 'verify' | 'demo' | 'help' | 'version'

export interface CliArgs {
  command: Command
  /** input values given as flags, by input name */
  inputs: Record<string, string>
  /** `--repo`, the repository to work on */
  repo: string
  /** positional arguments after the subcommand (e.g. the audit directory) */
  positional: string[]
  json: boolean
  /** the subcommand whose help was asked for */
  helpFor?: Command
}

/** A command line that cannot be run; the message says what to type instead. */
export class UsageError extends Error {
  override name = 'UsageError'
}

const COMMANDS: Command[] = ['run', 'replay', 'verify', 'demo', 'help', 'version']
const OWN_FLAGS = ['repo', 'json', 'help', 'task-file']

/** Parses `argv` (without node and the script). */
export function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = { command: 'help', inputs: {}, repo: '.', positional: [], json: false }
  const words = [...argv]
  const first = words[0]
  if (first === '--help' || first === '-h' || first === undefined) return args
  if (first === '--version' || first === '-V') return { ...args, command: 'version' }
  if (!COMMANDS.includes(first as Command)) {
    throw new UsageError(`Unknown command "${first}". Commands: ${COMMANDS.join(', ')}; `
      + '`airlock --help` explains them.')
  }
  args.command = words.shift() as Command
  if (args.command === 'help') {
    if (words[0]) args.helpFor = parseCommandName(words[0])
    return args
  }
  while (words.length > 0) {
    const word = words.shift() as string
    if (!word.startsWith('--')) {
      args.positional.push(word)
      continue
    }
    const eq = word.indexOf('=')
    const name = word.slice(2, eq > 0 ? eq : undefined)
    const inline = eq > 0 ? word.slice(eq + 1) : undefined
    if (name === 'help') return { ...args, helpFor: args.command, command: 'help' }
    if (name === 'json') {
      args.json = true
      continue
    }
    const spec = INPUTS.find(i => i.name === name)
    if (!spec && !OWN_FLAGS.includes(name)) {
      throw new UsageError(`Unknown flag --${name}. \`airlock ${args.command} --help\` lists `
        + 'the flags.')
    }
    if (spec?.githubOnly) {
      throw new UsageError(`--${name} only means something to the GitHub Action; the command `
        + `line does not take it. \`airlock ${args.command} --help\` lists the flags it takes.`)
    }
    if (spec?.secret) {
      throw new UsageError(`--${name} is a secret and is not taken as a flag: set it in the `
        + `environment variable ${secretEnvNames(name).join(' or ')} instead.`)
    }
    const value = inline ?? words.shift()
    if (value === undefined) throw new UsageError(`--${name} needs a value.`)
    if (name === 'repo') args.repo = value
    else if (name === 'task-file') args.inputs['task-file'] = value
    else if (name === 'repository-path') args.repo = value
    else args.inputs[name] = value
  }
  return args
}

function parseCommandName(word: string): Command {
  if (COMMANDS.includes(word as Command)) return word as Command
  throw new UsageError(`Unknown command "${word}". Commands: ${COMMANDS.join(', ')}.`)
}

/** The environment variables a secret input is read from on the command line, in order. */
export function secretEnvNames(input: string): string[] {
  if (input === 'api-key') return ['AIRLOCK_API_KEY', 'OPENAI_API_KEY']
  if (input === 'github-token') return ['GITHUB_TOKEN']
  if (input === 'secrets') return ['AIRLOCK_SECRETS']
  return []
}

/** The input source for settings: flags first, secrets from the environment, then defaults. */
export function cliInputSource(args: CliArgs, env: NodeJS.ProcessEnv,
  defaults: (name: string) => string): InputSource {
  return name => {
    const spec = INPUTS.find(i => i.name === name)
    if (spec?.secret) {
      for (const variable of secretEnvNames(name)) {
        if (env[variable]) return env[variable] as string
      }
      return ''
    }
    return args.inputs[name] ?? defaults(name)
  }
}

/** The command line's defaults: the action's, except that a run writes a patch. */
export function cliDefaultOf(name: string): string {
  if (name === 'output') return 'patch'
  return defaultOf(name)
}

/** Where an input means something else on the command line than in a workflow. */
const CLI_DESCRIPTIONS: Record<string, string> = {
  output: 'Where the result goes: `patch` (a patch file in the audit directory), `branch` (a '
    + 'local branch with one commit, to push yourself) or `none`. Pull requests and comments '
    + 'are the GitHub Action\'s.',
  'audit-dir': 'Where the audit log is written (default: ~/.airlock/runs/RUN-ID, a new folder '
    + 'per run).'
}

/** Exit codes, one per outcome, so scripts can tell them apart without parsing output. */
export const EXIT_CODES = {
  'changes-published': 0,
  failed: 1,
  usage: 2,
  'no-changes': 3,
  refused: 4,
  'budget-exhausted': 5,
  cancelled: 130
} as const

/** The help text of the whole command or of one subcommand. */
export function helpText(command?: Command): string {
  switch (command) {
    case 'run':
      return RUN_HELP
    case 'replay':
      return [
        'airlock replay DIR [--repo DIR] [--image IMAGE] [--audit-dir OUT] [--json]',
        '',
        'Re-runs the commands and file writes recorded in the audit directory DIR in a fresh',
        'sandbox from the recorded image, without calling any model, and reports whether the',
        'resulting changes are identical to the recorded ones. --repo is the repository the',
        'run started from (default: the current directory); --image replays on a named image',
        'instead of the recorded one; the replay\'s own log, transcript and patch go to',
        '--audit-dir (default: DIR-replay-XXXXXX). Exit 0 when the changes are identical,',
        '1 when not. A command whose exit code or output differs is named either way, but',
        'does not change the exit code: output with times or random names differs on every',
        'run, and the changes are what the record vouches for.'
      ].join('\n')
    case 'verify':
      return [
        'airlock verify DIR [--json]',
        '',
        'Checks the audit log in DIR: the hash chain of every event, every stored output',
        'against its sha256, and that the log ends with an outcome. Names the first event',
        'that does not match. Exit 0 when the log verifies, 1 when it does not.'
      ].join('\n')
    case 'demo':
      return [
        'airlock demo [--audit-dir OUT] [--json]',
        '',
        'Replays a recorded run of a real fix on a small sample repository in the sandbox,',
        'with no model and no API key, and leaves a patch and an HTML transcript to open',
        'in --audit-dir (default: .airlock/demo/TIMESTAMP).',
        'Needs a Docker engine and the local sandbox image (bash scripts/setup.sh).'
      ].join('\n')
    default:
      return [
        'airlock: run an LLM coding agent on a copy of a repository in a locked-down container.',
        '',
        'Commands:',
        '  airlock run --task TEXT [flags]   run the agent on --repo (default: .)',
        '  airlock replay DIR                re-run a recorded run without a model',
        '  airlock verify DIR                check an audit log\'s hash chain and outputs',
        '  airlock demo                      replay the built-in demo: no API key needed',
        '  airlock help [COMMAND]            this text, or one command\'s',
        '',
        'Exit codes: 0 changes published, 1 failed, 2 usage error, 3 no changes,',
        '4 refused, 5 budget exhausted, 130 cancelled.'
      ].join('\n')
  }
}

const RUN_HELP = (() => {
  const taken = INPUTS.filter(i => !i.secret && !i.githubOnly && i.name !== 'repository-path')
  const flags = taken.map(i => {
    const value = cliDefaultOf(i.name)
    const def = value ? ` (default: ${value})` : ''
    return `  --${i.name} VALUE${def}\n${wrap(CLI_DESCRIPTIONS[i.name] ?? i.description)}`
  })
  return [
    'airlock run [--repo DIR] (--task TEXT | --task-file FILE) --model NAME [flags]',
    '',
    'Runs the agent on a copy of --repo (default: the current directory) in a sandbox and',
    'writes the result: a patch file (--output patch, the default here), a local branch with',
    'one commit (--output branch), or nothing (--output none). --json prints the outcome as',
    'JSON on stdout.',
    '',
    'Secrets come from the environment, never from flags: AIRLOCK_API_KEY (or',
    'OPENAI_API_KEY) for the model, the variables named by --fallback-providers\' api-key-env,',
    'and AIRLOCK_SECRETS for further values to redact, one per line.',
    '',
    'Flags of the command line:',
    '  --repo DIR\n      The repository to work on (default: .); the action calls it '
      + '`repository-path`.',
    '  --task-file FILE\n      Read the task from FILE instead of --task.',
    '  --json\n      Print the outcome and where things are as one JSON object on stdout.',
    '',
    'Flags (each action input that means something off GitHub, with the same name):',
    ...flags
  ].join('\n')
})()

/** Indents a description under its flag, wrapped to fit 100 columns. */
function wrap(text: string): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > 92) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  if (line) lines.push(line)
  return lines.map(l => `      ${l}`).join('\n')
}
