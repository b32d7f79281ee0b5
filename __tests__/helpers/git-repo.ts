/** Small real git repositories for tests: files written, committed once. */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const exec = promisify(execFile)

/** A new repository in a temp folder holding `files` (path → content) in one commit. */
export async function makeGitRepo(prefix: string,
  files: Record<string, string>): Promise<string> {
  const repo = await mkdtemp(join(tmpdir(), prefix))
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true })
    await writeFile(join(repo, path), content)
  }
  await exec('git', ['init', '-q', repo])
  await exec('git', ['-C', repo, 'add', '.'])
  await exec('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid',
    'commit', '-qm', 'init'])
  return repo
}
