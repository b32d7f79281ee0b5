/**
 * How a run ends. Every run ends in exactly one of these, carried as data from the phase
 * that decided it to the action output, the step summary, the audit log's last event and
 * the reply on the originating issue.
 */
export type OutcomeKind =
  | 'changes-published'
  | 'no-changes'
  | 'refused'
  | 'budget-exhausted'
  | 'failed'
  | 'cancelled'

/** Why the agent loop stopped; main turns this, the changes and publishing into an outcome. */
export type AgentEnding =
  | { kind: 'finished'; summary: string }
  | { kind: 'budget-exhausted'; budget: 'steps' | 'time' | 'tokens' | 'cost' }
  | { kind: 'model-failure'; message: string }
  | { kind: 'sandbox-failure'; message: string }
  | { kind: 'format-errors'; message: string }
  | { kind: 'stuck'; message: string }
  | { kind: 'cancelled' }

export interface Outcome {
  kind: OutcomeKind
  /** one line a person reads first: what happened and, for a failure, what to do */
  message: string
}
