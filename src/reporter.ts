/**
 * Where a run tells a person what it is doing: log groups named as gerunds, info lines,
 * warnings. The action reports through `@actions/core`; the command line through stderr.
 * Every line passes through the run's redactor first, and text that came from the agent
 * cannot act as a workflow command on the runner.
 */
export interface Reporter {
  /** Runs `body` inside a named, collapsible group; the group closes even when it throws. */
  group<T>(name: string, body: () => Promise<T>): Promise<T>
  info(line: string): void
  warning(line: string): void
  /** The live progress of the agent; a terminal redraws one line, a log gets plain lines. */
  progress(line: string): void
}

