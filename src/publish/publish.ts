/**
 * From the run's result to where the requester will see it: a draft pull request, a reply
 * comment, a patch file, a local branch, or nothing, as `output` says. A change the policy
 * refuses is never published; its patch stays in the audit directory.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AuditSink } from '../audit/types.js'
import type { GitHub } from '../github/client.js'
import type { Outcome } from '../outcome.js'
import { checkChanges, type Violation } from '../sandbox/changes.js'
import type { ChangeSet } from '../sandbox/types.js'
import type { ChangePolicy, GitHubSettings, OutputMode } from '../settings.js'
import type { Task } from '../task/types.js'
import { makePostable, plainMarkdown, type Postable } from './postable.js'
import { branchName, commitToLocalBranch, publishPullRequest } from './pull-request.js'
import { Reply } from './reply.js'
import { commentBody, patchSection, pullRequestBody, type RunReport } from './report.js'

export interface PublishRequest {
  output: OutputMode
  report: RunReport
  changes: ChangeSet
  /** set when the run already ended without success; then only the reply is written */
  ended?: Outcome
  repoDir: string
  auditDir: string
  policy: ChangePolicy
  settings: GitHubSettings
  /** absent on the command line without a token */
  github?: GitHub
  /** the reply on the originating issue or PR, started when work began */
  reply?: Reply
  /** `GITHUB_RUN_ID`, for the branch of a run with no issue */
  runId?: string
  /** the run's redactor: every secret by value */
  redact: (text: string) => string
  audit?: AuditSink
}

export interface PublishResult {
  outcome: Outcome
  /** with the body as posted, so the audit link in it can be updated after the upload */
  pullRequest?: { number: number; url: string; body: string }
  branch?: string
  commentUrl?: string
  patchPath?: string
}

/** File names in the audit directory. */
export const PATCH_FILE = 'changes.patch'
export const REFUSED_PATCH_FILE = 'changes.refused.patch'

/** Publishes the result and returns the run's final outcome. */
export async function publish(request: PublishRequest): Promise<PublishResult> {
  const postable = makePostable(request.redact)
  const { changes } = request
  const hasChanges = changes.patch.length > 0
  if (hasChanges) {
    const violations = [...checkChanges(changes, request.policy),
      ...secretViolations(changes, request.redact)]
    if (violations.length > 0) {
      // A patch that carries a secret must not reach the artifact either.
      const patchPath = await savePatch(request, REFUSED_PATCH_FILE, request.redact)
      for (const v of violations) {
        request.audit?.record({ type: 'policy.refusal', rule: v.rule, path: v.path,
          message: v.message })
      }
      const reasons = violations.map(v => `- \`${v.path}\`: ${v.message}`).join('\n')
      return reply(request, postable, { kind: 'refused', message: 'the change breaks the '
        + `change policy and was not published (${violations.length} problem`
        + `${violations.length === 1 ? '' : 's'}); its patch is in the audit artifact` },
      [`The change was refused:\n${plainMarkdown(reasons)}`], { patchPath })
    }
  }
  // A run whose budget ran out still publishes what it did, always as a draft, and its
  // outcome stays `budget-exhausted`; any other unsuccessful end only replies.
  const partial = request.ended?.kind === 'budget-exhausted' && hasChanges
  if (request.ended && !partial) {
    const patchPath = hasChanges ? await savePatch(request, PATCH_FILE) : undefined
    const ended = request.ended.kind === 'budget-exhausted'
      ? { ...request.ended, message: `${request.ended.message}; no file had changed, so `
        + 'nothing was published' }
      : request.ended
    return reply({ ...request, ended: undefined }, postable, ended, [], { patchPath })
  }
  if (partial) {
    const ended = request.ended as Outcome
    const published = await publishChanges({ ...request,
      settings: { ...request.settings, draft: true } }, postable)
    return published.outcome.kind === ended.kind ? published : { ...published,
      outcome: { kind: ended.kind,
        message: postable(`${ended.message}; ${published.outcome.message}`) } }
  }
  if (!hasChanges) {
    return reply(request, postable, { kind: 'no-changes',
      message: 'the agent finished without changing any file' }, [], {})
  }
  return publishChanges(request, postable)
}

async function publishChanges(request: PublishRequest, postable: Postable):
  Promise<PublishResult> {
  const mode = request.output === 'auto' ? (request.github ? 'pull-request' : 'comment')
    : request.output
  const pullHead = request.report.task.origin.pullHead
  switch (mode) {
    case 'pull-request':
      // A fork's branch takes no push from this repository's token, and a pull request
      // against the default branch would carry the fork's commits along with the change.
      if (pullHead && !pullHead.sameRepository && !request.settings.baseBranch) {
        return toComment(request, postable, `the pull request's branch is in a fork, where `
          + 'Airlock cannot push; the change is in this comment as a patch')
      }
      return toPullRequest(request, postable)
    case 'branch': {
      const branch = safeBranch(request)
      await commitToLocalBranch(request.repoDir, request.changes.patch,
        commitMessage(request, postable), branch)
      request.audit?.record({ type: 'publish', target: 'branch', branch })
      return { outcome: { kind: 'changes-published', message: `committed on the local branch `
        + `${branch}` }, branch }
    }
    case 'patch': {
      const patchPath = await savePatch(request, PATCH_FILE)
      request.audit?.record({ type: 'publish', target: 'patch', detail: patchPath })
      return reply(request, postable, { kind: 'changes-published',
        message: `the patch was written to ${patchPath}` }, [], { patchPath })
    }
    case 'comment':
      return toComment(request, postable, 'the change is in this comment as a patch')
    default: {
      // Nothing is published, but a request made on an issue still hears how it ended.
      const patchPath = await savePatch(request, PATCH_FILE)
      return reply(request, postable, { kind: 'changes-published', message: 'output is '
        + '`none`: nothing was published; the patch is only in the audit log' },
      [], { patchPath })
    }
  }
}

async function toComment(request: PublishRequest, postable: Postable,
  message: string): Promise<PublishResult> {
  const patchPath = await savePatch(request, PATCH_FILE)
  if (!request.reply) {
    return { outcome: { kind: 'changes-published', message: 'there is no issue or pull '
      + `request to comment on; the patch was written to ${patchPath}` }, patchPath }
  }
  return reply(request, postable, { kind: 'changes-published', message },
    [patchSection(request.changes.patch)], { patchPath })
}

async function toPullRequest(request: PublishRequest, postable: Postable):
  Promise<PublishResult> {
  const { github, settings, report } = request
  if (!github) {
    throw new Error('`output: pull-request` needs the GitHub API: pass `github-token`, or '
      + 'choose `output: comment` or `patch`.')
  }
  const branch = safeBranch(request)
  const pending: Outcome = request.ended
    ?? { kind: 'changes-published', message: `proposed on ${branch}` }
  // A partial run's pull request is always a draft (`publish` forces it); say so where seen.
  const partial = request.ended?.kind === 'budget-exhausted'
    ? 'what was done so far is published as a draft: ' : ''
  const body = postable(pullRequestBody(report, pending))
  // A request made on a pull request is proposed into that pull request's branch.
  const into = settings.baseBranch ? undefined : report.task.origin.pullHead?.ref
  const result = await publishPullRequest({
    github, repoDir: request.repoDir, patch: request.changes.patch, branch,
    base: settings.baseBranch || into || await github.getDefaultBranch(),
    title: postable(titleOf(report.task)), body,
    commitMessage: commitMessage(request, postable), draft: settings.draft, token: settings.token
  })
  if (result.kind === 'closed-by-person') {
    return toComment(request, postable, `pull request #${result.pull.number} was closed by a `
      + 'person, so Airlock did not reopen it or push to it; the change is in this comment')
  }
  const { pull } = result
  const verb = result.kind === 'opened' ? 'opened' : result.pushed ? 'updated'
    : 'left unchanged (same change as before)'
  request.audit?.record({ type: 'publish', target: 'pull-request', url: pull.url, branch,
    detail: verb })
  const target = into ? ` into the branch ${into} of #${report.task.origin.number}` : ''
  const outcome: Outcome = { kind: 'changes-published',
    message: `${partial}pull request #${pull.number} ${verb}${target}: ${pull.url}` }
  const replied = await reply(request, postable, outcome, [], {})
  return { ...replied, pullRequest: { number: pull.number, url: pull.url, body }, branch }
}

/** Finishes the reply (when there is one) and returns the outcome with what was written. */
async function reply(request: PublishRequest, postable: Postable, outcome: Outcome,
  extra: string[], result: Omit<PublishResult, 'outcome'>): Promise<PublishResult> {
  // A partial run keeps its own outcome and says where its changes went.
  const final: Outcome = request.ended
    ? { kind: request.ended.kind, message: `${request.ended.message}; ${outcome.message}` }
    : outcome
  // The outcome line also goes to logs, outputs and the step summary: it is made safe here.
  const safe = { ...final, message: postable(final.message) }
  if (!request.reply) return { outcome: safe, ...result }
  const commentUrl = await request.reply.finish(commentBody(request.report, final, extra))
  request.audit?.record({ type: 'publish', target: 'comment', url: commentUrl })
  return { outcome: safe, commentUrl, ...result }
}

function safeBranch(request: PublishRequest): string {
  const branch = branchName(request.settings.branchPrefix, request.report.task.origin,
    request.runId)
  if (request.redact(branch) !== branch) {
    throw new Error('Input `branch-prefix` contains a secret value; choose another prefix.')
  }
  return branch
}

function titleOf(task: Task): string {
  const source = task.instructions || task.untrusted?.[task.untrusted.length - 1]?.text || ''
  const line = source.split('\n').map(s => s.trim()).find(s => s) ?? 'changes'
  const cut = line.length > 64 ? `${line.slice(0, 63)}…` : line
  return `Airlock: ${cut}`
}

function commitMessage(request: PublishRequest, postable: Postable): string {
  const { task } = request.report
  const where = task.origin.number !== undefined ? ` for #${task.origin.number}` : ''
  const summary = request.report.summary.trim().split('\n').slice(0, 20).join('\n')
  const lines = [`${titleOf(task)}${where}`.slice(0, 100), '', summary || 'No summary given.']
  const trailers = [task.requester ? `Requested-by: ${task.requester}` : '']
    .filter(Boolean)
  return postable([...lines, '', ...trailers].join('\n').trim())
}

async function savePatch(request: PublishRequest, name: string,
  redact?: (text: string) => string): Promise<string> {
  const path = join(request.auditDir, name)
  const { patch } = request.changes
  await writeFile(path, redact ? Buffer.from(redact(patch.toString('latin1')), 'latin1') : patch)
  return path
}

/**
 * Every file of the change whose name or text carries a secret's value (raw, hex, base64 or
 * URL-encoded): such a change is refused whole rather than pushed with the value in it.
 * Known shortcoming: a binary file's content is base85 in the patch and is not searched; a
 * check of the workspace's files themselves inside the sandbox would close that.
 */
export function secretViolations(changes: ChangeSet,
  redact: (text: string) => string): Violation[] {
  const text = changes.patch.toString('latin1')
  if (redact(text) === text) return []
  const sections = text.split(/^(?=diff --git )/m).filter(s => redact(s) !== s)
  return sections.map(section => {
    const header = redact(/^diff --git (.*)$/m.exec(section)?.[1] ?? 'the patch')
    return { path: header, rule: 'secret-value' as const, message: `${header} carries the `
      + 'value of a secret the run knows (raw or encoded); the change is refused.' }
  })
}

export interface RefusalRequest {
  github: GitHub
  /** where the request was made (`TaskDecision.replyTo`); no reply when absent */
  replyTo?: Task['origin']
  reason: string
  /** what the person can do instead (`TaskDecision.advice`) */
  advice?: string
  redact: (text: string) => string
  runUrl?: string
  /** where a reply that could not be written is reported */
  warn?: (line: string) => void
}

/**
 * The one short reply to a refused request, and the `refused` outcome. A reply that cannot
 * be written (a fork's pull request gets a read-only token) is a warning: the refusal stands.
 */
export async function publishRefusal(request: RefusalRequest): Promise<PublishResult> {
  const postable = makePostable(request.redact)
  const outcome: Outcome = { kind: 'refused', message: postable(request.reason) }
  const replyTo = request.replyTo
  if (!replyTo) return { outcome }
  const target = Reply.forRefusal(request.github, replyTo, postable, request.runUrl)
  if (!target) return { outcome }
  const run = request.runUrl ? ` ([run](${request.runUrl}))` : ''
  const advice = request.advice ? ` ${request.advice}.` : ''
  try {
    const commentUrl = await target.finish(`⛔ **Airlock: refused** — ${request.reason}. `
      + `Nothing was run${run}.${advice}`)
    return { outcome, commentUrl }
  } catch (error) {
    request.warn?.('The refusal could not be written as a reply; the run is refused all the '
      + `same. ${error instanceof Error ? error.message : String(error)}`)
    return { outcome }
  }
}
