/**
 * Real git repositories for the publishing tests: a bare repository standing in for GitHub's
 * remote, a checkout of it (origin = the bare path) as actions/checkout would leave it, and
 * patches made by real git edits in a scratch clone.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com' }

/** Runs git and returns trimmed stdout. */
export function gitIn(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim()
}

export interface PublishRepos {
  root: string
  bare: string
  checkout: string
  /** Makes a binary patch against the checkout's HEAD by writing `files` with real git. */
  patchOf(files: Record<string, string>): Buffer
  remove(): void
}

/** A bare remote with `main` (README, a workflow, src), and a checkout of it. */
export function createPublishRepos(): PublishRepos {
  const root = mkdtempSync(join(tmpdir(), 'airlock-publish-test-'))
  const bare = join(root, 'remote.git')
  const seed = join(root, 'seed')
  gitIn(root, 'init', '--quiet', '--bare', '--initial-branch=main', bare)
  gitIn(root, 'init', '--quiet', '--initial-branch=main', seed)
  write(seed, { 'README.md': '# Hello\n\nTeh greeting.\n',
    '.github/workflows/ci.yml': 'on: push\njobs: {}\n', 'src/hello.sh': 'echo hello\n' })
  gitIn(seed, 'add', '-A')
  gitIn(seed, 'commit', '--quiet', '-m', 'seed')
  gitIn(seed, 'push', '--quiet', bare, 'main')
  const checkout = join(root, 'checkout')
  gitIn(root, 'clone', '--quiet', bare, checkout)
  let scratchCount = 0
  return {
    root, bare, checkout,
    patchOf(files) {
      const scratch = join(root, `scratch-${scratchCount++}`)
      gitIn(root, 'clone', '--quiet', checkout, scratch)
      write(scratch, files)
      gitIn(scratch, 'add', '-A')
      return execFileSync('git', ['diff', '--cached', '--binary', '--full-index', 'HEAD'],
        { cwd: scratch, env: GIT_ENV })
    },
    remove() {
      rmSync(root, { recursive: true, force: true })
    }
  }
}

function write(dir: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
}
