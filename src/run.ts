/**
 * The run, once a task is decided: the recipe both front ends share. Each phase is a small
 * function inside a log group; whatever fails or is cancelled, the sandbox is removed and
 * the run ends in one named outcome.
 */
import { createHash } from 'node:crypto'
import type { AgentResult, ProgressCallback } from './agent/index.js'
import { runAgent } from './agent/index.js'
import type { AuditLog } from './audit/index.js'
import type { GitHub } from './github/client.js'
import { RunNetwork, sweepNetworks, withEnvironment, type RunNetworkOptions }
  from './network/index.js'
import type { Outcome } from './outcome.js'
import { runCommands, type CommandsReport } from './phases.js'
import { publish, type PublishResult } from './publish/publish.js'
import type { Reply } from './publish/reply.js'
import type { Reporter } from './reporter.js'
import { engineFoundUnreachable, startSandbox, sweepContainers } from './sandbox/index.js'
import type { ChangeSet, Sandbox } from './sandbox/types.js'
import { SettingsError, type Settings } from './settings.js'
import type { Task } from './task/types.js'

export interface RunRequest {
  settings: Settings
  task: Task
  /** the host checkout the sandbox copies; published changes go to its remote or branches */
  repoDir: string
  /** names the run's containers (labels) and its branch when no issue did */
  runId: string
  audit: AuditLog
  reporter: Reporter
  /** aborted on SIGINT/SIGTERM */
  signal: AbortSignal
  /** when the run started (ms since epoch): the wall-clock budget counts from here */
  startedAt: number
  github?: GitHub
  reply?: Reply
  runUrl?: string
  artifactUrl?: string
  onProgress?: ProgressCallback
  /** how the allow-list proxy resolves names and which ports it opens; default the host's */
  networkOptions?: Pick<RunNetworkOptions, 'resolve' | 'proxyPorts'>
}

export interface RunResult {
  outcome: Outcome
  agent?: AgentResult
  setup?: CommandsReport
  verify?: CommandsReport
  publish?: PublishResult
  /** each phase's network, as the audit log's `sandbox.start` names it */
  network?: string
}

/** Runs the task in a fresh sandbox and publishes the result; never throws. */
export async function runTask(request: RunRequest): Promise<RunResult> {
  const result: RunResult = { outcome: { kind: 'failed', message: 'the run did not finish' } }
  let sandbox: Sandbox | undefined
  let network: RunNetwork | undefined
  // A cancel removes the container at once: a command in flight ends with a sandbox
  // failure instead of running to its timeout, and the agent loop stops at its next check.
  const onAbort = (): void => void sandbox?.remove().catch(() => undefined)
  request.signal.addEventListener('abort', onAbort, { once: true })
  try {
    requireModel(request.settings)
    network = await RunNetwork.create({ settings: request.settings.network,
      hasSetup: request.settings.setup.length > 0, runId: request.runId, audit: request.audit,
      ...request.networkOptions })
    result.network = network.describe()
    sandbox = await startingSandbox(request, network)
    if (request.signal.aborted) throw new Cancelled()
    result.setup = await commandPhase(request, sandbox, network, 'setup')
    if (result.setup && !result.setup.passed) {
      result.outcome = { kind: 'failed', message: `setup failed: ${result.setup.headline}` }
      result.publish = await publishing(request, result, emptyChanges(), result.outcome)
      return result
    }
    result.agent = await runningTheAgent(request, sandbox, network)
    const ended = endingOutcome(result.agent)
    if (!ended || ended.kind === 'budget-exhausted') {
      result.verify = await commandPhase(request, sandbox, network, 'verify')
    }
    const changes = await collectingChanges(request, sandbox)
    const verifyBlocks = request.settings.verifyRequired && result.verify?.passed === false
    // A required check that failed outranks a spent budget: a draft would still be a PR.
    const blocked: Outcome | undefined = verifyBlocks
      ? { kind: 'failed', message: `${ended ? `${ended.message}; ` : ''}verify failed, so no `
        + `pull request was opened: ${result.verify?.headline}` }
      : undefined
    result.publish = await publishing(request, result, changes, blocked ?? ended)
    result.outcome = result.publish.outcome
  } catch (error) {
    result.outcome = request.signal.aborted
      ? { kind: 'cancelled', message: 'the run was cancelled; the sandbox was removed' }
      : { kind: 'failed', message: messageOf(error) }
  } finally {
    request.signal.removeEventListener('abort', onAbort)
    await removingSandbox(request, sandbox)
    await closingNetwork(request, network)
  }
  if (!result.publish && request.reply) await replyingWithFailure(request, result)
  return result
}

/**
 * A run that failed before or while publishing still answers where it was asked, so the
 * "working on it" comment never stays the last word.
 */
async function replyingWithFailure(request: RunRequest, result: RunResult): Promise<void> {
  try {
    result.publish = await publishing(request, result, emptyChanges(), result.outcome)
  } catch (error) {
    request.reporter.warning(`Writing the outcome to the reply comment failed: `
      + messageOf(error))
  }
}

async function startingSandbox(request: RunRequest, network: RunNetwork): Promise<Sandbox> {
  return request.reporter.group('Starting the sandbox', async () => {
    const { settings, audit } = request
    const sandbox = await startSandbox({ settings: settings.sandbox, repoDir: request.repoDir,
      runId: request.runId, network: network.initial,
      maxPatchBytes: settings.changes.maxPatchBytes }, line => request.reporter.info(line))
    audit.record({ type: 'sandbox.start', containerId: sandbox.containerId,
      image: sandbox.image, workdir: sandbox.workdir, network: network.describe() })
    request.reporter.info(`network: ${network.describe()}`)
    request.reporter.info(`container ${sandbox.containerId.slice(0, 12)} from `
      + `${sandbox.image.name} (${sandbox.image.id.slice(0, 19)}), workspace ${sandbox.workdir}`)
    return sandbox
  })
}

/** Runs the `setup` or `verify` commands, on the network that phase is given. */
async function commandPhase(request: RunRequest, sandbox: Sandbox, network: RunNetwork,
  phase: 'setup' | 'verify'): Promise<CommandsReport | undefined> {
  const commands = request.settings[phase]
  if (commands.length === 0) return undefined
  const title = phase === 'setup' ? 'Setting up' : 'Verifying'
  return request.reporter.group(title, async () => runCommands(sandbox, commands, phase,
    request.settings.sandbox.commandTimeoutSeconds, request.audit, request.reporter,
    await network.enter(phase, sandbox.containerId)))
}

async function runningTheAgent(request: RunRequest, sandbox: Sandbox,
  network: RunNetwork): Promise<AgentResult> {
  return request.reporter.group('Running the agent', async () => {
    // The setup network is cut off here, before the agent's first command.
    const env = await network.enter('agent', sandbox.containerId)
    const agent = await runAgent({ sandbox: withEnvironment(sandbox, env), task: request.task,
      settings: request.settings,
      audit: request.audit, signal: request.signal, startedAt: request.startedAt,
      onProgress: request.onProgress })
    request.reporter.info(`${agent.ending.kind} after ${agent.steps} step(s), `
      + `${agent.usage.prompt + agent.usage.completion} tokens, $${agent.costUsd.toFixed(4)}`)
    return agent
  })
}

async function collectingChanges(request: RunRequest, sandbox: Sandbox): Promise<ChangeSet> {
  return request.reporter.group('Collecting the changes', async () => {
    const changes = await sandbox.extractChanges()
    request.audit.record({ type: 'changes', files: changes.files,
      patchBytes: changes.patch.length, patchSha256: sha256(changes.patch) })
    request.reporter.info(changes.files.length === 0 ? 'no file changed'
      : changes.files.map(f => `${f.status} ${f.path}`).join('\n'))
    return changes
  })
}

async function publishing(request: RunRequest, result: RunResult, changes: ChangeSet,
  ended: Outcome | undefined): Promise<PublishResult> {
  return request.reporter.group('Publishing', () => publish({
    output: request.settings.output,
    report: {
      task: request.task,
      summary: result.agent?.summary ?? '',
      steps: result.agent?.steps ?? 0,
      tokens: (result.agent?.usage.prompt ?? 0) + (result.agent?.usage.completion ?? 0),
      costUsd: result.agent?.costUsd ?? 0,
      runUrl: request.runUrl,
      artifactUrl: request.artifactUrl,
      verify: result.verify?.headline,
      verifyTail: result.verify?.tail,
      setupTail: result.setup?.passed === false ? result.setup.tail : undefined,
      network: result.network
    },
    changes,
    ended,
    repoDir: request.repoDir,
    auditDir: request.audit.dir,
    policy: request.settings.changes,
    settings: request.settings.github,
    github: request.github,
    reply: request.reply,
    runId: request.runId,
    redact: request.audit.redact,
    audit: request.audit
  }))
}

async function removingSandbox(request: RunRequest, sandbox: Sandbox | undefined): Promise<void> {
  const unreachable = engineFoundUnreachable()
  if (!sandbox && unreachable) {
    // Both sweeps skip such an engine at once instead of each waiting out a ping to warn.
    request.reporter.info(`Nothing to remove: ${unreachable}, so no container or network `
      + 'of this run exists.')
    return
  }
  try {
    await sandbox?.remove()
    // Also sweeps a container whose creation a failure or a cancel interrupted.
    await sweepContainers(request.runId)
  } catch (error) {
    request.reporter.warning(`Removing the sandbox failed: ${messageOf(error)}. The post step `
      + 'sweeps containers labelled with this run again.')
  }
}

async function closingNetwork(request: RunRequest,
  network: RunNetwork | undefined): Promise<void> {
  try {
    await network?.close()
    // Also sweeps a network whose creation a failure or a cancel interrupted.
    await sweepNetworks(request.runId)
  } catch (error) {
    request.reporter.warning(`Removing the run's network failed: ${messageOf(error)}. The post `
      + 'step sweeps networks labelled with this run again.')
  }
}

/** The outcome an agent ending decides by itself; `undefined` when the run goes on. */
function endingOutcome(agent: AgentResult): Outcome | undefined {
  const { ending } = agent
  switch (ending.kind) {
    case 'finished':
      return undefined
    case 'budget-exhausted':
      // Publishing says what became of the work so far: a draft, a patch, or nothing.
      return { kind: 'budget-exhausted', message: `the ${ending.budget} budget ran out after `
        + `${agent.steps} step(s)` }
    case 'cancelled':
      return { kind: 'cancelled', message: 'the run was cancelled' }
    case 'model-failure':
      return { kind: 'failed', message: `the model failed: ${ending.message}` }
    case 'sandbox-failure':
      return { kind: 'failed', message: `the sandbox failed: ${ending.message}` }
    case 'format-errors':
      return { kind: 'failed', message: `the model kept making malformed tool calls: `
        + ending.message }
    case 'stuck':
      return { kind: 'failed', message: `the agent was stuck in a loop: ${ending.message}` }
  }
}

function requireModel(settings: Settings): void {
  if (!settings.providers[0]?.model) {
    throw new SettingsError('Input `model` is required: name the model the endpoint expects, '
      + 'e.g. `gpt-4.1`.')
  }
}

function emptyChanges(): ChangeSet {
  return { patch: Buffer.alloc(0), files: [] }
}

class Cancelled extends Error {}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The message of anything thrown, including non-Error values. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
