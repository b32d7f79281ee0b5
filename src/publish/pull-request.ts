/**
 * A change as a branch and a draft pull request. The commit is made in a temporary clone at
 * the checkout's HEAD (the commit the sandbox copied), so the runner's checkout, its index and
 * its config are never touched; the clone borrows the checkout's objects read-only.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { GitHub, PullRequest } from '../github/client.js'
import { applyChanges } from '../sandbox/changes.js'
import type { TaskOrigin } from '../task/types.js'
import { authEnv, git, pushUrlOf } from './git.js'

export interface PullRequestRequest {
  github: GitHub
  repoDir: string
  patch: Buffer
  branch: string
  /** the branch the pull request targets */
  base: string
  title: string
  body: string
  commitMessage: string
  draft: boolean
  /** for the push; passed to git only through its environment */
  token: string
}

export type PullRequestResult =
  | { kind: 'opened' | 'updated'; pull: PullRequest; branch: string; pushed: boolean }
  /** a person closed the earlier pull request: it is left closed and nothing is pushed */
  | { kind: 'closed-by-person'; pull: PullRequest; branch: string }

/** The branch for a request: one per issue or pull request, else one per workflow run. */
export function branchName(prefix: string, origin: TaskOrigin, runId?: string): string {
  const suffix = origin.number !== undefined
    ? `${origin.isPullRequest ? 'pr' : 'issue'}-${origin.number}`
    : runId ? `run-${runId}` : `local-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`
  const branch = `${prefix}${suffix}`
  if (!/^(?!\/|.*(?:\/\/|\.\.|@\{|\/\.|\.lock\/|\.lock$|[/.]$))[\w./-]+$/.test(branch)) {
    throw new Error(`Input \`branch-prefix\` gives the branch name "${branch}", which git does `
      + 'not accept; use letters, digits, `-`, `_`, `.` and `/`, e.g. `airlock/`.')
  }
  return branch
}

/** Commits the patch on a branch, pushes it unless nothing changed, and opens or updates the PR. */
export async function publishPullRequest(request: PullRequestRequest): Promise<PullRequestResult> {
  const { github, branch } = request
  const existing = await github.findPullByHead(branch)
  if (existing && existing.state === 'closed' && !existing.merged) {
    return { kind: 'closed-by-person', pull: existing, branch }
  }
  const pushed = await withCommit(request.repoDir, request.patch, request.commitMessage,
    clone => pushBranch(clone, request))
  const fields = { title: request.title, body: request.body }
  if (existing && existing.state === 'open') {
    return { kind: 'updated', pull: await github.updatePull(existing.number, fields), branch,
      pushed }
  }
  const pull = await github.createPull({ ...fields, head: branch, base: request.base,
    draft: request.draft })
  return { kind: 'opened', pull, branch, pushed }
}

/** Commits the patch in a temporary clone and fetches it into `repoDir` as a local branch. */
export async function commitToLocalBranch(repoDir: string, patch: Buffer, message: string,
  branch: string): Promise<string> {
  return withCommit(repoDir, patch, message, async clone => {
    await git(repoDir, ['fetch', '--quiet', '--no-tags', clone, `+HEAD:refs/heads/${branch}`])
    return git(repoDir, ['rev-parse', `refs/heads/${branch}`])
  })
}

async function withCommit<T>(repoDir: string, patch: Buffer, message: string,
  use: (clone: string) => Promise<T>): Promise<T> {
  const temp = await mkdtemp(join(tmpdir(), 'airlock-publish-'))
  try {
    const clone = join(temp, 'repo')
    const base = await git(repoDir, ['rev-parse', 'HEAD'])
    await git(temp, ['clone', '--quiet', '--no-checkout', '--shared', repoDir, clone])
    await git(clone, ['checkout', '--quiet', '--detach', base])
    await applyChanges(clone, patch)
    await git(clone, ['add', '-A'])
    await git(clone, ['commit', '--quiet', '--no-verify', '-m', message])
    return await use(clone)
  } finally {
    await rm(temp, { recursive: true, force: true })
  }
}

/** Pushes HEAD to the branch unless the branch already holds the same tree. */
async function pushBranch(clone: string, request: PullRequestRequest): Promise<boolean> {
  const url = await pushUrlOf(request.repoDir)
  const env = authEnv(url, request.token)
  const ref = `refs/heads/${request.branch}`
  const listed = await git(clone, ['ls-remote', url, ref], env)
  const remoteSha = listed.split(/\s+/)[0] ?? ''
  if (remoteSha) {
    await git(clone, ['fetch', '--quiet', '--no-tags', url, ref], env)
    const [theirs, ours] = await Promise.all([git(clone, ['rev-parse', 'FETCH_HEAD^{tree}']),
      git(clone, ['rev-parse', 'HEAD^{tree}'])])
    if (theirs === ours) return false
  }
  // The lease names the commit seen above (or no branch at all), so a push that raced another
  // run fails instead of overwriting it.
  try {
    await git(clone, ['push', '--quiet', `--force-with-lease=${ref}:${remoteSha}`, url,
      `HEAD:${ref}`], env)
  } catch (error) {
    if (!isDenied(error)) throw error
    throw new Error(`The push of ${request.branch} was denied: the token lacks `
      + '`contents: write`. Add it under `permissions:` in the workflow, or choose '
      + '`output: comment` or `patch` for runs whose token is read-only (pull requests from '
      + `forks). git said: ${(error as Error).message}`, { cause: error })
  }
  return true
}

/** git's words for a push the server refused for want of permission. */
function isDenied(error: unknown): boolean {
  return /error: 403|\b403\b.*forbidden|permission to .* denied|write access .* not granted/i
    .test(error instanceof Error ? error.message : String(error))
}
