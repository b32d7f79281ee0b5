/**
 * The command phases around the agent: `setup` before it (e.g. `npm ci`) and `verify`
 * after it (e.g. `npm test`). Each command is recorded in the audit log like the agent's
 * own; the first failing command ends the phase.
 */
import type { AuditSink, Phase } from './audit/types.js'
import type { Reporter } from './reporter.js'
import type { CommandResult, Sandbox } from './sandbox/types.js'

export interface CommandsReport {
  passed: boolean
  /** one line for summaries: which command failed and how, or that all passed */
  headline: string
  /** the last lines of the failing command's output (or of the last command) */
  tail: string
  results: CommandResult[]
}

const TAIL_LINES = 30

/**
 * Runs `commands` in order in the workspace, stopping at the first that fails. `env` is
 * exported for each command, e.g. the proxy's address in an allow-listed phase.
 */
export async function runCommands(sandbox: Sandbox, commands: readonly string[],
  phase: Extract<Phase, 'setup' | 'verify'>, timeoutSeconds: number, audit: AuditSink,
  reporter: Reporter, env: Record<string, string> = {}): Promise<CommandsReport> {
  const results: CommandResult[] = []
  for (const command of commands) {
    reporter.info(`$ ${command}`)
    const result = await sandbox.run(command, { timeoutSeconds, env })
    results.push(result)
    audit.record({ type: 'command', phase, command, cwd: sandbox.workdir,
      exitCode: result.exitCode, timedOut: result.timedOut, durationMs: result.durationMs,
      stdout: result.stdout, stderr: result.stderr })
    const tail = tailOf(result)
    if (result.exitCode !== 0) {
      const how = result.timedOut ? `timed out after ${timeoutSeconds}s`
        : `exited with ${result.exitCode}`
      reporter.info(tail)
      return { passed: false, headline: `\`${command}\` ${how}`, tail, results }
    }
  }
  const last = results[results.length - 1]
  return { passed: true, headline: `${commands.length} ${phase} command(s) passed`,
    tail: last ? tailOf(last) : '', results }
}

function tailOf(result: CommandResult): string {
  const text = [result.stdout.text, result.stderr.text].filter(Boolean).join('\n')
  return text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n')
}
