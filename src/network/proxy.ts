/**
 * The allow-list proxy: a small HTTP proxy run by the action process, the only way out of
 * the run's internal Docker network. It takes CONNECT (for HTTPS and anything tunnelled) and
 * plain absolute-URI requests (for HTTP), lets through only hosts on the allow-list, resolves
 * names itself on the host, and records every decision in the audit log. A refusal is a 403
 * whose reason and body say which host was refused and why, so the agent can read it.
 *
 * A listed name (or a wildcard's) may resolve to the runner itself, so the address is checked
 * before connecting: loopback, link-local and unspecified addresses are refused. The check is
 * on the very address the proxy then connects to, resolved once, so a name that answers
 * differently on a second lookup gains nothing.
 */
import { lookup } from 'node:dns/promises'
import { createServer, request as httpRequest, type IncomingMessage, type Server,
  type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { AuditSink, Phase } from '../audit/types.js'
import { DEFAULT_PORTS, hostAddressRefusal, hostAllowed, parseAbsoluteUri, parseAuthority,
  type Destination } from './hosts.js'

/** Turns a host name into the address to connect to; it runs on the host, never in the box. */
export type Resolver = (host: string) => Promise<string>

export interface ProxyOptions {
  /** the address to listen on: the run's internal network's gateway, never 0.0.0.0 */
  listenHost: string
  /** host names and `*.domain` patterns, as `allowed-hosts` gives them */
  allowedHosts: readonly string[]
  /** ports a listed host may be reached on; default 80 and 443 */
  ports?: readonly number[]
  audit: AuditSink
  /** the phase decisions are recorded under, read at each request */
  phase: () => Phase
  /** default: the host's resolver (`dns.lookup`) */
  resolve?: Resolver
  /** how long to wait for the destination to accept a connection; default 15 s */
  connectTimeoutMs?: number
  /**
   * why a resolved address must not be connected to, or `undefined`; default
   * `hostAddressRefusal` (loopback, link-local, unspecified and the runner's own addresses)
   */
  addressRefusal?: (address: string) => string | undefined
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization',
  'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** A running allow-list proxy; `close()` ends it and every connection through it. */
export class AllowlistProxy {
  /** the proxy's URL for HTTP_PROXY and HTTPS_PROXY, e.g. `http://172.18.0.1:41234` */
  readonly url: string
  /** the port it listens on */
  readonly port: number
  private readonly server: Server
  private readonly options: ProxyOptions
  private readonly sockets = new Set<Duplex>()
  private closing: Promise<void> | undefined

  private constructor(server: Server, options: ProxyOptions) {
    this.server = server
    this.options = options
    const { address, port } = server.address() as AddressInfo
    this.port = port
    this.url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`
  }

  /** Listens on `listenHost` at a free port. */
  static async create(options: ProxyOptions): Promise<AllowlistProxy> {
    if (options.listenHost === '0.0.0.0' || options.listenHost === '::') {
      throw new Error('The allow-list proxy must listen on the run network\'s gateway address, '
        + 'not on every interface: that would make it an open relay.')
    }
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, options.listenHost, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const proxy = new AllowlistProxy(server, options)
    server.on('request', (req, res) => void proxy.forward(req, res))
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      void proxy.tunnel(req, socket, head))
    server.on('connection', (socket: Socket) => proxy.track(socket))
    return proxy
  }

  /** Stops listening and ends every open connection; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>(resolve => {
      this.server.close(() => resolve())
      for (const socket of this.sockets) socket.destroy()
    })
    return this.closing
  }

  private async tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    this.track(client)
    const target = parseAuthority(req.url ?? '')
    if (!target) {
      this.record(unreadable(req.url), 'CONNECT', false)
      refuseSocket(client, 400, `airlock: "${req.url}" is not a host:port CONNECT target`)
      return
    }
    if (!this.decide(target, 'CONNECT', client)) return
    const address = await this.addressFor(target, 'CONNECT', client)
    if (!address) return
    const upstream = await this.open(target, address, client)
    if (!upstream) return
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const target = parseAbsoluteUri(req.url ?? '')
    if (!target) {
      this.record(unreadable(req.url), method, false)
      refuseResponse(res, 400, 'airlock: this is a proxy; send absolute http:// URLs, or '
        + 'CONNECT host:port for HTTPS')
      return
    }
    if (!this.decide(target, method, res)) return
    const address = await this.addressFor(target, method, res)
    if (!address) return
    const url = new URL(req.url ?? '')
    const headers = { ...req.headers }
    for (const name of HOP_BY_HOP) delete headers[name]
    // The Host header follows the URL that was allowed, so no other site rides along.
    headers.host = url.host
    const upstream = httpRequest({ host: address, port: target.port, method,
      path: `${url.pathname}${url.search}`, headers, setHost: false,
      timeout: this.options.connectTimeoutMs ?? 15_000 })
    upstream.on('response', answer => {
      const out = { ...answer.headers }
      for (const name of HOP_BY_HOP) delete out[name]
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out)
      answer.pipe(res)
    })
    upstream.on('timeout', () => upstream.destroy(new Error('no answer in time')))
    upstream.on('error', error => {
      if (!res.headersSent) {
        refuseResponse(res, 502, `airlock: ${target.host}:${target.port} failed: `
          + messageOf(error))
      } else res.destroy()
    })
    req.pipe(upstream)
  }

  /**
   * Decides on the name and port; a refusal is recorded and answered 403, and returns false.
   * An allowed one is recorded once its address is known (`addressFor`).
   */
  private decide(target: Destination, method: string, to: Duplex | ServerResponse): boolean {
    const ports = this.options.ports ?? DEFAULT_PORTS
    const listed = hostAllowed(target.host, this.options.allowedHosts)
    if (listed && ports.includes(target.port)) return true
    this.record(target, method, false)
    refuse(to, 403, listed
      ? `airlock: port ${target.port} of ${target.host} is not allowed (only ${ports.join(', ')})`
      : `airlock: ${target.host} is not in allowed-hosts`)
    return false
  }

  /**
   * Resolves a listed destination and checks the address; records the decision. On a failure
   * or a refusal answers (502 or 403) and returns nothing.
   */
  private async addressFor(target: Destination, method: string,
    to: Duplex | ServerResponse): Promise<string | undefined> {
    let address: string
    try {
      address = await this.resolve(target.host)
    } catch (error) {
      // Allowed by the list; the answer says the name, not the policy, failed.
      this.record(target, method, true)
      refuse(to, 502, `airlock: cannot resolve ${target.host}: ${messageOf(error)}`)
      return undefined
    }
    const refusal = (this.options.addressRefusal ?? hostAddressRefusal)(address)
    this.record(target, method, !refusal, address)
    if (!refusal) return address
    refuse(to, 403, `airlock: ${target.host} resolves to ${address}, a ${refusal} address: `
      + 'the proxy does not connect to the runner itself')
    return undefined
  }

  private record(target: Destination, method: string, allowed: boolean, address?: string): void {
    this.options.audit.record({ type: 'network', phase: this.options.phase(),
      host: target.host, port: target.port, allowed, method,
      ...(address === undefined ? {} : { address }) })
  }

  /** Connects to `address` for a tunnel; on failure answers 502 and returns nothing. */
  private async open(target: Destination, address: string,
    client: Duplex): Promise<Socket | undefined> {
    return new Promise(resolve => {
      const upstream = connect({ host: address, port: target.port,
        timeout: this.options.connectTimeoutMs ?? 15_000 })
      this.track(upstream)
      const fail = (error: Error): void => {
        upstream.destroy()
        refuseSocket(client, 502, `airlock: ${target.host}:${target.port} failed: `
          + messageOf(error))
        resolve(undefined)
      }
      upstream.once('timeout', () => fail(new Error('no answer in time')))
      upstream.once('error', fail)
      upstream.once('connect', () => {
        upstream.off('error', fail)
        upstream.setTimeout(0)
        upstream.on('error', () => client.destroy())
        client.on('error', () => upstream.destroy())
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
        resolve(upstream)
      })
    })
  }

  private async resolve(host: string): Promise<string> {
    if (this.options.resolve) return this.options.resolve(host)
    return (await lookup(host)).address
  }

  private track(socket: Duplex): void {
    if (this.sockets.has(socket)) return
    this.sockets.add(socket)
    socket.on('error', () => undefined)
    socket.once('close', () => this.sockets.delete(socket))
  }
}

function refuse(to: Duplex | ServerResponse, status: number, message: string): void {
  if ('writeHead' in to) refuseResponse(to, status, message)
  else refuseSocket(to, status, message)
}

function refuseSocket(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`
  // The message is the reason phrase too: `curl` shows that for a refused CONNECT.
  socket.end(`HTTP/1.1 ${status} ${reasonPhrase(message)}\r\n`
    + 'Content-Type: text/plain; charset=utf-8\r\n'
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

function refuseResponse(res: ServerResponse, status: number, message: string): void {
  const body = `${message}\n`
  res.writeHead(status, reasonPhrase(message), {
    'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body),
    Connection: 'close'
  })
  res.end(body)
}

/** A status line takes printable ASCII only; the body keeps the message as it is. */
function reasonPhrase(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, '?')
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * A request target the proxy could not read, as its decision records it: the text as sent
 * (cut to 200 characters) in place of a host, and port 0.
 */
function unreadable(url: string | undefined): Destination {
  return { host: (url ?? '').slice(0, 200), port: 0 }
}
