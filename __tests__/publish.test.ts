import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRedactor } from '../src/audit/redact.js'
import { createGitHub, type GitHub } from '../src/github/client.js'
import { authEnv } from '../src/publish/git.js'
import { makePostable } from '../src/publish/postable.js'
import { publish, publishRefusal, REFUSED_PATCH_FILE, type PublishRequest }
  from '../src/publish/publish.js'
import { Reply } from '../src/publish/reply.js'
import { toChangeSet } from '../src/sandbox/changes.js'
import { settingsWithDefaults } from '../src/settings.js'
import type { Task } from '../src/task/types.js'
import { createPublishRepos, gitIn, type PublishRepos } from './helpers/git-publish-repo.js'
import { serveGitOverHttp } from './helpers/git-http-remote.js'
import { GitHubStandIn } from './helpers/github-server.js'

const TOKEN = 'ghs_publish_test_token_0123456789'
const CANARY = 'canary-Zq8v3LmX7pT2'
const RUN_URL = 'https://github.com/octo-org/octo-repo/actions/runs/42'

describe('publishing a change', () => {
  let server: GitHubStandIn
  let github: GitHub
  let repos: PublishRepos
  let auditDir: string
  let issue: number
  const settings = settingsWithDefaults({ 'github-token': TOKEN, secrets: CANARY })
  const redact = createRedactor(settings.secrets)

  beforeAll(async () => {
    server = await GitHubStandIn.create('octo-org/octo-repo')
    github = createGitHub({ token: TOKEN, repository: server.repository,
      baseUrl: server.baseUrl, secondMs: 1 })
  })
  afterAll(async () => {
    await server.close()
  })
  beforeEach(() => {
    repos = createPublishRepos()
    auditDir = mkdtempSync(join(tmpdir(), 'airlock-audit-test-'))
    issue = server.addIssue('Typo in README', 'Teh should be The')
  })
  afterEach(() => {
    repos.remove()
    rmSync(auditDir, { recursive: true, force: true })
    expect(server.violations).toEqual([])
  })

  const taskFor = (number: number): Task => ({
    instructions: '', requester: 'Codertocat',
    untrusted: [{ label: `issue #${number} title and body`, text: 'Typo in README\n\nTeh' }],
    origin: { kind: 'issue', event: 'issues', repository: server.repository, number,
      isPullRequest: false }
  })

  async function run(patch: Buffer, summary = 'Fixed the typo.',
    extra: Partial<PublishRequest> = {}, task = taskFor(issue)) {
    const reply = Reply.forOrigin(github, task.origin, makePostable(redact), RUN_URL)
    await reply?.start()
    return publish({
      output: 'auto', changes: toChangeSet(patch), repoDir: repos.checkout, auditDir,
      policy: settings.changes, settings: settings.github, github, reply, runId: '42', redact,
      report: { task, summary, steps: 3, tokens: 1234, costUsd: 0.0123, runUrl: RUN_URL,
        artifactUrl: `${RUN_URL}/artifacts/7` },
      ...extra
    })
  }

  test('opens a draft pull request whose branch holds exactly the change', async () => {
    const patch = repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' })
    const base = gitIn(repos.checkout, 'rev-parse', 'HEAD')
    const result = await run(patch)
    expect(result.outcome.kind).toBe('changes-published')
    expect(result.branch).toBe(`airlock/issue-${issue}`)

    const branch = `refs/heads/airlock/issue-${issue}`
    expect(gitIn(repos.bare, 'rev-parse', `${branch}^`)).toBe(base)
    const diff = gitIn(repos.bare, 'diff', '--binary', '--full-index', base, branch)
    expect(`${diff}\n`).toBe(patch.toString('utf8'))
    expect(gitIn(repos.bare, 'log', '-1', '--format=%an <%ae>', branch))
      .toBe('airlock[bot] <airlock[bot]@users.noreply.github.com>')
    expect(gitIn(repos.bare, 'log', '-1', '--format=%B', branch))
      .toMatch(/\n\nRequested-by: Codertocat$/)

    const pulls = server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`)
    expect(pulls).toHaveLength(1)
    expect(pulls[0]).toMatchObject({ head: `airlock/issue-${issue}`, base: 'main', draft: true,
      state: 'open' })
    expect(pulls[0].body).toContain(`Closes #${issue}`)
    expect(pulls[0].body).toContain(RUN_URL)
    expect(pulls[0].body).toContain('artifacts/7')
    expect(result.pullRequest?.number).toBe(pulls[0].number)

    const comments = server.commentsOn(issue)
    expect(comments).toHaveLength(1)
    expect(comments[0].body).toContain(`pull request #${pulls[0].number} opened`)
    // The runner's checkout is as it was: same HEAD, clean, no new branch, no token in config.
    expect(gitIn(repos.checkout, 'rev-parse', 'HEAD')).toBe(base)
    expect(gitIn(repos.checkout, 'status', '--porcelain')).toBe('')
    expect(gitIn(repos.checkout, 'branch', '--list')).toBe('* main')
    for (const dir of [join(repos.checkout, '.git'), repos.bare]) {
      expect(readFileSync(join(dir, 'config'), 'utf8')).not.toContain('extraheader')
    }
  })

  /** A `/airlock` comment on pull request `number`, whose head was checked out. */
  const onPull = (number: number, head: string, sameRepository: boolean): Task => ({
    instructions: '', requester: 'Codertocat',
    untrusted: [{ label: `request in a comment on #${number}`, text: 'fix the typo' }],
    origin: { kind: 'pr-comment', event: 'issue_comment', repository: server.repository, number,
      isPullRequest: true, commentId: 99, pullHead: { ref: 'feature/typo', sha: head,
        sameRepository } }
  })

  test('a request on a pull request is proposed into that pull request\'s branch',
    async () => {
      const head = gitIn(repos.checkout, 'rev-parse', 'HEAD')
      gitIn(repos.checkout, 'push', '--quiet', 'origin', 'HEAD:refs/heads/feature/typo')
      const pull = server.addPull({ title: 'Greeting', body: '', head: 'feature/typo',
        headSha: head })
      const result = await run(repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' }),
        'Fixed.', {}, onPull(pull, head, true))
      const ours = server.pullRequests().find(p => p.head === `airlock/pr-${pull}`)
      expect(ours).toMatchObject({ base: 'feature/typo', draft: true })
      expect(ours?.body).not.toContain('Closes #')
      expect(result.outcome.message).toMatch(new RegExp(
        `^pull request #${ours?.number} opened into the branch feature/typo of #${pull}`))
      expect(gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/pr-${pull}^`)).toBe(head)
    })

  test('a request on a pull request from a fork gets the change as a comment', async () => {
    const head = gitIn(repos.checkout, 'rev-parse', 'HEAD')
    const pull = server.addPull({ title: 'Greeting', body: '', head: 'typo', headSha: head,
      headRepository: 'someone/octo-repo' })
    const result = await run(repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' }),
      'Fixed.', { output: 'auto' }, onPull(pull, head, false))
    expect(result.outcome.message).toMatch(/branch is in a fork/)
    expect(server.pullRequests().filter(p => p.head === `airlock/pr-${pull}`)).toEqual([])
    expect(server.commentsOn(pull).at(-1)?.body).toContain('```diff')
    expect(gitIn(repos.bare, 'for-each-ref', 'refs/heads/airlock')).toBe('')
  })

  test('running twice leaves one branch, one pull request and one comment', async () => {
    const patch = repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' })
    const first = await run(patch)
    const sha = gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/issue-${issue}`)
    const second = await run(patch)
    expect(second.pullRequest?.number).toBe(first.pullRequest?.number)
    expect(second.outcome.message).toMatch(/left unchanged/)
    expect(gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/issue-${issue}`)).toBe(sha)

    const changed = repos.patchOf({ 'README.md': '# Hello\n\nThe greeting!\n' })
    const third = await run(changed)
    expect(third.outcome.message).toMatch(/updated/)
    const sha3 = gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/issue-${issue}`)
    expect(sha3).not.toBe(sha)
    expect(gitIn(repos.bare, 'show', `${sha3}:README.md`)).toBe('# Hello\n\nThe greeting!')
    expect(gitIn(repos.bare, 'for-each-ref', '--format=%(refname)', 'refs/heads/airlock'))
      .toBe(`refs/heads/airlock/issue-${issue}`)
    expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`)).toHaveLength(1)
    expect(server.commentsOn(issue)).toHaveLength(1)
  })

  test('does not reopen or push to a pull request a person closed', async () => {
    const first = await run(repos.patchOf({ 'README.md': 'one\n' }))
    const sha = gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/issue-${issue}`)
    server.closePull(first.pullRequest!.number)
    const second = await run(repos.patchOf({ 'README.md': 'two\n' }))
    expect(second.pullRequest).toBeUndefined()
    expect(second.outcome.message).toMatch(/closed by a person/)
    expect(server.pullRequests().find(p => p.number === first.pullRequest!.number)?.state)
      .toBe('closed')
    expect(gitIn(repos.bare, 'rev-parse', `refs/heads/airlock/issue-${issue}`)).toBe(sha)
    const comments = server.commentsOn(issue)
    expect(comments).toHaveLength(1)
    expect(comments[0].body).toContain('<details><summary>Patch')
    expect(comments[0].body).toContain('+two')
  })

  test('refuses a change to a protected path, with the reason, publishing nothing',
    async () => {
      const patch = repos.patchOf({ '.github/workflows/ci.yml': 'on: push\njobs: { x: {} }\n' })
      const result = await run(patch)
      expect(result.outcome.kind).toBe('refused')
      expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
        .toHaveLength(0)
      expect(gitIn(repos.bare, 'for-each-ref', 'refs/heads/airlock')).toBe('')
      const comments = server.commentsOn(issue)
      expect(comments).toHaveLength(1)
      expect(comments[0].body).toContain('.github/workflows/ci.yml')
      expect(comments[0].body).toMatch(/refused/)
      expect(readFileSync(join(auditDir, REFUSED_PATCH_FILE))).toEqual(patch)
    })

  test('posts no secret, raw or encoded, no live mention and no image', async () => {
    const b64 = Buffer.from(CANARY).toString('base64')
    const summary = `Done. Key ${CANARY}, encoded ${b64}. Token ${TOKEN}. Thanks @octocat and `
      + '@octo-org/admins! ![x](https://tracker.example/p.gif) <img src="https://t.example/i">'
    const patch = repos.patchOf({ 'README.md': `# Hello\n\n@octocat ${CANARY}\n` })
    await run(patch, summary, { output: 'comment' })
    await run(repos.patchOf({ 'README.md': 'safe\n' }), summary, { output: 'pull-request' })
    const posted = server.postedTexts().join('\n')
    expect(posted.length).toBeGreaterThan(500)
    for (const form of [CANARY, b64, TOKEN, Buffer.from(TOKEN).toString('base64')]) {
      expect(posted).not.toContain(form)
    }
    expect(posted).not.toMatch(/(^|[^\w`@])@(octocat|octo-org)/)
    expect(posted).toContain('@\u200Docto-org/admins')
    expect(posted).not.toContain('<img')
    expect(posted).not.toContain('](https://tracker.example')
    const message = gitIn(repos.bare, 'log', '-1', '--format=%B',
      `refs/heads/airlock/issue-${issue}`)
    expect(message).not.toContain(CANARY)
    expect(message).not.toMatch(/(^|\s)@octocat/)
  })

  test('writes a patch file for output: patch', async () => {
    const patch = repos.patchOf({ 'src/hello.sh': 'echo hi\n' })
    const result = await run(patch, 'ok', { output: 'patch' })
    expect(result.patchPath).toBe(join(auditDir, 'changes.patch'))
    expect(readFileSync(result.patchPath!)).toEqual(patch)
    expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
      .toHaveLength(0)
  })

  test('no changes: says so in the one comment', async () => {
    const result = await run(Buffer.alloc(0), 'Nothing to do.')
    expect(result.outcome.kind).toBe('no-changes')
    expect(server.commentsOn(issue)).toHaveLength(1)
    expect(server.commentsOn(issue)[0].body).toContain('no-changes')
    expect(existsSync(join(auditDir, 'changes.patch'))).toBe(false)
  })

  test('pushes over HTTP with the token only as a header, stripped from origin', async () => {
    const remote = await serveGitOverHttp(repos.bare, TOKEN)
    try {
      const withUser = remote.url.replace('http://', 'http://someone:wrong@')
      gitIn(repos.checkout, 'remote', 'set-url', 'origin', withUser)
      const result = await run(repos.patchOf({ 'README.md': 'over http\n' }))
      expect(result.outcome.kind).toBe('changes-published')
      expect(gitIn(repos.bare, 'show', `refs/heads/airlock/issue-${issue}:README.md`))
        .toBe('over http')
      expect(remote.authorizations.length).toBeGreaterThan(1)
      expect(new Set(remote.authorizations)).toEqual(new Set([
        `basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`]))
      expect(readFileSync(join(repos.checkout, '.git', 'config'), 'utf8')).not.toContain(TOKEN)
    } finally {
      await remote.close()
    }
  })

  test('a refused request gets one short reply and the refused outcome', async () => {
    const origin = taskFor(issue).origin
    const result = await publishRefusal({ github, replyTo: origin, redact, runUrl: RUN_URL,
      reason: 'reader has read access; write, maintain or admin is needed',
      advice: 'To have Airlock work on this, ask someone with write access to add the label' })
    expect(result.outcome.kind).toBe('refused')
    const comments = server.commentsOn(issue)
    expect(comments).toHaveLength(1)
    expect(comments[0].body).toMatch(/^⛔ \*\*Airlock: refused\*\* — reader has read access/)
    expect(comments[0].body).toContain('ask someone with write access to add the label.')
  })

  test('a refusal leaves the reply of an earlier run on the same issue as it was',
    async () => {
      await run(repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' }))
      const [result] = server.commentsOn(issue)
      expect(result.body).toContain('changes-published')
      await publishRefusal({ github, replyTo: taskFor(issue).origin, redact, runUrl: RUN_URL,
        reason: 'stranger has no write access; write, maintain or admin is needed' })
      const comments = server.commentsOn(issue)
      expect(comments).toHaveLength(2)
      expect(comments[0]).toEqual(result)
      expect(comments[1].body).toMatch(/^⛔ \*\*Airlock: refused\*\* — stranger has no write/)
    })

  test('an outcome message quoting the agent renders no image and no HTML', async () => {
    const quoted = 'the agent repeated `x` and <img src="https://t.example/a"> '
      + '![t](https://t.example/b.gif) three times'
    await run(Buffer.alloc(0), '', { ended: { kind: 'failed', message: quoted } })
    const body = server.commentsOn(issue)[0].body
    expect(body).toContain('❌ **Airlock: failed** — the agent repeated `x` and &lt;img')
    expect(body).not.toContain('<img')
    expect(body).not.toContain('](https://t.example')
  })

  test('a refusal whose reply GitHub forbids stays refused, with a warning naming the '
    + 'permission', async () => {
    server.failNext('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      { status: 403, message: 'Resource not accessible by integration' })
    const warnings: string[] = []
    const result = await publishRefusal({ github, replyTo: taskFor(issue).origin, redact,
      reason: 'drive-by is not a collaborator', warn: line => warnings.push(line) })
    expect(result.outcome).toEqual({ kind: 'refused',
      message: 'drive-by is not a collaborator' })
    expect(result.commentUrl).toBeUndefined()
    expect(server.commentsOn(issue)).toEqual([])
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('`issues: write`')
    expect(warnings[0]).toContain('`permissions:`')
    expect(warnings[0]).toContain('Resource not accessible by integration')
  })

  test('a pull request GitHub forbids fails naming `pull-requests: write`', async () => {
    server.failNext('POST', '/repos/{owner}/{repo}/pulls',
      { status: 403, message: 'Resource not accessible by integration' })
    const error = await run(repos.patchOf({ 'README.md': 'x\n' })).catch((e: unknown) => e)
    expect(String(error)).toMatch(/open a pull request \(403\).*`pull-requests: write`/)
    expect(String(error)).toContain('`permissions:`')
  })

  test('a denied push fails naming `contents: write`', async () => {
    const remote = await serveGitOverHttp(repos.bare, TOKEN, { readOnly: true })
    try {
      gitIn(repos.checkout, 'remote', 'set-url', 'origin', remote.url)
      const error = await run(repos.patchOf({ 'README.md': 'x\n' })).catch((e: unknown) => e)
      expect(String(error)).toMatch(/push of airlock\/issue-\d+ was denied/)
      expect(String(error)).toContain('`contents: write`')
      expect(gitIn(repos.bare, 'for-each-ref', 'refs/heads/airlock')).toBe('')
    } finally {
      await remote.close()
    }
  })

  test('output `none` on an issue: the reply ends with the outcome, without the patch',
    async () => {
      const patch = repos.patchOf({ 'README.md': '# Hello\n\nThe greeting.\n' })
      const result = await run(patch, 'Fixed the typo.', { output: 'none' })
      expect(result.outcome.kind).toBe('changes-published')
      expect(result.outcome.message).toMatch(/^output is `none`: nothing was published/)
      const comments = server.commentsOn(issue)
      expect(comments).toHaveLength(1)
      expect(comments[0].body).toMatch(/^✅ \*\*Airlock: changes-published\*\* — output is/)
      expect(comments[0].body).not.toContain('working on this')
      expect(comments[0].body).not.toContain('<details><summary>Patch')
      expect(result.commentUrl).toContain('#issuecomment-')
      expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
        .toHaveLength(0)
      expect(readFileSync(join(auditDir, 'changes.patch'))).toEqual(patch)
    })

  test('a spent budget with changes opens a draft, says so, and keeps its outcome',
    async () => {
      const ended = { kind: 'budget-exhausted' as const,
        message: 'the steps budget ran out after 1 step(s)' }
      const result = await run(repos.patchOf({ 'README.md': 'half done\n' }), 'Partly.',
        { ended, settings: { ...settings.github, draft: false } })
      expect(result.outcome.kind).toBe('budget-exhausted')
      expect(result.outcome.message).toMatch(new RegExp('^the steps budget ran out after 1 '
        + 'step\\(s\\); what was done so far is published as a draft: pull request #\\d+ opened'))
      const [pull] = server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`)
      expect(pull).toMatchObject({ draft: true, state: 'open' })
      expect(server.commentsOn(issue)[0].body).toContain('published as a draft')
    })

  test('a spent budget without changes says nothing was published, once', async () => {
    const ended = { kind: 'budget-exhausted' as const,
      message: 'the steps budget ran out after 1 step(s)' }
    const result = await run(Buffer.alloc(0), '', { ended })
    expect(result.outcome).toEqual({ kind: 'budget-exhausted', message: 'the steps budget ran '
      + 'out after 1 step(s); no file had changed, so nothing was published' })
    expect(server.commentsOn(issue)[0].body).not.toContain('draft')
    expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
      .toHaveLength(0)
  })

  test('a failed run replies with its message once', async () => {
    const ended = { kind: 'failed' as const, message: 'the model failed: 500' }
    const result = await run(Buffer.alloc(0), '', { ended })
    expect(result.outcome).toEqual(ended)
    expect(server.commentsOn(issue)[0].body)
      .toMatch(/^❌ \*\*Airlock: failed\*\* — the model failed: 500\n/)
  })

  test('replaceText edits the reply once, only where the text is', async () => {
    const reply = Reply.forOrigin(github, taskFor(issue).origin, makePostable(redact), RUN_URL)
    expect(await reply?.replaceText('a', 'b')).toBe(false)
    await reply?.finish(`done\n- **Audit log:** ${RUN_URL}`)
    const edits = server.requests.length
    expect(await reply?.replaceText('nowhere', 'x')).toBe(false)
    expect(await reply?.replaceText(`Audit log:** ${RUN_URL}`,
      `Audit log:** ${RUN_URL}/artifacts/9`)).toBe(true)
    expect(server.requests.length - edits).toBe(1)
    expect(server.commentsOn(issue)[0].body)
      .toMatch(/^done\n- \*\*Audit log:\*\* https:.*\/42\/artifacts\/9\n/)
  })
})

describe('authEnv', () => {
  test('puts the token in a header for HTTP remotes only, through GIT_CONFIG_* variables', () => {
    const env = authEnv('https://github.com/o/r.git', 'tok_123456')
    expect(env).toEqual({
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.https://github.com/.extraheader',
      GIT_CONFIG_VALUE_0: `AUTHORIZATION: basic ${Buffer.from('x-access-token:tok_123456')
        .toString('base64')}`
    })
    expect(authEnv('/tmp/remote.git', 'tok_123456')).toEqual({})
  })
})
