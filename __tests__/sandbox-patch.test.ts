import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync,
  writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkChanges, toChangeSet } from '../src/sandbox/changes.js'
import { formatConfig, readConfig, sanitizeEntry, writeSanitizedConfig }
  from '../src/sandbox/git-config.js'
import { parsePatch, PatchParseError } from '../src/sandbox/patch.js'
import { workspacePath } from '../src/sandbox/paths.js'
import { git, makeRepo } from './helpers/docker-sandbox.js'

const policy = { protectedPaths: ['.github/workflows/**'], maxChangedFiles: 100,
  maxPatchBytes: 1_000_000 }

/** A patch made by the host's git the way the sandbox makes it inside the container. */
function patchOf(dir: string): Buffer {
  git(dir, 'add', '-A')
  return execFileSync('git', ['-c', 'core.quotePath=true', 'diff', '--cached', '--binary',
    '--full-index', '-M', '--no-ext-diff', '--no-textconv', '--no-color'], { cwd: dir })
}

describe('parsePatch', () => {
  let dir: string
  beforeEach(() => { dir = makeRepo() })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('reads every kind of change from a patch git made', () => {
    writeFileSync(join(dir, 'keep.txt'), 'changed\n')
    unlinkSync(join(dir, 'gone.txt'))
    renameSync(join(dir, 'move-me.txt'), join(dir, 'moved.txt'))
    chmodSync(join(dir, 'script.sh'), 0o755)
    symlinkSync('keep.txt', join(dir, 'link'))
    writeFileSync(join(dir, 'image.bin'), Buffer.from([0, 1, 2, 255, 0]))
    writeFileSync(join(dir, 'new file ünï.txt'), 'new\n')
    const files = toChangeSet(patchOf(dir)).files
    const byPath = Object.fromEntries(files.map(f => [f.path, f]))
    expect(byPath['keep.txt']).toMatchObject({ status: 'modified', mode: '100644' })
    expect(byPath['gone.txt']).toMatchObject({ status: 'deleted' })
    expect(byPath['moved.txt']).toMatchObject({ status: 'renamed', oldPath: 'move-me.txt' })
    expect(byPath['script.sh']).toMatchObject({ status: 'mode', mode: '100755' })
    expect(byPath.link).toMatchObject({ status: 'added', mode: '120000' })
    expect(byPath['image.bin']).toMatchObject({ status: 'modified', binary: true })
    expect(byPath['new file ünï.txt']).toMatchObject({ status: 'added', binary: false })
    expect(files).toHaveLength(7)
  })

  it('is empty for an empty patch', () => {
    expect(parsePatch(Buffer.alloc(0))).toEqual([])
  })

  it('refuses a line hidden after the end of a hunk', () => {
    writeFileSync(join(dir, 'keep.txt'), 'changed\n')
    const patch = patchOf(dir).toString() + '--- a/x\n+++ b/.git/hooks/pre-commit\n'
    expect(() => parsePatch(patch)).toThrow(PatchParseError)
    expect(() => parsePatch(patch)).toThrow(/expected a hunk header/)
  })

  it('refuses text before the first file section', () => {
    expect(() => parsePatch('hello\ndiff --git a/x b/x\n')).toThrow(/before the first/)
  })
})

describe('checkChanges', () => {
  const change = (path: string): string => [
    `diff --git a/${path} b/${path}`, 'new file mode 100644',
    'index 0000000000000000000000000000000000000000..ce013625030ba8dba906f756967f9e9ca394464a',
    '--- /dev/null', `+++ b/${path}`, '@@ -0,0 +1 @@', '+hello', ''].join('\n')
  const check = (text: string, p = policy) =>
    checkChanges({ patch: Buffer.from(text), files: [] }, p)

  it('accepts ordinary paths', () => {
    expect(check(change('src/a.ts') + change('docs/.hidden'))).toEqual([])
  })

  it.each(['.git/config', 'a/.git/hooks/x', '.GIT/config', 'sub/.Git/HEAD', '.git./x'])(
    'refuses %s inside a .git directory', path => {
      expect(check(change(path))).toEqual([expect.objectContaining({ path,
        rule: 'git-directory' })])
    })

  it.each(['../outside', 'a/../../b', '/etc/passwd', 'a/./b'])('refuses %s as outside', path => {
    const [v] = check(change(path))
    expect(v).toMatchObject({ path, rule: 'outside-repository' })
    expect(v.message).toContain(path)
  })

  it('refuses protected paths, dotfiles included, naming the glob', () => {
    const [v] = check(change('.github/workflows/ci.yml'))
    expect(v).toMatchObject({ path: '.github/workflows/ci.yml', rule: 'protected-path' })
    expect(v.message).toContain('.github/workflows/**')
  })

  it('refuses the old side of a rename out of a protected path', () => {
    const text = ['diff --git a/.github/workflows/ci.yml b/ci.yml', 'similarity index 100%',
      'rename from .github/workflows/ci.yml', 'rename to ci.yml', ''].join('\n')
    expect(check(text)).toEqual([expect.objectContaining({ rule: 'protected-path',
      path: '.github/workflows/ci.yml' })])
  })

  it('refuses more files or bytes than the caps allow', () => {
    const text = change('a') + change('b') + change('c')
    const rules = check(text, { protectedPaths: [], maxChangedFiles: 2, maxPatchBytes: 100 })
      .map(v => v.rule)
    expect(rules).toEqual(['too-many-files', 'patch-too-large'])
  })

  it('refuses a patch it cannot read', () => {
    expect(check('garbage\n')).toEqual([expect.objectContaining({ rule: 'unreadable-patch' })])
  })
})

describe('git config sanitizing', () => {
  it('drops credentials, helpers and includes and keeps the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-config-'))
    try {
      const source = join(dir, 'config')
      writeFileSync(source, [
        '[core]', '\tbare = false',
        '[remote "origin"]', '\turl = https://x-access-token:ghs_SECRET1@github.com/o/r.git',
        '[http "https://github.com/"]', '\textraheader = AUTHORIZATION: basic SECRET2',
        '[credential]', '\thelper = store --file /tmp/SECRET3',
        '[url "https://user:SECRET4@example.com/"]', '\tinsteadOf = https://example.com/',
        '[include]', '\tpath = /home/runner/SECRET5',
        '[includeIf "gitdir:/x/"]', '\tpath = /home/runner/SECRET6',
        '[branch "main"]', '\tremote = origin', ''].join('\n'))
      const target = join(dir, 'clean')
      await writeSanitizedConfig(source, target)
      const text = readFileSync(target, 'utf8')
      expect(text).not.toMatch(/SECRET|credential|include|extraheader/i)
      expect(await readConfig(target)).toEqual([
        { key: 'core.bare', value: 'false' },
        { key: 'remote.origin.url', value: 'https://github.com/o/r.git' },
        { key: 'branch.main.remote', value: 'origin' }
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('writes values and subsections git reads back exactly, in file order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-config-'))
    try {
      const entries = [
        { key: 'remote.origin.fetch', value: '+refs/heads/*:refs/remotes/origin/*' },
        { key: 'branch.we"ird\\name.v1.merge', value: 'refs/heads/we"ird' },
        { key: 'core.bare', value: 'false' },
        { key: 'alias.tricky', value: '!f() { echo "a\\b"; }; f # not a comment ; either\n\tx' },
        { key: 'remote.origin.fetch', value: '+refs/tags/*:refs/tags/*' },
        { key: 'x.y.flag', value: 'true' },
        { key: 'x.y.z', value: '[section] = injected' }
      ]
      const target = join(dir, 'config')
      writeFileSync(target, formatConfig(entries))
      expect(await readConfig(target)).toEqual(entries)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('keeps an entry without credentials as it is', () => {
    expect(sanitizeEntry({ key: 'user.name', value: 'x' })).toEqual({ key: 'user.name',
      value: 'x' })
  })
})

describe('workspacePath', () => {
  it('normalizes paths inside the workspace', () => {
    expect(workspacePath('./a//b/')).toBe('a/b')
    expect(workspacePath('/workspace/repo/src')).toBe('src')
    expect(workspacePath('')).toBe('.')
  })

  it.each(['../x', 'a/../../x', '/etc/passwd', 'a\0b'])('refuses %j', path => {
    expect(() => workspacePath(path)).toThrow(/\.\.|outside|NUL/)
  })
})
