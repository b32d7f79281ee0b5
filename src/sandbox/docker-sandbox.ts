/** The running sandbox: a hardened container with the command server as its main process. */
import type { Duplex } from 'node:stream'
import type Docker from 'dockerode'
import type { SandboxSettings } from '../settings.js'
import { CommandChannel } from './command-server.js'
import { containerSpec, parseUser, WORKDIR } from './container-config.js'
import { BASELINE_SCRIPT, changedPathsScript, extractScript, parseRawDiff, toChangeSet }
  from './changes.js'
import { connectEngine, ensureImage, statusOf } from './engine.js'
import { ImageUnusable, messageOf, SandboxFailure } from './errors.js'
import { type CaptureLimits, DEFAULT_CAPTURE_LIMITS, OutputCapture, RawCollector }
  from './output.js'
import { shellQuote, workspacePath } from './paths.js'
import type { ChangeSet, CommandOptions, CommandResult, FileEntry, ImageInfo, Sandbox }
  from './types.js'
import { copyIn } from './workspace.js'

/** What a sandbox is made from. */
export interface SandboxOptions {
  settings: SandboxSettings
  /** the host directory copied in; never mounted */
  repoDir: string
  /** labels the container, so `sweepContainers(runId)` finds it */
  runId: string
  /** how much of each output stream is kept; default 512 KiB head + 512 KiB tail */
  capture?: CaptureLimits
  /** largest file `readFile` returns and `writeFile` takes; default 32 MiB */
  maxFileBytes?: number
  /** largest patch `extractChanges` reads; default 256 MiB */
  maxPatchBytes?: number
  /** how long past a command's timeout the host waits before calling the server wedged */
  graceMs?: number
  /** an engine already connected; default: connect as `connectEngine` does */
  docker?: Docker
  /** a per-run Docker network to create the container on; default: no network at all */
  network?: string
}

const MIB = 1024 * 1024
/** The server's own tmpfs holds a written file on its way in; see container-config. */
const WRITE_LIMIT = 32 * MIB
const START_TIMEOUT_SECONDS = 60
/** About 300,000 entries of a directory listing; more is no listing a model can use. */
const LISTING_LIMIT = 16 * MIB

/**
 * Starts the run's container, copies the repository in and records its starting state.
 * On any failure the container is removed before the error is thrown.
 */
export async function startSandbox(options: SandboxOptions,
  log: (line: string) => void = () => undefined): Promise<Sandbox> {
  const docker = options.docker ?? await connectEngine()
  const image = await ensureImage(docker, options.settings.image, log)
  const container = await docker.createContainer(
    containerSpec(options.settings, options.runId, options.network))
  log(`sandbox: created container ${container.id.slice(0, 12)} from ${image.name}`)
  try {
    const owner = { ...parseUser(options.settings.user), readOnly: options.settings.readOnly }
    await copyIn(container, options.repoDir, owner)
    const stream = await container.attach({ stream: true, stdin: true, stdout: true,
      stderr: true, hijack: true })
    // With hijack the engine hands over the raw socket: a duplex stream.
    const channel = new CommandChannel(stream as unknown as Duplex, options.graceMs)
    await startContainer(container, options.settings.image)
    const sandbox = new DockerSandbox(container, channel, image, options)
    await sandbox.recordBaseline(options.settings.image)
    return sandbox
  } catch (error) {
    await container.remove({ force: true, v: true }).catch(() => undefined)
    throw error
  }
}

async function startContainer(container: Docker.Container, image: string): Promise<void> {
  try {
    await container.start()
  } catch (error) {
    if (/executable file not found|no such file/i.test(messageOf(error))) {
      throw new ImageUnusable(`The image ${image} has no \`sh\`; the sandbox needs sh, git and `
        + 'coreutils (timeout). Choose an image that has them.')
    }
    throw error
  }
}

class DockerSandbox implements Sandbox {
  readonly containerId: string
  readonly workdir = WORKDIR
  readonly image: ImageInfo
  private readonly container: Docker.Container
  private readonly channel: CommandChannel
  private readonly settings: SandboxSettings
  private readonly capture: CaptureLimits
  private readonly maxFileBytes: number
  private readonly maxPatchBytes: number
  private baseTree = ''
  private removal: Promise<void> | undefined

  constructor(container: Docker.Container, channel: CommandChannel, image: ImageInfo,
    options: SandboxOptions) {
    this.container = container
    this.containerId = container.id
    this.channel = channel
    this.image = image
    this.settings = options.settings
    this.capture = options.capture ?? DEFAULT_CAPTURE_LIMITS
    this.maxFileBytes = options.maxFileBytes ?? WRITE_LIMIT
    this.maxPatchBytes = options.maxPatchBytes ?? 256 * MIB
    this.watchContainer()
  }

  /** The first request proves the server runs; it also writes the baseline tree. */
  async recordBaseline(imageName: string): Promise<void> {
    const script = this.settings.readOnly ? 'true' : BASELINE_SCRIPT
    let result
    try {
      result = await this.internal(script, new RawCollector(4096),
        Math.max(START_TIMEOUT_SECONDS, this.settings.commandTimeoutSeconds))
    } catch (error) {
      const lacks = /the image lacks:([^\n.]*)/.exec(this.channel.strayOutput)
      if (lacks) {
        throw new ImageUnusable(`The image ${imageName} lacks${lacks[1]}; the sandbox needs `
          + 'sh, git and coreutils (timeout, head). Choose an image that has them.')
      }
      throw error
    }
    if (this.settings.readOnly) return
    this.baseTree = result.stdout.trim()
    if (result.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(this.baseTree)) {
      throw new Error(`Recording the workspace's starting state failed (exit `
        + `${result.exitCode}): ${result.stderr.trim()}`)
    }
  }

  async run(command: string, options: CommandOptions = {}): Promise<CommandResult> {
    if (command.includes('\0')) {
      throw new Error('The command contains a NUL character, which no shell can take; remove it.')
    }
    const cwd = workspacePath(options.cwd ?? '.', 'working directory')
    const stdout = new OutputCapture(this.capture)
    const stderr = new OutputCapture(this.capture)
    const reply = await this.channel.send({
      command: withExports(options.env, command), cwd: `${WORKDIR}/${cwd}`, stdout, stderr,
      timeoutSeconds: options.timeoutSeconds ?? this.settings.commandTimeoutSeconds
    })
    return { command, exitCode: reply.exitCode, timedOut: reply.timedOut,
      durationMs: Math.round(reply.durationMs), stdout: stdout.finish(),
      stderr: stderr.finish() }
  }

  async readFile(path: string): Promise<Buffer> {
    const file = workspacePath(path)
    const content = new RawCollector(this.maxFileBytes)
    // head stops reading one byte past the cap: a huge file never crosses the wire.
    const result = await this.internal(`head -c ${this.maxFileBytes + 1} -- ${shellQuote(file)}`,
      content)
    if (result.exitCode !== 0) {
      throw new Error(`Cannot read ${file}: ${result.stderr.trim() || `exit ${result.exitCode}`}`)
    }
    if (content.overflowed) {
      throw new Error(`${file} is larger than ${this.maxFileBytes} bytes; read a part of it with `
        + 'a command (head, tail, sed -n) instead.')
    }
    return content.content()
  }

  async writeFile(path: string, content: string | Buffer): Promise<void> {
    const file = workspacePath(path)
    if (this.settings.readOnly) {
      throw new Error(`Cannot write ${file}: the workspace is read-only in this run.`)
    }
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content
    if (bytes.length > this.maxFileBytes) {
      throw new Error(`Cannot write ${file}: ${bytes.length} bytes is more than the `
        + `${this.maxFileBytes} a file write takes; write it in parts with a command.`)
    }
    const quoted = shellQuote(file)
    const result = await this.internal(
      `mkdir -p -- "$(dirname -- ${quoted})" && cat > ${quoted}`, new RawCollector(0), undefined,
      bytes)
    if (result.exitCode !== 0) {
      throw new Error(`Cannot write ${file}: ${result.stderr.trim() || `exit ${result.exitCode}`}`)
    }
  }

  async listFiles(dir = '.'): Promise<FileEntry[]> {
    const base = workspacePath(dir, 'directory')
    const listing = new RawCollector(LISTING_LIMIT)
    // find hands stat the names in batches that fit the argument list, however many there are.
    const result = await this.internal(`[ -e ${shellQuote(base)} ] || {
  echo 'No such file or directory' >&2; exit 2; }
cd -- ${shellQuote(base)} || exit 2
find . -mindepth 1 -maxdepth 1 -exec stat --printf '%F\\t%s\\t%n\\0' -- {} +`, listing)
    if (result.exitCode !== 0) {
      throw new Error(`Cannot list ${base}: ${result.stderr.trim() || `exit ${result.exitCode}`}`)
    }
    if (listing.overflowed) {
      throw new Error(`Cannot list ${base}: its listing is over ${LISTING_LIMIT / MIB} MiB; `
        + 'list a part of it with a command (ls, find) instead.')
    }
    return parseListing(listing.content(), base)
  }

  async extractChanges(): Promise<ChangeSet> {
    // Nothing in a read-only workspace can change: every file belongs to root.
    if (this.settings.readOnly) return { patch: Buffer.alloc(0), files: [] }
    // One byte past the cap is enough to know the patch is over it; the rest never leaves.
    const readBytes = this.maxPatchBytes + 1
    const patch = new RawCollector(readBytes)
    const timeout = Math.max(START_TIMEOUT_SECONDS, this.settings.commandTimeoutSeconds)
    const result = await this.internal(extractScript(this.baseTree, readBytes), patch, timeout)
    const oversized = patch.total > this.maxPatchBytes
    if (result.exitCode !== 0 && !oversized) {
      throw new Error(`Taking the changes out failed (exit ${result.exitCode}): `
        + result.stderr.trim())
    }
    if (!oversized) return toChangeSet(patch.content())
    const list = new RawCollector(16 * MIB)
    const listed = await this.internal(changedPathsScript(this.baseTree), list, timeout)
    if (listed.exitCode !== 0 || list.overflowed) {
      throw new Error(`Listing the files of a change too large to take out failed (exit `
        + `${listed.exitCode}): ${listed.stderr.trim() || 'more than 16 MiB of paths'}`)
    }
    return { patch: patch.content(), files: parseRawDiff(list.content()), oversized: true }
  }

  remove(): Promise<void> {
    this.removal ??= this.removeOnce()
    return this.removal
  }

  private async removeOnce(): Promise<void> {
    this.channel.fail('the sandbox was removed')
    try {
      await this.container.remove({ force: true, v: true })
    } catch (error) {
      const status = statusOf(error)
      // 404: already gone; 409: a removal is already under way.
      if (status === 404 || status === 409) return
      throw new SandboxFailure(`Removing container ${this.containerId.slice(0, 12)} failed `
        + `(${messageOf(error)}); the run's post step sweeps it by its airlock.run label.`)
    }
  }

  /** Any end of the container ends the channel, so no call waits on a dead server. */
  private watchContainer(): void {
    this.container.wait().then(
      (state: { StatusCode?: number }) => this.channel.fail(
        `the container stopped (exit status ${state?.StatusCode ?? 'unknown'})`),
      (error: unknown) => this.channel.fail(`lost the engine (${messageOf(error)})`))
  }

  private async internal(command: string, stdout: RawCollector, timeoutSeconds?: number,
    input?: Buffer): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const stderr = new OutputCapture({ headBytes: 8192, tailBytes: 8192 })
    const reply = await this.channel.send({ command, cwd: WORKDIR, stdout, stderr, input,
      timeoutSeconds: timeoutSeconds ?? this.settings.commandTimeoutSeconds })
    return { exitCode: reply.exitCode, stdout: stdout.content().toString('utf8'),
      stderr: stderr.finish().text }
  }
}

/** The command text with `export` lines in front for a command's own variables. */
function withExports(env: Record<string, string> | undefined, command: string): string {
  const names = Object.keys(env ?? {})
  if (names.length === 0) return command
  const bad = names.find(name => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
  if (bad !== undefined) {
    throw new Error(`The environment variable name "${bad}" is not a shell name; use letters, `
      + 'digits and underscores.')
  }
  const exports = names.map(name => `export ${name}=${shellQuote(env?.[name] ?? '')}`)
  return `${exports.join('\n')}\n${command}`
}

const TYPES: Record<string, FileEntry['type']> = {
  'regular file': 'file', 'regular empty file': 'file', directory: 'directory',
  'symbolic link': 'symlink'
}

function parseListing(raw: Buffer, base: string): FileEntry[] {
  const entries: FileEntry[] = []
  for (const record of raw.toString('utf8').split('\0')) {
    const [type, size, ...rest] = record.split('\t')
    // find names each entry `./name`.
    const name = rest.join('\t').replace(/^\.\//, '')
    if (!record) continue
    entries.push({ path: base === '.' ? name : `${base}/${name}`, type: TYPES[type] ?? 'other',
      size: Number(size) })
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}
