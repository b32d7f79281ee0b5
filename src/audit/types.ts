/**
 * The events of the audit log, as the rest of Airlock hands them to the log. The log adds
 * the envelope (sequence number, time, hash chain), redacts every secret by value, and
 * moves command output text into files beside the log, named by their sha256.
 */
import type { AgentEnding, BudgetName, OutcomeKind } from '../outcome.js'
import type { CapturedOutput, ChangedFile, ImageInfo } from '../sandbox/types.js'

export type Phase = 'setup' | 'agent' | 'verify' | 'replay'

export interface TokenUsage {
  prompt: number
  completion: number
  /** prompt tokens the provider served from its cache */
  cached: number
}

export type AuditEvent =
  | { type: 'run.start'; runId: string; airlockVersion: string; mode: 'action' | 'cli' | 'replay'
      /** settings with every secret removed */
      settings: Record<string, unknown> }
  | { type: 'task'; origin: string; requester?: string; url?: string; text: string }
  | { type: 'sandbox.start'; containerId: string; image: ImageInfo; workdir: string
      network: string }
  | { type: 'model.request'; step: number; provider: string; model: string
      messages: unknown[]; tools: string[]
      /** when set, `messages` holds the conversation from this index on; the ones before it
       * are those of the previous `model.request`, unchanged */
      fromIndex?: number }
  | { type: 'model.response'; step: number; provider: string; model: string; latencyMs: number
      finishReason: string; message: unknown; usage: TokenUsage; costUsd: number
      attempts: number
      /** true when the provider reported no usage and `usage` is a chars/4 estimate */
      usageEstimated?: boolean }
  | { type: 'model.error'; step: number; provider: string; message: string; status?: number
      retryable: boolean; attempt: number
      /** the provider that takes over from here on */
      failover?: string
      /** why this provider was left: its answer will not change, or its retries ran out */
      failoverReason?: 'not-retryable' | 'retries-exhausted' }
  | { type: 'tool.call'; step: number; callId: string; name: string; arguments: string }
  | { type: 'tool.result'; step: number; callId: string; name: string; ok: boolean
      observation: string }
  | { type: 'command'; step?: number; phase: Phase; command: string; cwd: string
      exitCode: number; timedOut: boolean; durationMs: number
      stdout: CapturedOutput; stderr: CapturedOutput }
  | { type: 'file.write'; step: number; path: string; bytes: number; sha256: string }
  | { type: 'network'; phase: Phase; host: string; port: number; allowed: boolean
      method: string; address?: string }
  | { type: 'policy.refusal'; rule: string; path?: string; message: string }
  | { type: 'budget'; budget: string; used: number; limit: number }
  | { type: 'changes'; files: ChangedFile[]; patchBytes: number; patchSha256: string }
  | { type: 'publish'; target: string; url?: string; branch?: string; detail?: string }
  | { type: 'outcome'; kind: OutcomeKind; message: string; steps: number; tokens: number
      costUsd: number; durationMs: number
      /** why the agent loop stopped, when it ran: `failed` alone does not say which part */
      ending?: AgentEnding['kind']
      /** with the ending `budget-exhausted`: which budget ran out */
      budget?: BudgetName }

export type AuditEventType = AuditEvent['type']

/** Where events go. `record` returns once the event is on disk. */
export interface AuditSink {
  record(event: AuditEvent): void
}
