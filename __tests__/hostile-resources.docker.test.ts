import { afterEach, describe, expect, test } from '@jest/globals'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { disposeHostileRun, hostileRun, leftovers, type HostileRun }
  from './helpers/hostile-run.js'
import { toolReply } from './helpers/model-server.js'

const MB = 1024 * 1024

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/** Heap and buffer memory still reachable after a full collection. */
function retainedBytes(): number {
  collectGarbage()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/** Each attack is one command; the run's command timeout is 8 s, the agent asks for less. */
const ATTACKS: Record<string, { command: string; timeout_seconds?: number }> = {
  forkBomb: { command: 'bomb() { bomb | bomb & }; bomb; wait', timeout_seconds: 4 },
  memoryBomb: { command: 'python3 -c "\na=[]\nwhile True: a.append(bytearray(10**7))"' },
  cpuSpin: { command: 'while :; do :; done', timeout_seconds: 2 },
  tmpFill: { command: 'dd if=/dev/zero of=/tmp/fill bs=1M count=100 2>&1; echo "dd=$?"; '
    + 'rm -f /tmp/fill' },
  workspaceFill: { command: 'dd if=/dev/zero of=big.bin bs=4M count=300 2>/dev/null; '
    + 'echo "dd=$?"; stat -c "size=%s" big.bin; rm -f big.bin' },
  outputFlood: { command: 'head -c 100000000 /dev/zero | tr "\\0" A' },
  daemon: { command: '(setsid sh -c "while :; do sleep 1; done" >/dev/null 2>&1 &); '
    + 'nohup sleep 1000 >/dev/null 2>&1 & echo started' },
  afterDaemon: { command: 'ps -eo user,args' },
  stdinWait: { command: 'read line; echo "read=$?"; cat; echo after-cat', timeout_seconds: 3 }
}

describe('a malicious agent exhausting resources', () => {
  let run: HostileRun | undefined

  afterEach(async () => {
    if (run) expect(await leftovers(run.runId)).toEqual([])
    await disposeHostileRun(run)
    run = undefined
  })

  test('every attack ends within its limit, clearly, with the host unharmed', async () => {
    const names = Object.keys(ATTACKS)
    let maxLagMs = 0
    let last = Date.now()
    const lagTimer = setInterval(() => {
      maxLagMs = Math.max(maxLagMs, Date.now() - last - 100)
      last = Date.now()
    }, 100)
    // The action's memory is measured across the flood alone: from the request that asks for
    // it to the request that reports it, against the baseline just before.
    const flood = names.indexOf('outputFlood')
    let retainedBefore = 0
    let retainedAfter = 0
    let rssBefore = 0
    let rssPeak = 0
    const rssTimer = setInterval(() => {
      if (rssBefore) rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
    }, 20)
    const script = [...names.map(n => toolReply('bash', ATTACKS[n])),
      toolReply('finish', { summary: 'Survived?' })]
    try {
      run = await hostileRun({ inputs: { 'command-timeout': '8', 'max-steps': '20' },
        script: (_request, index) => {
          if (index === flood) {
            retainedBefore = retainedBytes()
            rssBefore = rssPeak = process.memoryUsage().rss
          }
          if (index === flood + 1) {
            clearInterval(rssTimer)
            retainedAfter = retainedBytes()
          }
          // The forced collections are the test's own pause, not the action's.
          last = Date.now()
          return script[index]
        } })
    } finally {
      clearInterval(lagTimer)
      clearInterval(rssTimer)
    }
    const commands = run.verify().events.filter(e => e.type === 'command')
    expect(commands).toHaveLength(names.length)
    const by = Object.fromEntries(names.map((n, i) => [n, commands[i]]))
    const observed = (name: string): string => {
      const messages = run?.model.completions[names.indexOf(name) + 1].body.messages as
        { role: string; content: string }[]
      return messages.at(-1)?.content ?? ''
    }
    for (const name of names) {
      // Nothing ran past its timeout (plus the server's grace), whatever it did.
      const limit = (ATTACKS[name].timeout_seconds ?? 8) * 1000 + 3000
      expect([name, by[name].durationMs < limit]).toEqual([name, true])
    }
    // The pids limit stops the bomb; the server kills what is left when the command ends.
    expect(observed('forkBomb')).toMatch(/Cannot fork|Resource temporarily unavailable/)
    expect(by.memoryBomb).toMatchObject({ exitCode: 137, timedOut: false })
    expect(by.cpuSpin).toMatchObject({ timedOut: true })
    expect(observed('tmpFill')).toContain('No space left on device')
    // The workspace volume has no total cap; one file stops at the 1 GiB RLIMIT_FSIZE.
    expect(observed('workspaceFill')).toContain('dd=153')
    expect(observed('workspaceFill')).toContain(`size=${1024 * MB}`)
    expect(observed('outputFlood')).toMatch(/cut|omitted|truncated/i)
    expect(observed('outputFlood').length).toBeLessThan(100_000)
    expect(observed('afterDaemon')).not.toMatch(/sleep/)
    expect(by.stdinWait.exitCode).toBe(0)
    expect(observed('stdinWait')).toContain('after-cat')
    // The action process: its memory did not follow the 100 MB flood, its event loop kept up.
    // What the action keeps of the flood after a collection is the 1 MiB capture and change.
    // Alone this measures below zero; within the full suite, up to 25 MB of other suites'
    // memory has been seen to land in the window. Keeping the flood would cost 100 MB.
    expect(retainedAfter - retainedBefore).toBeLessThan(40 * MB)
    // Its peak: a 30 MB flood raised RSS by 68 MB and a 100 MB one by 78-120 MB (garbage
    // awaiting collection, not kept output), so this bound is loose but not unbounded.
    expect(rssPeak - rssBefore).toBeLessThan(256 * MB)
    expect(by.outputFlood.stdout).toMatchObject({ bytes: 100_000_000, storedBytes: MB })
    expect(maxLagMs).toBeLessThan(1000)
    expect(run.result.outcome.kind).toBe('no-changes')
    expect(run.model.completions).toHaveLength(names.length + 1)
  })
})
