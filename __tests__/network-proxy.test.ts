import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { get } from 'node:http'
import { AllowlistProxy } from '../src/network/proxy.js'
import { hostAddressRefusal, hostAllowed, ownAddresses, parseAbsoluteUri, parseAuthority }
  from '../src/network/hosts.js'
import { CollectingSink, rawExchange, startOrigin, type Origin }
  from './helpers/network-servers.js'

describe('allowed-hosts matching', () => {
  test('exact names and *.domain patterns, case-insensitively', () => {
    const patterns = ['registry.npmjs.org', '*.example.com']
    expect(hostAllowed('registry.npmjs.org', patterns)).toBe(true)
    expect(hostAllowed('REGISTRY.NPMJS.ORG.', patterns)).toBe(true)
    expect(hostAllowed('a.example.com', patterns)).toBe(true)
    expect(hostAllowed('a.b.Example.com', patterns)).toBe(true)
    expect(hostAllowed('example.com', patterns)).toBe(false)
    expect(hostAllowed('evilexample.com', patterns)).toBe(false)
    expect(hostAllowed('registry.npmjs.org.evil.net', patterns)).toBe(false)
    expect(hostAllowed('npmjs.org', patterns)).toBe(false)
  })

  test('CONNECT targets and absolute URIs are read strictly', () => {
    expect(parseAuthority('Example.com:443')).toEqual({ host: 'example.com', port: 443 })
    expect(parseAuthority('[::1]:8443')).toEqual({ host: '::1', port: 8443 })
    expect(parseAuthority('example.com')).toBeUndefined()
    expect(parseAuthority('user@example.com:443')).toBeUndefined()
    expect(parseAuthority('example.com:99999')).toBeUndefined()
    expect(parseAbsoluteUri('http://a.example.com/x?y')).toEqual({ host: 'a.example.com',
      port: 80 })
    expect(parseAbsoluteUri('http://a.example.com:8080/')).toEqual({ host: 'a.example.com',
      port: 8080 })
    expect(parseAbsoluteUri('/relative')).toBeUndefined()
    expect(parseAbsoluteUri('ftp://a.example.com/')).toBeUndefined()
  })

  test('the host\'s own addresses are refused; private and public ones pass', () => {
    const refusals = ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      '169.254.169.254', 'fe80::1', 'febf::ffff', '::ffff:169.254.169.254', '0.0.0.0', '::',
      'localhost'].map(a => [a, hostAddressRefusal(a)])
    expect(refusals).toEqual([['127.0.0.1', 'loopback'], ['127.8.9.10', 'loopback'],
      ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'],
      ['169.254.169.254', 'link-local'], ['fe80::1', 'link-local'], ['febf::ffff', 'link-local'],
      ['::ffff:169.254.169.254', 'link-local'], ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'], ['localhost', 'not an IP']])
    for (const address of ['10.1.2.3', '172.18.0.1', '192.168.1.1', 'fd00::1', '8.8.8.8',
      '2001:db8::1', 'fec0::1', '169.255.0.1']) {
      expect(hostAddressRefusal(address, [])).toBeUndefined()
    }
  })

  test('an address of the runner\'s own interfaces is refused, in any form', () => {
    const own = ['172.17.0.1', '10.0.2.15', 'fd00::5']
    expect(['172.17.0.1', '::ffff:172.17.0.1', '::ffff:ac11:1', '10.0.2.15', 'fd00::5',
      'fd00:0::5', '172.17.0.2'].map(a => hostAddressRefusal(a, own))).toEqual([
      "runner's own", "runner's own", "runner's own", "runner's own", "runner's own",
      "runner's own", undefined])
    // By default, the interfaces as they are now (the tests' machine has more than loopback).
    const [first] = ownAddresses().filter(a => !a.startsWith('127.') && a !== '::1'
      && !a.startsWith('fe80:'))
    expect(first).toBeDefined()
    expect(hostAddressRefusal(first)).toBe("runner's own")
  })
})

/**
 * Loopback is the one address a unit test may serve an origin on, so most proxies here let
 * 127.0.0.1 through; the one with the default check shows it refused.
 */
const loopbackOrigin = (address: string): string | undefined =>
  address === '127.0.0.1' ? undefined : hostAddressRefusal(address)

describe('the allow-list proxy', () => {
  let origin: Origin
  let proxy: AllowlistProxy
  let port: number
  const audit = new CollectingSink()
  let phase: 'setup' | 'agent' = 'agent'
  const resolved: string[] = []

  beforeAll(async () => {
    origin = await startOrigin('127.0.0.1', 'hello from the origin')
    proxy = await AllowlistProxy.create({
      listenHost: '127.0.0.1', allowedHosts: ['pkg.test', '*.mirror.test'],
      ports: [origin.port], audit, phase: () => phase,
      // Listed test names map to the loopback origin; nothing reaches a real resolver.
      resolve: async host => {
        resolved.push(host)
        if (host === 'pkg.test' || host.endsWith('.mirror.test')) return '127.0.0.1'
        throw new Error(`no such test host ${host}`)
      },
      addressRefusal: loopbackOrigin
    })
    port = Number(new URL(proxy.url).port)
  })
  afterAll(async () => {
    await proxy.close()
    await origin.close()
  })

  const viaProxy = (url: string): Promise<{ status: number; reason: string; body: string }> =>
    new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: url, headers: { host: new URL(url).host } }, res => {
        let body = ''
        res.on('data', c => { body += c })
        res.on('end', () => resolve({ status: res.statusCode ?? 0,
          reason: res.statusMessage ?? '', body }))
      }).on('error', reject)
    })

  test('forwards a plain request to a listed host, with the Host header of the allowed URL',
    async () => {
      const answer = await viaProxy(`http://pkg.test:${origin.port}/pkg.tgz`)
      expect(answer).toMatchObject({ status: 200, body: 'hello from the origin' })
      expect(origin.paths.at(-1)).toBe('/pkg.tgz')
      expect(origin.hosts.at(-1)).toBe(`pkg.test:${origin.port}`)
      expect(audit.decisions().at(-1)).toEqual({ type: 'network', phase: 'agent',
        host: 'pkg.test', port: origin.port, allowed: true, method: 'GET',
        address: '127.0.0.1' })
      // Resolved once: the address checked is the address connected to.
      expect(resolved.filter(h => h === 'pkg.test')).toEqual(['pkg.test'])
    })

  test('refuses an unlisted host with a 403 the agent can read, and never resolves it',
    async () => {
      const before = resolved.length
      const answer = await viaProxy(`http://example.org:${origin.port}/`)
      expect(answer.status).toBe(403)
      expect(answer.body).toBe('airlock: example.org is not in allowed-hosts\n')
      expect(resolved.length).toBe(before)
      expect(audit.decisions().at(-1)).toMatchObject({ host: 'example.org', allowed: false,
        method: 'GET' })
    })

  test('refuses a listed host on a port that is not open', async () => {
    const answer = await viaProxy('http://pkg.test:22/')
    expect(answer.status).toBe(403)
    expect(answer.body).toContain('port 22 of pkg.test is not allowed')
  })

  test('tunnels CONNECT to a listed host and refuses it to an unlisted one', async () => {
    phase = 'setup'
    const tunnelled = await rawExchange(port, '127.0.0.1',
      `CONNECT a.mirror.test:${origin.port} HTTP/1.1\r\nHost: a.mirror.test\r\n\r\n`
      + `GET /through HTTP/1.1\r\nHost: a.mirror.test\r\nConnection: close\r\n\r\n`,
      'hello from the origin')
    expect(tunnelled).toMatch(/^HTTP\/1\.1 200 /)
    expect(tunnelled).toContain('hello from the origin')
    expect(origin.paths.at(-1)).toBe('/through')
    expect(audit.decisions().at(-1)).toMatchObject({ phase: 'setup', host: 'a.mirror.test',
      allowed: true, method: 'CONNECT' })

    const refused = await rawExchange(port, '127.0.0.1',
      'CONNECT mirror.test.evil.net:443 HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(refused).toMatch(
      /^HTTP\/1\.1 403 airlock: mirror\.test\.evil\.net is not in allowed-hosts\r\n/)
    expect(audit.decisions().at(-1)).toMatchObject({ host: 'mirror.test.evil.net',
      port: 443, allowed: false, method: 'CONNECT' })
    phase = 'agent'
  })

  test('a request that is not a proxy request gets a clear 400, and is logged', async () => {
    const answer = await rawExchange(port, '127.0.0.1',
      'GET /not-absolute HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(answer).toContain('this is a proxy')
    expect(audit.decisions().at(-1)).toMatchObject({ host: '/not-absolute', port: 0,
      allowed: false, method: 'GET' })
    const tunnel = await rawExchange(port, '127.0.0.1',
      'CONNECT no-port-here HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(tunnel).toMatch(/^HTTP\/1\.1 400 /)
    expect(audit.decisions().at(-1)).toMatchObject({ host: 'no-port-here', port: 0,
      allowed: false, method: 'CONNECT' })
  })

  test('a listed host that cannot be resolved or reached gives a 502 naming it', async () => {
    const other = await AllowlistProxy.create({ listenHost: '127.0.0.1',
      allowedHosts: ['gone.test', 'unknown.test'], ports: [1], audit, phase: () => 'agent',
      resolve: async host => {
        if (host === 'gone.test') return '127.0.0.1'
        throw new Error(`no such test host ${host}`)
      }, addressRefusal: loopbackOrigin })
    const otherPort = Number(new URL(other.url).port)
    try {
      const closed = await rawExchange(otherPort, '127.0.0.1',
        'CONNECT gone.test:1 HTTP/1.1\r\nHost: x\r\n\r\n')
      expect(closed).toMatch(/^HTTP\/1\.1 502 airlock: gone\.test:1 failed/)
      const unknown = await rawExchange(otherPort, '127.0.0.1',
        'GET http://unknown.test:1/ HTTP/1.1\r\nHost: unknown.test\r\n\r\n')
      expect(unknown).toMatch(/^HTTP\/1\.1 502 airlock: cannot resolve unknown\.test: no such/)
    } finally {
      await other.close()
    }
  })

  test('a listed name that resolves to the host itself is refused, and nothing connects',
    async () => {
      const answers: Record<string, string> = { 'lo.test': '127.0.0.1',
        'mapped.test': '::ffff:127.0.0.1', 'metadata.test': '169.254.169.254',
        'link.test': 'fe80::1', 'zero.test': '0.0.0.0' }
      const lookups: string[] = []
      const strict = await AllowlistProxy.create({ listenHost: '127.0.0.1',
        allowedHosts: ['*.test'], ports: [origin.port, 80], audit, phase: () => 'agent',
        resolve: async host => {
          lookups.push(host)
          return answers[host]
        } })
      const strictPort = Number(new URL(strict.url).port)
      const served = origin.paths.length
      try {
        const plain = await rawExchange(strictPort, '127.0.0.1',
          `GET http://lo.test:${origin.port}/x HTTP/1.1\r\nHost: lo.test\r\n\r\n`)
        expect(plain).toMatch(/^HTTP\/1\.1 403 airlock: lo\.test resolves to 127\.0\.0\.1, a /)
        expect(plain).toContain('airlock: lo.test resolves to 127.0.0.1, a loopback address: '
          + 'the proxy does not connect to the runner itself\n')
        for (const [host, kind] of [['mapped.test', 'loopback'], ['lo.test', 'loopback'],
          ['metadata.test', 'link-local'], ['link.test', 'link-local'],
          ['zero.test', 'unspecified']]) {
          const tunnel = await rawExchange(strictPort, '127.0.0.1',
            `CONNECT ${host}:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`)
          expect(tunnel).toMatch(new RegExp(`^HTTP/1\\.1 403 airlock: ${host.replace('.', '\\.')
          } resolves to \\S+, a ${kind} address`))
        }
        expect(origin.paths.length).toBe(served)
        expect(lookups).toEqual(['lo.test', 'mapped.test', 'lo.test', 'metadata.test',
          'link.test', 'zero.test'])
        expect(audit.decisions().slice(-6).map(d => [d.method, d.host, d.address, d.allowed]))
          .toEqual([['GET', 'lo.test', '127.0.0.1', false],
            ['CONNECT', 'mapped.test', '::ffff:127.0.0.1', false],
            ['CONNECT', 'lo.test', '127.0.0.1', false],
            ['CONNECT', 'metadata.test', '169.254.169.254', false],
            ['CONNECT', 'link.test', 'fe80::1', false],
            ['CONNECT', 'zero.test', '0.0.0.0', false]])
      } finally {
        await strict.close()
      }
    })

  test('will not listen on every interface', async () => {
    await expect(AllowlistProxy.create({ listenHost: '0.0.0.0', allowedHosts: [], audit,
      phase: () => 'agent' })).rejects.toThrow(/open relay/)
  })
})
