/**
 * Host firewall rules that keep a container on an allow-listed network off the runner's own
 * services. Docker's `Internal` flag filters forwarded traffic only: a packet addressed to the
 * host itself (the gateway, or any host address, reached through the bridge) goes through the
 * INPUT chain, which Docker leaves open. So each allow-listed bridge gets its own INPUT rules:
 * TCP to the proxy's port on the gateway and replies to what the host started are accepted,
 * everything else arriving on that bridge is dropped, over IPv4 and (when the kernel has it)
 * IPv6. Every rule carries a comment naming the run, so a sweep finds what a crash left.
 *
 * The rules need root: iptables runs directly when the process is root, else as
 * `sudo -n iptables`. Without either the run is refused before anything is created.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** How to reach iptables; the defaults look at the process and the host. */
export interface FirewallOptions {
  /** whether to run iptables directly; default: whether the process runs as root */
  root?: boolean
  /** the sudo to use when not root; default `sudo` on PATH */
  sudo?: string
  /** whether IPv6 rules are needed too; default: whether the kernel has IPv6 */
  ipv6?: boolean
}

/** The comment every rule of `runId` carries: one shell-safe word, so `-S` output splits. */
export function firewallTag(runId: string): string {
  return `airlock-run:${runId.replace(/[^a-zA-Z0-9_.:=-]/g, '-').slice(0, 200)}`
}

/** iptables (and ip6tables) as this process can run them; `open()` checks that it can. */
export class HostFirewall {
  private readonly prefix: string[]
  private readonly ipv6: boolean

  private constructor(prefix: string[], ipv6: boolean) {
    this.prefix = prefix
    this.ipv6 = ipv6
  }

  /**
   * Finds a way to run iptables and checks it works; throws, saying what is missing and what
   * to do, when neither root nor passwordless sudo is there.
   */
  static async open(options: FirewallOptions = {}): Promise<HostFirewall> {
    const root = options.root ?? process.getuid?.() === 0
    const ipv6 = options.ipv6 ?? existsSync('/proc/sys/net/ipv6')
    const firewall = new HostFirewall(root ? [] : [options.sudo ?? 'sudo', '-n'], ipv6)
    const how = root ? 'iptables (running as root)' : '`sudo -n iptables` (not root)'
    for (const tool of firewall.tools()) {
      try {
        await firewall.exec(tool, ['-S', 'INPUT'])
      } catch (error) {
        throw new Error('`allowlist` networking keeps the container off the runner\'s own '
          + `services with host firewall rules, and ${how} failed for ${tool}: `
          + `${failureOf(error)}. Run on a runner with root or passwordless sudo and iptables `
          + 'installed (GitHub-hosted runners have both), or set `network` and '
          + '`setup-network` to `none` (no network) or `open` (opted out of isolation).',
        { cause: error })
      }
    }
    return firewall
  }

  /**
   * Lets traffic arriving on `bridge` reach only TCP `proxyAddress:proxyPort` (and replies to
   * connections the host opened); drops the rest. Rules go first in INPUT, so an ACCEPT of
   * the host's own cannot open the bridge again.
   */
  async fenceBridge(bridge: string, runId: string, proxyAddress: string,
    proxyPort: number): Promise<void> {
    const tag = ['-m', 'comment', '--comment', firewallTag(runId)]
    const v4 = [
      ['-i', bridge, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', ...tag, '-j',
        'ACCEPT'],
      ['-i', bridge, '-p', 'tcp', '-d', proxyAddress, '--dport', String(proxyPort), ...tag,
        '-j', 'ACCEPT'],
      ['-i', bridge, ...tag, '-j', 'DROP']
    ]
    // The bridge has an IPv6 link-local address even on an IPv4-only network; the proxy
    // listens on IPv4 only, so nothing over IPv6 is let in.
    const v6 = [['-i', bridge, ...tag, '-j', 'DROP']]
    try {
      for (const [index, rule] of v4.entries()) {
        await this.exec('iptables', ['-I', 'INPUT', String(index + 1), ...rule])
      }
      if (this.ipv6) for (const rule of v6) await this.exec('ip6tables', ['-I', 'INPUT', ...rule])
    } catch (error) {
      await this.removeRules(runId).catch(() => undefined)
      throw new Error(`Adding host firewall rules for bridge ${bridge} failed: `
        + `${failureOf(error)}. The run cannot keep its container off the runner's services.`,
        { cause: error })
    }
  }

  /** Removes every rule tagged with `runId`; returns how many went. */
  async removeRules(runId: string): Promise<number> {
    const tag = firewallTag(runId)
    let removed = 0
    for (const tool of this.tools()) {
      const listing = await this.exec(tool, ['-S', 'INPUT'])
      for (const line of listing.split('\n')) {
        const words = line.trim().split(/\s+/).map(w => w.replace(/^"(.*)"$/, '$1'))
        const at = words.indexOf('--comment')
        if (words[0] !== '-A' || words[1] !== 'INPUT' || at < 0 || words[at + 1] !== tag) continue
        try {
          await this.exec(tool, ['-D', ...words.slice(1)])
          removed++
        } catch (error) {
          // A concurrent sweep of the same run may have removed it first.
          if (!/does a matching rule exist|bad rule/i.test(failureOf(error))) throw error
        }
      }
    }
    return removed
  }

  private tools(): string[] {
    return this.ipv6 ? ['iptables', 'ip6tables'] : ['iptables']
  }

  private async exec(tool: string, args: string[]): Promise<string> {
    // `-w` waits for the xtables lock another run or Docker itself may hold.
    const [command, ...rest] = [...this.prefix, tool, '-w', ...args]
    const { stdout } = await run(command, rest, { timeout: 30_000 })
    return stdout
  }
}

/**
 * Removes a run's leftover rules, as the post step and a run's own cleanup do; 0 when iptables
 * cannot be run here, since then no rule could have been added either.
 */
export async function sweepFirewallRules(runId: string,
  options: FirewallOptions = {}): Promise<number> {
  let firewall: HostFirewall
  try {
    firewall = await HostFirewall.open(options)
  } catch {
    return 0
  }
  return firewall.removeRules(runId)
}

function failureOf(error: unknown): string {
  const failure = error as { code?: unknown; path?: unknown; stderr?: unknown } | null
  if (failure?.code === 'ENOENT') return `${String(failure.path)} was not found`
  const stderr = typeof failure?.stderr === 'string' ? failure.stderr.trim() : ''
  if (stderr) return stderr.split('\n')[0]
  return error instanceof Error ? error.message : String(error)
}
