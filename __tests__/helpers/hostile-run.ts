/**
 * The hostile suite's harness: one whole run through `runTask` (real engine, real git, the
 * real `openai` client against a scripted model, the GitHub stand-in), driven by a script of
 * tool calls that plays the malicious agent, and afterwards every place a secret could have
 * gone, gathered as text.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { AuditLog, verifyAuditLog, type VerifyResult } from '../../src/audit/index.js'
import { createGitHub } from '../../src/github/client.js'
import { makePostable } from '../../src/publish/postable.js'
import { Reply } from '../../src/publish/reply.js'
import { finishRecord } from '../../src/record.js'
import type { Reporter } from '../../src/reporter.js'
import { runTask, type RunResult } from '../../src/run.js'
import { settingsWithDefaults } from '../../src/settings.js'
import type { Task } from '../../src/task/types.js'
import { containersOf, TEST_IMAGE, testRunId } from './docker-sandbox.js'
import { createPublishRepos, gitIn, type PublishRepos } from './git-publish-repo.js'
import { GitHubStandIn } from './github-server.js'
import { ModelServer, type Script } from './model-server.js'

/** Inputs small enough for a 2-core machine; a case overrides what it attacks. */
export const HOSTILE_INPUTS: Readonly<Record<string, string>> = {
  model: 'scripted', image: TEST_IMAGE, memory: '256m', cpus: '1', 'pids-limit': '64',
  'tmp-size': '32m', 'command-timeout': '5', 'max-steps': '12', 'timeout-minutes': '2',
  'request-timeout-seconds': '5', 'max-retries': '0'
}

export interface HostileOptions {
  script: Script
  inputs?: Record<string, string>
  /** changes the host checkout before the run, e.g. planting credentials in `.git/config` */
  prepare?: (repos: PublishRepos) => void
  /** aborts the run when it fires, as SIGTERM would */
  signal?: AbortSignal
  /** replaces the scripted model's base URL, e.g. an endpoint that is down */
  baseUrl?: string
  /** called once the sandbox is up, with the run id (to attack the container from outside) */
  onStarted?: (runId: string) => void
}

/** What a finished hostile run left behind, for the assertions. */
export interface HostileRun {
  result: RunResult
  runId: string
  model: ModelServer
  github: GitHubStandIn
  repos: PublishRepos
  auditDir: string
  summaryFile: string
  reporterLines: string[]
  verify(): VerifyResult
  /** every text an outsider could see: model requests, audit files, GitHub, the remote */
  everything(): string
  /** the same, without the model requests (which echo the model's own tool calls back) */
  published(): string
}

/** Builds the pieces, runs the task, writes the record as the action would. */
export async function hostileRun(options: HostileOptions): Promise<HostileRun> {
  const github = await GitHubStandIn.create('octo-org/octo-repo')
  const model = await ModelServer.start(options.script)
  const repos = createPublishRepos()
  options.prepare?.(repos)
  const auditDir = mkdtempSync(join(tmpdir(), 'airlock-hostile-audit-'))
  const summaryFile = join(auditDir, '..', `${auditDir.split('/').pop()}-summary.md`)
  writeFileSync(summaryFile, '')
  const runId = testRunId('hostile')
  const token = options.inputs?.['github-token'] ?? 'ghs_hostile_default_token_0000'
  const settings = settingsWithDefaults({ ...HOSTILE_INPUTS, 'base-url': options.baseUrl
    ?? model.baseUrl, 'api-key': 'sk-hostile-default-key', 'github-token': token,
  ...options.inputs })
  const client = createGitHub({ token, repository: github.repository, baseUrl: github.baseUrl,
    secondMs: 1 })
  const issue = github.addIssue('Please fix the typo', 'Teh should be The')
  const task: Task = { instructions: '', requester: 'Codertocat',
    untrusted: [{ label: `issue #${issue} title and body`, text: 'Teh should be The' }],
    origin: { kind: 'issue', event: 'issues', repository: github.repository, number: issue,
      isPullRequest: false } }
  const audit = await AuditLog.create({ dir: auditDir, secrets: settings.secrets, runId })
  const reporterLines: string[] = []
  const reporter: Reporter = { group: async (name, body) => {
    reporterLines.push(`group ${name}`)
    if (name === 'Running the agent') options.onStarted?.(runId)
    return body()
  }, info: l => void reporterLines.push(audit.redact(l)),
  warning: l => void reporterLines.push(audit.redact(l)),
  progress: l => void reporterLines.push(audit.redact(l)) }
  const startedAt = Date.now()
  const reply = Reply.forOrigin(client, task.origin, makePostable(audit.redact))
  await reply?.start()
  const result = await runTask({ settings, task, repoDir: repos.checkout, runId, audit,
    reporter, signal: options.signal ?? new AbortController().signal, startedAt,
    github: client, reply })
  await finishRecord({ audit, reporter, settings, startedAt, mode: 'action' }, result,
    'airlock-audit', { GITHUB_STEP_SUMMARY: summaryFile })
  const published = (): string => [
    JSON.stringify(result.outcome),
    ...filesUnder(auditDir).map(f => readFileSync(f, 'latin1')),
    readFileSync(summaryFile, 'utf8'),
    // The token in the Authorization header is the API's own credential, not a leak.
    ...github.requests.map(({ authorization: _token, ...r }) => JSON.stringify(r)),
    ...github.postedTexts(),
    JSON.stringify(github.pullRequests()),
    reporterLines.join('\n'),
    remoteHistory(repos.bare)
  ].join('\n')
  return {
    result, runId, model, github, repos, auditDir, summaryFile, reporterLines, published,
    verify: () => verifyAuditLog(auditDir),
    everything: () => [...model.requests.map(r => JSON.stringify(r.body)), published()]
      .join('\n')
  }
}

/**
 * Closes the servers and removes the files, then throws if any request to the GitHub stand-in
 * broke GitHub's OpenAPI description; the caller checks the engine is clean first.
 */
export async function disposeHostileRun(run: HostileRun | undefined): Promise<void> {
  if (!run) return
  const violations = [...run.github.violations]
  await run.model.close()
  await run.github.close()
  run.repos.remove()
  rmSync(run.auditDir, { recursive: true, force: true })
  rmSync(run.summaryFile, { force: true })
  // Whatever the attack, Airlock's own GitHub calls must still be ones GitHub's API has.
  if (violations.length > 0) {
    throw new Error(`GitHub requests off the OpenAPI description:\n${violations.join('\n')}`)
  }
}

/** Containers and networks the engine still has for a run; both must be empty after it. */
export async function leftovers(runId: string): Promise<string[]> {
  const networks = await new Docker().listNetworks({
    filters: { label: [`airlock.run=${runId}`] } })
  return [...(await containersOf(runId)).map(c => `container ${c.Id}`),
    ...networks.map(n => `network ${n.Name}`)]
}

/** The forms a stolen secret would take on its way out: raw, hex, and base64 at any offset. */
export function leakForms(secret: string): string[] {
  const bytes = Buffer.from(secret)
  const forms = [secret, bytes.toString('hex'), bytes.toString('hex').toUpperCase()]
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
    forms.push(encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset
      + bytes.length)) / 6)))
  }
  return forms
}

/** Which of `secrets` show up in `text`, in any of their leak forms. */
export function leaksIn(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets).flatMap(([name, value]) =>
    leakForms(value).filter(form => text.includes(form)).map(form => `${name} as ${form}`))
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

/** Every ref name, commit message and patch in the bare remote. */
function remoteHistory(bare: string): string {
  const refs = gitIn(bare, 'for-each-ref', '--format=%(refname)')
  if (!refs) return '(no refs)'
  const history = execFileSync('git', ['log', '--all', '-p', '--binary', '--format=%H%n%B'],
    { cwd: bare, encoding: 'latin1', maxBuffer: 256 * 1024 * 1024 })
  return `${refs}\n${history}`
}
