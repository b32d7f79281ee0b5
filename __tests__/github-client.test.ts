import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createGitHub, statusOf, type GitHub } from '../src/github/client.js'
import { GitHubStandIn } from './helpers/github-server.js'

describe('GitHub client against the OpenAPI-checked stand-in', () => {
  let server: GitHubStandIn
  let github: GitHub
  const notices: string[] = []

  beforeAll(async () => {
    server = await GitHubStandIn.create('octo-org/octo-repo')
    github = createGitHub({ token: 'ghs_client_test_token', repository: server.repository,
      baseUrl: server.baseUrl, secondMs: 5, log: m => notices.push(m) })
  })
  afterAll(async () => {
    await server.close()
  })

  test('reads permissions, with 404 as null', async () => {
    server.addCollaborator('writer', 'write')
    server.addCollaborator('keeper', 'maintain')
    expect(await github.tryGetPermission('writer')).toEqual({ permission: 'write',
      roleName: 'write' })
    expect(await github.tryGetPermission('keeper')).toEqual({ permission: 'write',
      roleName: 'maintain' })
    expect(await github.tryGetPermission('stranger')).toBeNull()
    expect(server.violations).toEqual([])
  })

  test('creates, lists and updates comments; finds and updates pull requests', async () => {
    const issue = server.addIssue('Broken build', 'it fails')
    const created = await github.createComment(issue, 'working on it')
    expect(created.authorIsBot).toBe(true)
    await github.updateComment(created.id, 'done')
    expect((await github.listComments(issue)).map(c => c.body)).toEqual(['done'])
    expect(await github.findPullByHead('airlock/issue-1')).toBeUndefined()
    const pull = await github.createPull({ head: 'airlock/issue-1', base: 'main', title: 't',
      body: 'b', draft: true })
    expect((await github.findPullByHead('airlock/issue-1'))?.number).toBe(pull.number)
    const updated = await github.updatePull(pull.number, { title: 't2', body: 'b2' })
    expect(updated.state).toBe('open')
    expect(await github.getDefaultBranch()).toBe('main')
    expect(server.violations).toEqual([])
  })

  test('sends the token as authorization and never in a URL', () => {
    expect(server.requests.length).toBeGreaterThan(0)
    for (const r of server.requests) {
      expect(r.authorization).toBe('token ghs_client_test_token')
      expect(r.path).not.toContain('ghs_client_test_token')
    }
  })

  test('retries a 502, and waits out an exhausted rate limit', async () => {
    server.addCollaborator('retry-me', 'admin')
    server.failNext('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission',
      { status: 502, times: 2 })
    expect((await github.tryGetPermission('retry-me'))?.roleName).toBe('admin')
    const reset = String(Math.floor(Date.now() / 1000) + 1)
    server.failNext('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission',
      { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset },
        message: 'API rate limit exceeded' })
    expect((await github.tryGetPermission('retry-me'))?.roleName).toBe('admin')
    expect(notices.some(n => /rate limit on GET .*: waiting/.test(n))).toBe(true)
  })

  test('does not retry a 422, and gives up on a rate limit longer than the cap', async () => {
    const before = server.requests.length
    server.failNext('POST', '/repos/{owner}/{repo}/pulls', { status: 422, times: 5 })
    const error = await github.createPull({ head: 'x', base: 'main', title: 't', body: '',
      draft: false }).catch((e: unknown) => e)
    expect(statusOf(error)).toBe(422)
    expect(server.requests.length - before).toBe(1)
    const reset = String(Math.floor(Date.now() / 1000) + 3600)
    server.failNext('GET', '/repos/{owner}/{repo}', { status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset } })
    expect(statusOf(await github.getDefaultBranch().catch((e: unknown) => e))).toBe(403)
    expect(notices.some(n => /giving up/.test(n))).toBe(true)
  })

  test('records a request off GitHub\'s description as a violation', async () => {
    const response = await fetch(`${server.baseUrl}/repos/octo-org/octo-repo/pulls`, {
      method: 'POST', body: JSON.stringify({ head: 'a', base: 'main', draft: 'yes' }),
      headers: { 'content-type': 'application/json' }
    })
    expect(response.status).toBe(400)
    const unknown = await fetch(`${server.baseUrl}/repos/octo-org/octo-repo/frobnicate`)
    expect(unknown.status).toBe(404)
    expect(server.violations).toHaveLength(2)
    expect(server.violations[0]).toMatch(/body\/draft must be boolean/)
    expect(server.violations[1]).toMatch(/no such route/)
    server.violations.length = 0
  })
})
