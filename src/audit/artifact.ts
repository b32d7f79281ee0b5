/**
 * Uploading the audit directory as a workflow artifact, and the link people follow to it.
 * An audit that cannot be uploaded is still on the runner's disk, so upload failures warn.
 */
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { DefaultArtifactClient } from '@actions/artifact'

/** The part of `@actions/artifact`'s client the upload needs; tests pass their own. */
export interface ArtifactUploader {
  uploadArtifact(name: string, files: string[], rootDirectory: string,
    options?: { retentionDays?: number }): Promise<{ id?: number; size?: number }>
}

export interface UploadOptions {
  /** where progress and warnings go, e.g. `core.info`; warnings are prefixed `warning:` */
  log?: (line: string) => void
  /** defaults to `process.env` */
  env?: NodeJS.ProcessEnv
  /** defaults to `new DefaultArtifactClient()` */
  client?: ArtifactUploader
  retentionDays?: number
}

export interface UploadResult {
  id?: number
  /** the artifact's page when its id is known, else the run's page */
  url?: string
}

/**
 * Uploads every file under `dir` as the artifact `name` when running in GitHub Actions;
 * elsewhere it does nothing and says so. Never throws: a failed upload is logged as a warning.
 */
export async function uploadAuditArtifact(dir: string, name: string,
  options: UploadOptions = {}): Promise<UploadResult> {
  const env = options.env ?? process.env
  const log = options.log ?? (() => undefined)
  if (!env.ACTIONS_RUNTIME_TOKEN) {
    log(`Not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN): the audit log stays in ${dir}.`)
    return {}
  }
  try {
    const files = listFiles(dir)
    const client = options.client ?? new DefaultArtifactClient()
    const response = await client.uploadArtifact(name, files, dir,
      options.retentionDays ? { retentionDays: options.retentionDays } : {})
    const url = runArtifactsUrl(env, response.id)
    log(`Uploaded the audit log as artifact ${name} (${files.length} files`
      + `${response.size === undefined ? '' : `, ${response.size} bytes`})`
      + `${url ? `: ${url}` : ''}.`)
    return { id: response.id, url }
  } catch (error) {
    log(`warning: the audit log could not be uploaded as artifact ${name}; it is still in ${dir}. `
      + `Reason: ${error instanceof Error ? error.message : String(error)}`)
    return {}
  }
}

/**
 * The page of the current workflow run, where its artifacts are listed; with an artifact id,
 * the artifact's own download page. Undefined outside GitHub Actions.
 */
export function runArtifactsUrl(env: NodeJS.ProcessEnv = process.env,
  artifactId?: number): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: runId } = env
  if (!server || !repo || !runId) return undefined
  const run = `${server.replace(/\/+$/, '')}/${repo}/actions/runs/${runId}`
  return artifactId === undefined ? run : `${run}/artifacts/${artifactId}`
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter(entry => entry.isFile())
    .map(entry => join(entry.parentPath, entry.name))
    .sort((a, b) => relative(dir, a).localeCompare(relative(dir, b)))
}
