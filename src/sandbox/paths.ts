/** Paths the caller gives, checked on the host before they reach a shell in the container. */
import { WORKDIR } from './container-config.js'

/**
 * A workspace-relative path in normal form (`.` for the root). Refuses `..`, absolute paths
 * outside the workspace, NUL and newlines. Nothing is resolved on the host: symlinks inside
 * the container are the container's business.
 */
export function workspacePath(path: string, what = 'path'): string {
  if (path.includes('\0') || path.includes('\n')) {
    throw new Error(`The ${what} contains a NUL or newline character; give a plain path.`)
  }
  let relative = path
  if (relative === WORKDIR) relative = '.'
  else if (relative.startsWith(`${WORKDIR}/`)) relative = relative.slice(WORKDIR.length + 1)
  else if (relative.startsWith('/')) {
    throw new Error(`The ${what} "${path}" is outside the workspace ${WORKDIR}; give a path `
      + 'relative to the repository root.')
  }
  const parts = relative.split('/').filter(p => p !== '' && p !== '.')
  if (parts.includes('..')) {
    throw new Error(`The ${what} "${path}" contains \`..\`; give a path inside the repository, `
      + 'relative to its root.')
  }
  return parts.length > 0 ? parts.join('/') : '.'
}

/** Quotes a string as one word for `sh`. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`
}
