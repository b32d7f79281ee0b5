/**
 * From the event that started the workflow to a decision: a task to run, an event to ignore,
 * or a refusal. The decision is made before any model call or container exists, so a refusal
 * costs one API call for the permission and one reply.
 *
 * Decisions:
 * - Edited comments are ignored: an edit to an old comment would silently re-run an old
 *   request; asking again takes a new comment.
 * - `workflow_dispatch`, `push` and `schedule` are not permission-checked: GitHub lets only
 *   people with write access dispatch a workflow or push, and a schedule runs the workflow as
 *   the default branch holds it, which only writers changed.
 * - `pull_request` and `pull_request_target` are governed by `allowed-forks`: the task is the
 *   workflow author's `task` input; the risk is the fork's code, which the agent would run.
 * - Every other event checks the actor's permission, since anyone can cause many of them.
 */
import type { GitHub } from '../github/client.js'
import { SettingsError, type Settings } from '../settings.js'
import { cleanUntrusted } from './clean.js'
import type { GitHubEvent } from './event.js'
import { checkRequester, requesterFrom, type Requester } from './requester.js'
import type { Task, TaskOrigin, UntrustedText } from './types.js'

export type TaskDecision =
  | { kind: 'task'; task: Task }
  /** nothing to do for this event; the caller decides the outcome */
  | { kind: 'ignore'; reason: string }
  /**
   * the requester may not trigger Airlock; reply at `replyTo` when given, with `advice`: what
   * the person can do instead
   */
  | { kind: 'refused'; reason: string; replyTo?: TaskOrigin; advice?: string }

type Payload = Record<string, unknown>
type Refusal = Extract<TaskDecision, { kind: 'refused' }>

const TRUSTED_TRIGGERS = ['workflow_dispatch', 'push', 'schedule']

/** Decides what the event asks for, checking who asked. Throws for a missing `task` input. */
export async function decideTask(event: GitHubEvent, settings: Pick<Settings, 'task' | 'github'>,
  github: GitHub): Promise<TaskDecision> {
  switch (event.name) {
    case 'issues':
      return fromLabel(event, settings, github)
    case 'issue_comment':
    case 'pull_request_review_comment':
      return fromComment(event, settings, github)
    case 'pull_request':
    case 'pull_request_target':
      return fromPullRequest(event, settings)
    default:
      return fromInput(event, settings, github)
  }
}

async function fromLabel(event: GitHubEvent, settings: Pick<Settings, 'task' | 'github'>,
  github: GitHub): Promise<TaskDecision> {
  const { payload } = event
  const label = (payload.label as Payload | undefined)?.name
  const trigger = settings.github.triggerLabel
  if (payload.action !== 'labeled' || typeof label !== 'string'
    || label.toLowerCase() !== trigger.toLowerCase()) {
    return { kind: 'ignore', reason: `issues event (${String(payload.action)}) is not the `
      + `\`${trigger}\` label being added` }
  }
  const issue = payload.issue as Payload
  const origin: TaskOrigin = {
    kind: 'issue', event: event.name, repository: event.repository,
    number: Number(issue.number), isPullRequest: false, url: String(issue.html_url ?? '')
  }
  const requester = requesterFrom(payload.sender)
  const refusal = await tryRefuse(github, requester, settings, origin)
  if (refusal) return refusal
  return { kind: 'task', task: {
    instructions: settings.task.trim(), untrusted: [issueText(issue, origin)], origin,
    requester: requester?.login
  } }
}

async function fromComment(event: GitHubEvent, settings: Pick<Settings, 'task' | 'github'>,
  github: GitHub): Promise<TaskDecision> {
  const { payload } = event
  if (payload.action !== 'created') {
    return { kind: 'ignore', reason: `${event.name} (${String(payload.action)}): only new `
      + 'comments are requests; write a new comment to ask again' }
  }
  const comment = payload.comment as Payload
  const instruction = afterTrigger(String(comment.body ?? ''), settings.github.triggerPhrase)
  if (instruction === undefined) {
    return { kind: 'ignore', reason: `the comment does not start with `
      + `\`${settings.github.triggerPhrase}\`` }
  }
  const parent = (payload.pull_request ?? payload.issue) as Payload
  const isPullRequest = event.name === 'pull_request_review_comment'
    || Boolean(parent.pull_request)
  const origin: TaskOrigin = {
    kind: isPullRequest ? 'pr-comment' : 'issue-comment', event: event.name,
    repository: event.repository, number: Number(parent.number), isPullRequest,
    commentId: Number(comment.id), url: String(comment.html_url ?? '')
  }
  const requester = requesterFrom(comment.user)
  const refusal = await tryRefuse(github, requester, settings, origin)
  if (refusal) return refusal
  const untrusted: UntrustedText[] = [
    { label: `request in a comment by ${requester?.login} on #${origin.number}`,
      text: cleanUntrusted(instruction), author: requester?.login },
    issueText(parent, origin)
  ]
  return { kind: 'task', task: {
    instructions: settings.task.trim(), untrusted, origin, requester: requester?.login
  } }
}

function fromPullRequest(event: GitHubEvent,
  settings: Pick<Settings, 'task' | 'github'>): TaskDecision {
  const pull = event.payload.pull_request as Payload | undefined
  const origin: TaskOrigin = {
    kind: 'input', event: event.name, repository: event.repository,
    number: pull ? Number(pull.number) : undefined, isPullRequest: true,
    url: pull ? String(pull.html_url ?? '') : undefined
  }
  const headRepo = ((pull?.head as Payload | undefined)?.repo as Payload | null | undefined)
  const fork = headRepo ? String(headRepo.full_name) : undefined
  const allowed = settings.github.allowedForks
  if (fork === undefined) {
    return { kind: 'refused', replyTo: origin, reason: 'the pull request\'s head repository '
      + 'is gone (a deleted fork), so where its code comes from cannot be checked',
    advice: 'Push the change to a branch of this repository and open the pull request from '
      + 'there' }
  }
  if (fork.toLowerCase() !== event.repository.toLowerCase() && !allowed.includes('*')
    && !allowed.some(a => a.toLowerCase() === fork.toLowerCase())) {
    return { kind: 'refused', replyTo: origin, reason: `the pull request comes from the fork `
      + `${fork}, which is not listed in the \`allowed-forks\` input`,
    advice: 'A maintainer can list the fork in `allowed-forks` after reading its code, or '
      + 'push the change to a branch of this repository' }
  }
  return { kind: 'task', task: { instructions: requireTask(event, settings), origin,
    requester: event.actor || undefined } }
}

async function fromInput(event: GitHubEvent, settings: Pick<Settings, 'task' | 'github'>,
  github: GitHub): Promise<TaskDecision> {
  const origin: TaskOrigin = { kind: 'input', event: event.name, repository: event.repository }
  const instructions = requireTask(event, settings)
  const sender = requesterFrom(event.payload.sender)
  const requester: Requester | undefined = sender?.login === event.actor ? sender
    : requesterFrom({ login: event.actor })
  if (!TRUSTED_TRIGGERS.includes(event.name)) {
    const refusal = await tryRefuse(github, requester, settings, origin)
    if (refusal) return { kind: 'refused', reason: refusal.reason, advice: refusal.advice }
  }
  return { kind: 'task', task: { instructions, origin, requester: requester?.login } }
}

function requireTask(event: GitHubEvent, settings: Pick<Settings, 'task'>): string {
  const task = settings.task.trim()
  if (!task) {
    throw new SettingsError(`Input \`task\` is required for a \`${event.name || 'local'}\` `
      + 'run: say what the agent should do. Only an issue labelled with `trigger-label` or a '
      + 'comment starting with `trigger-phrase` brings its own task.')
  }
  return task
}

async function tryRefuse(github: GitHub, requester: Requester | undefined,
  settings: Pick<Settings, 'github'>, origin: TaskOrigin): Promise<Refusal | undefined> {
  const ask = origin.kind === 'issue'
    ? `ask someone with write access to this repository to add the \`${
      settings.github.triggerLabel}\` label`
    : `ask someone with write access to this repository to write the \`${
      settings.github.triggerPhrase}\` comment`
  if (!requester) {
    return { kind: 'refused', replyTo: origin, reason: 'the event names no requester to check',
      advice: `To have Airlock work on this, ${ask}` }
  }
  const verdict = await checkRequester(github, requester, settings.github)
  if (verdict.allowed) return undefined
  const advice = requester.isBot
    ? `A maintainer can list ${requester.login} in \`allowed-bots\`, or ${ask}`
    : `To have Airlock work on this, ${ask}`
  return { kind: 'refused', replyTo: origin, reason: verdict.reason, advice }
}

/** The text after the trigger phrase, or `undefined` when the body does not start with it. */
export function afterTrigger(body: string, phrase: string): string | undefined {
  const trimmed = body.trim()
  if (!phrase || !trimmed.startsWith(phrase)) return undefined
  const rest = trimmed.slice(phrase.length)
  if (rest !== '' && !/^\s/.test(rest)) return undefined
  return rest.trim()
}

/** The issue's (or pull request's) title and body, with who wrote them: not the requester. */
function issueText(issue: Payload, origin: TaskOrigin): UntrustedText {
  const what = origin.isPullRequest ? 'pull request' : 'issue'
  const title = cleanUntrusted(String(issue.title ?? ''), 500)
  const body = cleanUntrusted(String(issue.body ?? ''))
  return { label: `${what} #${origin.number} title and body`, text: `${title}\n\n${body}`.trim(),
    author: requesterFrom(issue.user)?.login }
}
