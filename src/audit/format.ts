/**
 * Small text helpers shared by the step summary and the transcript: escaping for HTML, making
 * agent-written text inert on the runner, and the figures people read (time, money, counts).
 */
import type { OutcomeKind } from '../outcome.js'
import type { StoredEvent, StoredOutput } from './entry.js'
import type { AuditEvent } from './types.js'
import type { CapturedOutput } from '../sandbox/types.js'

/** An event as the log stores it or as the rest of Airlock hands it over. */
export type AnyEvent = StoredEvent | AuditEvent

/** A command output in either form: with its text, or as a reference to a stored file. */
export type AnyOutput = StoredOutput | CapturedOutput

/** Escapes the five characters that matter in HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => HTML_ESCAPES[c])
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;'
}

/**
 * Breaks every `::` with a zero-width joiner, so no agent-written text can read as a workflow
 * command (`::set-output`, `::stop-commands::`, `::add-mask::` …) if it reaches the runner's
 * log; people still see two colons.
 */
export function neutralizeWorkflowCommands(text: string): string {
  // `##[name]` is the runner's older command syntax, still parsed (`##[error]`, `##[group]`).
  return text.replace(/::/g, ':\u200d:').replace(/##\[/g, '#\u200d#[')
}

/** One line of at most `max` characters: newlines become `⏎`, the middle gives way to `…`. */
export function shortenLine(text: string, max: number): string {
  const line = text.replace(/\r?\n/g, ' ⏎ ').replace(/\s+/g, ' ').trim()
  if (line.length <= max) return line
  const head = Math.ceil((max - 1) * 0.7)
  return `${line.slice(0, head)}…${line.slice(line.length - (max - 1 - head))}`
}

/** `850ms`, `12.3s`, `4m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?'
  if (ms < 1000) return `${Math.round(ms)}ms`
  const seconds = ms / 1000
  if (seconds < 60) return `${seconds.toFixed(1)}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${String(Math.floor(seconds % 60)).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`
}

/** US dollars with enough digits that a cheap run does not read as free. */
export function formatCost(usd: number): string {
  if (!Number.isFinite(usd)) return '?'
  return usd >= 1 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`
}

/** A count with thousands separators, independent of the runner's locale. */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '?'
}

/** The words and sign a person reads for each outcome. */
export const OUTCOME_LABELS: Record<OutcomeKind, { icon: string; label: string }> = {
  'changes-published': { icon: '✅', label: 'changes published' },
  'no-changes': { icon: '➖', label: 'no changes' },
  refused: { icon: '⛔', label: 'refused' },
  'budget-exhausted': { icon: '⏳', label: 'budget exhausted' },
  failed: { icon: '❌', label: 'failed' },
  cancelled: { icon: '🚫', label: 'cancelled' }
}

/** What the header of a summary or a transcript shows, gathered from the events. */
export interface RunFigures {
  outcome?: Extract<AuditEvent, { type: 'outcome' }>
  task?: string
  runId?: string
  /** from `run.start`: `action`, `cli` or `replay` */
  mode?: string
  image?: string
  models: string[]
  steps: number
  tokens: { prompt: number; completion: number; cached: number; total: number }
  costUsd: number
  durationMs?: number
  commands: number
  failedCommands: number
}

/** Adds up what the events say about the run; the outcome event wins where it has a figure. */
export function runFigures(events: readonly AnyEvent[]): RunFigures {
  const figures: RunFigures = {
    models: [], steps: 0, tokens: { prompt: 0, completion: 0, cached: 0, total: 0 },
    costUsd: 0, commands: 0, failedCommands: 0
  }
  for (const event of events) {
    switch (event.type) {
      case 'run.start':
        figures.runId = event.runId
        figures.mode = event.mode
        break
      case 'task': figures.task ??= event.text; break
      case 'sandbox.start': figures.image ??= `${event.image.name} (${event.image.id})`; break
      case 'model.response': addResponse(figures, event); break
      case 'command':
        figures.commands += 1
        if (event.exitCode !== 0 || event.timedOut) figures.failedCommands += 1
        break
      case 'outcome': figures.outcome = event; break
    }
  }
  figures.tokens.total = figures.tokens.prompt + figures.tokens.completion
  if (figures.outcome) {
    figures.steps = figures.outcome.steps
    figures.tokens.total = figures.outcome.tokens
    figures.costUsd = figures.outcome.costUsd
    figures.durationMs = figures.outcome.durationMs
  }
  return figures
}

function addResponse(figures: RunFigures,
  event: Extract<AuditEvent, { type: 'model.response' }>): void {
  figures.steps = Math.max(figures.steps, event.step)
  figures.tokens.prompt += event.usage.prompt
  figures.tokens.completion += event.usage.completion
  figures.tokens.cached += event.usage.cached
  figures.costUsd += event.costUsd
  const model = event.provider.includes(event.model) ? event.provider
    : `${event.provider}/${event.model}`
  if (!figures.models.includes(model)) figures.models.push(model)
}
