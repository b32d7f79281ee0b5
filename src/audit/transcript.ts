/**
 * The transcript: one self-contained HTML page that shows a run from the task to the outcome,
 * with every model turn, tool call and command output. Every text on it was written by the
 * agent, the model or a stranger's issue, so every text is redacted and escaped, and the page
 * carries a Content-Security-Policy that forbids scripts and fetches even if an escape is
 * missed.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  escapeHtml, formatCost, formatCount, formatDuration, OUTCOME_LABELS, runFigures, shortenLine
} from './format.js'
import type { AnyEvent, AnyOutput, RunFigures } from './format.js'
import { createRedactor } from './redact.js'
import type { Redactor } from './redact.js'
import type { AuditEvent } from './types.js'
import { readStoredOutput, verifyAuditLog } from './verify.js'
import type { VerifyResult } from './verify.js'

/** The transcript's file name inside the audit directory. */
export const TRANSCRIPT_FILE = 'transcript.html'

export interface TranscriptOptions {
  /** the audit directory, to read stored outputs from when `events` are given directly */
  dir?: string
  /** redacts again what the log already redacted; events straight from the agent need it */
  redact?: Redactor
  /** outputs longer than this many lines (or 20 times as many characters) start collapsed */
  collapseLines?: number
}

/** Renders the transcript of an audit directory (verified first) or of a list of events. */
export function renderTranscript(source: string | readonly AnyEvent[],
  options: TranscriptOptions = {}): string {
  let verification: VerifyResult | undefined
  let events: readonly AnyEvent[]
  let dir = options.dir
  if (typeof source === 'string') {
    verification = verifyAuditLog(source)
    events = verification.events
    dir = source
  } else {
    events = source
  }
  const page = new Page(options.redact ?? createRedactor([]), dir, options.collapseLines ?? 30)
  return page.render(events, verification)
}

/** Renders the transcript of `dir` and writes it there as `transcript.html`; returns its path. */
export function writeTranscript(dir: string, options: TranscriptOptions = {}): string {
  const path = join(dir, TRANSCRIPT_FILE)
  writeFileSync(path, renderTranscript(dir, options))
  return path
}

type Event<T extends AuditEvent['type']> = Extract<AnyEvent, { type: T }>

class Page {
  private readonly redact: Redactor
  private readonly dir: string | undefined
  private readonly collapseLines: number
  /** conversation messages shown so far, by their index in the conversation */
  private shownMessages = 0
  private commandNumber = 0

  constructor(redact: Redactor, dir: string | undefined, collapseLines: number) {
    this.redact = redact
    this.dir = dir
    this.collapseLines = collapseLines
  }

  render(events: readonly AnyEvent[], verification: VerifyResult | undefined): string {
    const figures = runFigures(events)
    const body = events.map(e => this.event(e)).filter(Boolean).join('\n')
    const title = figures.outcome
      ? `Airlock run: ${OUTCOME_LABELS[figures.outcome.kind].label}`
      : 'Airlock run: incomplete'
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${this.text(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${this.header(figures, verification)}
<main>
${body}
</main>
</body>
</html>
`
  }

  /** Redacted and escaped: the only way agent text reaches the page. */
  private text(raw: string): string {
    return escapeHtml(this.redact(raw))
  }

  private header(figures: RunFigures, verification: VerifyResult | undefined): string {
    const kind = figures.outcome?.kind ?? 'incomplete'
    const label = figures.outcome ? OUTCOME_LABELS[figures.outcome.kind] : undefined
    const badge = `<span class="badge ${kind}" id="outcome">`
      + `${label ? `${label.icon} ${label.label}` : '⚠️ incomplete'}</span>`
    const stats: [string, string][] = [
      ['Steps', formatCount(figures.steps)],
      ['Tokens', formatCount(figures.tokens.total)],
      ['Cost', formatCost(figures.costUsd)],
      ['Duration', figures.durationMs === undefined ? '?' : formatDuration(figures.durationMs)],
      ['Commands', `${figures.commands}${figures.failedCommands ? ` (${figures.failedCommands}`
        + ' failed)' : ''}`],
      ['Image', figures.image ?? '?'],
      ['Model', figures.models.join(', ')
        || (figures.mode === 'replay' ? 'none called (a replay)' : '?')],
      ['Run', figures.runId ?? '?']
    ]
    return `<header>
<h1>Airlock run ${badge}</h1>
${figures.outcome ? `<p class="message">${this.text(figures.outcome.message)}</p>` : ''}
<p class="task"><b>Task:</b> ${this.text(shortenLine(figures.task ?? '?', 300))}</p>
<dl class="stats">${stats.map(([k, v]) => `<div><dt>${k}</dt><dd>${this.text(v)}</dd></div>`)
    .join('')}</dl>
${verification ? this.verification(verification) : ''}
</header>`
  }

  private verification(v: VerifyResult): string {
    if (v.ok) return `<p class="verify good">Hash chain verified: ${v.events.length} events.</p>`
    if (v.intact) {
      // Lines removed from the end leave a chain that checks, so this is no verification.
      return `<p class="verify bad">Not verified: ${this.text(v.problem?.reason ?? '')}. The `
        + `${v.events.length} events present are unaltered and chained, but whatever came `
        + 'after them is unknown.</p>'
    }
    return `<p class="verify bad">Audit log verification failed at line ${v.problem?.line}: `
      + `${this.text(v.problem?.reason ?? '')}. Only the events before it are shown.</p>`
  }

  private event(e: AnyEvent): string {
    switch (e.type) {
      case 'task': return this.section('task', 'Task', `<p class="meta">${this.text(e.origin)}`
        + `${e.requester ? `, asked by ${this.text(e.requester)}` : ''}</p>${this.pre(e.text)}`)
      case 'sandbox.start': return this.note('sandbox', `Sandbox started from ${e.image.name} `
        + `(${e.image.id}), network ${e.network}, workdir ${e.workdir}`)
      case 'model.request': return this.request(e)
      case 'model.response': return this.response(e)
      case 'model.error': return this.note('error', `Model error from ${e.provider} (attempt `
        + `${e.attempt}${e.status ? `, HTTP ${e.status}` : ''}): ${e.message}`
        + `${e.failover ? `; failing over to ${e.failover}` : ''}`)
      case 'tool.call': return this.section('tool-call', `Tool call: ${e.name}`,
        this.pre(prettyJson(e.arguments)), e.step)
      case 'tool.result': return this.section(e.ok ? 'tool-result' : 'tool-result failed',
        `Tool result: ${e.name}${e.ok ? '' : ' (failed)'}`, this.output(e.observation), e.step)
      case 'command': return this.command(e)
      case 'file.write': return this.note('file', `Wrote ${e.path} (${formatCount(e.bytes)} `
        + `bytes, sha256 ${e.sha256.slice(0, 12)})`)
      case 'network': return this.note(e.allowed ? 'network' : 'network refused',
        `${e.allowed ? 'Allowed' : 'Refused'} ${e.method} ${e.host}:${e.port} (${e.phase})`)
      case 'policy.refusal': return this.note('refusal', `Refused by ${e.rule}`
        + `${e.path ? ` (${e.path})` : ''}: ${e.message}`)
      case 'budget': return this.note('budget', `Budget ${e.budget} reached: ${e.used} of `
        + `${e.limit}`)
      case 'changes': return this.changes(e)
      case 'publish': return this.note('publish', `Published as ${e.target}`
        + `${e.branch ? ` on ${e.branch}` : ''}${e.url ? `: ${e.url}` : ''}`
        + `${e.detail ? ` (${e.detail})` : ''}`)
      case 'outcome': return this.note(`outcome ${e.kind}`, `Outcome: `
        + `${OUTCOME_LABELS[e.kind].label}: ${e.message}`)
      default: return ''
    }
  }

  private request(e: Event<'model.request'>): string {
    const start = e.fromIndex ?? 0
    const parts: string[] = []
    e.messages.forEach((message, i) => {
      const index = start + i
      if (index < this.shownMessages) return
      this.shownMessages = index + 1
      const role = messageRole(message)
      // Assistant turns and tool results are shown from their own events.
      if (role !== 'system' && role !== 'user') return
      parts.push(this.section(`message ${role}`, role === 'system' ? 'System prompt'
        : 'User', this.output(messageText(message)), e.step))
    })
    return parts.join('\n')
  }

  private response(e: Event<'model.response'>): string {
    const text = messageText(e.message)
    const meta = `${e.provider} · ${formatDuration(e.latencyMs)} · ${formatCount(e.usage.prompt)}`
      + ` in / ${formatCount(e.usage.completion)} out · ${formatCost(e.costUsd)} · `
      + `${e.finishReason}${e.attempts > 1 ? ` · ${e.attempts} attempts` : ''}`
    return this.section('message assistant', 'Model',
      `<p class="meta">${this.text(meta)}</p>${text ? this.output(text) : ''}`, e.step)
  }

  private command(e: Event<'command'>): string {
    this.commandNumber += 1
    const failed = e.exitCode !== 0 || e.timedOut
    const status = e.timedOut ? 'timed out' : `exit ${e.exitCode}`
    const title = `<span class="status">${status}</span> · ${formatDuration(e.durationMs)} · `
      + `${this.text(e.phase)} · cwd ${this.text(e.cwd)}`
    return `<section class="command${failed ? ' failed' : ''}" id="command-${this.commandNumber}">
<h3><span class="step">${e.step === undefined ? '' : `step ${e.step}`}</span> $ <code>`
      + `${this.text(e.command)}</code></h3>
<p class="meta">${title}</p>
${this.stream('stdout', e.stdout)}
${this.stream('stderr', e.stderr)}
</section>`
  }

  private stream(name: string, output: AnyOutput): string {
    const text = 'text' in output ? output.text : readStoredOutput(this.dir ?? '', output)
    if (output.bytes === 0 && !text) return ''
    const notes: string[] = [`${formatCount(output.bytes)} bytes`]
    if (output.truncated) notes.push('the middle was cut when captured')
    if ('cut' in output && output.cut === 'file-cap') notes.push('stored text cut at the size cap')
    if ('cut' in output && output.cut === 'total-cap') notes.push('not stored: log size cap')
    if (text === undefined && !('cut' in output && output.cut)) notes.push('stored file missing')
    const label = `${name} (${notes.join(', ')})`
    return text ? this.output(text, label) : `<p class="meta">${this.text(label)}</p>`
  }

  /** A block of text, collapsed behind `<details>` when it is long. */
  private output(raw: string, label?: string): string {
    const lines = raw.split('\n').length
    const long = lines > this.collapseLines || raw.length > this.collapseLines * 200
    if (!long) {
      return `${label ? `<p class="meta">${this.text(label)}</p>` : ''}${this.pre(raw)}`
    }
    const summary = `${label ?? 'text'}: ${formatCount(lines)} lines`
    return `<details><summary>${this.text(summary)}</summary>${this.pre(raw)}</details>`
  }

  private changes(e: Event<'changes'>): string {
    const items = e.files.map(f => `<li><code>${this.text(f.status)}</code> `
      + `${this.text(f.oldPath ? `${f.oldPath} → ${f.path}` : f.path)}`
      + `${f.binary ? ' (binary)' : ''}</li>`)
    const count = `${e.files.length} file${e.files.length === 1 ? '' : 's'}`
    return this.section('changes', `Changes: ${count}, ${formatCount(e.patchBytes)} bytes of patch`,
      `<p class="meta">patch sha256 ${this.text(e.patchSha256)}</p><ul>${items.join('')}</ul>`)
  }

  private pre(raw: string): string {
    return `<pre>${this.text(raw)}</pre>`
  }

  private note(kind: string, raw: string): string {
    return `<p class="note ${kind}">${this.text(raw)}</p>`
  }

  private section(kind: string, title: string, inner: string, step?: number): string {
    const stepLabel = step === undefined ? '' : `<span class="step">step ${step}</span> `
    return `<section class="${kind}"><h3>${stepLabel}${this.text(title)}</h3>${inner}</section>`
  }
}

function messageRole(message: unknown): string {
  const role = (message as { role?: unknown } | null)?.role
  return typeof role === 'string' ? role : 'unknown'
}

/** The text of a chat message: a string content, the text parts of an array, or its JSON. */
function messageText(message: unknown): string {
  if (typeof message === 'string') return message
  const content = (message as { content?: unknown } | null)?.content
  if (typeof content === 'string') return content
  if (Array.isArray(content)) {
    return content.map(p => (typeof p?.text === 'string' ? p.text : JSON.stringify(p)))
      .join('\n')
  }
  return content === null || content === undefined ? '' : JSON.stringify(content)
}

function prettyJson(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2)
  } catch {
    return raw
  }
}

const STYLE = `
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--bad:#cf222e;--good:#1a7f37}
body{font:14px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;
max-width:1100px;padding:16px}
header{border-bottom:1px solid var(--line);margin-bottom:16px}
h1{font-size:22px;margin:0 0 8px}h3{font-size:14px;margin:0 0 6px}
.badge{display:inline-block;border-radius:12px;padding:2px 10px;font-size:14px;color:#fff;
background:var(--muted);vertical-align:middle}
.badge.changes-published{background:var(--good)}.badge.no-changes{background:#57606a}
.badge.failed,.badge.refused{background:var(--bad)}.badge.budget-exhausted{background:#9a6700}
.badge.cancelled,.badge.incomplete{background:#8250df}
.stats{display:flex;flex-wrap:wrap;gap:4px 24px;margin:8px 0}.stats dt{color:var(--muted);
font-size:12px}.stats dd{margin:0;font-weight:600}
.message{font-size:16px;margin:4px 0}.meta{color:var(--muted);font-size:12px;margin:2px 0}
section{border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:8px 0}
section.message.assistant{background:#f6f8fa}section.tool-call{border-left:4px solid #0969da}
section.command{border-left:4px solid var(--good)}
section.command.failed,section.failed{border-left:4px solid var(--bad);background:#ffebe9}
section.command.failed .status{color:var(--bad);font-weight:700}
.step{color:var(--muted);font-weight:400;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border-radius:4px;
padding:8px;margin:4px 0;max-height:none;font:12px/1.45 ui-monospace,monospace}
.note{margin:6px 0;color:var(--muted)}.note.refusal,.note.error,.verify.bad{color:var(--bad)}
.verify.good{color:var(--good)}.outcome{font-weight:700;color:var(--fg)}
summary{cursor:pointer;color:#0969da}
`
