/** The run's network: per-phase Docker networks, the allow-list proxy, and their sweep. */
export { RunNetwork, withEnvironment, type CommandPhase, type RunNetworkOptions }
  from './run-network.js'
export { AllowlistProxy, type ProxyOptions, type Resolver } from './proxy.js'
export { sweepNetworks, createRunNetwork, type CreatedNetwork, type RunNetworkKind }
  from './docker-networks.js'
export { hostAllowed, parseAuthority, parseAbsoluteUri, DEFAULT_PORTS, type Destination }
  from './hosts.js'
