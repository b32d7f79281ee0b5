import { describe, expect, test } from '@jest/globals'
import { createRedactor } from '../src/audit/redact.js'
import { renderStepSummary } from '../src/audit/summary.js'
import type { AuditEvent } from '../src/audit/types.js'

const SECRET = 'sk-summary-secret-0123456789'

function output(text: string): Extract<AuditEvent, { type: 'command' }>['stdout'] {
  return { text, bytes: text.length, sha256: '0'.repeat(64), truncated: false }
}

function command(phase: 'agent' | 'verify', text: string, exitCode = 0,
  timedOut = false): AuditEvent {
  return { type: 'command', phase, command: text, cwd: '/workspace', exitCode, timedOut,
    durationMs: 1200, stdout: output(''), stderr: output('') }
}

function runEvents(network: string, commands: AuditEvent[]): AuditEvent[] {
  return [
    { type: 'run.start', runId: 'r1', airlockVersion: '0.1.0', mode: 'action', settings: {} },
    { type: 'sandbox.start', containerId: 'c1', workdir: '/workspace', network,
      image: { name: 'airlock-test:bookworm', id: 'sha256:abc', digests: [] } },
    ...commands,
    { type: 'outcome', kind: 'changes-published', message: 'pull request #3 opened', steps: 2,
      tokens: 100, costUsd: 0, durationMs: 5000 }
  ]
}

describe('the step summary', () => {
  test('names the network, and marks `open` as the opt-out it is', () => {
    const none = renderStepSummary(runEvents('none', []))
    expect(none).toContain('| Network | none |')
    const open = renderStepSummary(runEvents(
      'open (opted out of isolation: any address is reachable)', []))
    expect(open).toContain('| Network | ⚠️ open (opted out of isolation: any address is '
      + 'reachable) |')
    // An open setup is the default, cut before the agent: no mark.
    const setupOpen = renderStepSummary(runEvents('none; setup: open (cut before the agent '
      + 'starts)', []))
    expect(setupOpen).toContain('| Network | none; setup: open (cut before the agent starts) |')
    const allowlist = renderStepSummary(runEvents('allowlist (registry.npmjs.org)', []))
    expect(allowlist).toContain('| Network | allowlist (registry.npmjs.org) |')
  })

  test('says that verify passed, with the last lines it printed', () => {
    const summary = renderStepSummary(runEvents('none', [command('agent', 'ls'),
      command('verify', 'npm run lint'), command('verify', 'npm test')]),
    { verifyTail: 'Tests: 12 passed\nok' })
    expect(summary).toContain('### Verify\n\n✅ passed (2 commands)')
    expect(summary).toContain('<summary>Verify output (last lines)</summary>\n\n'
      + '<pre>Tests: 12 passed\nok</pre>')
  })

  test('names the verify command that failed, its output escaped and redacted', () => {
    const summary = renderStepSummary(runEvents('none', [command('verify', 'npm test', 1)]),
      { verifyTail: `FAIL <script>x</script> ::error::pwned ${SECRET}`,
        redact: createRedactor([SECRET]) })
    expect(summary).toContain('### Verify\n\n❌ failed: <code>npm test</code> exited with 1')
    expect(summary).toContain('FAIL &lt;script&gt;x&lt;/script&gt;')
    expect(summary).not.toContain(SECRET)
    expect(summary).not.toContain('::error')
    const timedOut = renderStepSummary(runEvents('none', [command('verify', 'make', 124, true)]))
    expect(timedOut).toContain('❌ failed: <code>make</code> timed out')
    expect(timedOut).not.toContain('<details>')
  })

  test('has no verify section when the run had no verify commands', () => {
    expect(renderStepSummary(runEvents('none', [command('agent', 'ls')])))
      .not.toContain('### Verify')
  })
})
