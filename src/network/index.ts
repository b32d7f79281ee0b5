/**
 * The run's network: per-phase Docker networks, the allow-list proxy, the host firewall rules
 * that fence its bridge, and their sweep.
 */
export { RunNetwork, withEnvironment, type CommandPhase, type RunNetworkOptions }
  from './run-network.js'
export { AllowlistProxy, type ProxyOptions, type Resolver } from './proxy.js'
export { sweepNetworks, createRunNetwork, bridgeNameFor, type CreatedNetwork,
  type RunNetworkKind } from './docker-networks.js'
export { HostFirewall, sweepFirewallRules, firewallTag, type FirewallOptions }
  from './host-firewall.js'
export { hostAllowed, hostAddressRefusal, parseAuthority, parseAbsoluteUri, DEFAULT_PORTS,
  type Destination } from './hosts.js'
