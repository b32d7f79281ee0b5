/** Shared pieces of the sandbox tests: a test repository, settings, and the engine's view. */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { settingsWithDefaults, type SandboxSettings } from '../../src/settings.js'

export const TEST_IMAGE = 'airlock-test:bookworm'

/** Sandbox settings at their defaults, small enough for a 2-core test machine. */
export function testSandboxSettings(overrides: Partial<SandboxSettings> = {}): SandboxSettings {
  const base = settingsWithDefaults({ image: TEST_IMAGE, model: 'test-model',
    'base-url': 'http://127.0.0.1:1/v1', memory: '512m', cpus: '1', 'pids-limit': '128',
    'tmp-size': '64m', 'command-timeout': '30' }).sandbox
  return { ...base, ...overrides }
}

/** A run id no other test uses, so its containers can be counted alone. */
export function testRunId(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`
}

/** Runs git in `dir` without the user's or system's config. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com',
    ...args], { cwd: dir, encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' } })
}

/** A committed repository with a few files of each kind, in a fresh temp directory. */
export function makeRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-sandbox-repo-'))
  git(dir, 'init', '--quiet', '--initial-branch=main')
  writeFileSync(join(dir, 'README.md'), 'hello\n')
  writeFileSync(join(dir, 'keep.txt'), 'keep me\n')
  writeFileSync(join(dir, 'gone.txt'), 'delete me\n')
  writeFileSync(join(dir, 'move-me.txt'), 'a file that will be renamed\n'.repeat(20))
  writeFileSync(join(dir, 'script.sh'), '#!/bin/sh\necho run\n')
  writeFileSync(join(dir, 'image.bin'), randomBytes(2048))
  git(dir, 'add', '-A')
  git(dir, 'commit', '--quiet', '-m', 'start')
  return dir
}

/** Containers of a run that the engine still has, running or not. */
export async function containersOf(runId: string): Promise<Docker.ContainerInfo[]> {
  return new Docker().listContainers({ all: true,
    filters: { label: [`airlock.run=${runId}`] } })
}

/** One line per path: type, executable bit, and content digest or link target. */
export const MANIFEST_SCRIPT = `find . -path ./.git -prune -o ! -name . -print | LC_ALL=C sort |
while IFS= read -r p; do
  if [ -L "$p" ]; then printf 'link %s -> %s\\n' "$p" "$(readlink "$p")"
  elif [ -d "$p" ]; then printf 'dir %s\\n' "$p"
  else x=-; [ -x "$p" ] && x=x; printf 'file %s %s %s\\n' "$x" "$p" "$(sha256sum < "$p")"; fi
done`

/** The manifest of a host directory. */
export function hostManifest(dir: string): string {
  return execFileSync('sh', ['-c', MANIFEST_SCRIPT], { cwd: dir, encoding: 'utf8' })
}
