/**
 * The step summary: what a maintainer reads on the run's page first. Every text in it came
 * from the agent or the task, so each is redacted, escaped and made inert before it is written.
 */
import { createRedactor } from './redact.js'
import type { Redactor } from './redact.js'
import {
  escapeHtml, formatCost, formatCount, formatDuration, neutralizeWorkflowCommands,
  OUTCOME_LABELS, runFigures, shortenLine
} from './format.js'
import type { AnyEvent, RunFigures } from './format.js'

export interface SummaryOptions {
  /** redacts again what the log already redacted; events straight from the agent need it */
  redact?: Redactor
  /** longest command shown in the table, in characters (default 80) */
  maxCommandChars?: number
  /** most commands listed; the rest are counted (default 100) */
  maxCommands?: number
  /** a link to the uploaded audit artifact, when there is one */
  auditUrl?: string
  /** the last lines of the `verify` output (the log keeps only references to outputs) */
  verifyTail?: string
}

/**
 * Markdown for `$GITHUB_STEP_SUMMARY`: outcome, figures with the network, the `verify`
 * result, and the commands with exit codes.
 */
export function renderStepSummary(events: readonly AnyEvent[],
  options: SummaryOptions = {}): string {
  const redact = options.redact ?? createRedactor([])
  const figures = runFigures(events)
  const parts = [
    heading(figures, redact),
    figuresTable(figures, events),
    verifySection(events, redact, options.verifyTail ?? ''),
    commandsTable(events, redact, options.maxCommandChars ?? 80, options.maxCommands ?? 100)
  ]
  if (options.auditUrl) {
    parts.push('The full audit log and transcript: '
      + `[audit artifact](${escapeUrl(options.auditUrl)})`)
  }
  return neutralizeWorkflowCommands(redact(parts.filter(Boolean).join('\n\n') + '\n'))
}

function heading(figures: RunFigures, redact: Redactor): string {
  if (!figures.outcome) {
    return '## Airlock: ⚠️ incomplete\n\n'
      + '> The audit log has no outcome: the run was cut short before it could record one.'
  }
  const { icon, label } = OUTCOME_LABELS[figures.outcome.kind]
  const message = inlineText(redact(figures.outcome.message), 500)
  return `## Airlock: ${icon} ${label}\n\n> ${message}`
}

function figuresTable(figures: RunFigures, events: readonly AnyEvent[]): string {
  const t = figures.tokens
  const tokenDetail = t.prompt + t.completion > 0
    ? ` (prompt ${formatCount(t.prompt)}, completion ${formatCount(t.completion)}, `
      + `cached ${formatCount(t.cached)})`
    : ''
  const rows: [string, string][] = [
    ['Steps', formatCount(figures.steps)],
    ['Tokens', formatCount(t.total) + tokenDetail],
    ['Cost', formatCost(figures.costUsd)],
    ['Time', figures.durationMs === undefined ? '?' : formatDuration(figures.durationMs)]
  ]
  if (figures.models.length > 0) {
    rows.push(['Model', figures.models.map(m => inlineText(m, 80)).join(', ')])
  }
  if (figures.image) rows.push(['Image', inlineText(figures.image, 120)])
  const network = events.find(e => e.type === 'sandbox.start')?.network
  if (network) rows.push(['Network', networkText(network)])
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n')
}

/**
 * An agent with `open` network opted out of the isolation, so it is marked where a reviewer
 * reads first; an `open` setup (the default, cut before the agent) is not. The phases' modes
 * are as the log's `sandbox.start` names them, the agent's first.
 */
function networkText(network: string): string {
  const opted = /^open\b/.test(network)
  return `${opted ? '⚠️ ' : ''}${inlineText(network, 200)}`
}

/** Whether the `verify` commands passed, which one failed, and the last lines they printed. */
function verifySection(events: readonly AnyEvent[], redact: Redactor, tail: string): string {
  const verify = events.filter(e => e.type === 'command').filter(c => c.phase === 'verify')
  if (verify.length === 0) return ''
  const failed = verify.find(c => c.exitCode !== 0 || c.timedOut)
  const line = failed
    ? `❌ failed: <code>${cellText(shortenLine(redact(failed.command), 200))}</code> `
      + (failed.timedOut ? 'timed out' : `exited with ${failed.exitCode}`)
    : `✅ passed (${verify.length} command${verify.length === 1 ? '' : 's'})`
  const text = redact(tail).trimEnd()
  const block = text
    ? `\n\n<details><summary>Verify output (last lines)</summary>\n\n<pre>${escapeHtml(text)}`
      + '</pre>\n\n</details>'
    : ''
  return `### Verify\n\n${line}${block}`
}

function commandsTable(events: readonly AnyEvent[], redact: Redactor, maxChars: number,
  maxRows: number): string {
  const commands = events.filter(e => e.type === 'command')
  if (commands.length === 0) return '### Commands\n\nNo commands were run.'
  const failed = commands.filter(c => c.exitCode !== 0 || c.timedOut).length
  const rows = commands.slice(0, maxRows).map((c, i) => {
    const bad = c.exitCode !== 0 || c.timedOut
    const exit = c.timedOut ? '❌ timed out' : bad ? `❌ ${c.exitCode}` : '0'
    const code = `<code>${cellText(shortenLine(redact(c.command), maxChars))}</code>`
    return `| ${i + 1} | ${c.phase} | ${c.step ?? ''} | ${code} | ${exit} | `
      + `${formatDuration(c.durationMs)} |`
  })
  const more = commands.length > maxRows
    ? `\n\n…and ${commands.length - maxRows} more in the audit log.`
    : ''
  return [
    `### Commands (${commands.length}${failed > 0 ? `, ${failed} failed` : ''})`,
    '',
    '| # | Phase | Step | Command | Exit | Time |',
    '|--:|---|--:|---|--:|--:|',
    ...rows
  ].join('\n') + more
}

/** Text for a table cell: HTML-escaped, and `|` as an entity so it cannot end the cell. */
function cellText(text: string): string {
  return escapeHtml(text).replace(/\|/g, '&#124;').replace(/\\/g, '&#92;')
}

/** Agent text inline in Markdown: one line, HTML-escaped, Markdown-active characters escaped. */
function inlineText(text: string, max: number): string {
  return cellText(shortenLine(text, max)).replace(/[`*_[\]]/g, c => `\\${c}`)
}

/** A link target that cannot break out of `(…)`; anything but a plain http(s) URL is dropped. */
function escapeUrl(url: string): string {
  return /^https?:\/\/[^\s()<>"'`\\]+$/.test(url) ? url : '#'
}
