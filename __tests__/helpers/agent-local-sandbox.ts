/**
 * A small `Sandbox` for the agent loop's unit tests: a temporary directory and real `bash`
 * processes on the host. No isolation at all; the acceptance tests use the real sandbox.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import type {
  CapturedOutput, ChangeSet, CommandOptions, CommandResult, FileEntry, Sandbox
} from '../../src/sandbox/types.js'

function captured(text: string): CapturedOutput {
  return { text, bytes: Buffer.byteLength(text), truncated: false,
    sha256: createHash('sha256').update(text).digest('hex') }
}

export class LocalSandbox implements Sandbox {
  readonly containerId = 'local'
  readonly image = { name: 'local', id: 'sha256:local', digests: [] }
  /** when set, every method rejects as a sandbox whose container is gone */
  broken = false
  readonly commands: string[] = []

  readonly workdir: string

  private constructor(workdir: string) {
    this.workdir = workdir
  }

  static async create(files: Record<string, string> = {}): Promise<LocalSandbox> {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-agent-'))
    const box = new LocalSandbox(dir)
    for (const [path, content] of Object.entries(files)) await box.writeFile(path, content)
    return box
  }

  private inside(path: string): string {
    const full = resolve(this.workdir, path)
    if (relative(this.workdir, full).startsWith('..')) throw new Error(`${path} is outside`)
    return full
  }

  private check(): void {
    if (this.broken) {
      const error = new Error('container is gone')
      error.name = 'SandboxFailure'
      throw error
    }
  }

  async run(command: string, options: CommandOptions = {}): Promise<CommandResult> {
    this.check()
    this.commands.push(command)
    const started = Date.now()
    return new Promise(resolvePromise => {
      execFile('bash', ['-c', command], { cwd: this.workdir,
        timeout: (options.timeoutSeconds ?? 60) * 1000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const e = error as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown }) | null
        resolvePromise({ command, exitCode: e ? (typeof e.code === 'number' ? e.code : 137) : 0,
          timedOut: Boolean(e?.killed), durationMs: Date.now() - started,
          stdout: captured(stdout), stderr: captured(stderr) })
      })
    })
  }

  async readFile(path: string): Promise<Buffer> {
    this.check()
    return readFile(this.inside(path))
  }

  async writeFile(path: string, content: string | Buffer): Promise<void> {
    this.check()
    const full = this.inside(path)
    await mkdir(dirname(full), { recursive: true })
    await writeFile(full, content)
  }

  async listFiles(): Promise<FileEntry[]> {
    return []
  }

  async extractChanges(): Promise<ChangeSet> {
    return { patch: Buffer.alloc(0), files: [] }
  }

  async remove(): Promise<void> {
    await rm(this.workdir, { recursive: true, force: true })
  }
}
