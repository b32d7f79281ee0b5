import { execFileSync } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { runAgent } from '../src/agent/loop.js'
import { startSandbox, sweepContainers } from '../src/sandbox/index.js'
import type { Sandbox } from '../src/sandbox/types.js'
import { settingsWithDefaults } from '../src/settings.js'
import { makeGitRepo } from './helpers/git-repo.js'
import { MemoryAudit } from './helpers/memory-audit.js'
import { ModelServer, toolReply } from './helpers/model-server.js'

const IMAGE = 'airlock-test:bookworm'
const RUN_ID = `agent-test-${process.pid}`

function makeRepo(): Promise<string> {
  return makeGitRepo('airlock-agent-repo-', { 'greet.sh': '#!/bin/sh\necho "helo, world"\n',
    'AGENTS.md': 'Keep scripts POSIX sh.\n' })
}

describe('agent loop in the real sandbox', () => {
  let repo: string
  let server: ModelServer | undefined
  let sandbox: Sandbox | undefined

  beforeEach(async () => {
    repo = await makeRepo()
  })

  afterEach(async () => {
    await sandbox?.remove()
    sandbox = undefined
    await sweepContainers(RUN_ID)
    await server?.close()
    await rm(repo, { recursive: true, force: true })
  })

  async function start(readOnly = false) {
    const settings = settingsWithDefaults({ model: 'scripted', 'api-key': 'sk-docker-test-1',
      'base-url': server!.baseUrl, image: IMAGE, 'command-timeout': '20',
      'read-only': String(readOnly) })
    sandbox = await startSandbox({ settings: settings.sandbox, repoDir: repo, runId: RUN_ID })
    return settings
  }

  it('edits a file, runs a command, finishes; the changes are exactly that edit', async () => {
    server = await ModelServer.start([
      toolReply('edit_file', { path: 'greet.sh', old_text: 'helo', new_text: 'hello' }),
      toolReply('bash', { command: 'sh greet.sh && id -u' }),
      toolReply('finish', { summary: 'Fixed the typo in greet.sh.' })])
    const settings = await start()
    const audit = new MemoryAudit()
    const result = await runAgent({ sandbox: sandbox!, settings, audit,
      task: { instructions: 'Fix the typo.', origin: { kind: 'input', event: 'cli' } } })

    expect(result.ending).toEqual({ kind: 'finished', summary: 'Fixed the typo in greet.sh.' })
    expect(result.steps).toBe(3)
    const observation = (server.completions[2].body.messages as { role: string;
      content: string }[]).at(-1)?.content
    expect(observation).toBe('exit code: 0\nstdout:\nhello, world\n1000\n')
    const firstUser = (server.completions[0].body.messages as { content: string }[])[1].content
    expect(firstUser).toContain('Keep scripts POSIX sh.')

    const changes = await sandbox!.extractChanges()
    expect(changes.files).toEqual([expect.objectContaining({ path: 'greet.sh',
      status: 'modified' })])
    const patch = changes.patch.toString('utf8')
    expect(patch).toContain('-echo "helo, world"')
    expect(patch).toContain('+echo "hello, world"')
    expect(patch.split('\n').filter(l => /^[+-][^+-]/.test(l))).toHaveLength(2)

    const command = audit.events.find(e => e.type === 'command')
    expect(command).toMatchObject({ phase: 'agent', step: 2, exitCode: 0,
      command: 'sh greet.sh && id -u' })
    expect(audit.events.filter(e => e.type === 'file.write')).toHaveLength(1)
  })

  it('reports a refused write in a read-only workspace and changes nothing', async () => {
    server = await ModelServer.start([
      toolReply('write_file', { path: 'new.txt', content: 'x' }),
      toolReply('bash', { command: 'echo x > new2.txt' }),
      toolReply('finish', { summary: 'Could not write.' })])
    const settings = await start(true)
    const result = await runAgent({ sandbox: sandbox!, settings, audit: new MemoryAudit(),
      task: { instructions: 'Write a file.', origin: { kind: 'input', event: 'cli' } } })
    expect(result.ending.kind).toBe('finished')
    const messages = server.completions[2].body.messages as { role: string; content: string }[]
    const tools = messages.filter(m => m.role === 'tool').map(m => m.content)
    expect(tools[0]).toMatch(/read-only/)
    expect(tools[1]).toMatch(/^exit code: [1-9]/)
    expect((await sandbox!.extractChanges()).files).toEqual([])
  })
  it('ends sandbox-failure, with no further model call, when the container dies', async () => {
    server = await ModelServer.start([toolReply('bash', { command: 'true' }),
      toolReply('bash', { command: 'true' }), toolReply('finish', { summary: 'never' })])
    const settings = await start()
    let killed = false
    const result = await runAgent({ sandbox: sandbox!, settings, audit: new MemoryAudit(),
      task: { instructions: 'Anything.', origin: { kind: 'input', event: 'cli' } },
      onProgress: () => {
        if (killed) return
        killed = true
        // Synchronously, so the container is gone before the loop takes its next step.
        execFileSync('docker', ['rm', '-f', sandbox!.containerId], { stdio: 'ignore' })
      } })
    expect(result.ending.kind).toBe('sandbox-failure')
    expect(server.completions).toHaveLength(2)
  })
})
