/**
 * A bare repository served over smart HTTP on 127.0.0.1 by `git http-backend`, which refuses
 * every request without the expected `Authorization` header: it shows that a push really
 * carries the token, and only as a header.
 */
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename, dirname } from 'node:path'

export interface GitHttpRemote {
  /** the clone URL of the repository */
  url: string
  /** the Authorization header of every request, in order */
  authorizations: Array<string | undefined>
  close(): Promise<void>
}

/**
 * Serves `bareDir`; requests must carry `Authorization: basic base64(x-access-token:token)`.
 * With `readOnly`, a push is answered 403 as GitHub answers a token without `contents: write`.
 */
export async function serveGitOverHttp(bareDir: string, token: string,
  options: { readOnly?: boolean } = {}): Promise<GitHttpRemote> {
  const expected = `basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`
  const authorizations: Array<string | undefined> = []
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization
    authorizations.push(auth)
    if (auth?.toLowerCase() !== expected.toLowerCase()) {
      res.writeHead(403).end('forbidden')
      return
    }
    const url = new URL(req.url ?? '/', 'http://remote')
    if (options.readOnly && (url.pathname.endsWith('/git-receive-pack')
      || url.searchParams.get('service') === 'git-receive-pack')) {
      res.writeHead(403).end('Permission to repository denied to github-actions[bot].')
      return
    }
    const cgi = spawn('git', ['http-backend'], { env: {
      PATH: process.env.PATH, GIT_PROJECT_ROOT: dirname(bareDir), GIT_HTTP_EXPORT_ALL: '1',
      REMOTE_USER: 'x-access-token', REQUEST_METHOD: req.method, PATH_INFO: url.pathname,
      QUERY_STRING: url.search.slice(1), CONTENT_TYPE: req.headers['content-type'] ?? '',
      GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null'
    } })
    req.pipe(cgi.stdin)
    const chunks: Buffer[] = []
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c))
    cgi.on('close', () => {
      const out = Buffer.concat(chunks)
      const split = out.indexOf('\r\n\r\n')
      const headerText = out.subarray(0, split).toString('latin1')
      const headers: Record<string, string> = {}
      let status = 200
      for (const line of headerText.split('\r\n')) {
        const [name, ...rest] = line.split(':')
        if (name.toLowerCase() === 'status') status = Number.parseInt(rest.join(':'), 10)
        else headers[name] = rest.join(':').trim()
      }
      res.writeHead(status, headers).end(out.subarray(split + 4))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/${basename(bareDir)}`,
    authorizations,
    close: () => new Promise<void>(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
