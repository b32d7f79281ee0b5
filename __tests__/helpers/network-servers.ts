/**
 * Small servers and clients for the network tests: an origin to reach, a listener that only
 * counts who reached it, a network of the test's own to serve on, and a raw proxy client.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net'
import type Docker from 'dockerode'
import type { AuditEvent, AuditSink } from '../../src/audit/types.js'
import { firewallTag } from '../../src/network/host-firewall.js'

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

/** A TCP listener that records every connection it accepts and closes it at once. */
export interface Listener {
  port: number
  /** `remote address` of each connection accepted, in order */
  seen: string[]
  close(): Promise<void>
}

/**
 * Listens on `host` (a test network's gateway, or a run bridge's link-local address). A new
 * IPv6 address cannot be bound while the kernel still checks it is unique (a second or two),
 * so `EADDRNOTAVAIL` is retried for up to 10 s.
 */
export async function startListener(host: string): Promise<Listener> {
  const seen: string[] = []
  const server = createTcpServer(socket => {
    seen.push(socket.remoteAddress ?? '?')
    socket.destroy()
  })
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL' || attempt === 40) {
        throw error
      }
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  }
  return { port: (server.address() as AddressInfo).port, seen,
    close: () => new Promise<void>(resolve => server.close(() => resolve())) }
}

/** A bridge network the test made for itself, so a server can listen on its gateway. */
export interface TestNetwork {
  name: string
  /** the host's address on the bridge */
  gateway: string
  remove(): Promise<void>
}

/** Creates a labelled, internal bridge network to serve on; nothing is ever attached to it. */
export async function createTestNetwork(docker: Docker, label: string): Promise<TestNetwork> {
  const name = `airlock-test-${label}-${randomBytes(3).toString('hex')}`
  const network = await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true,
    Labels: { 'airlock.test': label } })
  const info = await network.inspect() as Docker.NetworkInspectInfo
  const gateway = info.IPAM?.Config?.find(c => c.Gateway && !c.Gateway.includes(':'))?.Gateway
  if (!gateway) throw new Error(`the engine gave test network ${name} no IPv4 gateway`)
  return { name, gateway, remove: () => network.remove().then(() => undefined) }
}

/** The host's INPUT rules (IPv4 and IPv6) tagged with `runId`, as `iptables -S` prints them. */
export function firewallRulesOf(runId: string): string[] {
  const tag = firewallTag(runId)
  return ['iptables', 'ip6tables'].flatMap(tool =>
    execFileSync(tool, ['-w', '-S', 'INPUT'], { encoding: 'utf8' }).split('\n')
      .filter(line => new RegExp(`--comment "?${tag.replace(/[.]/g, '\\.')}"?( |$)`)
        .test(line))
      .map(line => `${tool} ${line}`))
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
