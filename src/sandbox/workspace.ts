/**
 * The repository into the container: a tar stream from the host's `tar` straight into the
 * engine (memory does not grow with the repository), never a bind mount, and a `.git/config`
 * stripped of credentials in place of the real one.
 *
 * A repository whose `.git` is a file (a worktree or a submodule checkout) or missing gets
 * the tree copied and, in place of `.git`, an empty repository made by `git init` on the
 * host: the sandbox only needs a repository to take the baseline from, not the history.
 */
import { spawn } from 'node:child_process'
import { lstat, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { REPO_NAME, VOLUME_DIR } from './container-config.js'
import { gitEnv, writeSanitizedConfig } from './git-config.js'

/** Who owns the copy: the container user, or root so that every write fails (read-only mode). */
export interface CopyOwner {
  uid: number
  gid: number
  readOnly: boolean
}

/** Files of `.git` that never enter the container; the sanitized config replaces the first. */
const EXCLUDED = ['./.git/config', './.git/config.worktree', './.git/worktrees/*/config.worktree',
  './.git/modules/*/config']

/** Copies `repoDir` to the workspace of a created, not yet started container. */
export async function copyIn(container: Docker.Container, repoDir: string,
  owner: CopyOwner): Promise<void> {
  const gitIsDir = await isDirectory(join(repoDir, '.git'))
  const scratch = await mkdtemp(join(tmpdir(), 'airlock-git-'))
  try {
    const tree = tarStream(repoDir, '.', owner, gitIsDir ? EXCLUDED : ['./.git'])
    await putTar(container, tree)
    const gitDir = join(scratch, REPO_NAME, '.git')
    if (gitIsDir) {
      await mkdir(gitDir, { recursive: true })
      await writeSanitizedConfig(join(repoDir, '.git', 'config'), join(gitDir, 'config'))
      await putTar(container, tarStream(scratch, `${REPO_NAME}/.git/config`, owner, [], false))
    } else {
      await runGit(['init', '--quiet', '--template=', join(scratch, REPO_NAME)])
      await putTar(container, tarStream(scratch, `${REPO_NAME}/.git`, owner, [], false))
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory()
  } catch {
    return false
  }
}

interface TarProcess {
  stream: NodeJS.ReadableStream
  done: Promise<void>
  stop: () => void
}

/**
 * `tar` of `member` under `dir`, owned numerically by the copy's owner. With `rename`, the
 * member `.` becomes `repo` (symlink targets are left alone). Read-only copies belong to root,
 * readable by all, with no write bit for group and others and no setuid/setgid bits, so the
 * container user can read everything and change nothing.
 */
function tarStream(dir: string, member: string, owner: CopyOwner, exclude: string[],
  rename = true): TarProcess {
  const uid = owner.readOnly ? 0 : owner.uid
  const gid = owner.readOnly ? 0 : owner.gid
  const args = ['-C', dir, '-c', '--numeric-owner', `--owner=${uid}`, `--group=${gid}`,
    '--anchored', ...exclude.map(e => `--exclude=${e}`)]
  if (owner.readOnly) args.push('--mode=a+rX,go-w,ug-s')
  if (rename) args.push(`--transform=s,^\\.,${REPO_NAME},S`)
  args.push('--', member)
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let errors = ''
  child.stderr.on('data', (chunk: Buffer) => { errors = (errors + chunk.toString()).slice(-4000) })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => {
      // 1 means a file changed while it was read: the copy is still whole enough to work on.
      if (code === 0 || code === 1) resolve()
      else reject(new Error(`tar of ${dir} failed (exit ${code}): ${errors.trim()}`))
    })
  })
  return { stream: child.stdout, done, stop: () => child.kill('SIGKILL') }
}

async function putTar(container: Docker.Container, tar: TarProcess): Promise<void> {
  // Both must settle: a failed tar ends the upload early, and a failed upload must stop the
  // tar, which would otherwise wait for a reader forever.
  const upload = container.putArchive(tar.stream, { path: VOLUME_DIR })
    .catch((error: unknown) => { tar.stop(); throw error })
  const results = await Promise.allSettled([upload, tar.done])
  const failure = results.find(r => r.status === 'rejected')
  if (failure) throw (failure as PromiseRejectedResult).reason
}

function runGit(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { stdio: ['ignore', 'ignore', 'pipe'], env: gitEnv() })
    let errors = ''
    child.stderr.on('data', (chunk: Buffer) => { errors += chunk.toString() })
    child.on('error', reject)
    child.on('close', code => (code === 0 ? resolve()
      : reject(new Error(`git ${args[0]} failed: ${errors.trim()}`))))
  })
}
