/**
 * Changes out of the container and onto the host: the git steps run inside, the checks on
 * the host, and the host-side `git apply`.
 */
import { spawn } from 'node:child_process'
import picomatch from 'picomatch'
import type { ChangePolicy } from '../settings.js'
import { gitEnv } from './git-config.js'
import { parsePatch, PatchParseError, type PatchSection } from './patch.js'
import type { ChangedFile, ChangeSet, ChangeStatus } from './types.js'
import { WORKDIR } from './container-config.js'
import { SERVER_STATE_DIR } from './command-server.js'

/** A change the policy refuses: the path at fault and the rule it breaks. */
export interface Violation {
  path: string
  rule: 'outside-repository' | 'git-directory' | 'protected-path' | 'too-many-files'
    | 'patch-too-large' | 'unreadable-patch' | 'secret-value'
  message: string
}

/**
 * git inside the container with everything the agent could have planted switched off: hooks,
 * fsmonitor, filters and eol conversion (through `info/attributes`, which outranks every
 * `.gitattributes`), the global and system config, and a moved work tree.
 */
const GIT = 'git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false'
  + ' -c core.autocrlf=false -c core.safecrlf=false -c core.fileMode=true -c core.symlinks=true'
  + ' -c core.checkStat=minimal -c core.trustCtime=false -c core.attributesFile=/dev/null'
  + ' -c core.quotePath=true -c core.ignoreCase=false -c core.sparseCheckout=false'
  + ' -c index.sparse=false -c diff.noprefix=false'

const GIT_PRELUDE = `set -e
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1
export GIT_DIR=${WORKDIR}/.git GIT_WORK_TREE=${WORKDIR} GIT_OPTIONAL_LOCKS=0
mkdir -p "$GIT_DIR/info"
printf '* -text -filter -ident -working-tree-encoding\\n' > "$GIT_DIR/info/attributes"
`

const BASE_INDEX = `${SERVER_STATE_DIR}/base.index`
const WORK_INDEX = `${SERVER_STATE_DIR}/work.index`

/**
 * Writes the workspace as it is now into a tree and prints its id. The host's index comes
 * along in the copy; starting from it, only files whose size or mtime changed are hashed.
 *
 * Git trusts an entry whose size and mtime match, except a "racily clean" one: an entry whose
 * mtime is not older than the index file itself, which git compares by content. That rule
 * only works while an index keeps its own mtime, so every copy of an index here keeps it
 * (`cp -p`), and the copy the changes are read from is dated to the whole second the
 * baseline was written in. Without that, a same-size edit made in the second the file was
 * last written would look unchanged and the agent's change would be lost.
 *
 * Known gap: an edit that keeps the size and sets the mtime back to an earlier second (`touch
 * -d`, `cp -p` from an equal-size file) is not seen. Trusting ctime and inodes would see it,
 * at the price of hashing every file once, since the copy-in gives every file new ones.
 */
export const BASELINE_SCRIPT = `${GIT_PRELUDE}
export GIT_INDEX_FILE=${BASE_INDEX}
cp -p "$GIT_DIR/index" "$GIT_INDEX_FILE" 2>/dev/null || rm -f "$GIT_INDEX_FILE"
${GIT} add -A
${GIT} write-tree
`

const DIFF_STATUS = `${SERVER_STATE_DIR}/diff.status`

/**
 * Prints the binary patch from the baseline tree to the workspace as it is now, at most
 * `maxBytes` of it: past that, `head` ends the transfer, and git's exit (cut short by the
 * closed pipe) only counts when the patch was whole.
 */
export function extractScript(baseTree: string, maxBytes: number): string {
  requireTree(baseTree)
  return `${GIT_PRELUDE}
export GIT_INDEX_FILE=${WORK_INDEX}
if cp ${BASE_INDEX} "$GIT_INDEX_FILE" 2>/dev/null; then
  touch -d "@$(stat -c %Y ${BASE_INDEX})" "$GIT_INDEX_FILE"
else
  ${GIT} read-tree ${baseTree}
fi
${GIT} add -A
tree=$(${GIT} write-tree)
rm -f ${DIFF_STATUS}
{ ${GIT} diff-tree -r -p --binary --full-index -M --no-ext-diff --no-textconv --no-color \\
  ${baseTree} "$tree" || echo "$?" > ${DIFF_STATUS}; } | head -c ${Math.floor(maxBytes)}
[ ! -s ${DIFF_STATUS} ] || exit "$(cat ${DIFF_STATUS})"
`
}

/**
 * Prints git's raw list of what changed since the baseline (`diff-tree --raw -z`), from the
 * index the last `extractScript` left: the file list of a patch too large to read whole.
 */
export function changedPathsScript(baseTree: string): string {
  requireTree(baseTree)
  return `${GIT_PRELUDE}
export GIT_INDEX_FILE=${WORK_INDEX}
${GIT} diff-tree -r -M --raw -z --no-abbrev ${baseTree} "$(${GIT} write-tree)"
`
}

function requireTree(id: string): void {
  if (!/^[0-9a-f]{40,64}$/.test(id)) throw new Error(`not a tree id: ${id}`)
}

const RAW_STATUS: Record<string, ChangeStatus> = {
  A: 'added', D: 'deleted', R: 'renamed', C: 'copied', T: 'modified', M: 'modified'
}

/** Reads `diff-tree --raw -z` output into changed files; content is not seen, so not binary. */
export function parseRawDiff(raw: Buffer): ChangedFile[] {
  const fields = raw.toString('utf8').split('\0')
  const files: ChangedFile[] = []
  for (let i = 0; i + 1 < fields.length; i++) {
    const header = /^:(\d{6}) (\d{6}) [0-9a-f]+ [0-9a-f]+ ([A-Z])\d*$/.exec(fields[i])
    if (!header) throw new PatchParseError(`unexpected line in git's list of changes: `
      + JSON.stringify(fields[i].slice(0, 80)))
    const [, oldMode, newMode, letter] = header
    const twoPaths = letter === 'R' || letter === 'C'
    const path = fields[twoPaths ? i + 2 : i + 1]
    const oldPath = twoPaths ? fields[i + 1] : undefined
    i += twoPaths ? 2 : 1
    const status = letter === 'M' && oldMode !== newMode ? 'mode' : RAW_STATUS[letter] ?? 'modified'
    files.push({ path, ...(oldPath === undefined ? {} : { oldPath }), status,
      ...(letter === 'D' ? {} : { mode: newMode }), binary: false })
  }
  return files
}

/** Reads a patch into a change set; throws PatchParseError when it is not one git would write. */
export function toChangeSet(patch: Buffer): ChangeSet {
  const files = parsePatch(patch).map(({ mentioned: _mentioned, ...file }) => file)
  return { patch, files }
}

/** Every way the change breaks the policy, read from the patch itself; empty when it is fine. */
export function checkChanges(changeSet: ChangeSet, policy: ChangePolicy): Violation[] {
  if (changeSet.oversized) {
    return [{ path: '', rule: 'patch-too-large', message: `The change is more than `
      + `${policy.maxPatchBytes} bytes as a patch, the most max-patch-bytes allows; nothing of `
      + 'it is applied. Make the change smaller, or raise max-patch-bytes.' }]
  }
  let sections: PatchSection[]
  try {
    sections = parsePatch(changeSet.patch)
  } catch (error) {
    if (!(error instanceof PatchParseError)) throw error
    return [{ path: '', rule: 'unreadable-patch', message: `The patch cannot be read: `
      + `${error.message}. Nothing of it is applied.` }]
  }
  const violations: Violation[] = []
  const isProtected = picomatch(policy.protectedPaths, { dot: true })
  const paths = new Set(sections.flatMap(s => s.mentioned))
  for (const path of paths) {
    const problem = pathProblem(path)
    if (problem) {
      violations.push(problem)
    } else if (policy.protectedPaths.length > 0 && isProtected(path)) {
      violations.push({ path, rule: 'protected-path', message: `${path} is a protected path `
        + `(protected-paths: ${policy.protectedPaths.join(', ')}); the agent may not change it.` })
    }
  }
  if (sections.length > policy.maxChangedFiles) {
    violations.push({ path: '', rule: 'too-many-files', message: `The change touches `
      + `${sections.length} files; max-changed-files allows ${policy.maxChangedFiles}.` })
  }
  if (changeSet.patch.length > policy.maxPatchBytes) {
    violations.push({ path: '', rule: 'patch-too-large', message: `The patch is `
      + `${changeSet.patch.length} bytes; max-patch-bytes allows ${policy.maxPatchBytes}.` })
  }
  return violations
}

function pathProblem(path: string): Violation | undefined {
  const parts = path.split('/')
  if (path === '' || path.startsWith('/') || parts.some(p => p === '..' || p === '.' || p === '')
    || path.includes('\\') || path.includes('\0')) {
    return { path, rule: 'outside-repository', message: `${path} is not a plain path inside `
      + 'the repository (absolute, empty, or with `.`/`..` parts); it is refused.' }
  }
  // Any case and trailing dots or spaces: file systems that fold them make `.GIT ` the same.
  if (parts.some(p => /^\.git[. ]*$/i.test(p))) {
    return { path, rule: 'git-directory', message: `${path} is inside a .git directory; `
      + 'changes to git\'s own files are refused.' }
  }
  return undefined
}

/**
 * Applies a checked patch to `repoDir` with git on the host, hooks and fsmonitor off. Symlinks
 * stay links, and git refuses to write through one.
 * Known shortcoming: `git apply` reads the host's `.gitattributes`, so a clean filter that the
 * host's own config defines would run on the files the patch touches; protect
 * `.gitattributes` in `protected-paths` when the host config defines filters.
 */
export async function applyChanges(repoDir: string, patch: Buffer): Promise<void> {
  if (patch.length === 0) return
  const args = ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false',
    'apply', '--binary', '--whitespace=nowarn', '-']
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', args, { cwd: repoDir, env: gitEnv(),
      stdio: ['pipe', 'ignore', 'pipe'] })
    let errors = ''
    child.stderr.on('data', (chunk: Buffer) => { errors = (errors + chunk).slice(-8000) })
    child.on('error', reject)
    child.on('close', code => (code === 0 ? resolve() : reject(new Error(
      `git apply in ${repoDir} failed (exit ${code}): ${errors.trim()}`))))
    child.stdin.on('error', () => undefined)
    child.stdin.end(patch)
  })
}
