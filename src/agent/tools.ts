/**
 * The tools the model sees and their execution in the sandbox. `executeTool` stands alone
 * so that a recorded run can be replayed without a model: it takes the raw argument string
 * exactly as the model sent it.
 */
import { createHash } from 'node:crypto'
import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions'
import type { AuditSink, Phase } from '../audit/types.js'
import type { CommandResult, Sandbox } from '../sandbox/types.js'
import { capText, MAX_OBSERVATION_CHARS } from './observation.js'

export interface ToolOptions {
  /** the most any command may run, in seconds; the model may ask for less */
  commandTimeoutSeconds: number
  /** the workspace is read-only: writes are refused */
  readOnly: boolean
  audit?: AuditSink
  step?: number
  phase?: Phase
  maxObservationChars?: number
  /** the container's memory limit in bytes (`memory`), named when a command is killed */
  memoryBytes?: number
}

/** What one tool call did, as the model and the loop see it. */
export interface ToolOutcome {
  ok: boolean
  /** the text the model gets back */
  observation: string
  /** the call itself was malformed: unknown tool, bad JSON, bad arguments */
  formatError: boolean
  /** set by `finish` */
  finished?: { summary: string }
  /** set by `bash` */
  command?: CommandResult
}

/** A sandbox error that ends the run rather than being reported to the model. */
export function isSandboxFailure(error: unknown): boolean {
  // By name, not class: the sandbox module may be bundled separately from this one.
  return error instanceof Error && error.name === 'SandboxFailure'
}

const str = (description: string) => ({ type: 'string', description })
const int = (description: string) => ({ type: 'integer', description })

function tool(name: string, description: string, properties: Record<string, unknown>,
  required: string[]): ChatCompletionFunctionTool {
  return { type: 'function', function: { name, description,
    parameters: { type: 'object', properties, required, additionalProperties: false } } }
}

/** The tool definitions sent with every request. */
export const TOOL_DEFINITIONS: readonly ChatCompletionFunctionTool[] = [
  tool('bash', 'Run a shell command in the repository root. Returns the exit code, stdout and '
    + 'stderr (long output is cut in the middle).', {
    command: str('the command, run with bash -c'),
    timeout_seconds: int('seconds before it is killed; capped by the configured limit')
  }, ['command']),
  tool('read_file', 'Read a text file, optionally only some lines (1-based, inclusive).', {
    path: str('path relative to the repository root'),
    start_line: int('first line to return'), end_line: int('last line to return')
  }, ['path']),
  tool('write_file', 'Create or overwrite a file with the given content.', {
    path: str('path relative to the repository root'), content: str('the whole new content')
  }, ['path', 'content']),
  tool('edit_file', 'Replace one exact, unique occurrence of old_text in a file by new_text.', {
    path: str('path relative to the repository root'),
    old_text: str('text to replace; must occur exactly once'), new_text: str('replacement')
  }, ['path', 'old_text', 'new_text']),
  tool('finish', 'End the task. The summary is shown to the people who asked.', {
    summary: str('what was done and why, or why nothing was changed')
  }, ['summary'])
]

type Args = Record<string, unknown>
type Handler = (sandbox: Sandbox, args: Args, options: ToolOptions) => Promise<ToolOutcome>

const HANDLERS: Record<string, Handler> = {
  bash: runBash, read_file: readFileTool, write_file: writeFileTool, edit_file: editFileTool,
  finish: async (_sandbox, args) => ({ ok: true, formatError: false,
    observation: 'Finished.', finished: { summary: String(args.summary) } })
}

/**
 * Runs one tool call. Bad calls and failed tools come back as an observation for the model;
 * only a `SandboxFailure` (the container or engine is gone) is thrown.
 */
export async function executeTool(sandbox: Sandbox, name: string, rawArguments: string,
  options: ToolOptions): Promise<ToolOutcome> {
  const handler = Object.hasOwn(HANDLERS, name) ? HANDLERS[name] : undefined
  if (!handler) {
    return formatError(`Unknown tool "${name}". Available tools: `
      + `${Object.keys(HANDLERS).join(', ')}.`)
  }
  const parsed = parseArguments(name, rawArguments)
  if (typeof parsed === 'string') return formatError(parsed)
  try {
    return await handler(sandbox, parsed, options)
  } catch (error) {
    if (isSandboxFailure(error)) throw error
    const message = error instanceof Error ? error.message : String(error)
    return { ok: false, formatError: false, observation: `Error: ${message}` }
  }
}

function formatError(observation: string): ToolOutcome {
  return { ok: false, formatError: true, observation: `Error: ${observation}` }
}

/** The arguments as an object, or a message saying what is wrong with them. */
function parseArguments(name: string, raw: string): Args | string {
  let value: unknown
  try {
    value = JSON.parse(raw.trim() === '' ? '{}' : raw)
  } catch (error) {
    return `the arguments of ${name} are not valid JSON (${(error as Error).message}). `
      + 'Send one JSON object.'
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `the arguments of ${name} must be a JSON object.`
  }
  const definition = TOOL_DEFINITIONS.find(t => t.function.name === name)
  const schema = definition?.function.parameters as
    { properties: Record<string, { type: string }>; required: string[] }
  const args = value as Args
  // The definitions say additionalProperties:false; a key we would ignore is a call the
  // model believes does something it does not (`cwd`, `env`), so it is sent back.
  const unknown = Object.keys(args).find(key => !Object.hasOwn(schema.properties, key))
  if (unknown !== undefined) {
    return `${name} has no argument "${unknown}"; it takes `
      + `${Object.keys(schema.properties).map(k => `"${k}"`).join(', ')}.`
  }
  for (const key of schema.required) {
    if (args[key] === undefined) return `${name} needs "${key}".`
  }
  for (const [key, spec] of Object.entries(schema.properties)) {
    const v = args[key]
    if (v === undefined || v === null) continue
    if (spec.type === 'string' && typeof v !== 'string') return `"${key}" must be a string.`
    if (spec.type === 'integer' && !(Number.isInteger(v) && (v as number) > 0)) {
      return `"${key}" must be a positive whole number.`
    }
  }
  return args
}

async function runBash(sandbox: Sandbox, args: Args, options: ToolOptions):
  Promise<ToolOutcome> {
  const command = String(args.command)
  const asked = typeof args.timeout_seconds === 'number' ? args.timeout_seconds : Infinity
  const timeoutSeconds = Math.min(asked, options.commandTimeoutSeconds)
  const result = await sandbox.run(command, { timeoutSeconds })
  options.audit?.record({ type: 'command', step: options.step, phase: options.phase ?? 'agent',
    command, cwd: sandbox.workdir, exitCode: result.exitCode, timedOut: result.timedOut,
    durationMs: result.durationMs, stdout: result.stdout, stderr: result.stderr })
  const max = options.maxObservationChars ?? MAX_OBSERVATION_CHARS
  const parts = [`exit code: ${result.exitCode}${exitNote(result, timeoutSeconds, options)}`]
  // Each stream gets its share so a flood on one does not hide the other.
  const share = result.stderr.text && result.stdout.text ? Math.floor(max / 2) : max
  if (result.stdout.text) parts.push(`stdout:\n${capText(result.stdout.text, share)}`)
  if (result.stderr.text) parts.push(`stderr:\n${capText(result.stderr.text, share)}`)
  if (!result.stdout.text && !result.stderr.text) parts.push('(no output)')
  return { ok: result.exitCode === 0 && !result.timedOut, formatError: false,
    observation: parts.join('\n'), command: result }
}

/** Why a command ended when its exit code alone does not say. */
function exitNote(result: CommandResult, timeoutSeconds: number, options: ToolOptions): string {
  if (result.timedOut) return ` (killed after the ${timeoutSeconds}s timeout)`
  // 128 + 9: SIGKILL. Inside the sandbox nothing but the kernel's OOM killer sends it to a
  // command that did not time out, unless the command itself did.
  if (result.exitCode !== 137) return ''
  const limit = options.memoryBytes === undefined ? 'the `memory` setting'
    : `\`memory\` is ${mebibytes(options.memoryBytes)}`
  return ` (killed by SIGKILL, most likely for going over the sandbox's memory limit: ${limit}; `
    + 'use less memory, e.g. fewer parallel jobs or smaller inputs)'
}

function mebibytes(bytes: number): string {
  const mib = bytes / (1024 * 1024)
  return mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB`
    : `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`
}

async function readFileTool(sandbox: Sandbox, args: Args, options: ToolOptions):
  Promise<ToolOutcome> {
  const path = String(args.path)
  const bytes = await sandbox.readFile(path)
  if (bytes.includes(0)) {
    return { ok: true, formatError: false,
      observation: `${path} is a binary file of ${bytes.length} bytes.` }
  }
  const lines = bytes.toString('utf8').split('\n')
  const start = typeof args.start_line === 'number' ? args.start_line : 1
  const end = Math.min(typeof args.end_line === 'number' ? args.end_line : lines.length,
    lines.length)
  if (start > lines.length || end < start) {
    return { ok: false, formatError: false, observation: `Error: ${path} has ${lines.length} `
      + `lines; lines ${start}-${end} are not in it.` }
  }
  const whole = start === 1 && end === lines.length
  const text = lines.slice(start - 1, end).join('\n')
  const max = options.maxObservationChars ?? MAX_OBSERVATION_CHARS
  const header = whole ? '' : `[${path}, lines ${start}-${end} of ${lines.length}]\n`
  const note = text.length > max
    ? '\n[the file is long: read it in parts with start_line and end_line]' : ''
  return { ok: true, formatError: false, observation: header + capText(text, max) + note }
}

function refuseWhenReadOnly(options: ToolOptions): ToolOutcome | undefined {
  if (!options.readOnly) return undefined
  return { ok: false, formatError: false, observation: 'Error: the workspace is read-only in '
    + 'this run; no file can be written. Answer in words with finish.' }
}

async function writeAndRecord(sandbox: Sandbox, path: string, content: string,
  options: ToolOptions): Promise<void> {
  await sandbox.writeFile(path, content)
  const buffer = Buffer.from(content, 'utf8')
  options.audit?.record({ type: 'file.write', step: options.step ?? 0, path,
    bytes: buffer.length, sha256: createHash('sha256').update(buffer).digest('hex') })
}

async function writeFileTool(sandbox: Sandbox, args: Args, options: ToolOptions):
  Promise<ToolOutcome> {
  const refused = refuseWhenReadOnly(options)
  if (refused) return refused
  const path = String(args.path)
  const content = String(args.content)
  await writeAndRecord(sandbox, path, content, options)
  return { ok: true, formatError: false,
    observation: `Wrote ${path} (${Buffer.byteLength(content)} bytes).` }
}

async function editFileTool(sandbox: Sandbox, args: Args, options: ToolOptions):
  Promise<ToolOutcome> {
  const refused = refuseWhenReadOnly(options)
  if (refused) return refused
  const path = String(args.path)
  const oldText = String(args.old_text)
  const newText = String(args.new_text)
  if (oldText === '') {
    return { ok: false, formatError: false, observation: 'Error: old_text is empty; give the '
      + 'exact text to replace, or use write_file for a new file.' }
  }
  const content = (await sandbox.readFile(path)).toString('utf8')
  const count = content.split(oldText).length - 1
  if (count !== 1) {
    const why = count === 0
      ? `old_text was not found in ${path}; read the file and copy the text exactly, `
        + 'including whitespace'
      : `old_text was found ${count} times in ${path}; include more surrounding lines so `
        + 'it matches exactly once'
    return { ok: false, formatError: false, observation: `Error: ${why}.` }
  }
  const index = content.indexOf(oldText)
  const updated = content.slice(0, index) + newText + content.slice(index + oldText.length)
  await writeAndRecord(sandbox, path, updated, options)
  return { ok: true, formatError: false, observation: `Edited ${path}.` }
}
