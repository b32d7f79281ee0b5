import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../src/audit/log.js'
import { verifyAuditLog } from '../src/audit/verify.js'
import { renderStepSummary } from '../src/audit/summary.js'
import { renderTranscript, writeTranscript } from '../src/audit/transcript.js'
import type { StoredEvent } from '../src/audit/entry.js'
import { CANARIES, HOSTILE, writeSampleRun } from './helpers/audit-run.js'
import type { SampleRun } from './helpers/audit-run.js'
import {
  allFiles, eventValidator, expectValidAuditLog, independentHash, leakForms, logLines,
  removeDir, writeLogLines
} from './helpers/audit-files.js'
import { runCli, type Terminal } from '../src/cli.js'

const dirs: string[] = []
afterAll(() => dirs.forEach(removeDir))

async function sample(options: Parameters<typeof writeSampleRun>[0] = {}): Promise<SampleRun> {
  const run = await writeSampleRun(options)
  dirs.push(run.dir, run.repo)
  return run
}

describe('audit log: a realistic run', () => {
  let run: SampleRun
  let events: StoredEvent[]
  beforeAll(async () => {
    run = await sample()
    const result = verifyAuditLog(run.dir)
    expect(result.problem).toBeUndefined()
    events = result.events
  })

  it('verifies, is complete, and every line validates against the schema', () => {
    const result = verifyAuditLog(run.dir)
    expect(result).toMatchObject({ ok: true, intact: true, complete: true })
    expect(events.map(e => e.type)).toEqual(['run.start', 'task', 'sandbox.start',
      'model.request', 'model.response', 'tool.call', 'command', 'tool.result', 'command',
      'command', 'file.write', 'command', 'changes', 'outcome'])
    expect(expectValidAuditLog(run.dir)).toHaveLength(14)
  })

  it('chains lines by a hash an independent verifier recomputes', () => {
    const lines = logLines(run.dir)
    let prev = '0'.repeat(64)
    lines.forEach((line, i) => {
      const entry = JSON.parse(line)
      expect(entry.seq).toBe(i + 1)
      expect(entry.prev).toBe(prev)
      expect(entry.hash).toBe(independentHash(line))
      expect(entry.run).toBe('run-42')
      prev = entry.hash
    })
  })

  it('the schema rejects a line that does not follow it', () => {
    const validate = eventValidator()
    const entry = JSON.parse(logLines(run.dir)[6])
    expect(validate(entry)).toBe(true)
    expect(validate({ ...entry, stdout: { ...entry.stdout, text: 'inline' } })).toBe(false)
    expect(validate({ ...entry, type: 'shell' })).toBe(false)
    const withoutHash = { ...entry }
    delete withoutHash.hash
    expect(validate(withoutHash)).toBe(false)
  })

  it('stores command outputs beside the log, by the sha256 of the stored text', () => {
    const commands = events.filter(e => e.type === 'command')
    const large = commands[1]
    expect(large.command).toBe('seq 1 400000')
    const full = run.commands[1].stdout
    expect(large.stdout).toMatchObject({ bytes: full.bytes, sha256: full.sha256,
      truncated: false, cut: 'file-cap', storedBytes: 1024 ** 2 })
    const stored = readFileSync(join(run.dir, 'outputs', large.stdout.stored!), 'utf8')
    expect(full.text.startsWith(stored)).toBe(true)
    for (const ref of commands.flatMap(c => [c.stdout, c.stderr])) {
      if (!ref.stored) {
        expect(ref.storedBytes).toBe(0)
        continue
      }
      const data = readFileSync(join(run.dir, 'outputs', ref.stored))
      expect(createHash('sha256').update(data).digest('hex') + '.txt').toBe(ref.stored)
      expect(data.length).toBe(ref.storedBytes)
    }
    expect(readFileSync(join(run.dir, 'audit.jsonl')).length).toBeLessThan(20_000)
    expect(commands[2].exitCode).toBe(3)
  })

  it('leaks no canary secret, raw or encoded, into the log, outputs, summary or transcript', () => {
    const transcriptPath = writeTranscript(run.dir)
    const texts = [...allFiles(run.dir).map(f => f),
      { path: 'summary', text: renderStepSummary(events) }]
    expect(texts.some(t => t.path === transcriptPath)).toBe(true)
    expect(texts.length).toBeGreaterThan(5)
    for (const secret of CANARIES) {
      for (const form of leakForms(secret)) {
        for (const { path, text } of texts) {
          expect({ path, form, found: text.includes(form) }).toEqual({ path, form, found: false })
        }
      }
    }
    // the canary did reach the log's input, encoded: each form was there to be redacted
    const outputs = readdirSync(join(run.dir, 'outputs'))
      .map(f => readFileSync(join(run.dir, 'outputs', f), 'utf8')).join('\n')
    expect(outputs).toMatch(/key=\*\*\*/)
    expect(outputs).toMatch(/^Y\S*\*\*\*\S*$/m) // the base64 line, redacted inside
    expect(outputs).toMatch(/^x\*\*\*$/m) // the URL-encoded token
    expect(run.commands[0].stdout.text).toContain(CANARIES[0])
  })

  it('summarizes outcome, figures and commands with failures marked, all inert', () => {
    const summary = renderStepSummary(events)
    expect(summary).toContain('## Airlock: ✅ changes published')
    expect(summary).toContain('Opened a draft pull request.')
    expect(summary).toContain('| Steps | 3 |')
    expect(summary).toContain('| Tokens | 1,880 (prompt 900, completion 40, cached 0) |')
    expect(summary).toContain('| Cost | $0.0031 |')
    expect(summary).toContain('| Time | 1m 05s |')
    expect(summary).toContain('### Commands (4, 1 failed)')
    expect(summary).toMatch(/\| 2 \| <code>seq 1 400000<\/code> \| 0 \|/)
    expect(summary).toMatch(/\| 2 \| <code>printf[^|]*&lt;script&gt;[^|]*<\/code> \| ❌ 3 \|/)
    const wide = renderStepSummary(events, { maxCommandChars: 400 })
    expect(wide).toContain(':\u200d:set-output name=x:\u200d:pwned')
    expect(wide).not.toMatch(/::/)
    expect(wide).not.toMatch(/<(script|img)/)
  })

  it('shortens long commands in the summary and caps the number of rows', () => {
    const long = events.map(e => e.type === 'command' ? { ...e, command: 'x'.repeat(500) } : e)
    const summary = renderStepSummary(long, { maxCommandChars: 40, maxCommands: 2 })
    const cell = /<code>(x+)…(x+)<\/code>/.exec(summary)
    expect(cell && cell[1].length + cell[2].length + 1).toBe(40)
    expect(summary).toContain('…and 2 more in the audit log.')
  })

  it('renders the transcript from the directory, with the verification result', () => {
    const html = renderTranscript(run.dir)
    expect(html).toContain('Hash chain verified: 14 events.')
    expect(html).not.toContain(HOSTILE)
    expect(html).toContain('&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;')
    expect(html).not.toMatch(/https?:\/\/(?!github\.com\/o\/r)/)
  })
})

/** `airlock ARGS` in this process, with what it printed on stdout. */
async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  let out = ''
  const term: Terminal = { out: text => { out += text }, err: () => undefined, isTty: false }
  const code = await runCli(argv, {}, term)
  return { code, out }
}

describe('audit log: tampering is detected and named', () => {
  let pristine: SampleRun
  beforeAll(async () => {
    pristine = await sample()
  })

  /** A copy of the sample directory to damage. */
  function copy(): string {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-tamper-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'outputs'))
    for (const f of allFiles(pristine.dir)) {
      const target = join(dir, f.path.slice(pristine.dir.length))
      if (f.path.includes('/outputs/')) {
        writeFileSync(target, readFileSync(f.path), { flag: 'w' })
      }
    }
    writeLogLines(dir, logLines(pristine.dir))
    return dir
  }

  beforeEach(() => {
    expect(verifyAuditLog(pristine.dir).ok).toBe(true)
  })

  it('an altered byte', () => {
    const dir = copy()
    const lines = logLines(dir)
    lines[9] = lines[9].replace('"exitCode":3', '"exitCode":0')
    expect(lines[9]).toContain('"exitCode":0')
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false, events: { length: 9 },
      problem: { line: 10, seq: 10, reason: expect.stringContaining('altered') } })
  })

  it('an altered line whose hash was recomputed by the forger', () => {
    const dir = copy()
    const lines = logLines(dir)
    const entry = JSON.parse(lines[4])
    entry.costUsd = 0
    entry.hash = independentHash(JSON.stringify(entry))
    lines[4] = JSON.stringify(entry)
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 6, reason: /prev/ })
  })

  it('a removed line', () => {
    const dir = copy()
    const lines = logLines(dir)
    lines.splice(5, 1)
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false,
      problem: { line: 6, seq: 7, reason: expect.stringContaining('removed') } })
  })

  it('two lines swapped', () => {
    const dir = copy()
    const lines = logLines(dir)
    ;[lines[7], lines[8]] = [lines[8], lines[7]]
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 8, seq: 9 })
  })

  it('an inserted line', () => {
    const dir = copy()
    const lines = logLines(dir)
    lines.splice(3, 0, lines[2])
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 4, seq: 3 })
  })

  it('a line from another run spliced in', async () => {
    const other = await sample({ runId: 'run-other' })
    const dir = copy()
    const lines = logLines(dir)
    lines[0] = logLines(other.dir)[0]
    writeLogLines(dir, lines)
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 2, reason: /prev/ })
  })

  it('the tail cut off: not ok, naming the last event and the missing outcome', async () => {
    const dir = copy()
    writeLogLines(dir, logLines(dir).slice(0, -2))
    const reason = 'the log ends at event 12 (command) without an outcome: the run crashed '
      + 'before it ended, or lines were removed from the end'
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false, intact: true, complete: false,
      events: { length: 12 }, lastEvent: { seq: 12, type: 'command' },
      problem: { line: 13, reason } })
    expect(renderStepSummary(verifyAuditLog(dir).events)).toContain('⚠️ incomplete')
    const html = renderTranscript(dir)
    expect(html).not.toContain('Hash chain verified')
    expect(html).toContain(`Not verified: ${reason}. The 12 events present are unaltered`)

    const plain = await cli(['verify', dir])
    expect(plain).toEqual({ code: 1, out: `NOT OK: ${reason}\n` })
    const json = await cli(['verify', dir, '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, intact: true, complete: false,
      events: 12, lastEvent: { seq: 12, type: 'command' }, outcome: 'missing',
      problem: { reason } })
    // the intact log it was cut from passes
    expect(await cli(['verify', pristine.dir])).toMatchObject({ code: 0,
      out: expect.stringMatching(/^ok: 14 events, .* outcome changes-published\n$/) })
  })

  it('every line removed: not ok', () => {
    const dir = copy()
    writeFileSync(join(dir, 'audit.jsonl'), '')
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false, intact: true, complete: false,
      problem: { line: 1, reason: expect.stringContaining('empty') } })
  })

  it('a half-written last line', () => {
    const dir = copy()
    const text = readFileSync(join(dir, 'audit.jsonl'), 'utf8')
    writeFileSync(join(dir, 'audit.jsonl'), text.slice(0, -40))
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 14, reason: /cut off/ })
  })

  it('a deleted or altered stored output', () => {
    const dir = copy()
    const line = JSON.parse(logLines(dir)[6])
    const file = join(dir, 'outputs', line.stdout.stored)
    writeFileSync(file, readFileSync(file, 'utf8').replace('hello', 'HELLO'))
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 7,
      reason: `stdout output file outputs/${line.stdout.stored} was altered (its sha256 does `
        + 'not match its name)' })
    rmSync(file)
    expect(verifyAuditLog(dir).problem).toMatchObject({ line: 7,
      reason: `stdout output file outputs/${line.stdout.stored} is missing` })
  })

  it('a missing log', () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-empty-'))
    dirs.push(dir)
    expect(verifyAuditLog(dir)).toMatchObject({ ok: false, problem: { line: 0,
      reason: expect.stringContaining('no audit log') } })
  })
})

describe('audit log: limits and misuse', () => {
  it('stops storing outputs past the total cap and says so in the event', async () => {
    const run = await sample({ maxOutputFileBytes: 4096, maxOutputTotalBytes: 4200 })
    const { ok, events } = verifyAuditLog(run.dir)
    expect(ok).toBe(true)
    const refs = events.filter(e => e.type === 'command').flatMap(e => [e.stdout, e.stderr])
    expect(refs.filter(r => r.cut === 'total-cap').length).toBeGreaterThan(0)
    expect(refs.find(r => r.cut === 'file-cap')).toMatchObject({ storedBytes: 4096 })
    const storedTotal = readdirSync(join(run.dir, 'outputs'))
      .reduce((n, f) => n + readFileSync(join(run.dir, 'outputs', f)).length, 0)
    expect(storedTotal).toBeLessThanOrEqual(4200)
    for (const ref of refs.filter(r => r.cut === 'total-cap')) {
      expect(ref.stored).toBeUndefined()
      expect(ref.bytes).toBeGreaterThan(0)
    }
  })

  it('refuses to append to an existing log, and to record after close', async () => {
    const run = await sample()
    await expect(AuditLog.create({ dir: run.dir, secrets: [], runId: 'again' }))
      .rejects.toThrow(/already exists.*empty directory/)
    expect(() => run.log.record({ type: 'budget', budget: 'steps', used: 1, limit: 1 }))
      .toThrow(/closed; event budget was not written/)
    await expect(AuditLog.create({ dir: '', secrets: [], runId: 'x' })).rejects.toThrow(/`dir`/)
  })

  it('cuts an output at a character boundary, never inside a UTF-8 sequence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-utf8-'))
    dirs.push(dir)
    const log = await AuditLog.create({ dir, secrets: [], runId: 'u', maxOutputFileBytes: 10 })
    const text = 'ééééééé' // 14 bytes
    const out = { text, bytes: 14, sha256: 'x', truncated: false }
    log.record({ type: 'command', phase: 'verify', command: 'x', cwd: '.', exitCode: 0,
      timedOut: false, durationMs: 1, stdout: out, stderr: { ...out, text: '', bytes: 0 } })
    log.close()
    const [event] = verifyAuditLog(dir).events
    expect(event.type === 'command' && event.stdout.storedBytes).toBe(10)
    expect(readFileSync(join(dir, 'outputs', (event as never as { stdout: { stored: string } })
      .stdout.stored), 'utf8')).toBe('ééééé')
  })
})

describe('audit log: a cancelled run', () => {
  it('a child killed with SIGTERM mid-stream leaves a log that verifies and ends cancelled',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-sigterm-'))
      dirs.push(dir)
      const child = spawn('node_modules/.bin/node', ['--import', './scripts/ts-loader.mjs',
        '__tests__/helpers/audit-sigterm-fixture.ts', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', d => { stderr += d })
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', d => { if (String(d).includes('ready')) resolve() })
          child.on('exit', code => reject(new Error(`fixture exited early (${code}): ${stderr}`)))
        })
        const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
        child.kill('SIGTERM')
        expect(await exited).toBe(143)
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
      const result = verifyAuditLog(dir)
      expect(result).toMatchObject({ ok: true, complete: true })
      expect(result.events.length).toBeGreaterThan(100)
      expect(result.events.at(-1)).toMatchObject({ type: 'outcome', kind: 'cancelled' })
      expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8')).not.toContain('fixture-secret-value')
      expect(existsSync(join(dir, 'outputs'))).toBe(true)
    })
})
