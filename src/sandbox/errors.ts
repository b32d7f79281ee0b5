/** Errors that steer what the caller does: stop the run, or tell the user to fix the engine. */

/** The container, the engine or the command server is gone or wedged; the sandbox is unusable. */
export class SandboxFailure extends Error {
  override name = 'SandboxFailure'
}

/** No Docker engine answers; the message names where it looked and how to fix it. */
export class DockerUnavailable extends Error {
  override name = 'DockerUnavailable'
}

/** The image is not usable: missing and not pullable, or lacking a tool the sandbox needs. */
export class ImageUnusable extends Error {
  override name = 'ImageUnusable'
}

/** Message of anything thrown, for wrapping into a clearer error. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
