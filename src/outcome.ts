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

/** The run's hard budgets, by the name the audit log and the messages use. */
export type BudgetName = 'steps' | 'time' | 'tokens' | 'cost'

/** Why the agent loop stopped; main turns this, the changes and publishing into an outcome. */
export type AgentEnding =
  | { kind: 'finished'; summary: string }
  | { kind: 'budget-exhausted'; budget: BudgetName }
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
