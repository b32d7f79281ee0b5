/**
 * The run's network across its phases. `setup` gets `setup-network`; the agent and then
 * `verify` get `network` (verify runs code the agent may have changed, so it gets no more
 * than the agent had). Between phases the container is moved: disconnected from the network
 * it is on and, when the next phase has one, connected to that.
 *
 * Docker cannot connect a container created with `NetworkMode: none` to any network, so
 * whenever some phase needs a network the container is created on a per-run network and
 * disconnected for the phases that have none; with no network left it keeps only `lo`.
 *
 * What holds for an allow-listed phase: the network is `Internal` (Docker forwards nothing
 * off it), and its bridge, named by Airlock, is fenced on the host by INPUT rules (see
 * `host-firewall.ts`) that let in only TCP to the proxy's port, so a service on the runner
 * that listens on the gateway or on every interface is out of reach over IPv4 and IPv6. The
 * proxy itself refuses names that resolve to loopback, link-local (cloud metadata included) or
 * unspecified addresses, or to any address of the runner's own interfaces. What does not
 * hold: other private addresses stay reachable through the proxy when a listed name resolves
 * to one (on purpose, for internal registries), so a listed name whose DNS an attacker
 * controls can lead to another machine on the runner's LAN; and an `open` phase is fenced by
 * nothing, as its name says. The firewall rules and the proxy's bridge address assume the
 * engine runs on this machine: with `DOCKER_HOST` naming another one, `allowlist` is refused.
 */
import type Docker from 'dockerode'
import type { AuditSink, Phase } from '../audit/types.js'
import type { NetworkMode, NetworkSettings } from '../settings.js'
import { connectEngine } from '../sandbox/engine.js'
import type { CommandOptions, Sandbox } from '../sandbox/types.js'
import { createRunNetwork, removeNetwork, type CreatedNetwork, type RunNetworkKind }
  from './docker-networks.js'
import { HostFirewall, type FirewallOptions } from './host-firewall.js'
import { AllowlistProxy, type ProxyOptions, type Resolver } from './proxy.js'

/** The phases that run commands in the sandbox. */
export type CommandPhase = Extract<Phase, 'setup' | 'agent' | 'verify'>

export interface RunNetworkOptions {
  settings: NetworkSettings
  /** without setup commands no setup network is made */
  hasSetup: boolean
  runId: string
  audit: AuditSink
  /** an engine already connected; default: connect as `connectEngine` does */
  docker?: Docker
  /** how the proxy resolves names; default the host's resolver */
  resolve?: Resolver
  /** ports the proxy lets listed hosts be reached on; default 80 and 443 */
  proxyPorts?: readonly number[]
  /** which resolved addresses the proxy refuses; default `hostAddressRefusal` */
  addressRefusal?: ProxyOptions['addressRefusal']
  /** how the host firewall is reached; default: iptables as root, else through `sudo -n` */
  firewall?: FirewallOptions
}

/** The networks and the proxy of one run; `close()` removes them. */
export class RunNetwork {
  /** the network to create the container on; `undefined` when no phase has one */
  readonly initial: string | undefined
  private readonly options: RunNetworkOptions
  private readonly docker: Docker
  private readonly networks: Map<RunNetworkKind, CreatedNetwork>
  private readonly proxy: AllowlistProxy | undefined
  private readonly firewall: HostFirewall | undefined
  /** shared with the proxy, which records its decisions under the current phase */
  private readonly current: { phase: CommandPhase }
  private attached: string | undefined

  private constructor(options: RunNetworkOptions, docker: Docker,
    networks: Map<RunNetworkKind, CreatedNetwork>, proxy: AllowlistProxy | undefined,
    firewall: HostFirewall | undefined, current: { phase: CommandPhase }) {
    this.options = options
    this.docker = docker
    this.networks = networks
    this.proxy = proxy
    this.firewall = firewall
    this.current = current
    const first = this.networkOf('setup') ?? this.networkOf('agent')
    this.initial = first?.name
    this.attached = first?.id
  }

  /**
   * Creates the networks the phases need and, for `allowlist`, starts the proxy and fences
   * the bridge on the host; refuses before creating anything when the fence cannot be built.
   */
  static async create(options: RunNetworkOptions): Promise<RunNetwork> {
    const kinds = new Set(phaseModes(options).filter(m => m !== 'none') as RunNetworkKind[])
    if (kinds.has('allowlist')) requireLocalEngine(process.env.DOCKER_HOST)
    const firewall = kinds.has('allowlist') ? await HostFirewall.open(options.firewall)
      : undefined
    const docker = options.docker ?? await connectEngine()
    const networks = new Map<RunNetworkKind, CreatedNetwork>()
    const current = { phase: 'setup' as CommandPhase }
    let proxy: AllowlistProxy | undefined
    try {
      for (const kind of kinds) networks.set(kind, await createRunNetwork(docker, options.runId,
        kind))
      const internal = networks.get('allowlist')
      if (internal && firewall) {
        proxy = await AllowlistProxy.create({ listenHost: internal.gateway,
          allowedHosts: options.settings.allowedHosts, ports: options.proxyPorts,
          audit: options.audit, phase: () => current.phase, resolve: options.resolve,
          addressRefusal: options.addressRefusal })
        await firewall.fenceBridge(internal.bridge, options.runId, internal.gateway, proxy.port)
      }
      return new RunNetwork(options, docker, networks, proxy, firewall, current)
    } catch (error) {
      await proxy?.close()
      for (const created of networks.values()) {
        await removeNetwork(docker, created.id).catch(() => undefined)
      }
      await firewall?.removeRules(options.runId).catch(() => undefined)
      throw error
    }
  }

  /** The proxy's URL, when the run has one. */
  get proxyUrl(): string | undefined {
    return this.proxy?.url
  }

  /**
   * Moves the container onto `phase`'s network (or off every network) and returns the
   * variables its commands need there: the proxy's address in the allow-listed phases.
   */
  async enter(phase: CommandPhase, containerId: string): Promise<Record<string, string>> {
    const target = this.networkOf(phase)?.id
    if (this.attached !== target) {
      if (this.attached) {
        await this.docker.getNetwork(this.attached).disconnect({ Container: containerId,
          Force: true })
        this.attached = undefined
      }
      if (target) {
        await this.docker.getNetwork(target).connect({ Container: containerId })
        this.attached = target
      }
    }
    this.current.phase = phase
    return this.environment(phase)
  }

  /** What commands of `phase` get: proxy variables when it is allow-listed, else nothing. */
  environment(phase: CommandPhase): Record<string, string> {
    if (modeOf(this.options, phase) !== 'allowlist' || !this.proxy) return {}
    const url = this.proxy.url
    return { HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url,
      NO_PROXY: '', no_proxy: '' }
  }

  /** One line for the audit log and the summary: each phase's network, `open` named as such. */
  describe(): string {
    const agent = describeMode(modeOf(this.options, 'agent'), this.options.settings, 'agent')
    if (!this.options.hasSetup) return agent
    return `${agent}; setup: ${describeMode(modeOf(this.options, 'setup'),
      this.options.settings, 'setup')}`
  }

  /**
   * Stops the proxy, removes the networks and then their firewall rules; call it once the
   * container is gone. A network that cannot be removed keeps its rules for the sweep.
   */
  async close(): Promise<void> {
    await this.proxy?.close()
    const failures: string[] = []
    for (const created of this.networks.values()) {
      try {
        await removeNetwork(this.docker, created.id)
      } catch (error) {
        failures.push(`${created.name}: ${error instanceof Error ? error.message : error}`)
      }
    }
    if (failures.length > 0) {
      throw new Error(`Removing the run's network failed (${failures.join('; ')}); the post `
        + 'step sweeps networks labelled with this run again.')
    }
    await this.firewall?.removeRules(this.options.runId)
  }

  private networkOf(phase: CommandPhase): CreatedNetwork | undefined {
    const mode = modeOf(this.options, phase)
    return mode === 'none' ? undefined : this.networks.get(mode)
  }
}

/** A view of `sandbox` whose commands also get `env` (their own variables win). */
export function withEnvironment(sandbox: Sandbox, env: Record<string, string>): Sandbox {
  if (Object.keys(env).length === 0) return sandbox
  return {
    containerId: sandbox.containerId,
    workdir: sandbox.workdir,
    image: sandbox.image,
    run: (command: string, options: CommandOptions = {}) =>
      sandbox.run(command, { ...options, env: { ...env, ...options.env } }),
    readFile: path => sandbox.readFile(path),
    writeFile: (path, content) => sandbox.writeFile(path, content),
    listFiles: dir => sandbox.listFiles(dir),
    extractChanges: () => sandbox.extractChanges(),
    remove: () => sandbox.remove()
  }
}

function modeOf(options: RunNetworkOptions, phase: CommandPhase): NetworkMode {
  return phase === 'setup' && options.hasSetup ? options.settings.setup : options.settings.agent
}

function phaseModes(options: RunNetworkOptions): NetworkMode[] {
  return [modeOf(options, 'setup'), modeOf(options, 'agent')]
}

/**
 * An `open` agent is the opt-out it is named; an `open` setup is the default, whose network
 * is gone before the agent's first command.
 */
function describeMode(mode: NetworkMode, settings: NetworkSettings, phase: CommandPhase): string {
  switch (mode) {
    case 'none': return 'none'
    case 'allowlist': return `allowlist (${settings.allowedHosts.join(', ')})`
    case 'open': return phase === 'setup' ? 'open (cut before the agent starts)'
      : 'open (opted out of isolation: any address is reachable)'
  }
}

/**
 * The allow-list's proxy listens on the run bridge's gateway and its fence is this machine's
 * firewall, so both must be where the engine is. A remote engine (`tcp://`, `ssh://`) is
 * refused with what to do; a Unix socket is taken to be this machine's.
 */
export function requireLocalEngine(dockerHost: string | undefined): void {
  if (!dockerHost || dockerHost.startsWith('unix://')) return
  throw new Error(`\`allowlist\` networking needs the Docker engine on this machine (its proxy `
    + `and firewall rules live here), but DOCKER_HOST is ${dockerHost}. Run the engine `
    + 'locally, or set `network` and `setup-network` to `none` or `open`.')
}
