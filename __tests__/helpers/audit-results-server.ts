/**
 * A loopback stand-in for the Actions results service and the blob store behind it: enough of
 * CreateArtifact, the block-blob upload and FinalizeArtifact for `@actions/artifact` to upload
 * through its real client, keeping what was uploaded so a test can open the zip.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'

const SERVICE = '/twirp/github.actions.results.api.v1.ArtifactService/'

export interface ResultsServer {
  url: string
  /** the zip files uploaded, by artifact name */
  uploads: Map<string, Buffer>
  requests: string[]
  /** answer CreateArtifact with this HTTP status instead of success */
  failCreateWith?: number
  close(): Promise<void>
}

/** A runtime token of the shape the artifact client decodes (it reads, never checks, it). */
export function runtimeToken(): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({
    scp: 'Actions.GenericRead:1 Actions.Results:run-backend-1:job-backend-1' })}.sig`
}

export async function startResultsServer(): Promise<ResultsServer> {
  const blocks = new Map<string, Buffer>()
  let pendingName = ''
  const state: ResultsServer = {
    url: '', uploads: new Map(), requests: [],
    close: () => new Promise(resolve => server.close(() => resolve()))
  }
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req)
    const url = new URL(req.url ?? '/', 'http://localhost')
    state.requests.push(`${req.method} ${url.pathname}${url.searchParams.get('comp') ? `?comp=${
      url.searchParams.get('comp')}` : ''}`)
    const json = (status: number, value: object) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
    }
    if (req.method === 'POST' && url.pathname === `${SERVICE}CreateArtifact`) {
      if (state.failCreateWith) {
        return json(state.failCreateWith, { code: 'internal', msg: 'stand-in refuses' })
      }
      pendingName = JSON.parse(body.toString()).name
      return json(200, { ok: true, signedUploadUrl: `${state.url}/blob/artifacts/${pendingName}`
        + '.zip?sig=stand-in' })
    }
    if (req.method === 'PUT' && url.pathname.startsWith('/blob/')) {
      const headers = { etag: '"0x1"', 'last-modified': new Date().toUTCString(),
        'x-ms-request-id': 'r', 'x-ms-version': '2024-11-04' }
      const comp = url.searchParams.get('comp')
      if (comp === 'block') {
        blocks.set(url.searchParams.get('blockid') ?? '', body)
      } else if (comp === 'blocklist') {
        const ids = [...body.toString().matchAll(/<(?:Latest|Uncommitted|Committed)>([^<]*)</g)]
          .map(m => m[1])
        const parts = ids.map(id => blocks.get(id) ?? Buffer.alloc(0))
        state.uploads.set(pendingName, Buffer.concat(parts))
      } else {
        state.uploads.set(pendingName, body)
      }
      res.writeHead(201, headers).end()
      return
    }
    if (req.method === 'POST' && url.pathname === `${SERVICE}FinalizeArtifact`) {
      return json(200, { ok: true, artifactId: '4242' })
    }
    res.writeHead(404).end()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return state
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
