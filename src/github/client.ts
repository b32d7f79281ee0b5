/**
 * The one door to the GitHub REST API. Everything else in Airlock sees the small `GitHub`
 * interface below, scoped to one repository, and never an Octokit.
 */
import { getOctokit } from '@actions/github'
import { retry } from '@octokit/plugin-retry'
import { throttling } from '@octokit/plugin-throttling'
import Bottleneck from 'bottleneck'

/** A collaborator's access to the repository, as the permission API reports it. */
export interface Permission {
  /** the legacy level: `admin`, `write`, `read` or `none` (`maintain` reads as `write`) */
  permission: string
  /** the role: `admin`, `maintain`, `write`, `triage`, `read` or a custom role name */
  roleName: string
}

export interface IssueComment {
  id: number
  /** the comment's page address */
  url: string
  body: string
  author: string
  authorIsBot: boolean
}

export interface PullRequest {
  number: number
  url: string
  state: 'open' | 'closed'
  merged: boolean
  head: string
  base: string
}

/** Where a pull request's changes come from: its branch, its commit, the repository. */
export interface PullHead {
  ref: string
  sha: string
  /** `owner/name` of the repository holding the branch; absent when a fork was deleted */
  repository?: string
}

export interface NewPullRequest {
  head: string
  base: string
  title: string
  body: string
  draft: boolean
}

/** What Airlock asks of GitHub, for one repository. */
export interface GitHub {
  /** `owner/name` */
  readonly repository: string
  /** The user's access; `null` when GitHub answers 404 (not a collaborator, or no such user). */
  tryGetPermission(username: string): Promise<Permission | null>
  getDefaultBranch(): Promise<string>
  listComments(issueNumber: number): Promise<IssueComment[]>
  createComment(issueNumber: number, body: string): Promise<IssueComment>
  updateComment(commentId: number, body: string): Promise<IssueComment>
  /** The newest pull request, open or closed, whose head is `branch` in this repository. */
  findPullByHead(branch: string): Promise<PullRequest | undefined>
  /** The head of pull request `pullNumber`: its branch, commit and repository. */
  getPullHead(pullNumber: number): Promise<PullHead>
  createPull(pull: NewPullRequest): Promise<PullRequest>
  /** Changes the title and the body, or only the body when no title is given. */
  updatePull(pullNumber: number, change: { title?: string; body: string }): Promise<PullRequest>
}

export interface GitHubClientOptions {
  token: string
  /** `owner/name` */
  repository: string
  /** REST API root; default `GITHUB_API_URL`, else https://api.github.com */
  baseUrl?: string
  /** where retry and rate-limit notices go */
  log?: (message: string) => void
  /**
   * Milliseconds per second of every wait the policy imposes (rate-limit waits, retry
   * back-off, the spacing of writes). GitHub's own pace is 1000; tests shrink it.
   */
  secondMs?: number
}

/** Statuses that a repeat cannot fix; the retry plugin leaves them to the caller. */
const DO_NOT_RETRY = [400, 401, 403, 404, 410, 422, 451]
/** Retries of one request after a 5xx or a network error, with 1, 4, 9 s back-off. */
const RETRIES = 3
/** A rate-limit wait longer than this is not waited out: the run fails instead. */
const MAX_RATE_LIMIT_WAIT_SECONDS = 300
/** How many times one request may wait for a rate limit before giving up. */
const MAX_RATE_LIMIT_WAITS = 2

/** Builds the client: Octokit from `@actions/github` with the retry and throttling policy. */
export function createGitHub(options: GitHubClientOptions): GitHub {
  const [owner, repo] = splitRepository(options.repository)
  const secondMs = options.secondMs ?? 1000
  const log = options.log ?? (() => undefined)
  const waitOrGiveUp = (kind: string) =>
    (retryAfter: number, request: { method: string; url: string }, _o: unknown,
      retryCount: number): boolean => {
      const wait = retryAfter <= MAX_RATE_LIMIT_WAIT_SECONDS && retryCount < MAX_RATE_LIMIT_WAITS
      log(`GitHub ${kind} on ${request.method} ${request.url}: `
        + (wait ? `waiting ${retryAfter}s` : `not waiting ${retryAfter}s; giving up`))
      return wait
    }
  const octokit = getOctokit(options.token, {
    baseUrl: options.baseUrl ?? process.env.GITHUB_API_URL ?? 'https://api.github.com',
    // Retry policy: 5xx and network failures are retried RETRIES times with quadratic
    // back-off; the DO_NOT_RETRY statuses are answers, not accidents, and surface at once.
    retry: { doNotRetry: DO_NOT_RETRY, retries: RETRIES, retryAfterBaseValue: secondMs },
    // Rate limits (403/429 with exhausted quota or a secondary limit) are waited out for as
    // long as GitHub asks, up to MAX_RATE_LIMIT_WAIT_SECONDS and MAX_RATE_LIMIT_WAITS times.
    // Writes are spaced 1 s apart and notifying writes 3 s, as GitHub's guidance asks.
    throttle: {
      onRateLimit: waitOrGiveUp('rate limit'),
      onSecondaryRateLimit: waitOrGiveUp('secondary rate limit'),
      retryAfterBaseValue: secondMs,
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: secondMs }),
      notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: 3 * secondMs })
    }
  }, retry, throttling)
  return new OctokitGitHub(octokit, owner, repo)
}

type Octokit = ReturnType<typeof getOctokit>

class OctokitGitHub implements GitHub {
  readonly repository: string
  private readonly octokit: Octokit
  private readonly repo: { owner: string; repo: string }

  constructor(octokit: Octokit, owner: string, repo: string) {
    this.octokit = octokit
    this.repo = { owner, repo }
    this.repository = `${owner}/${repo}`
  }

  async tryGetPermission(username: string): Promise<Permission | null> {
    try {
      const { data } = await this.octokit.rest.repos.getCollaboratorPermissionLevel({
        ...this.repo, username
      })
      return { permission: data.permission, roleName: data.role_name }
    } catch (error) {
      if (statusOf(error) === 404) return null
      throw error
    }
  }

  async getDefaultBranch(): Promise<string> {
    const { data } = await this.octokit.rest.repos.get(this.repo)
    return data.default_branch
  }

  async listComments(issueNumber: number): Promise<IssueComment[]> {
    const data = await namingPermission('read the comments', 'issues', () =>
      this.octokit.paginate(this.octokit.rest.issues.listComments, {
        ...this.repo, issue_number: issueNumber, per_page: 100
      }))
    return data.map(toComment)
  }

  async createComment(issueNumber: number, body: string): Promise<IssueComment> {
    const { data } = await namingPermission('write a comment', 'issues', () =>
      this.octokit.rest.issues.createComment({ ...this.repo, issue_number: issueNumber, body }))
    return toComment(data)
  }

  async updateComment(commentId: number, body: string): Promise<IssueComment> {
    const { data } = await namingPermission('edit a comment', 'issues', () =>
      this.octokit.rest.issues.updateComment({ ...this.repo, comment_id: commentId, body }))
    return toComment(data)
  }

  async findPullByHead(branch: string): Promise<PullRequest | undefined> {
    const { data } = await this.octokit.rest.pulls.list({
      ...this.repo, head: `${this.repo.owner}:${branch}`, state: 'all', sort: 'created',
      direction: 'desc', per_page: 10
    })
    return data.length > 0 ? toPull(data[0]) : undefined
  }

  async getPullHead(pullNumber: number): Promise<PullHead> {
    const { data } = await this.octokit.rest.pulls.get({ ...this.repo, pull_number: pullNumber })
    return { ref: data.head.ref, sha: data.head.sha, repository: data.head.repo?.full_name }
  }

  async createPull(pull: NewPullRequest): Promise<PullRequest> {
    const { data } = await namingPermission('open a pull request', 'pull-requests', () =>
      this.octokit.rest.pulls.create({ ...this.repo, ...pull }))
    return toPull(data)
  }

  async updatePull(pullNumber: number,
    change: { title?: string; body: string }): Promise<PullRequest> {
    const { data } = await namingPermission('edit a pull request', 'pull-requests', () =>
      this.octokit.rest.pulls.update({ ...this.repo, pull_number: pullNumber, ...change }))
    return toPull(data)
  }
}

interface RawComment {
  id: number
  html_url: string
  body?: string
  user: { login: string; type: string } | null
}

function toComment(data: RawComment): IssueComment {
  const author = data.user?.login ?? ''
  return {
    id: data.id, url: data.html_url, body: data.body ?? '', author,
    authorIsBot: data.user?.type === 'Bot' || author.endsWith('[bot]')
  }
}

interface RawPull {
  number: number
  html_url: string
  state: string
  merged_at: string | null
  head: { ref: string }
  base: { ref: string }
}

function toPull(data: RawPull): PullRequest {
  return {
    number: data.number, url: data.html_url, state: data.state === 'open' ? 'open' : 'closed',
    merged: data.merged_at !== null, head: data.head.ref, base: data.base.ref
  }
}

/**
 * Runs one request; a 403 that is not a rate limit becomes an error naming the `permissions:`
 * entry the workflow must grant, since a token without it is the usual cause (a fork's pull
 * request gets a read-only token whatever the workflow asks). The status stays on the error.
 */
async function namingPermission<T>(what: string, scope: 'issues' | 'pull-requests',
  request: () => Promise<T>): Promise<T> {
  try {
    return await request()
  } catch (error) {
    if (statusOf(error) !== 403 || isRateLimit(error)) throw error
    throw Object.assign(new Error(`GitHub refused to let Airlock ${what} (403): the token `
      + `lacks \`${scope}: write\`. Add it under \`permissions:\` in the workflow (runs for `
      + `pull requests from forks get a read-only token whatever the workflow asks). GitHub `
      + `said: ${messageOfError(error)}`, { cause: error }), { status: 403 })
  }
}

function isRateLimit(error: unknown): boolean {
  const headers = (error as { response?: { headers?: Record<string, unknown> } })
    .response?.headers
  return headers?.['x-ratelimit-remaining'] === '0' || headers?.['retry-after'] !== undefined
    || /rate limit/i.test(messageOfError(error))
}

function messageOfError(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The HTTP status of an Octokit request error, if it is one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status
  return typeof status === 'number' ? status : undefined
}

function splitRepository(repository: string): [string, string] {
  const match = /^([^/\s]+)\/([^/\s]+)$/.exec(repository)
  if (!match) {
    throw new Error(`The repository must be given as owner/name, got "${repository}"; `
      + 'on GitHub it comes from GITHUB_REPOSITORY.')
  }
  return [match[1], match[2]]
}
