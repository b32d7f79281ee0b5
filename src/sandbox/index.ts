/** The sandbox: a hardened, ephemeral container for the agent's commands, and its changes. */
export type * from './types.js'
export { startSandbox, type SandboxOptions } from './docker-sandbox.js'
export { sweepContainers, connectEngine, engineFoundUnreachable } from './engine.js'
export { checkChanges, applyChanges, type Violation } from './changes.js'
export { parsePatch, PatchParseError } from './patch.js'
export { SandboxFailure, DockerUnavailable, ImageUnusable } from './errors.js'
export { OutputCapture, DEFAULT_CAPTURE_LIMITS, type CaptureLimits } from './output.js'
export { WORKDIR, RUN_LABEL } from './container-config.js'
