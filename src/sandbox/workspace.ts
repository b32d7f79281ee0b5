/**
 * The repository into the container: a tar stream from the host's `tar` straight into the
 * engine (memory does not grow with the repository), never a bind mount. Of `.git` only what
 * git needs to work goes in, and a `.git/config` stripped of credentials in place of the real
 * one: whatever else a checkout keeps there (hooks, a credentials file that the config
 * includes, a token a tool saved) stays on the host.
 *
 * A repository whose `.git` is a file (a worktree or a submodule checkout) or missing gets
 * the tree copied and, in place of `.git`, a repository made on the host with one commit of
 * the files as copied: `git status` inside starts clean and `git diff` shows the agent's
 * edits, as in a checkout. The history is not needed; the baseline is.
 */
import { spawn } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
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

/**
 * The entries of a git directory that enter the container: enough for git to read the
 * history, see the index and write commits, branches and stashes. Hooks, the config and
 * anything else a tool left there do not; the sanitized config is written apart.
 */
const GIT_ENTRIES = ['HEAD', 'index', 'objects', 'refs', 'packed-refs', 'reftable', 'shallow',
  'info', 'logs']

/** Copies `repoDir` to the workspace of a created, not yet started container. */
export async function copyIn(container: Docker.Container, repoDir: string,
  owner: CopyOwner): Promise<void> {
  const gitIsDir = await isDirectory(join(repoDir, '.git'))
  const scratch = await mkdtemp(join(tmpdir(), 'airlock-git-'))
  try {
    await putTar(container, tarStream(repoDir, ['.'], owner, ['./.git']))
    if (gitIsDir) {
      // The git entries and the sanitized config travel in one archive: `-C` switches tar to
      // the scratch folder for the config's member, named `./.git/config` there too.
      await mkdir(join(scratch, '.git'))
      await writeSanitizedConfig(join(repoDir, '.git', 'config'), join(scratch, '.git', 'config'))
      const members = ['--no-recursion', './.git', ...await gitDirMembers(repoDir, './.git'),
        '-C', scratch, './.git/config']
      await putTar(container, tarStream(repoDir, members, owner, []))
    } else {
      const gitDir = join(scratch, REPO_NAME, '.git')
      await runGit(['-c', 'init.defaultBranch=main', 'init', '--quiet', '--template=',
        join(scratch, REPO_NAME)])
      await commitAsCopied(gitDir, repoDir)
      await putTar(container, tarStream(scratch, [`${REPO_NAME}/.git`], owner, [], false))
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/**
 * tar members for the git directory `rel` (relative to `root`): each entry git needs, whole,
 * and the git directories of submodules under `modules/`, entry by entry the same way (their
 * configs stay out too). Directories named alone are listed after `--no-recursion`.
 */
async function gitDirMembers(root: string, rel: string): Promise<string[]> {
  const present = new Set(await readdir(join(root, rel)))
  const whole = GIT_ENTRIES.filter(entry => present.has(entry)).map(entry => `${rel}/${entry}`)
  const alone: string[] = []
  if (await isDirectory(join(root, rel, 'modules'))) {
    await submoduleMembers(root, `${rel}/modules`, alone, whole)
  }
  return [...alone, '--recursion', ...whole]
}

/** Walks `modules/`, where a submodule named `a/b` has its git directory at `modules/a/b`. */
async function submoduleMembers(root: string, rel: string, alone: string[],
  whole: string[]): Promise<void> {
  alone.push(rel)
  const entries = await readdir(join(root, rel), { withFileTypes: true })
  for (const entry of entries.filter(e => e.isDirectory())) {
    const child = `${rel}/${entry.name}`
    const names = new Set(await readdir(join(root, child)))
    if (!names.has('HEAD')) {
      await submoduleMembers(root, child, alone, whole)
      continue
    }
    alone.push(child)
    whole.push(...GIT_ENTRIES.filter(name => names.has(name)).map(name => `${child}/${name}`))
    if (names.has('modules')) await submoduleMembers(root, `${child}/modules`, alone, whole)
  }
}

/**
 * Commits the files of `workTree` as they are into the new repository at `gitDir`, on the
 * host, with hooks, fsmonitor and every config but the new repository's own switched off:
 * the files are whatever the directory holds, and they must not run anything here.
 */
async function commitAsCopied(gitDir: string, workTree: string): Promise<void> {
  const env = { GIT_DIR: gitDir, GIT_WORK_TREE: workTree, GIT_AUTHOR_NAME: 'Airlock',
    GIT_AUTHOR_EMAIL: 'airlock@localhost', GIT_COMMITTER_NAME: 'Airlock',
    GIT_COMMITTER_EMAIL: 'airlock@localhost' }
  const safe = ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false', '-c',
    'core.autocrlf=false', '-c', 'core.symlinks=true', '-c', 'core.fileMode=true', '-c',
    'core.attributesFile=/dev/null', '-c', 'commit.gpgSign=false']
  await runGit([...safe, 'add', '--all'], env)
  await runGit([...safe, 'commit', '--quiet', '--no-verify', '--allow-empty', '-m',
    'The files as copied into the sandbox', '-m', 'The directory had no git repository of its '
    + 'own, so Airlock made this one commit of its files as they were copied in.'], env)
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
 * `tar` of `members` under `dir`, owned numerically by the copy's owner. With `rename`, the
 * leading `.` of each member becomes `repo` (symlink targets are left alone). Read-only copies
 * belong to root, readable by all, with no write bit for group and others and no
 * setuid/setgid bits, so the container user can read everything and change nothing. Members
 * start with `.` or a plain name and may include tar's `--recursion` and `-C DIR` switches.
 */
function tarStream(dir: string, members: string[], owner: CopyOwner, exclude: string[],
  rename = true): TarProcess {
  const uid = owner.readOnly ? 0 : owner.uid
  const gid = owner.readOnly ? 0 : owner.gid
  const args = ['-C', dir, '-c', '--numeric-owner', `--owner=${uid}`, `--group=${gid}`,
    '--anchored', ...exclude.map(e => `--exclude=${e}`)]
  if (owner.readOnly) args.push('--mode=a+rX,go-w,ug-s')
  if (rename) args.push(`--transform=s,^\\.,${REPO_NAME},S`)
  args.push(...members)
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

function runGit(args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...gitEnv(), ...env } })
    let errors = ''
    child.stderr.on('data', (chunk: Buffer) => { errors += chunk.toString() })
    child.on('error', reject)
    child.on('close', code => (code === 0 ? resolve()
      : reject(new Error(`git ${args.find(a => !a.includes('=') && a !== '-c')} failed: `
        + errors.trim()))))
  })
}
