/**
 * The GitHub Action: the main step reads the settings and the event, decides the task,
 * runs it and reports; the post step sweeps any container the run left. Both steps run
 * this bundle; saved state tells them apart.
 */
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as core from '@actions/core'
import { AuditLog, runArtifactsUrl } from './audit/index.js'
import { createGitHub, type GitHub } from './github/client.js'
import { INPUTS } from './inputs.js'
import type { Outcome } from './outcome.js'
import { makePostable } from './publish/postable.js'
import { publishRefusal } from './publish/publish.js'
import { Reply } from './publish/reply.js'
import { auditLogLine } from './publish/report.js'
import type { Reporter } from './reporter.js'
import { finishRecord, recordRunStart, type RunRecord } from './record.js'
import { messageOf, runTask, type RunResult } from './run.js'
import { sweepNetworks } from './network/index.js'
import { sweepContainers } from './sandbox/index.js'
import { readSettings, type Settings } from './settings.js'
import { decideTask, type TaskDecision } from './task/decide.js'
import { checkPullCheckout } from './task/pull-head.js'
import type { TaskOrigin } from './task/types.js'
import { readEvent } from './task/event.js'
import { neutralizeWorkflowCommands } from './audit/index.js'

const STATE_POST = 'isPost'
const STATE_RUN_ID = 'runId'

/** Runs the main step, or the post step when the main step already ran in this job. */
export async function runAction(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  process.on('unhandledRejection', reason => core.setFailed(`Unexpected error: ${reason}`))
  if (core.getState(STATE_POST) === 'true') return runPostStep()
  core.saveState(STATE_POST, 'true')
  try {
    await runMainStep(env)
  } catch (error) {
    // Only a failure before the audit log exists lands here (a bad input, an unwritable
    // audit directory); the outcome output is still set, so a later step can branch on it.
    core.setOutput('outcome', 'failed')
    core.setFailed(messageOf(error))
  }
}

async function runMainStep(env: NodeJS.ProcessEnv): Promise<void> {
  const startedAt = Date.now()
  const settings = readActionSettings(env)
  const runId = `${env.GITHUB_RUN_ID ?? 'local'}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-`
    + randomBytes(3).toString('hex')
  core.saveState(STATE_RUN_ID, runId)
  const auditDir = settings.auditDir
    ? resolve(env.GITHUB_WORKSPACE ?? '.', settings.auditDir)
    : join(env.RUNNER_TEMP ?? tmpdir(), `airlock-${runId}`)
  const audit = await AuditLog.create({ dir: auditDir, secrets: settings.secrets, runId })
  const reporter = actionReporter(audit.redact)
  const record: RunRecord = { audit, reporter, settings, startedAt, mode: 'action' }
  const controller = cancelOnSignals(reporter)
  recordRunStart(record, runId)

  let result: RunResult
  let acted: Acted | undefined
  try {
    const github = createGitHub({ token: settings.github.token,
      repository: env.GITHUB_REPOSITORY ?? '', log: line => reporter.info(line) })
    const decision = await reporter.group('Reading the task',
      () => decideTask(readEvent(env), settings, github))
    acted = await actOn(decision, { settings, github, audit, reporter, env, runId,
      startedAt, signal: controller.signal })
    result = acted.result
  } catch (error) {
    result = { outcome: controller.signal.aborted
      ? { kind: 'cancelled', message: 'the run was cancelled' }
      : { kind: 'failed', message: messageOf(error) } }
  }
  const finished = await finishRecord(record, result, settings.artifactName)
  if (acted) await linkingTheArtifact(acted, result, finished.url, reporter)
  setOutputs(result, audit.dir)
  conclude(result.outcome)
}

interface ActContext {
  settings: Settings
  github: GitHub
  audit: AuditLog
  reporter: Reporter
  env: NodeJS.ProcessEnv
  runId: string
  startedAt: number
  signal: AbortSignal
}

/** The run's result, and what was posted before the audit artifact had its own page. */
interface Acted {
  result: RunResult
  github: GitHub
  reply?: Reply
  /** the audit link the posted texts carry until the upload gives a better one */
  runUrl?: string
}

/** What the decision calls for: nothing, one short refusal, or the whole run. */
async function actOn(decision: TaskDecision, ctx: ActContext): Promise<Acted> {
  const runUrl = runArtifactsUrl(ctx.env)
  const { github } = ctx
  if (decision.kind === 'ignore') {
    ctx.reporter.info(`Nothing to do: ${decision.reason}.`)
    return { github, result: { outcome: { kind: 'no-changes',
      message: `nothing to do: ${decision.reason}` } } }
  }
  if (decision.kind === 'refused') return refuse(decision, 'requester', ctx)
  const repoDir = resolve(ctx.env.GITHUB_WORKSPACE ?? '.', ctx.settings.repositoryPath)
  const checked = await checkPullCheckout(github, decision.task.origin, repoDir)
  if (!checked.ok) {
    return refuse({ replyTo: decision.task.origin, ...checked }, 'checkout', ctx)
  }
  const task = { ...decision.task, origin: checked.origin }
  ctx.audit.record({ type: 'task', origin: task.origin.kind, requester: task.requester,
    url: task.origin.url, text: taskText(task) })
  const reply = Reply.forOrigin(ctx.github, task.origin, makePostable(ctx.audit.redact), runUrl)
  await reply?.start()
  const result = await runTask({ settings: ctx.settings, task, repoDir, runId: ctx.runId,
    audit: ctx.audit, reporter: ctx.reporter, signal: ctx.signal, startedAt: ctx.startedAt,
    github, reply, runUrl, artifactUrl: runUrl })
  return { result, github, reply, runUrl }
}

/** A refusal costs nothing: no container, no model call, one short reply where asked. */
async function refuse(refused: { replyTo?: TaskOrigin; reason: string; advice?: string },
  rule: string, ctx: ActContext): Promise<Acted> {
  ctx.audit.record({ type: 'policy.refusal', rule, message: refused.reason })
  const refusal = await publishRefusal({ github: ctx.github, replyTo: refused.replyTo,
    reason: refused.reason, advice: refused.advice, redact: ctx.audit.redact,
    runUrl: runArtifactsUrl(ctx.env), warn: line => ctx.reporter.warning(line) })
  return { github: ctx.github, result: { outcome: refusal.outcome, publish: refusal } }
}

/**
 * The pull request body and the reply are written before the audit log is closed and
 * uploaded, so they link the run's page; once the artifact has its own page, each is edited
 * once to link it. A failed edit leaves the run's page, which lists the artifact too.
 */
async function linkingTheArtifact(acted: Acted, result: RunResult,
  artifactUrl: string | undefined, reporter: Reporter): Promise<void> {
  const { runUrl, reply, github } = acted
  if (!runUrl || !artifactUrl || artifactUrl === runUrl) return
  const from = auditLogLine(runUrl)
  const to = auditLogLine(artifactUrl)
  const pull = result.publish?.pullRequest
  if (pull?.body.includes(from)) {
    try {
      await github.updatePull(pull.number, { body: pull.body.split(from).join(to) })
    } catch (error) {
      reporter.warning(`Linking the audit artifact in pull request #${pull.number} failed: `
        + messageOf(error))
    }
  }
  try {
    await reply?.replaceText(from, to)
  } catch (error) {
    reporter.warning(`Linking the audit artifact in the reply comment failed: ${messageOf(error)}`)
  }
}

/** Removes whatever container the main step left: after a crash, a kill or a cancel. */
async function runPostStep(): Promise<void> {
  const runId = core.getState(STATE_RUN_ID)
  if (!runId) return
  try {
    const removed = await sweepContainers(runId)
    const networks = await sweepNetworks(runId)
    core.info(removed === 0 ? 'No container of this run was left.'
      : `Removed ${removed} container(s) this run left behind.`)
    if (networks > 0) core.info(`Removed ${networks} network(s) this run left behind.`)
  } catch (error) {
    core.warning(`Sweeping this run's containers failed: ${messageOf(error)}`)
  }
}

/** Reads every input in one place, masking each secret before anything is logged. */
function readActionSettings(env: NodeJS.ProcessEnv): Settings {
  for (const input of INPUTS.filter(i => i.secret)) {
    for (const line of core.getInput(input.name).split(/\r?\n/)) {
      if (line.trim()) core.setSecret(line.trim())
    }
  }
  const settings = readSettings(name => core.getInput(name), env)
  for (const secret of settings.secrets) {
    core.setSecret(secret)
    core.setSecret(Buffer.from(secret).toString('base64'))
  }
  return settings
}

function actionReporter(redact: (text: string) => string): Reporter {
  const safe = (text: string): string => neutralizeWorkflowCommands(redact(text))
  return {
    group: (name, body) => core.group(name, body),
    info: line => core.info(safe(line)),
    warning: line => core.warning(safe(line)),
    progress: line => core.info(safe(line))
  }
}

/** SIGINT and SIGTERM (a cancel on GitHub) abort the run instead of killing the process. */
function cancelOnSignals(reporter: Reporter): AbortController {
  const controller = new AbortController()
  const cancel = (signal: string): void => {
    if (controller.signal.aborted) return
    reporter.warning(`Received ${signal}: stopping the agent and removing the sandbox.`)
    controller.abort()
  }
  process.on('SIGINT', () => cancel('SIGINT'))
  process.on('SIGTERM', () => cancel('SIGTERM'))
  return controller
}

function setOutputs(result: RunResult, auditDir: string): void {
  const { agent, publish } = result
  core.setOutput('outcome', result.outcome.kind)
  core.setOutput('pull-request-url', publish?.pullRequest?.url ?? '')
  core.setOutput('pull-request-number', publish?.pullRequest?.number ?? '')
  core.setOutput('branch', publish?.branch ?? '')
  core.setOutput('comment-url', publish?.commentUrl ?? '')
  core.setOutput('patch-path', publish?.patchPath ?? '')
  core.setOutput('audit-path', auditDir)
  core.setOutput('steps', agent?.steps ?? 0)
  core.setOutput('tokens', agent ? agent.usage.prompt + agent.usage.completion : 0)
  core.setOutput('cost-usd', (agent?.costUsd ?? 0).toFixed(4))
}

/** The step fails only for `failed` and `cancelled`; every outcome is said out loud. */
function conclude(outcome: Outcome): void {
  const line = `Airlock: ${outcome.kind} — ${outcome.message}`
  switch (outcome.kind) {
    case 'failed':
    case 'cancelled':
      core.setFailed(line)
      break
    case 'budget-exhausted':
      core.warning(line)
      break
    default:
      core.notice(line)
  }
}

function taskText(task: { instructions: string; untrusted?: { label: string; text: string }[] })
  : string {
  const parts = [task.instructions, ...(task.untrusted ?? []).map(u => `[${u.label}]\n${u.text}`)]
  return parts.filter(Boolean).join('\n\n')
}
