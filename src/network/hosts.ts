/** The allow-list's matching rules, kept apart from the proxy so they read and test alone. */
import { BlockList, isIP } from 'node:net'
import { networkInterfaces } from 'node:os'

/** A request's destination, as the proxy decides on it. */
export interface Destination {
  /** lower-case host name or address, without brackets or a trailing dot */
  host: string
  port: number
}

/** The ports a listed host may be reached on unless the proxy is told otherwise. */
export const DEFAULT_PORTS: readonly number[] = [80, 443]

/**
 * Whether `host` matches one of `patterns`: an exact name, or `*.domain` for any name below
 * `domain` (not `domain` itself). Both sides compare case-insensitively.
 */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const name = normalHost(host)
  return patterns.some(raw => {
    const pattern = normalHost(raw)
    if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1))
    return name === pattern
  })
}

/** Reads the `host:port` target of a CONNECT request; `undefined` when it is malformed. */
export function parseAuthority(target: string): Destination | undefined {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]/\s@]+)):(\d{1,5})$/i.exec(target)
  if (!match) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65535) return undefined
  return { host: normalHost(match[1] ?? match[2]), port }
}

/** Reads the destination of a plain proxy request's absolute URI (`http://host[:port]/…`). */
export function parseAbsoluteUri(target: string): Destination | undefined {
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return undefined
  }
  // Only plain HTTP travels as an absolute URI; HTTPS comes as CONNECT.
  if (url.protocol !== 'http:' || !url.hostname) return undefined
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  return { host: normalHost(host), port: url.port ? Number(url.port) : 80 }
}

function normalHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '')
}

const HOST_ONLY_RANGES: readonly [string, BlockList][] = [
  ['loopback', ranges(['127.0.0.0/8', 'ipv4'], ['::1/128', 'ipv6'])],
  ['link-local', ranges(['169.254.0.0/16', 'ipv4'], ['fe80::/10', 'ipv6'])],
  ['unspecified', ranges(['0.0.0.0/8', 'ipv4'], ['::/128', 'ipv6'])]
]

/**
 * Why the proxy must not connect to `address`: `loopback`, `link-local` (cloud metadata
 * services live there), `unspecified` (which Linux takes as the host itself) or `runner's own`
 * (an address of one of this machine's interfaces: its LAN address, a Docker bridge's
 * gateway), IPv4-mapped IPv6 forms included; `undefined` when it may. Other private addresses
 * pass, for internal registries. `own` defaults to the interfaces as they are now, since
 * networks come and go during a run.
 */
export function hostAddressRefusal(address: string,
  own: readonly string[] = ownAddresses()): string | undefined {
  const family = isIP(address)
  if (family === 0) return 'not an IP'
  const type = family === 4 ? 'ipv4' : 'ipv6'
  const range = HOST_ONLY_RANGES.find(([, list]) => list.check(address, type))?.[0]
  if (range) return range
  const mine = new BlockList()
  for (const ip of own) mine.addAddress(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6')
  return mine.check(address, type) ? 'runner\'s own' : undefined
}

/** The addresses of this machine's network interfaces, without IPv6 zone suffixes. */
export function ownAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap(list => list ?? [])
    .map(entry => entry.address.replace(/%.*$/, ''))
}

function ranges(...subnets: [string, 'ipv4' | 'ipv6'][]): BlockList {
  const list = new BlockList()
  for (const [subnet, type] of subnets) {
    const [network, prefix] = subnet.split('/')
    list.addSubnet(network, Number(prefix), type)
  }
  return list
}
