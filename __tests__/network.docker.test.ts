import { afterEach, describe, expect, test } from '@jest/globals'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { hostAddressRefusal, HostFirewall, RunNetwork, sweepNetworks, withEnvironment,
  type RunNetworkOptions } from '../src/network/index.js'
import { runCommands } from '../src/phases.js'
import type { Reporter } from '../src/reporter.js'
import { startSandbox, sweepContainers } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import type { NetworkSettings } from '../src/settings.js'
import { eventValidator } from './helpers/audit-files.js'
import { containersOf, makeRepo, testRunId, testSandboxSettings }
  from './helpers/docker-sandbox.js'
import { CollectingSink, createTestNetwork, firewallRulesOf, startListener, startOrigin,
  type Listener, type Origin, type TestNetwork } from './helpers/network-servers.js'

const docker = new Docker()
const quiet: Reporter = { group: (_name, body) => body(), info: () => undefined,
  warning: () => undefined, progress: () => undefined }

async function networksOf(runId: string): Promise<Docker.NetworkInspectInfo[]> {
  return docker.listNetworks({ filters: { label: [`airlock.run=${runId}`] } })
}

describe('the run network against the real engine', () => {
  let runId = ''
  let repo = ''
  let origin: Origin | undefined
  let originNet: TestNetwork | undefined
  let listeners: Listener[] = []
  let network: RunNetwork | undefined
  let sandbox: Sandbox | undefined

  afterEach(async () => {
    await sandbox?.remove()
    await network?.close()
    await origin?.close()
    await Promise.all(listeners.map(l => l.close()))
    await originNet?.remove()
    await sweepContainers(runId)
    await sweepNetworks(runId)
    expect(await containersOf(runId)).toEqual([])
    expect(await networksOf(runId)).toEqual([])
    expect(firewallRulesOf(runId)).toEqual([])
    if (repo) rmSync(repo, { recursive: true, force: true })
    sandbox = network = origin = originNet = undefined
    listeners = []
    repo = ''
  })

  async function start(settings: NetworkSettings, hasSetup: boolean,
    extra: Pick<RunNetworkOptions, 'resolve' | 'proxyPorts' | 'addressRefusal'> = {},
    audit = new CollectingSink()): Promise<{ net: RunNetwork; box: Sandbox }> {
    runId = testRunId('network')
    repo = makeRepo()
    network = await RunNetwork.create({ settings, hasSetup, runId, audit, docker, ...extra })
    return { net: network, box: await boxOn(network) }
  }

  async function boxOn(net: RunNetwork): Promise<Sandbox> {
    sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId,
      network: net.initial, docker })
    return sandbox
  }

  test('setup downloads from a package server on the host; the agent then cannot reach it',
    async () => {
      runId = testRunId('network-setup')
      repo = makeRepo()
      network = await RunNetwork.create({ settings: { setup: 'open', agent: 'none',
        allowedHosts: [] }, hasSetup: true, runId, audit: new CollectingSink(), docker })
      const [created] = await networksOf(runId)
      expect(created.Internal).toBe(false)
      const gateway = created.IPAM?.Config?.[0]?.Gateway as string
      // The package server listens only on the bridge address of the run's own network.
      origin = await startOrigin(gateway, 'echo installed-tool-v1\n')
      const url = `http://${gateway}:${origin.port}/tool.sh`
      const box = await boxOn(network)

      const setupEnv = await network.enter('setup', box.containerId)
      expect(setupEnv).toEqual({})
      const setup = await runCommands(box, [`curl -fsS -m 10 -o tool.sh ${url}`, 'sh tool.sh'],
        'setup', 30, new CollectingSink(), quiet, setupEnv)
      expect(setup.passed).toBe(true)
      expect(setup.tail).toBe('installed-tool-v1')
      expect(origin.paths).toEqual(['/tool.sh'])

      const agentBox = withEnvironment(box, await network.enter('agent', box.containerId))
      const after = await agentBox.run(`curl -fsS -m 20 ${url}`)
      expect(after.exitCode).not.toBe(0)
      // No route at all: the failure is immediate, not a 20 s timeout.
      expect(after.durationMs).toBeLessThan(5000)
      expect(after.stderr.text).toMatch(/unreachable|Couldn't connect|Failed to connect/i)
      expect(origin.paths).toEqual(['/tool.sh'])
      const interfaces = await agentBox.run('cat /proc/net/dev')
      expect(interfaces.stdout.text).toMatch(/\blo:/)
      expect(interfaces.stdout.text).not.toMatch(/\beth\d+:/)
      // What setup installed stays in the workspace for the agent.
      expect((await agentBox.readFile('tool.sh')).toString()).toBe('echo installed-tool-v1\n')
    })

  test('allow-list: a listed host answers through the proxy, others are refused and logged',
    async () => {
      // The origin serves on the gateway of a network of the test's own, the one kind of
      // address a test may serve on besides loopback. That is a runner's address, which the
      // proxy refuses, so the proxy here exempts exactly that one address and applies its
      // usual check to every other (the run bridge's gateway below is refused by it).
      originNet = await createTestNetwork(docker, 'network-origin')
      const originAddress = originNet.gateway
      origin = await startOrigin(originAddress, 'listed origin says hi\n')
      const audit = new CollectingSink()
      let gateway = ''
      const { net, box } = await start({ setup: 'open', agent: 'allowlist',
        allowedHosts: ['pkg.test', 'lo.test', 'own.test'] }, false, {
        proxyPorts: [origin.port],
        addressRefusal: address => address === originAddress ? undefined
          : hostAddressRefusal(address),
        resolve: async host => {
          if (host === 'pkg.test') return originAddress
          if (host === 'lo.test') return '127.0.0.1'
          if (host === 'own.test') return gateway
          throw new Error(`the test resolver knows no ${host}`)
        }
      }, audit)
      const [internal] = await networksOf(runId)
      expect(internal.Internal).toBe(true)
      gateway = internal.IPAM?.Config?.[0]?.Gateway as string
      expect(new URL(net.proxyUrl as string).hostname).toBe(gateway)
      const bridge = internal.Options?.['com.docker.network.bridge.name'] as string
      expect(bridge).toMatch(/^alk[0-9a-f]{8}a[0-9a-z]{1,3}$/)
      expect(bridge.length).toBeLessThanOrEqual(15)

      const env = await net.enter('agent', box.containerId)
      expect(env).toEqual({ HTTP_PROXY: net.proxyUrl, HTTPS_PROXY: net.proxyUrl,
        http_proxy: net.proxyUrl, https_proxy: net.proxyUrl, NO_PROXY: '', no_proxy: '' })
      const agentBox = withEnvironment(box, env)

      const listed = await agentBox.run(`curl -fsS -m 10 http://pkg.test:${origin.port}/a`)
      expect(listed.stdout.text).toBe('listed origin says hi\n')
      const tunnel = await agentBox.run(
        `curl -fsS -m 10 --proxytunnel http://PKG.test:${origin.port}/b`)
      expect(tunnel.stdout.text).toBe('listed origin says hi\n')
      expect(origin.paths).toEqual(['/a', '/b'])

      const unlisted = await agentBox.run(`curl -sS -m 10 http://example.org:${origin.port}/`)
      expect(unlisted.stdout.text).toBe('airlock: example.org is not in allowed-hosts\n')
      const unlistedTls = await agentBox.run('curl -sS -v -m 10 https://example.org/')
      expect(unlistedTls.exitCode).not.toBe(0)
      expect(unlistedTls.stderr.text).toContain('403 airlock: example.org is not in '
        + 'allowed-hosts')
      const loopback = await agentBox.run(`curl -sS -m 10 http://lo.test:${origin.port}/`)
      expect(loopback.stdout.text).toBe('airlock: lo.test resolves to 127.0.0.1, a loopback '
        + 'address: the proxy does not connect to the runner itself\n')
      const own = await agentBox.run(`curl -sS -m 10 http://own.test:${origin.port}/`)
      expect(own.stdout.text).toBe(`airlock: own.test resolves to ${gateway}, a runner's own `
        + 'address: the proxy does not connect to the runner itself\n')

      // Past the proxy nothing leaves, and nothing reaches the host: not a listener on the
      // gateway, nor one on the bridge's IPv6 link-local address, nor the origin on another
      // bridge's address. (The fence drops by the interface a packet arrives on, so a service
      // bound to every interface is shut out the same way; listeners stay on the test's own
      // addresses.) The proxy's own port answers, so the probe itself works.
      const onGateway = await startListener(gateway)
      const linkLocal = networkInterfaces()[bridge]?.find(a => a.family === 'IPv6'
        && a.address.startsWith('fe80:'))?.address
      expect(linkLocal).toBeDefined()
      const onLinkLocal = await startListener(`${linkLocal}%${bridge}`)
      listeners = [onGateway, onLinkLocal]
      const proxyPort = new URL(net.proxyUrl as string).port
      const targets = [`${gateway}/${proxyPort}`, `${gateway}/${onGateway.port}`,
        `${linkLocal}%eth0/${onLinkLocal.port}`, `${originAddress}/${origin.port}`]
      const probes = await agentBox.run(targets.map(t => `(timeout 4 bash -c `
        + `'echo x > /dev/tcp/${t}' 2>/dev/null && echo "${t} open" || echo "${t} shut") &`)
        .join('\n') + '\nwait', { timeoutSeconds: 30 })
      expect(probes.stdout.text.trim().split('\n').sort()).toEqual([
        `${gateway}/${proxyPort} open`, ...targets.slice(1).map(t => `${t} shut`)].sort())
      expect(listeners.map(l => l.seen)).toEqual([[], []])
      const direct = await agentBox.run(`curl -sS -m 5 --noproxy '*' http://${
        originAddress}:${origin.port}/direct`)
      expect(direct.exitCode).not.toBe(0)
      expect(origin.paths).toEqual(['/a', '/b'])
      const dns = await agentBox.run('getent hosts example.com || echo no-dns; '
        + 'getent hosts pkg.test || echo no-dns-for-listed', { timeoutSeconds: 60 })
      expect(dns.stdout.text).toBe('no-dns\nno-dns-for-listed\n')

      const decisions = audit.decisions().map(d => [d.phase, d.method, d.host, d.allowed])
      expect(decisions).toEqual([
        ['agent', 'GET', 'pkg.test', true],
        ['agent', 'CONNECT', 'pkg.test', true],
        ['agent', 'GET', 'example.org', false],
        ['agent', 'CONNECT', 'example.org', false],
        ['agent', 'GET', 'lo.test', false],
        ['agent', 'GET', 'own.test', false]
      ])
      expect(audit.decisions().filter(d => d.address).map(d => [d.host, d.address]))
        .toEqual([['pkg.test', originAddress], ['pkg.test', originAddress],
          ['lo.test', '127.0.0.1'], ['own.test', gateway]])
      // The decisions as the audit log stores them match the published schema.
      expect(schemaErrorsOf(audit.decisions())).toEqual([])

      // The fence is rules tagged with the run, and closing the run takes them away.
      const rules = firewallRulesOf(runId)
      expect(rules).toHaveLength(4)
      expect(rules.every(r => r.includes(`-i ${bridge} `))).toBe(true)
      expect(rules.filter(r => r.endsWith('-j DROP'))).toHaveLength(2)
      expect(rules.filter(r => r.includes(`-d ${gateway}/32 -i ${bridge} -p tcp -m tcp `
        + `--dport ${proxyPort} `) && r.endsWith('-j ACCEPT'))).toHaveLength(1)
      await sandbox?.remove()
      sandbox = undefined
      await net.close()
      expect(firewallRulesOf(runId)).toEqual([])
      expect(await networksOf(runId)).toEqual([])
    })

  test('setup with no network and an open agent: moved from nothing onto the bridge',
    async () => {
      const { net, box } = await start({ setup: 'none', agent: 'open', allowedHosts: [] },
        true)
      expect(net.describe()).toBe('open (opted out of isolation: any address is reachable); '
        + 'setup: none')
      await net.enter('setup', box.containerId)
      const during = await box.run('cat /proc/net/dev')
      expect(during.stdout.text).not.toMatch(/\beth\d+:/)
      await net.enter('agent', box.containerId)
      const after = await box.run('cat /proc/net/dev')
      expect(after.stdout.text).toMatch(/\beth\d+:/)
      const [bridge] = await networksOf(runId)
      expect(bridge.Internal).toBe(false)
    })

  test('no network anywhere: nothing is created and the container has only lo', async () => {
    const { net, box } = await start({ setup: 'open', agent: 'none', allowedHosts: [] }, false)
    expect(net.initial).toBeUndefined()
    expect(await networksOf(runId)).toEqual([])
    expect(await net.enter('agent', box.containerId)).toEqual({})
    const interfaces = await box.run('cat /proc/net/dev')
    expect(interfaces.stdout.text).not.toMatch(/\beth\d+:/)
  })

  test('the sweep removes a run\'s networks even with a container still on them, and the '
    + 'firewall rules they leave', async () => {
    const { box } = await start({ setup: 'open', agent: 'allowlist', allowedHosts: ['a.test'] },
      true)
    expect((await networksOf(runId)).length).toBe(2)
    expect(box.containerId).toBeTruthy()
    expect(firewallRulesOf(runId)).toHaveLength(4)
    expect(await sweepNetworks(runId)).toBe(2)
    expect(await networksOf(runId)).toEqual([])
    expect(firewallRulesOf(runId)).toEqual([])
  })

  test('an allow-list that cannot be fenced is refused before anything is made', async () => {
    runId = testRunId('network-unfenced')
    const bin = mkdtempSync(join(tmpdir(), 'airlock-sudo-'))
    try {
      // A sudo that wants a password, as on a runner without passwordless sudo.
      const sudo = join(bin, 'sudo')
      writeFileSync(sudo, '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n')
      chmodSync(sudo, 0o755)
      const settings: NetworkSettings = { setup: 'allowlist', agent: 'none',
        allowedHosts: ['a.test'] }
      await expect(RunNetwork.create({ settings, hasSetup: true, runId,
        audit: new CollectingSink(), docker, firewall: { root: false, sudo } })).rejects.toThrow(
        /`sudo -n iptables` \(not root\) failed for iptables: sudo: a password is required\. Run on a runner with root or passwordless sudo.*`none`.*`open`/)
      expect(await networksOf(runId)).toEqual([])
      // An engine elsewhere cannot be fenced from here either; nothing is sent to it.
      const savedHost = process.env.DOCKER_HOST
      process.env.DOCKER_HOST = 'tcp://engine.invalid:2376'
      try {
        await expect(RunNetwork.create({ settings, hasSetup: true, runId,
          audit: new CollectingSink(), docker })).rejects.toThrow(
          /needs the Docker engine on this machine .*DOCKER_HOST is tcp:\/\/engine\.invalid/)
      } finally {
        if (savedHost === undefined) delete process.env.DOCKER_HOST
        else process.env.DOCKER_HOST = savedHost
      }
      expect(await networksOf(runId)).toEqual([])
      await expect(HostFirewall.open({ root: false, sudo: join(bin, 'missing') })).rejects
        .toThrow(/failed for iptables: .*missing was not found/)
      // A sudo that lets the command through: the rules go through it when not root.
      writeFileSync(sudo, '#!/bin/sh\n[ "$1" = -n ] || exit 1\nshift\nexec "$@"\n')
      network = await RunNetwork.create({ settings, hasSetup: true, runId,
        audit: new CollectingSink(), docker, firewall: { root: false, sudo } })
      expect(firewallRulesOf(runId)).toHaveLength(4)
      await network.close()
      network = undefined
      expect(firewallRulesOf(runId)).toEqual([])
    } finally {
      rmSync(bin, { recursive: true, force: true })
    }
  })
})

/** Schema errors of `events` written as audit lines (the envelope filled in), by position. */
function schemaErrorsOf(events: readonly object[]): unknown[] {
  const validate = eventValidator()
  const zeros = '0'.repeat(64)
  return events.flatMap((event, i) => validate({ seq: i + 1, time: new Date().toISOString(),
    run: 'schema-check', ...event, prev: zeros, hash: zeros }) ? [] : [{ i, e: validate.errors }])
}
