import { afterEach, describe, expect, test } from '@jest/globals'
import { rmSync } from 'node:fs'
import Docker from 'dockerode'
import { RunNetwork, sweepNetworks, withEnvironment } from '../src/network/index.js'
import { runCommands } from '../src/phases.js'
import type { Reporter } from '../src/reporter.js'
import { startSandbox, sweepContainers } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import type { NetworkSettings } from '../src/settings.js'
import { containersOf, makeRepo, testRunId, testSandboxSettings }
  from './helpers/docker-sandbox.js'
import { CollectingSink, startOrigin, type Origin } from './helpers/network-servers.js'

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
  let network: RunNetwork | undefined
  let sandbox: Sandbox | undefined

  afterEach(async () => {
    await sandbox?.remove()
    await network?.close()
    await origin?.close()
    await sweepContainers(runId)
    await sweepNetworks(runId)
    expect(await containersOf(runId)).toEqual([])
    expect(await networksOf(runId)).toEqual([])
    rmSync(repo, { recursive: true, force: true })
    sandbox = network = origin = undefined
  })

  async function start(settings: NetworkSettings, hasSetup: boolean,
    extra: { resolve?: (host: string) => Promise<string>; proxyPorts?: number[] } = {},
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
      origin = await startOrigin('127.0.0.1', 'listed origin says hi\n')
      const audit = new CollectingSink()
      const { net, box } = await start({ setup: 'open', agent: 'allowlist',
        allowedHosts: ['pkg.test'] }, false, {
        proxyPorts: [origin.port],
        resolve: async host => {
          if (host === 'pkg.test') return '127.0.0.1'
          throw new Error(`the test resolver knows no ${host}`)
        }
      }, audit)
      const [internal] = await networksOf(runId)
      expect(internal.Internal).toBe(true)
      expect(new URL(net.proxyUrl as string).hostname).toBe(internal.IPAM?.Config?.[0]?.Gateway)

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

      // Past the proxy nothing leaves: no direct connection, no name resolution.
      const direct = await agentBox.run(`curl -sS -m 5 --noproxy '*' http://127.0.0.1:${
        origin.port}/direct`)
      expect(direct.exitCode).not.toBe(0)
      const directGateway = await agentBox.run(`curl -sS -m 5 --noproxy '*' http://${
        new URL(net.proxyUrl as string).hostname}:${origin.port}/direct`)
      expect(directGateway.exitCode).not.toBe(0)
      expect(origin.paths).toEqual(['/a', '/b'])
      const dns = await agentBox.run('getent hosts example.com || echo no-dns; '
        + 'getent hosts pkg.test || echo no-dns-for-listed', { timeoutSeconds: 60 })
      expect(dns.stdout.text).toBe('no-dns\nno-dns-for-listed\n')

      const decisions = audit.decisions().map(d => [d.phase, d.method, d.host, d.allowed])
      expect(decisions).toEqual([
        ['agent', 'GET', 'pkg.test', true],
        ['agent', 'CONNECT', 'pkg.test', true],
        ['agent', 'GET', 'example.org', false],
        ['agent', 'CONNECT', 'example.org', false]
      ])
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

  test('the sweep removes a run\'s networks even with a container still on them', async () => {
    const { box } = await start({ setup: 'open', agent: 'allowlist', allowedHosts: ['a.test'] },
      true)
    expect((await networksOf(runId)).length).toBe(2)
    expect(box.containerId).toBeTruthy()
    expect(await sweepNetworks(runId)).toBe(2)
    expect(await networksOf(runId)).toEqual([])
  })
})
