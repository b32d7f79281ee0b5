/**
 * Runs the built action (`dist/index.js`) the way the GitHub runner does: a child process of
 * Node with an environment built from nothing, every input as `INPUT_<NAME>` at its
 * `action.yml` default unless the case overrides it, the event payload in a file, and the
 * runner's file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY) read back after
 * the step. The post step gets the saved state as `STATE_<name>` variables, as the runner
 * passes it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The Node the runner would use for `using: node24`. */
export const NODE = join(ROOT, 'node_modules', '.bin', 'node')
export const BUNDLE = join(ROOT, 'dist', 'index.js')

interface ActionYaml {
  inputs: Record<string, { default?: string | number | boolean }>
}

/** Each input of `action.yml` that has a default, with it, as the runner reads the file. */
export function actionDefaults(): Record<string, string> {
  const doc = parseYaml(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as ActionYaml
  return Object.fromEntries(Object.entries(doc.inputs)
    .filter(([, spec]) => spec.default !== undefined)
    .map(([name, spec]) => [name, String(spec.default)]))
}

/** The runner's variable name for an input: `max-steps` → `INPUT_MAX-STEPS`. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/**
 * Parses a file-command file (GITHUB_OUTPUT, GITHUB_STATE): `name<<delimiter` blocks as
 * `@actions/core` writes them, and the older single-line `name=value` form.
 */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]
    if (line === '') continue
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delimiter] = heredoc
      const end = lines.indexOf(delimiter, i + 1)
      if (end < 0) throw new Error(`file command ${name}: delimiter ${delimiter} never closes`)
      values[name] = lines.slice(i + 1, end).join('\n')
      i = end
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`file command line is neither name=value nor name<<EOF: ${line}`)
    values[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return values
}

export interface StepResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  state: Record<string, string>
  summary: string
  /** milliseconds from spawn to exit */
  durationMs: number
}

export interface ActionJob {
  /** a fresh runner temp directory, the workspace's parent and the file commands' home */
  readonly temp: string
  /** `GITHUB_RUN_ID`, the same for every step of the job; the run's labels start with it */
  readonly runId: string
  /** starts the main step; `started.child` is there to signal it */
  startMain(): StartedStep
  /** runs the post step with the state the main step saved */
  runPost(state: Record<string, string>): Promise<StepResult>
  remove(): void
}

export interface StartedStep {
  child: ChildProcess
  done: Promise<StepResult>
  /** resolves when stdout has a line containing `text` */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>
}

export interface JobOptions {
  /** `GITHUB_EVENT_NAME` */
  eventName: string
  /** the webhook payload written to `GITHUB_EVENT_PATH` */
  payload: Record<string, unknown>
  /** `owner/name` */
  repository: string
  /** the checkout, as actions/checkout left it */
  workspace: string
  /** inputs by name, over the action.yml defaults */
  inputs: Record<string, string>
  /** further environment, e.g. the artifact service's variables */
  env?: Record<string, string>
  apiUrl: string
  actor?: string
}

/** Prepares one job's runner environment; every step gets fresh file-command files. */
export function createActionJob(options: JobOptions): ActionJob {
  const temp = mkdtempSync(join(tmpdir(), 'airlock-e2e-runner-'))
  const eventPath = join(temp, 'event.json')
  writeFileSync(eventPath, JSON.stringify(options.payload))
  let stepCount = 0
  const runId = String(100000 + randomInt(900000))

  const stepEnv = (extra: Record<string, string>): { env: NodeJS.ProcessEnv; dir: string } => {
    const dir = join(temp, `step-${++stepCount}`)
    mkdirSync(dir)
    for (const file of ['output', 'state', 'summary', 'env', 'path']) {
      writeFileSync(join(dir, file), '')
    }
    const inputs = { ...actionDefaults(), ...options.inputs }
    const env: NodeJS.ProcessEnv = {
      // Only what a runner gives a step; nothing of the test process leaks in.
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? temp,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: options.eventName,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_REPOSITORY: options.repository,
      GITHUB_ACTOR: options.actor ?? 'octocat',
      GITHUB_WORKSPACE: options.workspace,
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: options.apiUrl,
      GITHUB_RUN_ID: runId,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STATE: join(dir, 'state'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      GITHUB_ENV: join(dir, 'env'),
      GITHUB_PATH: join(dir, 'path'),
      RUNNER_TEMP: temp,
      RUNNER_OS: 'Linux',
      ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [inputVariable(k), v])),
      ...options.env,
      ...extra
    }
    if (process.env.DOCKER_HOST) env.DOCKER_HOST = process.env.DOCKER_HOST
    return { env, dir }
  }

  const start = (extra: Record<string, string>): StartedStep => {
    const { env, dir } = stepEnv(extra)
    const began = Date.now()
    const child = spawn(NODE, [BUNDLE], { cwd: options.workspace, env,
      stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const watchers: Array<{ text: string; resolve: () => void }> = []
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      for (const w of watchers.filter(w => stdout.includes(w.text))) w.resolve()
    })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const done = new Promise<StepResult>((resolveDone, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => resolveDone({
        code, signal, stdout, stderr, durationMs: Date.now() - began,
        outputs: parseFileCommands(readFileSync(join(dir, 'output'), 'utf8')),
        state: parseFileCommands(readFileSync(join(dir, 'state'), 'utf8')),
        summary: readFileSync(join(dir, 'summary'), 'utf8')
      }))
    })
    const waitForOutput = (text: string, timeoutMs = 30000): Promise<void> =>
      new Promise((resolveWait, reject) => {
        if (stdout.includes(text)) return resolveWait()
        const timer = setTimeout(() => reject(new Error(`no "${text}" in the step's output `
          + `within ${timeoutMs} ms:\n${stdout}\n${stderr}`)), timeoutMs)
        watchers.push({ text, resolve: () => {
          clearTimeout(timer)
          resolveWait()
        } })
        void done.then(() => reject(new Error(`the step ended without "${text}":\n${stdout}`)))
      })
    return { child, done, waitForOutput }
  }

  return {
    temp,
    runId,
    startMain: () => start({}),
    runPost: state => start(Object.fromEntries(Object.entries(state)
      .map(([name, value]) => [`STATE_${name}`, value]))).done,
    remove: () => rmSync(temp, { recursive: true, force: true })
  }
}

/** The `::error::`, `::warning::` and `::notice::` lines a step printed, by kind. */
export function annotations(stdout: string, kind: 'error' | 'warning' | 'notice'): string[] {
  return stdout.split('\n').filter(l => l.startsWith(`::${kind}`))
    .map(l => l.replace(/^::\w+[^:]*::/, ''))
}
