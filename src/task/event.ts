/** The GitHub event a run was started by, as the runner describes it. */
import { readFileSync } from 'node:fs'

export interface GitHubEvent {
  /** `GITHUB_EVENT_NAME`, e.g. `issues`, `issue_comment`, `workflow_dispatch` */
  name: string
  /** the webhook payload from `GITHUB_EVENT_PATH` */
  payload: Record<string, unknown>
  /** `GITHUB_ACTOR`: who triggered the workflow */
  actor: string
  /** `GITHUB_REPOSITORY`: `owner/name` */
  repository: string
}

/** Reads the event from the runner's environment; a missing payload file reads as `{}`. */
export function readEvent(env: NodeJS.ProcessEnv = process.env): GitHubEvent {
  const path = env.GITHUB_EVENT_PATH
  let payload: Record<string, unknown> = {}
  if (path) {
    try {
      payload = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`The event payload at GITHUB_EVENT_PATH (${path}) is not readable JSON: `
          + `${String(error)}`, { cause: error })
      }
    }
  }
  return {
    name: env.GITHUB_EVENT_NAME ?? '',
    payload,
    actor: env.GITHUB_ACTOR ?? '',
    repository: env.GITHUB_REPOSITORY ?? ''
  }
}
