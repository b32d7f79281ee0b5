/** The run's own Docker networks: made per run, labelled with it, removed with it. */
import { createHash } from 'node:crypto'
import type Docker from 'dockerode'
import { connectEngine, engineFoundUnreachable } from '../sandbox/engine.js'
import { OWNER_LABEL, RUN_LABEL } from '../sandbox/container-config.js'
import { sweepFirewallRules } from './host-firewall.js'

/** `open`: a plain bridge with a way out; `allowlist`: internal, its only exit the proxy. */
export type RunNetworkKind = 'open' | 'allowlist'

/** A network made for one run. */
export interface CreatedNetwork {
  id: string
  name: string
  kind: RunNetworkKind
  /** the host's address on the network's bridge */
  gateway: string
  /** the bridge interface on the host, as Airlock named it, so firewall rules can name it */
  bridge: string
}

/**
 * A bridge interface name for the run: `alk`, a digest of the run id, the kind's initial and
 * `suffix`; at most the kernel's 15 characters, whatever the run id is.
 */
export function bridgeNameFor(runId: string, kind: RunNetworkKind, suffix: string): string {
  const digest = createHash('sha256').update(runId).digest('hex').slice(0, 8)
  return `alk${digest}${kind[0]}${suffix.slice(0, 3)}`
}

/** Creates one labelled bridge network for the run; `allowlist` makes it `Internal`. */
export async function createRunNetwork(docker: Docker, runId: string,
  kind: RunNetworkKind): Promise<CreatedNetwork> {
  const suffix = Math.random().toString(36).slice(2, 8)
  const name = `airlock-${runId.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 40)}-${kind}-${suffix}`
  const bridge = bridgeNameFor(runId, kind, suffix)
  const network = await docker.createNetwork({
    Name: name,
    Driver: 'bridge',
    CheckDuplicate: true,
    Internal: kind === 'allowlist',
    Labels: { [OWNER_LABEL]: '1', [RUN_LABEL]: runId },
    // One container per run: nothing on the bridge needs to talk to a neighbour.
    Options: { 'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.name': bridge }
  })
  try {
    const info = await network.inspect() as Docker.NetworkInspectInfo
    const gateway = info.IPAM?.Config?.find(c => c.Gateway && !c.Gateway.includes(':'))?.Gateway
    if (!gateway) throw new Error(`the engine gave network ${name} no IPv4 gateway address`)
    return { id: network.id, name, kind, gateway, bridge }
  } catch (error) {
    await network.remove().catch(() => undefined)
    throw error
  }
}

/**
 * Removes every network labelled with the run, first disconnecting anything still on it, and
 * then the run's host firewall rules; returns how many networks went. Call it after the run's
 * containers are gone. When a network cannot be removed its rules stay, still fencing it.
 */
export async function sweepNetworks(runId: string, docker?: Docker): Promise<number> {
  // An engine that did not answer moments ago holds nothing this run made; see sweepContainers.
  if (!docker && engineFoundUnreachable()) return 0
  const engine = docker ?? await connectEngine()
  const found = await engine.listNetworks({ filters: { label: [`${RUN_LABEL}=${runId}`] } })
  let removed = 0
  for (const info of found) {
    if (await removeNetwork(engine, info.Id)) removed++
  }
  await sweepFirewallRules(runId)
  return removed
}

/** Removes one network; `false` when it was already gone. */
export async function removeNetwork(docker: Docker, id: string): Promise<boolean> {
  const network = docker.getNetwork(id)
  try {
    const info = await network.inspect() as Docker.NetworkInspectInfo
    for (const container of Object.keys(info.Containers ?? {})) {
      await network.disconnect({ Container: container, Force: true }).catch(() => undefined)
    }
    await network.remove()
    return true
  } catch (error) {
    // Another sweep or the run's own cleanup may have got there first.
    if ((error as { statusCode?: number } | null)?.statusCode === 404) return false
    throw error
  }
}
