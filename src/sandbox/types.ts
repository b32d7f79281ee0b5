/** What the rest of Airlock sees of the sandbox: the boundary to the container. */

/** Output of one stream of a command, as kept in memory. */
export interface CapturedOutput {
  /** UTF-8 text (invalid bytes as U+FFFD); head and tail with a cut note when truncated */
  text: string
  /** bytes the command wrote in all */
  bytes: number
  /** sha256 (hex) of every byte the command wrote, kept or not */
  sha256: string
  /** true when `text` holds only the head and the tail */
  truncated: boolean
}

export interface CommandOptions {
  /** seconds before the command and everything it started are killed */
  timeoutSeconds?: number
  /** working directory relative to the workspace root; default the root */
  cwd?: string
  /** variables exported for this command only, on top of the container's own environment */
  env?: Record<string, string>
}

export interface CommandResult {
  command: string
  exitCode: number
  timedOut: boolean
  durationMs: number
  stdout: CapturedOutput
  stderr: CapturedOutput
}

/** The name and content digest of the image the container was made from. */
export interface ImageInfo {
  name: string
  /** `sha256:…` image id, stable for a locally built image */
  id: string
  /** repo digests, when the image came from a registry */
  digests: string[]
}

export type ChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'mode'

/** One path a change touches, as read by the host from the patch itself. */
export interface ChangedFile {
  path: string
  /** for renames and copies */
  oldPath?: string
  status: ChangeStatus
  /** git mode of the new side, e.g. 100644, 100755, 120000 (symlink) */
  mode?: string
  binary: boolean
}

/** Everything the agent changed, as data that left the container. */
export interface ChangeSet {
  /** a binary git patch against the workspace as it was copied in; empty when nothing changed */
  patch: Buffer
  files: ChangedFile[]
  /**
   * set when the patch ran past the largest size read (`max-patch-bytes`): `patch` is then
   * only its head and `files` come from git's list of changed paths; it is never applied
   */
  oversized?: boolean
}

/** An entry of a directory listing inside the container. */
export interface FileEntry {
  /** path relative to the workspace root */
  path: string
  type: 'file' | 'directory' | 'symlink' | 'other'
  size: number
}

/**
 * A running, hardened container holding a copy of the repository. Paths given to its
 * methods are relative to the workspace root and are resolved inside the container only.
 * Every method rejects with `SandboxFailure` when the container or the engine is gone.
 */
export interface Sandbox {
  readonly containerId: string
  /** the workspace root inside the container, e.g. `/workspace/repo` */
  readonly workdir: string
  readonly image: ImageInfo
  /** Runs a shell command in the workspace; stdin is empty; never throws for a bad exit. */
  run(command: string, options?: CommandOptions): Promise<CommandResult>
  readFile(path: string): Promise<Buffer>
  writeFile(path: string, content: string | Buffer): Promise<void>
  listFiles(dir?: string): Promise<FileEntry[]>
  /** Everything changed since the workspace was copied in, as a binary git patch. */
  extractChanges(): Promise<ChangeSet>
  /** Removes the container and its workspace; safe to call twice. */
  remove(): Promise<void>
}
