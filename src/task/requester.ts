/**
 * Who may make Airlock act: people with write, maintain or admin access to the repository,
 * and the bots the workflow author named. The collaborator permission API decides; the
 * `author_association` of a payload never does (it says "MEMBER" for org members with no
 * access to this repository, and it is absent for the labeller of an issue).
 */
import type { GitHub } from '../github/client.js'
import type { GitHubSettings } from '../settings.js'

/** The account that asked for the run. */
export interface Requester {
  login: string
  /** the payload says `type: Bot`, or the login ends in `[bot]` */
  isBot: boolean
}

export type RequesterVerdict =
  | { allowed: true; because: string }
  | { allowed: false; reason: string }

const WRITE_ROLES = ['write', 'maintain', 'admin']

/** Reads a requester from a payload's user object (`sender`, `comment.user`). */
export function requesterFrom(user: unknown): Requester | undefined {
  const u = user as { login?: unknown; type?: unknown } | null | undefined
  if (typeof u?.login !== 'string' || u.login === '') return undefined
  return { login: u.login, isBot: u.type === 'Bot' || u.login.endsWith('[bot]') }
}

/**
 * Decides whether `requester` may make Airlock act.
 *
 * A bot is refused unless `allowed-bots` names it exactly; a named bot is then trusted
 * without the permission check, because the workflow author vouched for it by name and
 * GitHub App bots are usually not collaborators (the API answers 404 for them). A `[bot]`
 * suffix alone is never trust: it only makes the exact-name rule apply.
 */
export async function checkRequester(github: GitHub, requester: Requester,
  settings: Pick<GitHubSettings, 'allowedBots'>): Promise<RequesterVerdict> {
  if (requester.isBot) {
    if (settings.allowedBots.includes(requester.login)) {
      return { allowed: true, because: `${requester.login} is listed in allowed-bots` }
    }
    return { allowed: false, reason: `${requester.login} is a bot that is not listed in the `
      + '`allowed-bots` input' }
  }
  const permission = await github.tryGetPermission(requester.login)
  if (permission === null) {
    return { allowed: false, reason: `${requester.login} is not a collaborator on `
      + `${github.repository}` }
  }
  const role = permission.roleName.toLowerCase()
  // Custom roles carry the base role's legacy `permission`; both must fall short to refuse.
  if (WRITE_ROLES.includes(role) || ['write', 'admin'].includes(permission.permission)) {
    return { allowed: true, because: `${requester.login} has ${role} access` }
  }
  return { allowed: false, reason: `${requester.login} has ${role} access; write, maintain or `
    + 'admin is needed' }
}
