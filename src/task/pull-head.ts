/**
 * A request made on a pull request (a trigger comment on it) is about that pull request's
 * code, so the agent must work on its head commit, and the change is proposed into its
 * branch. The workflow decides what is checked out: `actions/checkout` takes the default
 * branch for a comment, or the merge commit for a review comment, unless told otherwise. So
 * the checkout is compared with the head before anything runs, and a mismatch is refused,
 * for free, with the `ref:` that fixes it.
 */
import type { GitHub } from '../github/client.js'
import { git } from '../publish/git.js'
import type { TaskOrigin } from './types.js'

/** The origin with its pull request's head, or why the checkout cannot serve the request. */
export type PullCheck =
  | { ok: true; origin: TaskOrigin }
  | { ok: false; reason: string; advice: string }

/** Checks a pull request's origin against the checkout in `repoDir`; other origins pass. */
export async function checkPullCheckout(github: GitHub, origin: TaskOrigin,
  repoDir: string): Promise<PullCheck> {
  if (origin.kind !== 'pr-comment' || origin.number === undefined) return { ok: true, origin }
  const head = await github.getPullHead(origin.number)
  const checkedOut = await headOf(repoDir)
  if (checkedOut !== head.sha) {
    return { ok: false,
      reason: `the checkout is at ${short(checkedOut)}, not at the head of pull request `
        + `#${origin.number} (${short(head.sha)}), so the agent would not see its code`,
      advice: 'Check out the pull request\'s head before the Airlock step: `actions/checkout` '
        + 'with `ref: refs/pull/<number>/head` (see examples/workflows/airlock-on-issues.yml)' }
  }
  const sameRepository = head.repository?.toLowerCase() === origin.repository?.toLowerCase()
  return { ok: true, origin: { ...origin, pullHead: { ref: head.ref, sha: head.sha,
    sameRepository } } }
}

async function headOf(repoDir: string): Promise<string> {
  // A checkout without a commit (or no repository at all) is at no pull request's head.
  return git(repoDir, ['rev-parse', '--verify', 'HEAD']).catch(() => '(no commit)')
}

function short(sha: string): string {
  return /^[0-9a-f]{40,64}$/.test(sha) ? sha.slice(0, 7) : sha
}
