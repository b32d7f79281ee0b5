/** The Markdown Airlock posts: pull request bodies and reply comments. */
import type { Outcome } from '../outcome.js'
import type { Task } from '../task/types.js'
import { plainMarkdown } from './postable.js'

/** What the run did, for the text a person reads. */
export interface RunReport {
  task: Task
  /** the agent's closing summary; the model wrote it, so it is posted without HTML or images */
  summary: string
  steps: number
  tokens: number
  costUsd: number
  /** the workflow run page */
  runUrl?: string
  /** the uploaded audit artifact, or the run page that lists it */
  artifactUrl?: string
  /** one line on the `verify` commands, when there were any */
  verify?: string
  /** the last lines of the `verify` output: the failing command's, or the last one's */
  verifyTail?: string
  /** the last lines of the failing `setup` command's output, when setup failed */
  setupTail?: string
  /** the agent's network, as the audit log's `sandbox.start` names it */
  network?: string
}

/** Largest patch shown inline in a comment, in bytes. */
export const INLINE_PATCH_BYTES = 20_000

const ICONS: Record<Outcome['kind'], string> = {
  'changes-published': '✅', 'no-changes': 'ℹ️', refused: '⛔', 'budget-exhausted': '⏱️',
  failed: '❌', cancelled: '🚫'
}

/** The pull request's body: summary, outcome, figures, links, and `Closes #N` for an issue. */
export function pullRequestBody(report: RunReport, outcome: Outcome): string {
  const { origin } = report.task
  const closes = origin.number !== undefined && !origin.isPullRequest
    ? `\n\nCloses #${origin.number}` : ''
  return [
    '## Summary', '', plainMarkdown(report.summary.trim() || '(the agent gave no summary)'), '',
    '## Run', '', ...runLines(report, outcome), ...outputSections(report)
  ].join('\n') + closes
}

/** A reply comment: the outcome line, the summary, figures and links, and extra sections. */
export function commentBody(report: RunReport, outcome: Outcome, extra: string[] = []): string {
  const summary = report.summary.trim()
  return [
    `${ICONS[outcome.kind]} **Airlock: ${outcome.kind}** — ${plainMarkdown(outcome.message)}`,
    ...(summary ? ['', plainMarkdown(summary)] : []),
    ...extra.flatMap(section => ['', section]),
    '', ...runLines(report, outcome).filter(line => !line.startsWith('- **Outcome')),
    ...outputSections(report)
  ].join('\n')
}

/** A collapsed block with the tail of a phase's output, fenced so nothing in it renders. */
export function outputSection(title: string, tail: string): string {
  if (!tail.trim()) return ''
  const fence = '`'.repeat(Math.max(3, longestRun(tail, '`') + 1))
  return `<details><summary>${title}</summary>\n\n${fence}text\n${tail.trimEnd()}\n${fence}`
    + '\n\n</details>'
}

function outputSections(report: RunReport): string[] {
  const sections = [
    report.setupTail ? outputSection('Output of the failing setup command', report.setupTail)
      : '',
    report.verifyTail ? outputSection('Verify output (last lines)', report.verifyTail) : ''
  ].filter(Boolean)
  return sections.flatMap(section => ['', section])
}

/** A collapsed block with the patch, or a note that it is too large to show. */
export function patchSection(patch: Buffer): string {
  if (patch.length === 0) return ''
  if (patch.length > INLINE_PATCH_BYTES || patch.includes(0)) {
    return `The patch (${patch.length} bytes) is too large to show here; it is in the audit `
      + 'artifact.'
  }
  const text = patch.toString('utf8')
  const fence = '`'.repeat(Math.max(3, longestRun(text, '`') + 1))
  return `<details><summary>Patch (${patch.length} bytes)</summary>\n\n${fence}diff\n${text}`
    + `${text.endsWith('\n') ? '' : '\n'}${fence}\n\n</details>`
}

function runLines(report: RunReport, outcome: Outcome): string[] {
  const lines = [
    // An outcome message may quote what the agent ran or wrote: it renders nothing either.
    `- **Outcome:** \`${outcome.kind}\` — ${plainMarkdown(outcome.message)}`,
    `- **Steps:** ${report.steps} · **Tokens:** ${report.tokens} · **Cost:** `
      + `$${report.costUsd.toFixed(4)}`
  ]
  if (report.verify) lines.push(`- **Verify:** ${report.verify}`)
  if (report.network) lines.push(`- **Network:** ${report.network}`)
  if (report.task.requester) lines.push(`- **Requested by:** ${report.task.requester}`)
  if (report.runUrl) lines.push(`- **Run:** ${report.runUrl}`)
  if (report.artifactUrl) lines.push(auditLogLine(report.artifactUrl))
  return lines
}

/**
 * The audit log's line in a body or a comment. Bodies are written before the upload, with
 * the run's page; once the artifact has an id this exact line is replaced with its page.
 */
export function auditLogLine(url: string): string {
  return `- **Audit log:** ${url}`
}

function longestRun(text: string, char: string): number {
  let best = 0
  let current = 0
  for (const c of text) {
    current = c === char ? current + 1 : 0
    best = Math.max(best, current)
  }
  return best
}
