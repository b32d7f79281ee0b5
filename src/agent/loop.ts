/**
 * The agent loop: ask the model, run the tools it calls in the sandbox, feed back what
 * happened, until it calls `finish` or something ends the run. Every way it can end is an
 * `AgentEnding`; budgets are checked before each model call, so one is overshot by at most
 * the call already made.
 */
import type {
  ChatCompletionAssistantMessageParam, ChatCompletionMessage, ChatCompletionMessageParam
} from 'openai/resources/chat/completions'
import { canonicalJson } from '../audit/entry.js'
import type { AuditSink, TokenUsage } from '../audit/types.js'
import { ModelClient, type ModelTurn } from '../model/client.js'
import { ContextLengthError, ModelCancelled, ModelFailure } from '../model/errors.js'
import type { BackoffPolicy } from '../model/retry.js'
import { estimateMessagesTokens } from '../model/usage.js'
import type { AgentEnding, BudgetName } from '../outcome.js'
import type { Sandbox } from '../sandbox/types.js'
import type { Settings } from '../settings.js'
import type { Task } from '../task/types.js'
import { elideObservations, fitContext } from './context.js'
import { systemPrompt, taskMessage, tryReadAgentsMd } from './prompt.js'
import { executeTool, isSandboxFailure, TOOL_DEFINITIONS, type ToolOutcome } from './tools.js'

/** Called after each tool call, for a live status line. */
export type ProgressCallback = (step: number, maxSteps: number, tool: string, detail: string,
  elapsedMs: number, tokens: number) => void

export interface AgentOptions {
  sandbox: Sandbox
  task: Task
  settings: Pick<Settings, 'providers' | 'requestTimeoutSeconds' | 'maxRetries'
    | 'contextTokens' | 'budgets'> & { sandbox: Pick<Settings['sandbox'],
    'commandTimeoutSeconds' | 'readOnly'> & Partial<Pick<Settings['sandbox'], 'memoryBytes'>> }
  audit: AuditSink
  signal?: AbortSignal
  /** when the run's wall clock started (ms since epoch); default now */
  startedAt?: number
  onProgress?: ProgressCallback
  /** retry timing of the model client; the default waits seconds */
  backoff?: BackoffPolicy
  /** consecutive malformed calls that end the run */
  maxFormatErrors?: number
  /** identical command and result this many times in a row ends the run as stuck */
  stuckRepeats?: number
  maxObservationChars?: number
}

export interface AgentResult {
  ending: AgentEnding
  /** model turns taken */
  steps: number
  usage: TokenUsage
  costUsd: number
  /** from `finish`, else a short note of why the run stopped */
  summary: string
  durationMs: number
  /** the providers that answered, in the order they first did */
  providers: string[]
}

const REMINDER = 'Your reply called no tool. Continue the task by calling a tool, or call '
  + '`finish` with a summary if you are done.'

/** Runs the agent to one of its endings; never throws for anything the run can meet. */
export async function runAgent(options: AgentOptions): Promise<AgentResult> {
  return new AgentRun(options).run()
}

type StepEnd = AgentEnding | undefined

class AgentRun {
  private readonly o: AgentOptions
  private readonly model: ModelClient
  private readonly started: number
  private messages: ChatCompletionMessageParam[] = []
  private reported?: { promptTokens: number; messageCount: number }
  private steps = 0
  private usage: TokenUsage = { prompt: 0, completion: 0, cached: 0 }
  private costUsd = 0
  private formatErrors = 0
  private lastCommand = ''
  private repeats = 0
  private readonly providers: string[] = []

  constructor(options: AgentOptions) {
    this.o = options
    this.started = options.startedAt ?? Date.now()
    const s = options.settings
    this.model = new ModelClient({ providers: s.providers, audit: options.audit,
      requestTimeoutSeconds: s.requestTimeoutSeconds, maxRetries: s.maxRetries,
      backoff: options.backoff })
  }

  async run(): Promise<AgentResult> {
    let ending: AgentEnding
    try {
      await this.openConversation()
      ending = await this.loop()
    } catch (error) {
      if (!isSandboxFailure(error)) throw error
      // A cancel removes the container, so the command in flight fails with the sandbox:
      // that failure is the cancel's doing, not the sandbox's.
      ending = this.o.signal?.aborted ? { kind: 'cancelled' }
        : { kind: 'sandbox-failure', message: (error as Error).message }
    }
    return {
      ending, steps: this.steps, usage: this.usage, costUsd: this.costUsd,
      summary: ending.kind === 'finished' ? ending.summary : summaryOf(ending),
      durationMs: Date.now() - this.started, providers: this.providers
    }
  }

  private async openConversation(): Promise<void> {
    const { sandbox, settings, task } = this.o
    const system = systemPrompt({ workdir: sandbox.workdir, maxSteps: settings.budgets.maxSteps,
      commandTimeoutSeconds: settings.sandbox.commandTimeoutSeconds,
      readOnly: settings.sandbox.readOnly })
    const agentsMd = await tryReadAgentsMd(sandbox)
    this.messages = [{ role: 'system', content: system },
      { role: 'user', content: taskMessage(task, agentsMd) }]
  }

  private async loop(): Promise<AgentEnding> {
    for (;;) {
      if (this.o.signal?.aborted) return { kind: 'cancelled' }
      const spent = this.spentBudget()
      if (spent) return { kind: 'budget-exhausted', budget: spent }
      this.steps += 1
      const turn = await this.ask()
      if ('kind' in turn) return turn
      const end = await this.act(turn.message)
      if (end) return end
    }
  }

  /** The first budget spent, recorded; checked before each model call. */
  private spentBudget(): BudgetName | undefined {
    const b = this.o.settings.budgets
    const checks: [BudgetName, number, number][] = [
      ['steps', this.steps, b.maxSteps],
      ['time', (Date.now() - this.started) / 60_000, b.timeoutMinutes],
      ['tokens', this.usage.prompt + this.usage.completion, b.maxTokens],
      ['cost', this.costUsd, b.maxCostUsd]
    ]
    // A cost budget only binds providers with prices; without prices cost stays zero.
    const spent = checks.find(([, used, limit]) => used >= limit)
    if (!spent) return undefined
    const [budget, used, limit] = spent
    this.o.audit.record({ type: 'budget', budget, used, limit })
    return budget
  }

  /** One model turn, shrinking the context once if the provider says it does not fit. */
  private async ask(): Promise<ModelTurn | AgentEnding> {
    const fitted = fitContext(this.messages, this.o.settings.contextTokens, this.reported)
    if (fitted) this.replaceMessages(fitted)
    try {
      return this.account(await this.request())
    } catch (error) {
      if (error instanceof ContextLengthError) return this.retryShorter(error)
      return endingOfModelError(error)
    }
  }

  private async retryShorter(first: ContextLengthError): Promise<ModelTurn | AgentEnding> {
    this.replaceMessages(elideObservations(this.messages,
      estimateMessagesTokens(this.messages) / 2))
    try {
      return this.account(await this.request())
    } catch (error) {
      if (error instanceof ContextLengthError) {
        return { kind: 'model-failure', message: `${first.message}; still too long after `
          + 'eliding older tool outputs. Raise `context-tokens` only if the model really has a '
          + 'larger window, or give a narrower task.' }
      }
      return endingOfModelError(error)
    }
  }

  private request(): Promise<ModelTurn> {
    return this.model.complete({ step: this.steps, messages: this.messages,
      tools: TOOL_DEFINITIONS, signal: this.o.signal })
  }

  private replaceMessages(messages: ChatCompletionMessageParam[]): void {
    this.messages = messages
    this.reported = undefined
  }

  private account(turn: ModelTurn): ModelTurn {
    this.usage = { prompt: this.usage.prompt + turn.usage.prompt,
      completion: this.usage.completion + turn.usage.completion,
      cached: this.usage.cached + turn.usage.cached }
    this.costUsd += turn.costUsd
    this.reported = turn.usageEstimated ? undefined
      : { promptTokens: turn.usage.prompt, messageCount: this.messages.length }
    if (!this.providers.includes(turn.provider)) this.providers.push(turn.provider)
    return turn
  }

  /** Runs the tool calls of one reply in order; returns an ending when the run is over. */
  private async act(reply: ChatCompletionMessage): Promise<StepEnd> {
    const calls = reply.tool_calls ?? []
    const assistant: ChatCompletionAssistantMessageParam = { role: 'assistant',
      content: reply.content ?? null }
    if (calls.length > 0) assistant.tool_calls = calls
    this.messages.push(assistant)
    if (calls.length === 0) {
      this.messages.push({ role: 'user', content: REMINDER })
      return this.countFormat(true, 'the model replied without calling a tool')
    }
    for (const call of calls) {
      const name = call.type === 'function' ? call.function.name : call.custom.name
      const raw = call.type === 'function' ? call.function.arguments : call.custom.input
      const outcome = await this.runTool(call.id, name, raw)
      this.messages.push({ role: 'tool', tool_call_id: call.id, content: outcome.observation })
      if (outcome.finished) return { kind: 'finished', summary: outcome.finished.summary }
      const end = this.countFormat(outcome.formatError, outcome.observation)
        ?? this.checkStuck(name, raw, outcome)
      if (end) return end
      if (this.o.signal?.aborted) return { kind: 'cancelled' }
    }
    return undefined
  }

  private async runTool(callId: string, name: string, raw: string): Promise<ToolOutcome> {
    const { audit, sandbox, settings } = this.o
    audit.record({ type: 'tool.call', step: this.steps, callId, name, arguments: raw })
    const outcome = await executeTool(sandbox, name, raw, { audit, step: this.steps,
      phase: 'agent', commandTimeoutSeconds: settings.sandbox.commandTimeoutSeconds,
      readOnly: settings.sandbox.readOnly, maxObservationChars: this.o.maxObservationChars,
      memoryBytes: settings.sandbox.memoryBytes })
    audit.record({ type: 'tool.result', step: this.steps, callId, name, ok: outcome.ok,
      observation: outcome.observation })
    this.o.onProgress?.(this.steps, settings.budgets.maxSteps, name, progressDetail(raw),
      Date.now() - this.started, this.usage.prompt + this.usage.completion)
    return outcome
  }

  private countFormat(isError: boolean, what: string): StepEnd {
    this.formatErrors = isError ? this.formatErrors + 1 : 0
    const limit = this.o.maxFormatErrors ?? 3
    if (this.formatErrors < limit) return undefined
    return { kind: 'format-errors', message: `${limit} malformed replies in a row; the last: `
      + `${what.slice(0, 300)}` }
  }

  private checkStuck(name: string, raw: string, outcome: ToolOutcome): StepEnd {
    if (name !== 'bash') {
      this.lastCommand = ''
      this.repeats = 0
      return undefined
    }
    const fingerprint = JSON.stringify([canonicalArguments(raw), outcome.observation])
    this.repeats = fingerprint === this.lastCommand ? this.repeats + 1 : 1
    this.lastCommand = fingerprint
    const limit = this.o.stuckRepeats ?? 3
    if (this.repeats < limit) return undefined
    const command = outcome.command?.command ?? raw
    return { kind: 'stuck', message: `the same command ran ${limit} times in a row with the `
      + `same result: ${command.slice(0, 200)}` }
  }
}

function endingOfModelError(error: unknown): AgentEnding {
  if (error instanceof ModelCancelled) return { kind: 'cancelled' }
  if (error instanceof ModelFailure) return { kind: 'model-failure', message: error.message }
  throw error
}

/**
 * The arguments as canonical JSON (keys sorted, no whitespace), so that a model repeating
 * itself with other spacing or key order still counts as repeating; the raw text if it is
 * not JSON.
 */
function canonicalArguments(raw: string): string {
  try {
    return canonicalJson(JSON.parse(raw))
  } catch {
    return raw
  }
}

/** A short word on what a tool call was about, for the live line. */
function progressDetail(raw: string): string {
  try {
    const args = JSON.parse(raw) as Record<string, unknown>
    const text = String(args.command ?? args.path ?? args.summary ?? '')
    return text.split('\n')[0].slice(0, 80)
  } catch {
    return ''
  }
}

function summaryOf(ending: AgentEnding): string {
  switch (ending.kind) {
    case 'finished': return ending.summary
    case 'budget-exhausted': return `The agent stopped before finishing: its ${ending.budget} `
      + 'budget was spent.'
    case 'cancelled': return 'The run was cancelled before the agent finished.'
    default: return `The agent stopped before finishing: ${ending.message}`
  }
}
