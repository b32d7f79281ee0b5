/**
 * Replay: re-running a recorded run's tool calls, without any model, in a fresh sandbox from
 * the recorded image, to show whether the same calls give the same change set. A maintainer
 * uses it to reproduce what the agent did, and to see where a run stops being reproducible.
 */
import { createHash } from 'node:crypto'
import type { ChangedFile, CommandResult, Sandbox } from '../sandbox/types.js'
import type { SandboxSettings } from '../settings.js'
import type { StoredEvent } from './entry.js'
import type { AuditEvent, AuditSink, Phase } from './types.js'
import { verifyAuditLog } from './verify.js'

/** The part of a tool call's outcome replay reads; the agent's `ToolOutcome` fits it. */
export interface ReplayedToolOutcome {
  ok: boolean
  finished?: { summary: string }
}

/** The options replay hands to `executeTool`; the agent's `ToolOptions` accept them. */
export interface ReplayToolOptions {
  commandTimeoutSeconds: number
  readOnly: boolean
  audit: AuditSink
  step?: number
  phase: Phase
}

/** What replay needs from the rest of Airlock, injected so the module stands alone. */
export interface ReplayDeps {
  /** starts a sandbox from this image (the recorded `sha256:` id) on the run's starting tree */
  startSandbox(image: string): Promise<Sandbox>
  /** the agent's tool execution, e.g. `executeTool` from `src/agent` */
  executeTool(sandbox: Sandbox, name: string, rawArguments: string,
    options: ReplayToolOptions): Promise<ReplayedToolOutcome>
  /** the longest any replayed command may run (default: the recorded run's, else 600 s) */
  commandTimeoutSeconds?: number
  /** refuse writes as a read-only run did (default: as the recorded run was) */
  readOnly?: boolean
  /** where the replay's own events go, e.g. a second AuditLog in mode `replay` */
  audit?: AuditSink
  log?: (line: string) => void
}

/** A command's result reduced to what replay compares. */
export interface CommandFingerprint {
  exitCode: number
  timedOut: boolean
  stdoutSha256: string
  stderrSha256: string
}

/** The first command whose replay did not match the record. */
export interface Divergence {
  /** 1-based position among the run's commands (setup commands first, then the agent's) */
  index: number
  step?: number
  command: string
  recorded?: CommandFingerprint
  replayed?: CommandFingerprint
  /** e.g. `exit code 0 where 1 was recorded`, `stdout differs` */
  reason: string
}

export interface ReplayResult {
  /** the replayed change set is byte-for-byte the recorded one */
  identical: boolean
  /** from the recorded `changes` event; the empty patch's hash when none was recorded */
  recordedPatchSha256: string
  replayedPatchSha256: string
  /** the replayed change set, for a person to diff against the recorded run */
  patch: Buffer
  /** the files of the replayed change set */
  files: ChangedFile[]
  image: string
  toolCalls: number
  commands: number
  firstDivergence?: Divergence
}

/** A recorded run that cannot be replayed; the message says why. */
export class ReplayError extends Error {
  override name = 'ReplayError'
}

const EMPTY_SHA256 = createHash('sha256').digest('hex')

/**
 * Replays the run recorded in `dir`: its setup commands, then its tool calls in order until
 * `finish`, and compares the resulting patch with the recorded one. The log must be intact;
 * it may lack an outcome.
 * The sandbox is removed on every path.
 */
export async function replayRun(dir: string, deps: ReplayDeps): Promise<ReplayResult> {
  const verification = verifyAuditLog(dir)
  // A log without an outcome (a crashed run, or a cut tail) still replays up to where it ends:
  // what is there is unaltered, and reproducing a crashed run is what replay is for.
  if (!verification.intact) {
    throw new ReplayError(`The audit log in ${dir} does not verify (line `
      + `${verification.problem?.line}: ${verification.problem?.reason}); a tampered or `
      + 'damaged record cannot be replayed.')
  }
  const recorded = verification.events
  const image = recordedImage(recorded, dir)
  const task = recorded.find(e => e.type === 'task')
  if (task) {
    deps.audit?.record({ type: 'task', origin: task.origin, requester: task.requester,
      url: task.url, text: task.text })
  }
  const log = deps.log ?? (() => undefined)
  log(`replay: starting a sandbox from ${image}`)
  const sandbox = await deps.startSandbox(image)
  try {
    const replayed = await replaySteps(sandbox, recorded, deps)
    const changes = await sandbox.extractChanges()
    const replayedPatchSha256 = createHash('sha256').update(changes.patch).digest('hex')
    const recordedChanges = recorded.find(e => e.type === 'changes')
    const recordedPatchSha256 = recordedChanges?.patchSha256 ?? EMPTY_SHA256
    return {
      identical: replayedPatchSha256 === recordedPatchSha256,
      recordedPatchSha256, replayedPatchSha256, patch: changes.patch, files: changes.files,
      image,
      toolCalls: replayed.toolCalls, commands: replayed.commands.length,
      firstDivergence: firstDivergence(recordedCommands(recorded), replayed.commands)
    }
  } finally {
    await sandbox.remove()
  }
}

/** The sandbox settings a replay takes from the record, where they differ from any default. */
export type RecordedSandboxSettings = Partial<Omit<SandboxSettings, 'image'>>

/**
 * The sandbox settings the recorded run started with (its `run.start` event), so a replay
 * runs as the same user, with the same limits, timeout and read-only mode. A value of the
 * wrong type is left out, and so is a root user: a record is not trusted to weaken the
 * sandbox below what settings would accept.
 */
export function recordedSandboxSettings(events: readonly StoredEvent[]):
  RecordedSandboxSettings {
  const start = events.find(e => e.type === 'run.start')
  const raw = start?.settings.sandbox
  if (!raw || typeof raw !== 'object') return {}
  const given = raw as Record<string, unknown>
  const out: RecordedSandboxSettings = {}
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
    && v > 0
  if (typeof given.user === 'string' && /^[1-9]\d*(:[1-9]\d*)?$/.test(given.user)) {
    out.user = given.user
  }
  for (const key of ['memoryBytes', 'nanoCpus', 'pidsLimit', 'tmpSizeBytes',
    'commandTimeoutSeconds'] as const) {
    if (positive(given[key])) out[key] = given[key]
  }
  if (typeof given.readOnly === 'boolean') out.readOnly = given.readOnly
  return out
}

function recordedImage(events: readonly StoredEvent[], dir: string): string {
  const start = events.find(e => e.type === 'sandbox.start')
  if (!start) {
    throw new ReplayError(`The audit log in ${dir} has no sandbox.start event, so the image the `
      + 'run used is unknown; such a run cannot be replayed.')
  }
  return start.image.id || start.image.name
}

type CommandEvent = Extract<AuditEvent, { type: 'command' }>

/** Runs the recorded setup commands and tool calls; returns the commands the replay ran. */
async function replaySteps(sandbox: Sandbox, recorded: readonly StoredEvent[],
  deps: ReplayDeps): Promise<{ toolCalls: number; commands: CommandEvent[] }> {
  const commands: CommandEvent[] = []
  const sink: AuditSink = {
    record(event) {
      if (event.type === 'command') commands.push(event)
      deps.audit?.record(event.type === 'command' ? { ...event, phase: 'replay' } : event)
    }
  }
  const settings = recordedSandboxSettings(recorded)
  const timeout = deps.commandTimeoutSeconds ?? settings.commandTimeoutSeconds ?? 600
  const readOnly = deps.readOnly ?? settings.readOnly ?? false
  const phaseCommands = async (phase: 'setup' | 'verify'): Promise<void> => {
    for (const recordedCommand of commandsOf(recorded, phase)) {
      const result: CommandResult = await sandbox.run(recordedCommand.command,
        { timeoutSeconds: timeout })
      sink.record({ type: 'command', phase, cwd: sandbox.workdir, ...result })
    }
  }
  await phaseCommands('setup')
  let toolCalls = 0
  // Arguments are replayed as recorded, that is redacted: a call that held a secret replays
  // with `***` in its place and shows up as a divergence. Nothing short of keeping secrets in
  // the log would fix that, and the log must not keep them.
  for (const call of recorded.filter(e => e.type === 'tool.call')) {
    toolCalls += 1
    const outcome = await deps.executeTool(sandbox, call.name, call.arguments, {
      commandTimeoutSeconds: timeout, readOnly, audit: sink, step: call.step,
      phase: 'agent'
    })
    if (outcome.finished) break
  }
  // The recorded changes were taken after verify, so whatever it wrote (a build, a coverage
  // report) is part of them: it runs again here too.
  await phaseCommands('verify')
  return { toolCalls, commands }
}

type StoredCommand = Extract<StoredEvent, { type: 'command' }>

function commandsOf(events: readonly StoredEvent[], phase: Phase): StoredCommand[] {
  return events.filter((e): e is StoredCommand => e.type === 'command' && e.phase === phase)
}

/** The commands replay re-runs, in the order it runs them: setup, the agent's, verify. */
function recordedCommands(events: readonly StoredEvent[]): StoredEvent[] {
  return (['setup', 'agent', 'verify'] as const).flatMap(phase => commandsOf(events, phase))
}

function firstDivergence(recorded: readonly StoredEvent[],
  replayed: readonly CommandEvent[]): Divergence | undefined {
  const count = Math.max(recorded.length, replayed.length)
  for (let i = 0; i < count; i++) {
    const before = recorded[i]?.type === 'command' ? recorded[i] as CommandFingerprintSource
      : undefined
    const after = replayed[i] as CommandFingerprintSource | undefined
    const reason = compare(before, after)
    if (!reason) continue
    return { index: i + 1, step: (after ?? before)?.step, command: (after ?? before)!.command,
      recorded: before && fingerprint(before), replayed: after && fingerprint(after), reason }
  }
  return undefined
}

type CommandFingerprintSource = {
  step?: number; command: string; exitCode: number; timedOut: boolean
  stdout: { sha256: string }; stderr: { sha256: string }
}

function fingerprint(c: CommandFingerprintSource): CommandFingerprint {
  return { exitCode: c.exitCode, timedOut: c.timedOut, stdoutSha256: c.stdout.sha256,
    stderrSha256: c.stderr.sha256 }
}

function compare(before: CommandFingerprintSource | undefined,
  after: CommandFingerprintSource | undefined): string | undefined {
  if (!before) return 'the replay ran a command the record does not have'
  if (!after) return 'the record has a command the replay did not run'
  if (before.command !== after.command) {
    return `a different command ran at this position; the record has: ${before.command}`
  }
  if (before.timedOut !== after.timedOut) {
    return after.timedOut ? 'timed out in the replay only' : 'timed out in the record only'
  }
  if (before.exitCode !== after.exitCode) {
    return `exit code ${after.exitCode} where ${before.exitCode} was recorded`
  }
  const streams = [
    before.stdout.sha256 !== after.stdout.sha256 ? 'stdout' : '',
    before.stderr.sha256 !== after.stderr.sha256 ? 'stderr' : ''
  ].filter(Boolean)
  return streams.length > 0 ? `${streams.join(' and ')} differ${streams.length > 1 ? '' : 's'}`
    : undefined
}
