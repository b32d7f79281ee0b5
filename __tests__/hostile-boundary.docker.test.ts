import { afterEach, describe, expect, test } from '@jest/globals'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync }
  from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { gitIn } from './helpers/git-publish-repo.js'
import { disposeHostileRun, hostileRun, leftovers, type HostileRun }
  from './helpers/hostile-run.js'
import { toolReply } from './helpers/model-server.js'
import { createTestNetwork } from './helpers/network-servers.js'

describe('a malicious agent at the host boundary', () => {
  let run: HostileRun | undefined
  let markerDir: string | undefined

  afterEach(async () => {
    if (run) expect(await leftovers(run.runId)).toEqual([])
    await disposeHostileRun(run)
    run = undefined
    if (markerDir) rmSync(markerDir, { recursive: true, force: true })
  })

  test('hooks, fsmonitor, filters and submodules it plants never run on the host; links stay '
    + 'links', async () => {
    markerDir = mkdtempSync(join(tmpdir(), 'airlock-hostile-marker-'))
    const marker = join(markerDir, 'ran')
    const touch = `#!/bin/sh\necho "$0" >> ${marker}\n`
    const hooks = ['pre-commit', 'post-commit', 'post-checkout', 'pre-push', 'commit-msg',
      'prepare-commit-msg', 'reference-transaction', 'post-index-change', 'pre-applypatch']
    let configBefore = ''
    let hooksBefore: string[] = []
    run = await hostileRun({
      prepare: repos => {
        // A hook already on the host (left by an earlier step): Airlock's git must not run it.
        for (const hook of hooks) {
          writeFileSync(join(repos.checkout, '.git', 'hooks', hook), touch)
          chmodSync(join(repos.checkout, '.git', 'hooks', hook), 0o755)
        }
        configBefore = readFileSync(join(repos.checkout, '.git', 'config'), 'utf8')
        hooksBefore = readdirSync(join(repos.checkout, '.git', 'hooks')).sort()
      },
      script: [
        toolReply('bash', { command: [
          ...hooks.map(h => `printf '#!/bin/sh\\ntouch ${marker}\\n' > .git/hooks/${h}`),
          'chmod +x .git/hooks/*',
          `git config core.fsmonitor "touch ${marker}"`,
          'git config core.hooksPath tracked-hooks',
          `git config filter.evil.clean "touch ${marker}; cat"`,
          `git config filter.evil.smudge "touch ${marker}; cat"`,
          'mkdir -p tracked-hooks',
          ...hooks.map(h => `printf '#!/bin/sh\\ntouch ${marker}\\n' > tracked-hooks/${h}`),
          'chmod +x tracked-hooks/*',
          'printf "* filter=evil diff=evil merge=evil\\n" > .gitattributes',
          `printf '[submodule "x"]\\n\\tpath = x\\n\\turl = ext::sh -c touch% ${marker}\\n'`
            + ' > .gitmodules',
          'ln -s /etc/passwd passwd-link', 'ln -s /home/runner/.credentials runner-link',
          'ln -s ../../../.. up-link', 'echo fixed > README.md'
        ].join('\n') }),
        toolReply('finish', { summary: 'Done.' })
      ]
    })
    expect(run.result.outcome.kind).toBe('changes-published')
    expect(existsSync(marker)).toBe(false)
    const checkout = run.repos.checkout
    expect(readFileSync(join(checkout, '.git', 'config'), 'utf8')).toBe(configBefore)
    expect(readdirSync(join(checkout, '.git', 'hooks')).sort()).toEqual(hooksBefore)
    // The pushed branch holds the links as links (mode 120000), with their target as data.
    const [pull] = run.github.pullRequests()
    const tree = gitIn(run.repos.bare, 'ls-tree', '-r', pull.head)
    expect(tree).toMatch(/^120000 blob \w+\tpasswd-link$/m)
    expect(tree).toMatch(/^120000 blob \w+\tup-link$/m)
    expect(gitIn(run.repos.bare, 'show', `${pull.head}:passwd-link`)).toBe('/etc/passwd')
    expect(gitIn(run.repos.bare, 'log', '-p', pull.head)).not.toContain('root:x:0:0')
    expect(tree).not.toMatch(/\.git\//)
    expect(run.verify()).toMatchObject({ ok: true, complete: true })
  })

  test('workflow edits and names that escape the repository are refused with the reason',
    async () => {
      run = await hostileRun({ script: [
        toolReply('bash', { command: 'echo "  evil: true" >> .github/workflows/ci.yml\n'
          + 'mkdir -p .github/workflows && echo "on: push" > .github/workflows/new.yml\n'
          + 'touch "a\\\\..\\\\..\\\\escape" && touch "$(printf "new\\nline")"\n'
          + 'echo fixed > README.md' }),
        toolReply('finish', { summary: 'Done.' })
      ] })
      expect(run.result.outcome.kind).toBe('refused')
      expect(run.github.pullRequests()).toEqual([])
      const refusals = run.verify().events.filter(e => e.type === 'policy.refusal')
      expect(refusals.map(e => [e.rule, e.path])).toEqual(expect.arrayContaining([
        ['protected-path', '.github/workflows/ci.yml'],
        ['protected-path', '.github/workflows/new.yml'],
        ['outside-repository', 'a\\..\\..\\escape']]))
      const [comment] = run.github.commentsOn(1)
      expect(comment.body).toContain('.github/workflows/ci.yml is a protected path')
      expect(gitIn(run.repos.bare, 'for-each-ref', '--format=%(refname)'))
        .toBe('refs/heads/main')
    })

  test('an agent with network `none` reaches no listener on the host, and fails fast',
    async () => {
      // A bridge of the test's own: its gateway is a host address a container could try.
      const own = await createTestNetwork(new Docker(), 'hostile-none')
      const gateway = own.gateway
      const seen: string[] = []
      const listen = async (host: string): Promise<Server> => {
        const server = createServer(socket => {
          seen.push(`${host} from ${socket.remoteAddress}`)
          socket.destroy()
        })
        await new Promise<void>(resolve => server.listen(0, host, resolve))
        return server
      }
      const servers = [await listen('127.0.0.1'), await listen(gateway)]
      const ports = servers.map(s => (s.address() as { port: number }).port)
      const targets = [`127.0.0.1:${ports[0]}`, `${gateway}:${ports[1]}`,
        `host.docker.internal:${ports[0]}`, `example.com:80`]
      try {
        run = await hostileRun({ script: [
          ...targets.map(t => toolReply('bash', { command: `curl -sS -m 4 http://${t}/ 2>&1; `
            + `timeout 4 bash -c 'echo x > /dev/tcp/${t.replace(':', '/')}' 2>&1; echo done` })),
          toolReply('finish', { summary: 'Nothing reachable.' })
        ] })
      } finally {
        await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
        await own.remove()
      }
      expect(seen).toEqual([])
      const commands = run.verify().events.filter(e => e.type === 'command')
      expect(commands).toHaveLength(targets.length)
      for (const command of commands) {
        expect(command.durationMs).toBeLessThan(3000)
        expect(command.timedOut).toBe(false)
      }
      expect(run.result.outcome.kind).toBe('no-changes')
    })
})
