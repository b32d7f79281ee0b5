import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderTranscript, writeTranscript } from '../src/audit/transcript.js'
import { createRedactor } from '../src/audit/redact.js'
import type { AuditEvent } from '../src/audit/types.js'
import { CANARY_KEY, HOSTILE, writeSampleRun } from './helpers/audit-run.js'
import type { SampleRun } from './helpers/audit-run.js'
import { removeDir } from './helpers/audit-files.js'
import { dumpDom } from './helpers/audit-chromium.js'

describe('transcript in headless Chromium', () => {
  let run: SampleRun
  let html: string
  let dom: string
  beforeAll(async () => {
    run = await writeSampleRun()
    const path = writeTranscript(run.dir)
    expect(path).toBe(join(run.dir, 'transcript.html'))
    html = readFileSync(path, 'utf8')
    dom = await dumpDom(path)
  })
  afterAll(() => {
    removeDir(run.dir)
    removeDir(run.repo)
  })

  it('shows the outcome and every command with its exit code', () => {
    expect(dom).toMatch(/<title>Airlock run: changes published<\/title>/)
    expect(dom).toMatch(/<span class="badge changes-published" id="outcome">[^<]*changes published/)
    expect(dom).toContain('<code>seq 1 400000</code>')
    expect(dom).toContain('<code>git diff --stat</code>')
    expect(dom.match(/<section class="command( failed)?" id="command-\d"/g)).toHaveLength(4)
    expect(dom).toMatch(/<section class="command failed" id="command-3">[\s\S]*?exit 3/)
    expect(dom).toContain('greet.txt | 2 +-') // git's output, read from the stored file
  })

  it('collapses long outputs and shows short ones', () => {
    expect(dom).toMatch(
      /<details><summary>stdout \(2,688,895 bytes, stored text cut at the size cap\)/)
    expect(dom).toContain('<pre>hello\nkey=***\n')
  })

  it('planted markup in output and task stayed text: no script ran, no image loaded', () => {
    expect(dom).not.toContain('pwned</title>')
    expect(dom).not.toMatch(/<script|<img/i)
    expect(dom).toContain('&lt;script&gt;document.title="pwned"&lt;/script&gt;&lt;img src=x')
    expect(html).not.toContain(HOSTILE)
  })

  it('is self-contained: no external resources, scripts or fetches', () => {
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b/i)
    expect(html).not.toMatch(/url\(|@import/i)
    expect(html).not.toMatch(/<[^>]+\s(src|href|action|srcset)=/i)
    expect(html).toContain('Content-Security-Policy" content="default-src \'none\'')
  })
})

describe('transcript from events', () => {
  it('redacts and escapes events straight from the agent, with inline output text', () => {
    const text = (t: string) => ({ text: t, bytes: t.length, sha256: 'x', truncated: false })
    const events: AuditEvent[] = [
      { type: 'task', origin: 'input', text: 'do it' },
      { type: 'command', step: 1, phase: 'agent', command: `echo ${CANARY_KEY}`, cwd: '.',
        exitCode: 0, timedOut: false, durationMs: 3, stdout: text(`<b>${CANARY_KEY}</b>`),
        stderr: text('') }
    ]
    const html = renderTranscript(events, { redact: createRedactor([CANARY_KEY]) })
    expect(html).toContain('<code>echo ***</code>')
    expect(html).toContain('<pre>&lt;b&gt;***&lt;/b&gt;</pre>')
    expect(html).not.toContain(CANARY_KEY)
    expect(html).toContain('<title>Airlock run: incomplete</title>')
  })
})

describe('transcript of a replay', () => {
  it('shows the recorded task and says no model was called', () => {
    const events: AuditEvent[] = [
      { type: 'run.start', runId: 'replay-1', airlockVersion: '0.1.0', mode: 'replay',
        settings: {} },
      { type: 'task', origin: 'issue', requester: 'octocat', text: 'Fix the greeting.' }
    ]
    const html = renderTranscript(events)
    expect(html).toContain('<p class="task"><b>Task:</b> Fix the greeting.</p>')
    expect(html).toContain('<dt>Model</dt><dd>none called (a replay)</dd>')
    const recorded = renderTranscript([{ ...events[0], mode: 'cli' } as AuditEvent])
    expect(recorded).toContain('<dt>Model</dt><dd>?</dd>')
    expect(recorded).toContain('<b>Task:</b> ?</p>')
  })
})
