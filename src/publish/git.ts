/**
 * git on the host, for publishing. Hooks, fsmonitor and the user's and system config play no
 * part, and the token reaches git only through the environment of the one process that needs
 * it: never on a command line (visible in `ps`), never in a config file.
 */
import { execFile } from 'node:child_process'
import { isAbsolute, resolve } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** The identity Airlock commits as. */
export const BOT_NAME = 'airlock[bot]'
export const BOT_EMAIL = 'airlock[bot]@users.noreply.github.com'

/** Runs git in `cwd` and returns its trimmed stdout; a failure names the command and stderr. */
export async function git(cwd: string, args: string[],
  extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  const env = {
    ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '',
    GIT_AUTHOR_NAME: BOT_NAME, GIT_AUTHOR_EMAIL: BOT_EMAIL,
    GIT_COMMITTER_NAME: BOT_NAME, GIT_COMMITTER_EMAIL: BOT_EMAIL,
    ...extraEnv
  }
  const safe = ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false']
  try {
    const { stdout } = await execFileAsync('git', [...safe, ...args],
      { cwd, env, maxBuffer: 256 * 1024 * 1024 })
    return stdout.trim()
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim()
    throw new Error(`git ${args[0]} failed in ${cwd}: ${stderr || String(error)}`,
      { cause: error })
  }
}

/**
 * The environment that gives git the token for `url` as an HTTP header, the way
 * actions/checkout does, but through `GIT_CONFIG_*` variables of this one process.
 * Non-HTTP remotes (a local path, in tests) need no header and get none.
 */
export function authEnv(url: string, token: string): NodeJS.ProcessEnv {
  if (!token || !/^https?:\/\//i.test(url)) return {}
  const basic = Buffer.from(`x-access-token:${token}`, 'utf8').toString('base64')
  return {
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: `http.${new URL(url).origin}/.extraheader`,
    GIT_CONFIG_VALUE_0: `AUTHORIZATION: basic ${basic}`
  }
}

/** The checkout's `origin` URL with any credentials removed; a relative path made absolute. */
export async function pushUrlOf(repoDir: string): Promise<string> {
  const raw = await git(repoDir, ['remote', 'get-url', 'origin']).catch(() => '')
  if (!raw) {
    throw new Error(`The checkout at ${repoDir} has no \`origin\` remote to push to; check it `
      + 'out with actions/checkout, or choose `output: patch`.')
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    const url = new URL(raw)
    url.username = ''
    url.password = ''
    return url.toString()
  }
  // scp-like `user@host:path` keeps its user, which names an SSH account, not a secret.
  if (/^[^/]+@[^/]+:/.test(raw) || isAbsolute(raw)) return raw
  return resolve(repoDir, raw)
}
