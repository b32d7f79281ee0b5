/** Small servers and clients for the network tests: an origin to reach and a raw proxy client. */
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import type { AuditEvent, AuditSink } from '../../src/audit/types.js'

/** An HTTP origin that answers every path with `body`; listens only on `host`. */
export interface Origin {
  port: number
  /** paths requested, in order */
  paths: string[]
  /** `Host` headers received, in order */
  hosts: string[]
  close(): Promise<void>
}

/** Starts an origin on `host` (loopback or a test network's gateway) at a free port. */
export async function startOrigin(host: string, body: string): Promise<Origin> {
  const paths: string[] = []
  const hosts: string[] = []
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '')
    hosts.push(req.headers.host ?? '')
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.end(body)
  })
  await new Promise<void>(resolve => server.listen(0, host, resolve))
  return {
    port: (server.address() as AddressInfo).port, paths, hosts,
    close: () => new Promise<void>(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

/** An audit sink that keeps events in memory. */
export class CollectingSink implements AuditSink {
  readonly events: AuditEvent[] = []
  record(event: AuditEvent): void {
    this.events.push(event)
  }

  /** The `network` decisions recorded so far. */
  decisions(): Extract<AuditEvent, { type: 'network' }>[] {
    return this.events.filter((e): e is Extract<AuditEvent, { type: 'network' }> =>
      e.type === 'network')
  }
}

/**
 * Sends raw bytes to a proxy and returns everything it answers until it closes the connection
 * or `untilText` appears.
 */
export function rawExchange(port: number, host: string, request: string,
  untilText?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host)
    let answer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer in 5 s; got: ${answer}`))
    }, 5000)
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    socket.on('data', chunk => {
      answer += chunk.toString('utf8')
      if (untilText && answer.includes(untilText)) done()
    })
    socket.on('end', done)
    socket.on('error', error => {
      clearTimeout(timer)
      reject(error)
    })
    socket.write(request)
  })
}
