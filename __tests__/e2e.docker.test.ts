/**
 * The built action end to end: `dist/index.js` run as the runner runs it, against the real
 * Docker engine, a scripted model, the GitHub stand-in, a checkout with a bare origin and the
 * artifact service stand-in. Needs `npm run bundle` first.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Docker from 'dockerode'
import { verifyAuditLog } from '../src/audit/index.js'
import { annotations, BUNDLE, createActionJob, type ActionJob, type JobOptions }
  from './helpers/action-runner.js'
import { runtimeToken, startResultsServer, type ResultsServer }
  from './helpers/audit-results-server.js'
import { TEST_IMAGE } from './helpers/docker-sandbox.js'
import { createPublishRepos, gitIn, type PublishRepos } from './helpers/git-publish-repo.js'
import { GitHubStandIn } from './helpers/github-server.js'
import { webhookExample } from './helpers/github-webhooks.js'
import { closedPortUrl, ModelServer, toolReply, type ScriptEntry }
  from './helpers/model-server.js'

const REPOSITORY = 'Codertocat/Hello-World'
const TOKEN = 'ghs_e2e_token_abcdefghijklmnop'
const API_KEY = 'sk-e2e-model-key-0123456789'
const docker = new Docker()

const fixTypo: ScriptEntry[] = [
  toolReply('edit_file', { path: 'README.md', old_text: 'Teh', new_text: 'The' }),
  toolReply('finish', { summary: 'Fixed the typo in README.md.' })
]

/** Every container the engine has whose run label belongs to `job`, running or not. */
async function containersOf(job: ActionJob): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true, filters: { label: ['airlock.run'] } })
  return all.filter(c => c.Labels['airlock.run']?.startsWith(`${job.runId}-`))
}

/** Containers created with the job's run label between `since` and now, from the event log. */
async function containersCreatedSince(job: ActionJob, since: number): Promise<string[]> {
  const stream = await docker.getEvents({ since: Math.floor(since / 1000),
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'] } })
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean)
    .map(line => JSON.parse(line) as { id: string; Actor: { Attributes: Record<string, string> } })
    .filter(e => e.Actor.Attributes['airlock.run']?.startsWith(`${job.runId}-`))
    .map(e => e.id)
}

describe('the action, run as the runner runs it', () => {
  let github: GitHubStandIn
  let results: ResultsServer
  let repos: PublishRepos
  let model: ModelServer | undefined
  let job: ActionJob | undefined

  beforeAll(async () => {
    if (!existsSync(BUNDLE)) throw new Error('dist/index.js is missing: run `npm run bundle`.')
    results = await startResultsServer()
  })
  afterAll(async () => {
    await results.close()
  })
  beforeEach(async () => {
    github = await GitHubStandIn.create(REPOSITORY)
    github.addCollaborator('Codertocat', 'write')
    repos = createPublishRepos()
    results.uploads.clear()
  })
  afterEach(async () => {
    await model?.close()
    model = undefined
    if (job) {
      const left = await containersOf(job)
      await Promise.all(left.map(c => docker.getContainer(c.Id).remove({ force: true })))
      expect(left).toEqual([])
      job.remove()
      job = undefined
    }
    repos.remove()
    await github.close()
    expect(github.violations).toEqual([])
  })

  async function prepare(eventName: string, payload: Record<string, unknown>,
    script: ScriptEntry[], inputs: Record<string, string> = {},
    overrides: Partial<JobOptions> = {}): Promise<ActionJob> {
    model = await ModelServer.start(script)
    job = createActionJob({
      eventName, payload, repository: REPOSITORY, workspace: repos.checkout,
      apiUrl: github.baseUrl,
      inputs: { model: 'scripted-model', 'base-url': model.baseUrl, 'api-key': API_KEY,
        'github-token': TOKEN, image: TEST_IMAGE, memory: '512m', cpus: '1',
        'pids-limit': '128', 'tmp-size': '64m', ...inputs },
      env: { ACTIONS_RUNTIME_TOKEN: runtimeToken(), ACTIONS_RESULTS_URL: `${results.url}/` },
      ...overrides
    })
    return job
  }

  function labelledIssue(number: number): Record<string, unknown> {
    const payload = webhookExample('issues', 'labeled')
    const issue = payload.issue as Record<string, unknown>
    Object.assign(issue, { number, title: 'Typo in README', body: 'Teh should be The.',
      html_url: `https://github.com/${REPOSITORY}/issues/${number}` })
    ;(payload.label as Record<string, unknown>).name = 'airlock'
    return payload
  }

  function auditOf(outputs: Record<string, string>): ReturnType<typeof verifyAuditLog> {
    return verifyAuditLog(outputs['audit-path'])
  }

  test('a labelled issue ends in a draft PR holding exactly the agent\'s change', async () => {
    const number = github.addIssue('Typo in README', 'Teh should be The.')
    const job = await prepare('issues', labelledIssue(number), fixTypo)
    const main = await job.startMain().done

    expect(main.code).toBe(0)
    expect(annotations(main.stdout, 'error')).toEqual([])
    const { outputs } = main
    expect(outputs.outcome).toBe('changes-published')
    expect(outputs.branch).toBe(`airlock/issue-${number}`)
    const [pull] = github.pullRequests()
    expect(outputs['pull-request-number']).toBe(String(pull.number))
    expect(outputs['pull-request-url']).toBe(
      `https://github.com/${REPOSITORY}/pull/${pull.number}`)
    expect(Number(outputs.steps)).toBe(2)
    expect(Number(outputs.tokens)).toBe(240)
    expect(outputs['cost-usd']).toBe('0.0000')
    expect(pull).toMatchObject({ draft: true, head: outputs.branch, base: 'main' })
    // Once uploaded, the body's audit line names the artifact itself, not just the run page.
    const runPage = `https://github.com/${REPOSITORY}/actions/runs/${job.runId}`
    expect(pull.body).toContain(`- **Run:** ${runPage}\n`)
    expect(pull.body).toContain(`- **Audit log:** ${runPage}/artifacts/4242`)

    // The pushed branch is main plus one commit that changes exactly the typo.
    const range = `main..${outputs.branch}`
    expect(gitIn(repos.bare, 'rev-list', '--count', range)).toBe('1')
    expect(gitIn(repos.bare, 'diff', '--name-only', `main`, outputs.branch)).toBe('README.md')
    expect(gitIn(repos.bare, 'show', `${outputs.branch}:README.md`))
      .toBe('# Hello\n\nThe greeting.')

    const audit = auditOf(outputs)
    expect(audit.ok).toBe(true)
    expect(audit.events.at(-1)).toMatchObject({ type: 'outcome', kind: 'changes-published' })
    expect(main.summary).toContain('Airlock: ✅ changes published')
    expect(results.uploads.has('airlock-audit')).toBe(true)
    // The key and the token never reach anything the step wrote, except the lines that ask
    // the runner to mask them.
    const unmasked = main.stdout.split('\n').filter(l => !l.startsWith('::add-mask::'))
    expect(main.stdout).toContain(`::add-mask::${API_KEY}`)
    for (const text of [unmasked.join('\n'), main.stderr, main.summary,
      readFileSync(join(outputs['audit-path'], 'audit.jsonl'), 'utf8'),
      ...github.postedTexts()]) {
      expect(text).not.toContain(API_KEY)
      expect(text).not.toContain(TOKEN)
    }
    expect(model?.completions[0].headers.authorization).toBe(`Bearer ${API_KEY}`)

    const post = await job.runPost(main.state)
    expect(post.code).toBe(0)
    expect(post.stdout).toContain('No container of this run was left.')
  })

  const strangers: Array<[string, { login: string; type: string }, string | undefined]> = [
    ['a stranger', { login: 'drive-by-user', type: 'User' }, undefined],
    ['a collaborator with read access', { login: 'reader-user', type: 'User' }, 'read'],
    ['a bot not in allowed-bots', { login: 'helper[bot]', type: 'Bot' }, 'write']
  ]
  test.each(strangers)('a comment by %s is refused before any model call or container',
    async (_who, user, role) => {
      if (role) github.addCollaborator(user.login, role)
      const number = github.addIssue('Please change things', 'Do it.')
      const payload = webhookExample('issue_comment', 'created')
      Object.assign(payload.issue as object, { number })
      Object.assign(payload.comment as object, { body: '/airlock delete everything',
        user: { ...user, id: 7 } })
      const job = await prepare('issue_comment', payload, fixTypo)
      const before = await containersOf(job)
      const since = Date.now()

      const main = await job.startMain().done

      expect(main.code).toBe(0)
      expect(main.outputs.outcome).toBe('refused')
      expect(annotations(main.stdout, 'notice').join('\n')).toContain('Airlock: refused')
      expect(model?.requests).toEqual([])
      expect(await containersOf(job)).toEqual(before)
      expect(await containersCreatedSince(job, since - 1000)).toEqual([])
      const [reply] = github.commentsOn(number)
      expect(reply.body).toContain('refused')
      expect(reply.body).toContain(user.login.replace('[bot]', ''))
      expect(github.pullRequests()).toEqual([])
      expect(auditOf(main.outputs).ok).toBe(true)
    })

  /** A `/airlock` comment by Codertocat on pull request `number` (GitHub marks it so). */
  function commentOnPull(number: number, body: string): Record<string, unknown> {
    const payload = webhookExample('issue_comment', 'created')
    const api = `${github.baseUrl}/repos/${REPOSITORY}/pulls/${number}`
    Object.assign(payload.issue as object, { number, pull_request: { url: api,
      html_url: `https://github.com/${REPOSITORY}/pull/${number}` } })
    Object.assign(payload.comment as object, { body,
      user: { login: 'Codertocat', type: 'User', id: 21031067 } })
    return payload
  }

  test('a comment on a pull request whose head is checked out proposes into its branch',
    async () => {
      // The workflow checked out the pull request's head, as the example workflow does.
      gitIn(repos.checkout, 'checkout', '--quiet', '-b', 'feature/greeting')
      writeFileSync(join(repos.checkout, 'NOTES.md'), 'notes\n')
      gitIn(repos.checkout, 'add', 'NOTES.md')
      gitIn(repos.checkout, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit',
        '--quiet', '-m', 'notes')
      gitIn(repos.checkout, 'push', '--quiet', 'origin', 'feature/greeting')
      const head = gitIn(repos.checkout, 'rev-parse', 'HEAD')
      const number = github.addPull({ title: 'Greeting notes', body: 'Adds notes.',
        head: 'feature/greeting', headSha: head })
      const job = await prepare('issue_comment', commentOnPull(number, '/airlock fix the typo'),
        fixTypo)
      const main = await job.startMain().done

      expect(main.code).toBe(0)
      expect(main.outputs.outcome).toBe('changes-published')
      expect(main.outputs.branch).toBe(`airlock/pr-${number}`)
      const ours = github.pullRequests().find(p => p.head === main.outputs.branch)
      expect(ours).toMatchObject({ base: 'feature/greeting', draft: true })
      // One commit on top of the pull request's head, changing exactly the typo.
      expect(gitIn(repos.bare, 'rev-parse', `${main.outputs.branch}^`)).toBe(head)
      expect(gitIn(repos.bare, 'diff', '--name-only', head, main.outputs.branch))
        .toBe('README.md')
      expect(github.commentsOn(number).at(-1)?.body)
        .toContain(`into the branch feature/greeting of #${number}`)
    })

  test('a comment on a pull request whose head is not checked out is refused, with the fix',
    async () => {
      const number = github.addPull({ title: 'Elsewhere', body: '', head: 'feature/elsewhere',
        headSha: 'a'.repeat(40) })
      const job = await prepare('issue_comment', commentOnPull(number, '/airlock fix it'),
        fixTypo)
      const since = Date.now()
      const main = await job.startMain().done

      expect(main.code).toBe(0)
      expect(main.outputs.outcome).toBe('refused')
      expect(model?.requests).toEqual([])
      expect(await containersCreatedSince(job, since - 1000)).toEqual([])
      const reply = github.commentsOn(number).at(-1)?.body ?? ''
      expect(reply).toMatch(/not at the head of pull request #\d+ \(aaaaaaa\)/)
      expect(reply).toContain('refs/pull/<number>/head')
      expect(auditOf(main.outputs).events.find(e => e.type === 'policy.refusal'))
        .toMatchObject({ rule: 'checkout' })
    })

  test('a scheduled task opens a pull request', async () => {
    // GitHub's examples have no `schedule` payload; the runner's is the cron line and the
    // repository, as written here.
    const payload = { schedule: '0 6 * * 1',
      repository: webhookExample('workflow_dispatch').repository }
    const job = await prepare('schedule', payload, fixTypo,
      { task: 'Fix the spelling mistakes in README.md.' })
    const main = await job.startMain().done

    expect(main.code).toBe(0)
    expect(main.outputs.outcome).toBe('changes-published')
    const pull = github.pullRequests().find(p => p.head === main.outputs.branch)
    expect(pull).toBeDefined()
    expect(main.outputs.branch).toMatch(/^airlock\//)
    expect(gitIn(repos.bare, 'show', `${main.outputs.branch}:README.md`))
      .toBe('# Hello\n\nThe greeting.')
    const firstPrompt = JSON.stringify(model?.completions[0].body.messages)
    expect(firstPrompt).toContain('Fix the spelling mistakes in README.md.')
  })

  test('SIGTERM during a long command: prompt exit, no container, a log ending cancelled',
    async () => {
      const job = await prepare('workflow_dispatch', webhookExample('workflow_dispatch'),
        [toolReply('bash', { command: 'sleep 120' }), ...fixTypo], { task: 'Wait a while.' })
      const step = job.startMain()
      const sleeping = await waitForProcess(job, 'sleep 120')
      expect(sleeping).toBe(true)
      const killedAt = Date.now()
      step.child.kill('SIGTERM')
      const main = await step.done
      const exitMs = Date.now() - killedAt

      expect(exitMs).toBeLessThan(10000)
      expect(main.code).toBe(1)
      expect(main.outputs.outcome).toBe('cancelled')
      expect(annotations(main.stdout, 'error').join('\n')).toContain('Airlock: cancelled')
      expect(await containersOf(job)).toEqual([])
      const audit = auditOf(main.outputs)
      expect(audit.ok).toBe(true)
      expect(audit.events.at(-1)).toMatchObject({ type: 'outcome', kind: 'cancelled' })
      expect(model?.completions).toHaveLength(1)
      // The log went up as the artifact before the step exited.
      expect(results.uploads.has('airlock-audit')).toBe(true)

      const post = await job.runPost(main.state)
      expect(post.code).toBe(0)
      expect(post.stdout).toContain('No container of this run was left.')
    })

  test('a model endpoint that is down fails the step and still leaves the record',
    async () => {
      const down = await closedPortUrl()
      const job = await prepare('workflow_dispatch', webhookExample('workflow_dispatch'), [],
        { task: 'Fix the typo.', 'base-url': down, 'max-retries': '0' })
      const main = await job.startMain().done

      expect(main.code).toBe(1)
      expect(main.outputs.outcome).toBe('failed')
      const errors = annotations(main.stdout, 'error').join('\n')
      expect(errors).toContain('Airlock: failed')
      expect(errors).toMatch(/model/i)
      const audit = auditOf(main.outputs)
      expect(audit.ok).toBe(true)
      expect(audit.events.at(-1)).toMatchObject({ type: 'outcome', kind: 'failed' })
      expect(main.summary).toContain('failed')
      expect(results.uploads.has('airlock-audit')).toBe(true)
      expect(github.pullRequests()).toEqual([])
    })

  test('a bad input fails the step naming the input, before any model call', async () => {
    const job = await prepare('workflow_dispatch', webhookExample('workflow_dispatch'), fixTypo,
      { task: 'Fix the typo.', 'max-steps': 'lots' })
    const main = await job.startMain().done

    expect(main.code).toBe(1)
    expect(main.outputs.outcome).toBe('failed')
    expect(annotations(main.stdout, 'error')).toEqual(
      ['Input `max-steps` must be a number, got "lots".'])
    expect(model?.requests).toEqual([])
    expect(await containersOf(job)).toEqual([])
  })

  test('no changes: the step succeeds with a notice and opens nothing', async () => {
    const job = await prepare('workflow_dispatch', webhookExample('workflow_dispatch'),
      [toolReply('bash', { command: 'grep -c greeting README.md' }),
        toolReply('finish', { summary: 'Nothing needed changing.' })],
      { task: 'Check the README.' })
    const main = await job.startMain().done

    expect(main.code).toBe(0)
    expect(main.outputs.outcome).toBe('no-changes')
    expect(annotations(main.stdout, 'notice').join('\n')).toContain('Airlock: no-changes')
    expect(annotations(main.stdout, 'error')).toEqual([])
    expect(main.outputs['pull-request-url']).toBe('')
    expect(github.pullRequests()).toEqual([])
    expect(gitIn(repos.bare, 'branch', '--list', 'airlock/*')).toBe('')
    expect(auditOf(main.outputs).ok).toBe(true)
  })
})

/** Polls the job's containers until one runs a process whose command line has `needle`. */
async function waitForProcess(job: ActionJob, needle: string, timeoutMs = 30000):
  Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const all = await docker.listContainers({ filters: { label: ['airlock.run'] } })
    for (const info of all.filter(c => c.Labels['airlock.run']?.startsWith(`${job.runId}-`))) {
      const top = await docker.getContainer(info.Id).top()
        .catch(() => undefined) as { Processes?: string[][] } | undefined
      if (top?.Processes?.some(p => p.join(' ').includes(needle))) return true
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return false
}
