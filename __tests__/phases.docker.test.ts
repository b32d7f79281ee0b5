import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { AuditLog } from '../src/audit/index.js'
import { createGitHub, type GitHub } from '../src/github/client.js'
import { makePostable } from '../src/publish/postable.js'
import { Reply } from '../src/publish/reply.js'
import type { Reporter } from '../src/reporter.js'
import { runTask, type RunResult } from '../src/run.js'
import { settingsWithDefaults } from '../src/settings.js'
import type { Task } from '../src/task/types.js'
import { containersOf, TEST_IMAGE, testRunId } from './helpers/docker-sandbox.js'
import { createPublishRepos, type PublishRepos } from './helpers/git-publish-repo.js'
import { GitHubStandIn } from './helpers/github-server.js'
import { ModelServer, toolReply, type ScriptEntry } from './helpers/model-server.js'

const TOKEN = 'ghs_phases_test_token_0123456789'
const quiet: Reporter = { group: (_name, body) => body(), info: () => undefined,
  warning: () => undefined, progress: () => undefined }

describe('setup and verify around the agent, through runTask', () => {
  let github: GitHub
  let server: GitHubStandIn
  let model: ModelServer | undefined
  let repos: PublishRepos
  let auditDir: string
  let runId: string
  let issue: number

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
    auditDir = mkdtempSync(join(tmpdir(), 'airlock-phases-audit-'))
    runId = testRunId('phases')
    issue = server.addIssue('Typo in README', 'Teh should be The')
  })
  afterEach(async () => {
    await model?.close()
    model = undefined
    expect(await containersOf(runId)).toEqual([])
    expect(await new Docker().listNetworks({ filters: { label: [`airlock.run=${runId}`] } }))
      .toEqual([])
    expect(server.violations).toEqual([])
    repos.remove()
    rmSync(auditDir, { recursive: true, force: true })
  })

  async function run(script: ScriptEntry[], inputs: Record<string, string>): Promise<RunResult> {
    model = await ModelServer.start(script)
    const settings = settingsWithDefaults({ model: 'scripted', 'api-key': 'sk-phases-test-1',
      'base-url': model.baseUrl, image: TEST_IMAGE, memory: '512m', cpus: '1',
      'command-timeout': '30', 'github-token': TOKEN, ...inputs })
    const task: Task = { instructions: '', requester: 'Codertocat',
      untrusted: [{ label: `issue #${issue} title and body`, text: 'Typo in README' }],
      origin: { kind: 'issue', event: 'issues', repository: server.repository, number: issue,
        isPullRequest: false } }
    const audit = await AuditLog.create({ dir: auditDir, secrets: settings.secrets, runId })
    const reply = Reply.forOrigin(github, task.origin, makePostable(audit.redact))
    await reply?.start()
    try {
      return await runTask({ settings, task, repoDir: repos.checkout, runId, audit,
        reporter: quiet, signal: new AbortController().signal, startedAt: Date.now(), github,
        reply })
    } finally {
      audit.close()
    }
  }

  function auditEvents(): Record<string, unknown>[] {
    return readFileSync(join(auditDir, 'audit.jsonl'), 'utf8').trim().split('\n')
      .map(line => JSON.parse(line) as Record<string, unknown>)
  }

  const fixTypo = [
    toolReply('edit_file', { path: 'README.md', old_text: 'Teh', new_text: 'The' }),
    toolReply('bash', { command: 'cat /proc/net/dev' }),
    toolReply('finish', { summary: 'Fixed the typo.' })
  ]

  test('setup has its network, the agent has none, and the verify result reaches the PR body',
    async () => {
      const result = await run(fixTypo, {
        setup: 'grep -q eth0: /proc/net/dev && echo setup-saw-eth0',
        verify: 'if grep -q eth0: /proc/net/dev; then echo verify-had-network; exit 1; fi\n'
          + 'echo verify-passed-marker'
      })
      expect(result.outcome.kind).toBe('changes-published')
      expect(result.setup).toMatchObject({ passed: true, tail: 'setup-saw-eth0' })
      expect(result.verify).toMatchObject({ passed: true })
      // The agent's own command saw only the loopback interface.
      const observed = (model?.completions[2].body.messages as { role: string;
        content: string }[]).filter(m => m.role === 'tool').at(-1)?.content ?? ''
      expect(observed).toContain('lo:')
      expect(observed).not.toContain('eth0:')

      const [pull] = server.pullRequests()
      expect(pull.body).toContain('- **Verify:** 2 verify command(s) passed')
      expect(pull.body).toContain('verify-passed-marker')
      expect(pull.body).toContain('- **Network:** none; setup: open')
      const start = auditEvents().find(e => e.type === 'sandbox.start')
      expect(start?.network).toBe('none; setup: open (cut before the agent starts)')
      // Each phase's commands are in the log under their phase, in the order they ran.
      expect(auditEvents().filter(e => e.type === 'command').map(e => [e.phase, e.exitCode]))
        .toEqual([['setup', 0], ['agent', 0], ['verify', 0], ['verify', 0]])
    })

  test('a failing verify with verify-required opens no pull request and shows the output',
    async () => {
      const result = await run(fixTypo, { verify: 'echo tests-broke-here; exit 3',
        'verify-required': 'true', network: 'open' })
      expect(result.outcome.kind).toBe('failed')
      expect(result.outcome.message).toContain('verify failed, so no pull request was opened: '
        + '`echo tests-broke-here; exit 3` exited with 3')
      expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
      .toEqual([])
      const [comment] = server.commentsOn(issue)
      expect(comment.body).toContain('tests-broke-here')
      expect(comment.body).toContain('- **Network:** open (opted out of isolation')
      const start = auditEvents().find(e => e.type === 'sandbox.start')
      expect(start?.network).toBe('open (opted out of isolation: any address is reachable)')
    })

  test('a failing setup ends the run before the agent, with its output shown', async () => {
    const result = await run(fixTypo, {
      setup: 'echo preparing\necho missing-dependency-xyz >&2; exit 7\necho never-run'
    })
    expect(result.outcome).toEqual({ kind: 'failed', message: 'setup failed: '
      + '`echo missing-dependency-xyz >&2; exit 7` exited with 7' })
    expect(result.agent).toBeUndefined()
    expect(model?.completions).toEqual([])
    expect(result.setup?.results.map(r => r.command)).toEqual(['echo preparing',
      'echo missing-dependency-xyz >&2; exit 7'])
    const [comment] = server.commentsOn(issue)
    expect(comment.body).toContain('Output of the failing setup command')
    expect(comment.body).toContain('missing-dependency-xyz')
    expect(server.pullRequests().filter(p => p.head === `airlock/issue-${issue}`))
      .toEqual([])
  })
})
