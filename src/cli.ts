/**
 * The `airlock` command: the same run as the action, on a laptop. `run` works on a local
 * repository and leaves a patch or a branch; `replay`, `verify` and `demo` work on audit
 * directories. Returns the exit code instead of exiting, so every `finally` runs.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { executeTool } from './agent/index.js'
import { AuditLog, LOG_FILE, verifyAuditLog } from './audit/index.js'
import {
  recordedSandboxSettings, replayRun, type RecordedSandboxSettings, type ReplayResult
} from './audit/replay.js'
import {
  cliDefaultOf, cliInputSource, EXIT_CODES, helpText, parseArgs, UsageError, type CliArgs
} from './cli-args.js'
import type { Outcome } from './outcome.js'
import { AIRLOCK_VERSION, finishRecord, recordRunStart, type RunRecord } from './record.js'
import type { Reporter } from './reporter.js'
import { messageOf, runTask, type RunResult } from './run.js'
import { startSandbox, sweepContainers } from './sandbox/index.js'
import { readSettings, SettingsError, type Settings } from './settings.js'
import type { Task } from './task/types.js'
import { terminalSafe } from './terminal.js'

/** Where the command line writes: stdout for results (`--json`), stderr for progress. */
export interface Terminal {
  out: (text: string) => void
  err: (text: string) => void
  /** stderr is a terminal: progress redraws one line */
  isTty: boolean
}

const processTerminal: Terminal = {
  out: text => process.stdout.write(text),
  err: text => process.stderr.write(text),
  isTty: Boolean(process.stderr.isTTY)
}

/** Runs the command line and returns its exit code. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env,
  term: Terminal = processTerminal): Promise<number> {
  let args: CliArgs
  try {
    args = parseArgs(argv)
    switch (args.command) {
      case 'help':
        term.out(`${helpText(args.helpFor)}\n`)
        return 0
      case 'version':
        term.out(`airlock ${AIRLOCK_VERSION}\n`)
        return 0
      case 'verify':
        return verifyCommand(args, term)
      case 'replay':
        return await replayCommand(args, env, term)
      case 'demo':
        return await demoCommand(args, env, term)
      case 'run':
        return await runCommand(args, env, term)
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof SettingsError) {
      term.err(`airlock: ${error.message}\n`)
      return EXIT_CODES.usage
    }
    term.err(`airlock: ${messageOf(error)}\n`)
    return EXIT_CODES.failed
  }
}

async function runCommand(args: CliArgs, env: NodeJS.ProcessEnv,
  term: Terminal): Promise<number> {
  const startedAt = Date.now()
  const settings = readSettings(cliInputSource(args, env, cliDefaultOf), env)
  if (settings.output === 'pull-request' || settings.output === 'comment') {
    throw new UsageError(`--output ${settings.output} is for the GitHub Action: the command `
      + 'line does not talk to GitHub. Use --output branch (a local branch with one commit, '
      + 'to push yourself) or --output patch (the default).')
  }
  const task = readTask(args, settings)
  const repoDir = resolve(args.repo)
  if (!existsSync(repoDir)) {
    throw new UsageError(`--repo ${args.repo} does not exist; give the repository's folder.`)
  }
  const runId = `cli-${new Date(startedAt).toISOString().replace(/[-:]|\.\d+Z$/g, '')}-`
    + randomBytes(3).toString('hex')
  const auditDir = resolve(settings.auditDir || join(homedir(), '.airlock', 'runs', runId))
  const audit = await AuditLog.create({ dir: auditDir, secrets: settings.secrets, runId })
  const reporter = cliReporter(term, audit.redact)
  const record: RunRecord = { audit, reporter, settings, startedAt, mode: 'cli' }
  recordRunStart(record, runId)
  audit.record({ type: 'task', origin: 'input', text: task.instructions })
  const cancel = cancelOnSignals(reporter)
  let result: RunResult
  try {
    result = await runTask({ settings, task, repoDir, runId, audit, reporter, startedAt,
      signal: cancel.signal, onProgress: (step, max, tool, detail, elapsedMs, tokens) =>
        reporter.progress(`step ${step}/${max} ${tool}: ${detail.split('\n')[0].slice(0, 60)} `
          + `(${(elapsedMs / 1000).toFixed(1)}s, ${tokens} tokens)`) })
  } finally {
    cancel.dispose()
  }
  const finished = await finishRecord(record, result, settings.artifactName, {})
  return report(term, args, result.outcome, {
    'audit-path': audit.dir,
    transcript: finished.transcriptPath,
    'patch-path': result.publish?.patchPath,
    branch: result.publish?.branch,
    steps: result.agent?.steps ?? 0,
    tokens: result.agent ? result.agent.usage.prompt + result.agent.usage.completion : 0,
    'cost-usd': Number((result.agent?.costUsd ?? 0).toFixed(4))
  })
}

function readTask(args: CliArgs, settings: Settings): Task {
  const file = args.inputs['task-file']
  const instructions = file ? readFileSync(file, 'utf8') : settings.task
  if (!instructions.trim()) {
    throw new UsageError('Say what to do with --task TEXT or --task-file FILE.')
  }
  return { instructions: instructions.trim(), origin: { kind: 'input', event: 'cli' } }
}

function verifyCommand(args: CliArgs, term: Terminal): number {
  const dir = onePositional(args, 'verify')
  const result = verifyAuditLog(dir)
  const outcome = result.events.findLast(e => e.type === 'outcome')
  if (args.json) {
    term.out(`${JSON.stringify({ ok: result.ok, intact: result.intact,
      complete: result.complete, events: result.events.length, problem: result.problem,
      lastEvent: result.lastEvent, outcome: outcome?.kind ?? 'missing' }, null, 2)}\n`)
  } else if (result.ok) {
    term.out(`ok: ${result.events.length} events, the chain and every stored output verify; `
      + `outcome ${outcome?.kind ?? 'missing'}\n`)
  } else if (result.intact) {
    term.out(`NOT OK: ${result.problem?.reason}\n`)
  } else {
    const where = result.problem?.seq !== undefined ? `event ${result.problem.seq}`
      : `line ${result.problem?.line}`
    term.out(`NOT OK: ${where}: ${result.problem?.reason}\n`)
  }
  return result.ok ? 0 : EXIT_CODES.failed
}

async function replayCommand(args: CliArgs, env: NodeJS.ProcessEnv,
  term: Terminal): Promise<number> {
  const dir = resolve(onePositional(args, 'replay'))
  const out = resolve(args.inputs['audit-dir'] ?? `${dir}-replay-${randomBytes(3).toString('hex')}`)
  return cancellable(out, term, async () => reportReplay(term, args,
    await replayInto(dir, out, resolve(args.repo), args, env, term), out))
}

/** Replays the recorded demo run on the sample repository: no model, no key. */
async function demoCommand(args: CliArgs, env: NodeJS.ProcessEnv,
  term: Terminal): Promise<number> {
  const demo = findDemoDir()
  const out = resolve(args.inputs['audit-dir'] ?? join('.airlock', 'demo',
    new Date().toISOString().replace(/[-:]|\.\d+Z$/g, '')))
  const demoArgs = { ...args, inputs: { image: 'airlock-test:bookworm', ...args.inputs } }
  term.err(`airlock: replaying ${relative('.', join(demo, 'recording')) || '.'} on a copy of `
    + `${relative('.', join(demo, 'sample-repo'))}, without any model\n`)
  return cancellable(out, term, async () => reportReplay(term, args,
    await replayInto(join(demo, 'recording'), out, join(demo, 'sample-repo'), demoArgs, env,
      term), out))
}

/**
 * Runs a replay into `out` so that SIGINT or SIGTERM stops it: the replay's containers are
 * removed (again until it ends, in case one was being created), its command fails, and it
 * closes its log on the way out; exit 130. A second signal ends the process at once.
 *
 * Known shortcoming: the replay learns of the cancel only through its sandbox going away, so
 * its log ends `failed` (a sandbox failure) rather than `cancelled`; handing the signal to
 * the replay itself would record it as a cancel.
 */
async function cancellable(out: string, term: Terminal, replay: () => Promise<number>):
  Promise<number> {
  let cancelled = false
  let sweeper: NodeJS.Timeout | undefined
  const sweep = async (): Promise<void> => {
    const runId = runIdIn(out)
    if (runId) await sweepContainers(runId).catch(() => 0)
  }
  const cancel = (signal: string): void => {
    dispose()
    cancelled = true
    term.err(`\nairlock: received ${signal}: removing the replay's sandbox (again to quit at `
      + 'once)\n')
    void sweep()
    sweeper = setInterval(() => void sweep(), 250)
  }
  const onInt = (): void => cancel('SIGINT')
  const onTerm = (): void => cancel('SIGTERM')
  const dispose = (): void => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  try {
    const code = await replay()
    return cancelled ? EXIT_CODES.cancelled : code
  } catch (error) {
    if (!cancelled) throw error
    term.err(`airlock: the replay was cancelled; its sandbox was removed and its log is in ${
      out}\n`)
    return EXIT_CODES.cancelled
  } finally {
    dispose()
    clearInterval(sweeper)
    if (cancelled) await sweep()
  }
}

/** The run id of the audit log being written in `dir` (every line names it), once it exists. */
function runIdIn(dir: string): string | undefined {
  try {
    const first = readFileSync(join(dir, LOG_FILE), 'utf8').split('\n', 1)[0]
    const run = (JSON.parse(first) as { run?: unknown }).run
    return typeof run === 'string' ? run : undefined
  } catch {
    return undefined
  }
}

interface Replayed {
  result: ReplayResult
  transcript?: string
  patchPath: string
}

/** Replays the run in `dir` into a new audit directory `out`, with its own transcript. */
async function replayInto(dir: string, out: string, repoDir: string, args: CliArgs,
  env: NodeJS.ProcessEnv, term: Terminal): Promise<Replayed> {
  const startedAt = Date.now()
  const settings = replaySettings(dir, args, readSettings(cliInputSource(args, env,
    cliDefaultOf), env))
  const runId = `replay-${randomBytes(4).toString('hex')}`
  const audit = await AuditLog.create({ dir: out, secrets: settings.secrets, runId })
  const reporter = cliReporter(term, audit.redact)
  const record: RunRecord = { audit, reporter, settings, startedAt, mode: 'replay' }
  recordRunStart(record, runId)
  let replay: ReplayResult | undefined
  let outcome: Outcome = { kind: 'failed', message: 'the replay did not finish' }
  let finished: { transcriptPath?: string }
  try {
    replay = await replayRun(dir, {
      startSandbox: async recordedImage => {
        // A recording made elsewhere names an image id this machine may not have;
        // `--image` replays it on a named image instead.
        const image = args.inputs.image ?? recordedImage
        // Shortcoming: the replay has no network whatever the record had, so a run that
        // fetched through the allow-list diverges there; replaying through a proxy with the
        // recorded allow-list would fix that.
        const sandbox = await startSandbox({ settings: { ...settings.sandbox, image }, repoDir,
          runId }, line => reporter.info(line))
        audit.record({ type: 'sandbox.start', containerId: sandbox.containerId,
          image: sandbox.image, workdir: sandbox.workdir, network: 'none' })
        return sandbox
      },
      executeTool: (sandbox, name, raw, options) => executeTool(sandbox, name, raw, options),
      commandTimeoutSeconds: settings.sandbox.commandTimeoutSeconds,
      readOnly: settings.sandbox.readOnly,
      audit,
      log: line => reporter.info(line)
    })
    audit.record({ type: 'changes', files: replay.files, patchBytes: replay.patch.length,
      patchSha256: replay.replayedPatchSha256 })
    outcome = replayOutcome(replay)
  } catch (error) {
    outcome = { kind: 'failed', message: messageOf(error) }
    throw error
  } finally {
    await sweepContainers(runId).catch(() => 0)
    finished = await finishRecord(record, { outcome }, settings.artifactName, {})
  }
  const patchPath = join(out, 'changes.patch')
  writeFileSync(patchPath, replay.patch)
  return { result: replay, transcript: finished.transcriptPath, patchPath }
}

/** The flag of each sandbox setting a replay takes from the record unless the flag is given. */
const RECORDED_SANDBOX_FLAGS: Record<keyof RecordedSandboxSettings, string> = {
  user: 'user', memoryBytes: 'memory', nanoCpus: 'cpus', pidsLimit: 'pids-limit',
  tmpSizeBytes: 'tmp-size', commandTimeoutSeconds: 'command-timeout', readOnly: 'read-only'
}

/**
 * The settings a replay runs with: the recorded run's sandbox settings (user, limits, command
 * timeout, read-only mode), except where a flag on this command line says otherwise. The
 * replay's own `run.start` records the result, so its log says what it really ran with.
 */
function replaySettings(dir: string, args: CliArgs, settings: Settings): Settings {
  const recorded = recordedSandboxSettings(verifyAuditLog(dir).events)
  const sandbox = { ...settings.sandbox }
  for (const [key, flag] of Object.entries(RECORDED_SANDBOX_FLAGS)) {
    const value = recorded[key as keyof RecordedSandboxSettings]
    if (value !== undefined && args.inputs[flag] === undefined) {
      Object.assign(sandbox, { [key]: value })
    }
  }
  return { ...settings, sandbox }
}

function replayOutcome(result: ReplayResult): Outcome {
  const difference = result.firstDivergence
    ? `; first difference: ${describe(result.firstDivergence)}` : ''
  // The change set decides the outcome; a command that gave other output is still said.
  return result.identical
    ? { kind: 'changes-published', message: 'the replayed changes are identical to the '
      + `recorded ones${difference ? `, but a command's result was not${difference}` : ''}` }
    : { kind: 'failed', message: `the replayed changes differ from the recorded ones${difference}` }
}

function reportReplay(term: Terminal, args: CliArgs, replayed: Replayed, out: string): number {
  const { result } = replayed
  report(term, args, replayOutcome(result), { 'audit-path': out, transcript: replayed.transcript,
    'patch-path': replayed.patchPath, 'tool-calls': result.toolCalls,
    commands: result.commands })
  return result.identical ? 0 : EXIT_CODES.failed
}

/** One line a person reads: which command, where, and how it differed. */
function describe(divergence: NonNullable<ReplayResult['firstDivergence']>): string {
  const where = divergence.step === undefined ? `command ${divergence.index}`
    : `command ${divergence.index} (step ${divergence.step})`
  const command = divergence.command.length > 80 ? `${divergence.command.slice(0, 77)}...`
    : divergence.command
  return `${where}, ${JSON.stringify(command)}: ${divergence.reason}`
}

/** Prints the outcome and where things are; `--json` prints one object on stdout. */
function report(term: Terminal, args: CliArgs, outcome: Outcome,
  fields: Record<string, string | number | undefined>): number {
  if (args.json) {
    // JSON escapes C0 controls itself; C1 ones (U+009B acts as ESC [) are escaped here.
    const json = JSON.stringify({ outcome: outcome.kind, message: outcome.message, ...fields },
      null, 2)
    term.out(`${json.replace(/[\u0080-\u009f]/g,
      c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`)
  } else {
    // The message can quote what the agent changed (file names, a divergence).
    term.out(`outcome: ${outcome.kind} — ${terminalSafe(outcome.message)}\n`)
    for (const [name, value] of Object.entries(fields)) {
      if (value !== undefined && value !== '') {
        term.out(`${`${name}:`.padEnd(12)}${terminalSafe(String(value))}\n`)
      }
    }
  }
  return outcome.kind in EXIT_CODES ? EXIT_CODES[outcome.kind as keyof typeof EXIT_CODES]
    : EXIT_CODES.failed
}

function onePositional(args: CliArgs, command: string): string {
  if (args.positional.length !== 1) {
    throw new UsageError(`airlock ${command} takes one audit directory: airlock ${command} DIR`)
  }
  return args.positional[0]
}

/** The `demo/` folder: beside the bundle in `dist/`, or at the repository root. */
function findDemoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i += 1) {
    if (existsSync(join(dir, 'demo', 'recording', 'audit.jsonl'))) return join(dir, 'demo')
    dir = dirname(dir)
  }
  throw new Error('The demo recording (demo/recording/audit.jsonl) is missing from this '
    + 'installation; run the demo from a clone of the Airlock repository.')
}

/** Lines go to stderr redacted and stripped of what a terminal would obey (`terminalSafe`). */
export function cliReporter(term: Terminal, redact: (text: string) => string): Reporter {
  const safe = (text: string): string => terminalSafe(redact(text))
  let live = false
  const endLive = (): void => {
    if (live) term.err('\n')
    live = false
  }
  return {
    async group(name, body) {
      endLive()
      term.err(`▸ ${name}\n`)
      try {
        return await body()
      } finally {
        endLive()
      }
    },
    info: line => {
      endLive()
      term.err(`  ${safe(line).replace(/\n/g, '\n  ')}\n`)
    },
    warning: line => {
      endLive()
      term.err(`  warning: ${safe(line)}\n`)
    },
    progress: line => {
      // One live line: a newline in an agent's command would break the redraw.
      const text = safe(line).replace(/\n/g, ' ')
      if (term.isTty) {
        term.err(`\r\x1b[K  ${text}`)
        live = true
      } else {
        term.err(`  ${text}\n`)
      }
    }
  }
}

/**
 * Makes a rejected promise that nothing awaited end the command as a failure, said on
 * stderr, instead of a stack trace or (worse) a run that goes on as if nothing happened.
 */
export function failOnUnhandledRejection(term: Terminal = processTerminal): void {
  process.on('unhandledRejection', reason => {
    term.err(`airlock: unexpected error: ${terminalSafe(messageOf(reason))}. This is a bug in `
      + 'Airlock; the audit directory, if the run got that far, shows what happened.\n')
    process.exitCode = EXIT_CODES.failed
  })
}

/** The first SIGINT or SIGTERM cancels the run; the handlers go when the run ends. */
function cancelOnSignals(reporter: Reporter): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController()
  const cancel = (): void => {
    if (controller.signal.aborted) return
    reporter.warning('cancelling: stopping the agent and removing the sandbox')
    controller.abort()
  }
  process.on('SIGINT', cancel)
  process.on('SIGTERM', cancel)
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', cancel)
      process.off('SIGTERM', cancel)
    }
  }
}
