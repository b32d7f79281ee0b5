import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import Docker from 'dockerode'
import { publish } from '../src/publish/publish.js'
import { settingsWithDefaults } from '../src/settings.js'
import { applyChanges, checkChanges, ImageUnusable, SandboxFailure, startSandbox,
  sweepContainers, type Sandbox } from '../src/sandbox/index.js'
import { containersOf, git, hostManifest, makeRepo, MANIFEST_SCRIPT, testRunId,
  testSandboxSettings, TEST_IMAGE } from './helpers/docker-sandbox.js'

const policy = { protectedPaths: ['.github/workflows/**'], maxChangedFiles: 100,
  maxPatchBytes: 5_000_000 }

describe('a sandbox at its defaults', () => {
  const runId = testRunId('main')
  let repo: string
  let sandbox: Sandbox

  beforeAll(async () => {
    repo = makeRepo()
    sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId })
  })

  afterAll(async () => {
    await sandbox?.remove()
    rmSync(repo, { recursive: true, force: true })
    expect(await containersOf(runId)).toEqual([])
  })

  const sh = async (command: string, timeoutSeconds?: number) => {
    const result = await sandbox.run(command, { timeoutSeconds })
    return { ...result, out: result.stdout.text, err: result.stderr.text }
  }

  it('runs as a non-root user, no capabilities, no new privileges, seccomp on', async () => {
    const { out } = await sh('id -u; id -g; grep -E "^(CapEff|CapPrm|NoNewPrivs|Seccomp):" '
      + '/proc/self/status')
    expect(out).toBe('1000\n1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n'
      + 'NoNewPrivs:\t1\nSeccomp:\t2\n')
  })

  it('has a read-only root, a size-capped /tmp and a writable workspace', async () => {
    const root = await sh('touch /usr/x')
    expect(root.exitCode).not.toBe(0)
    expect(root.err).toMatch(/Read-only file system/)
    const { out } = await sh('grep " /tmp " /proc/mounts; '
      + 'touch /tmp/ok && touch here && rm here && echo w')
    expect(out).toMatch(/^tmpfs \/tmp tmpfs rw,nosuid,nodev,.*size=65536k/)
    expect(out).toMatch(/w\n$/)
  })

  it('has only the loopback interface and cannot reach the host', async () => {
    // The host listens on the bridge of a network made for this test, and a container on that
    // network proves the address answers; the sandbox, on no network, must not get there.
    const docker = new Docker()
    const network = await docker.createNetwork({ Name: `${runId}-reach`, Driver: 'bridge',
      Labels: { 'airlock.test': runId } })
    const server: Server = createServer(socket => socket.destroy())
    let connections = 0
    server.on('connection', () => connections++)
    try {
      const info = await network.inspect() as Docker.NetworkInspectInfo
      const gateway = info.IPAM?.Config?.find(c => c.Gateway && !c.Gateway.includes(':'))?.Gateway
      if (!gateway) throw new Error(`network ${info.Name} has no IPv4 gateway`)
      await new Promise<void>(resolve => server.listen(0, gateway, resolve))
      const port = (server.address() as { port: number }).port
      const reach = `bash -c 'echo hi > /dev/tcp/${gateway}/${port}' && echo connected`
      expect(await runOnNetwork(docker, network.id, reach)).toContain('connected')
      expect(connections).toBe(1)
      const { out } = await sh('tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "')
      expect(out).toBe('lo\n')
      const probe = await sh(reach)
      expect(probe.exitCode).not.toBe(0)
      expect(probe.out).not.toContain('connected')
      expect(probe.err).toMatch(/unreachable|refused/i)
      expect(connections).toBe(1)
    } finally {
      server.close()
      await network.remove()
    }
  })

  it('has swap, CPU, open-file and core-dump limits as configured', async () => {
    // cgroup v1 names memory and memory+swap, and CPU as quota and period; v2 names memory,
    // the swap on top of it, and `quota period` in one file. Either way: 512 MiB and no swap
    // beyond it, one CPU (a quota of one period), 4096 files, no core.
    const { out } = await sh('cd /sys/fs/cgroup && if [ -e memory.max ]; then '
      + 'echo v2; cat memory.max memory.swap.max cpu.max; else echo v1; '
      + 'cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes '
      + 'cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us; fi && ulimit -n && ulimit -c')
    const [version, ...values] = out.trimEnd().split('\n')
    expect(values).toEqual(version === 'v2'
      ? ['536870912', '0', '100000 100000', '4096', '0']
      : ['536870912', '536870912', '100000', '100000', '4096', '0'])
  })

  it('sets its environment itself, with nothing from the host', async () => {
    process.env.AIRLOCK_TEST_SECRET = 'do-not-leak'
    try {
      const { out } = await sh('env | sort')
      expect(out).not.toContain('do-not-leak')
      expect(out).toContain('HOME=/tmp/home\n')
      expect(out).toContain('CI=true\n')
      expect(out).toContain('LANG=C.UTF-8\n')
    } finally {
      delete process.env.AIRLOCK_TEST_SECRET
    }
  })

  it('reports exit codes and both streams', async () => {
    const r = await sh('echo out; echo err >&2; exit 7')
    expect([r.exitCode, r.timedOut, r.out, r.err]).toEqual([7, false, 'out\n', 'err\n'])
  })

  it('gives a command that reads stdin an immediate end of input', async () => {
    const r = await sh('cat; read line || echo "eof"', 5)
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, out: 'eof\n' })
  })

  it('decodes a character split across writes and marks invalid bytes', async () => {
    const r = await sh("printf '\\303'; sleep 0.2; printf '\\251 ok \\377\\n'")
    expect(r.out).toBe('é ok \uFFFD\n')
  })

  it('kills a command at its timeout together with its background children', async () => {
    const r = await sh('sleep 300 & (sleep 301 &); sleep 302', 2)
    expect(r).toMatchObject({ exitCode: 137, timedOut: true })
    expect(r.durationMs).toBeGreaterThanOrEqual(2000)
    expect(r.durationMs).toBeLessThan(10_000)
    const ps = await sh('ps -e -o comm=')
    expect(ps.out).not.toContain('sleep')
  })

  it('leaves nothing running after a command that ends normally', async () => {
    const r = await sh('(sleep 303 &); nohup sleep 304 >/dev/null 2>&1 & echo started')
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, out: 'started\n' })
    expect((await sh('ps -e -o comm=')).out).not.toContain('sleep')
  })

  it('survives a 10 MB output flood, keeping head and tail', async () => {
    const r = await sh('head -c 10000000 /dev/zero | tr "\\0" a')
    const expected = createHash('sha256').update(Buffer.alloc(10_000_000, 'a')).digest('hex')
    expect(r.stdout).toMatchObject({ bytes: 10_000_000, sha256: expected, truncated: true })
    expect(r.stdout.text.length).toBeLessThan(1024 * 1024 + 100)
    expect(r.stdout.text).toMatch(/… \[\d+ bytes cut\] …/)
  })

  it('ends a fork bomb at the pids limit or the timeout and stays usable', async () => {
    const r = await sh('bomb() { bomb | bomb & }; bomb; sleep 3', 6)
    expect(r.durationMs).toBeLessThan(20_000)
    // Left: init, the server, and this command's own timeout, sh, ps and awk; a zombie that
    // init has not reaped yet is dead already.
    const after = await sh('ps -e -o stat=,comm= | awk \'$1 !~ /^Z/ { print $2 }\'')
    expect(after.out.trim().split('\n').sort()).toEqual(['awk', 'docker-init', 'ps', 'sh', 'sh',
      'timeout'])
  })

  it('reads, writes and lists files inside the workspace only', async () => {
    await sandbox.writeFile('deep/er/new.txt', 'fresh\n')
    expect((await sandbox.readFile('deep/er/new.txt')).toString()).toBe('fresh\n')
    expect(await sandbox.readFile('image.bin')).toEqual(readFileSync(join(repo, 'image.bin')))
    const entries = await sandbox.listFiles('deep')
    expect(entries).toEqual([{ path: 'deep/er', type: 'directory', size: expect.any(Number) }])
    const root = await sandbox.listFiles()
    expect(root).toContainEqual({ path: 'README.md', type: 'file', size: 6 })
    await expect(sandbox.readFile('../../etc/passwd')).rejects.toThrow(/\.\./)
    await expect(sandbox.writeFile('/etc/x', 'x')).rejects.toThrow(/outside the workspace/)
    await expect(sandbox.readFile('missing.txt')).rejects.toThrow(/missing\.txt.*No such file/)
    await expect(sandbox.run('echo a\0b')).rejects.toThrow(/NUL/)
    await sh('rm -r deep')
  })

  it('lists a directory too large for one argument list, and fails aloud on an error',
    async () => {
      // 20,000 names of 160 bytes: over 3 MB, more than one exec may pass (2 MiB here).
      const name = 'n'.repeat(150)
      const made = await sh(`mkdir big && cd big && seq -f '${name}%05g' 20000 | xargs touch `
        + '&& mkdir sub && ln -s sub .hidden', 60)
      expect(made.exitCode).toBe(0)
      try {
        const entries = await sandbox.listFiles('big')
        expect(entries).toHaveLength(20_002)
        expect(entries[0]).toEqual({ path: 'big/.hidden', type: 'symlink', size: 3 })
        expect(entries[1]).toEqual({ path: `big/${name}00001`, type: 'file', size: 0 })
        expect(entries.at(-1)).toEqual({ path: 'big/sub', type: 'directory',
          size: expect.any(Number) })
        await expect(sandbox.listFiles('missing-dir')).rejects.toThrow(
          /Cannot list missing-dir: .*No such file/)
        await expect(sandbox.listFiles('README.md')).rejects.toThrow(/Cannot list README\.md/)
        await sh('mkdir locked && touch locked/x && chmod 0 locked')
        await expect(sandbox.listFiles('locked')).rejects.toThrow(/Cannot list locked/)
      } finally {
        await sh('chmod 700 locked; rm -rf big locked')
      }
    })

  it('brings every kind of change back to an identical host tree', async () => {
    const r = await sh([
      'echo changed >> README.md', 'rm gone.txt', 'mv move-me.txt moved.txt',
      'chmod +x script.sh', 'ln -s README.md link', 'ln -s ../outside dangling',
      "printf '\\000\\001\\002\\377' > image.bin",
      'mkdir -p "new dir" && echo ü > "new dir/ünï.txt"',
      'printf "no newline" > tail.txt', 'echo "x filter=evil" > .gitattributes',
      'git config filter.evil.clean "echo EVIL"'
    ].join(' && '))
    expect(r.exitCode).toBe(0)
    const changes = await sandbox.extractChanges()
    expect(changes.files.map(f => `${f.status} ${f.path}`).sort()).toEqual([
      'added .gitattributes', 'added dangling', 'added link', 'added new dir/ünï.txt',
      'added tail.txt', 'deleted gone.txt', 'mode script.sh', 'modified README.md',
      'modified image.bin', 'renamed moved.txt'])
    expect(checkChanges(changes, policy)).toEqual([])
    await applyChanges(repo, changes.patch)
    const inside = await sh(MANIFEST_SCRIPT)
    expect(hostManifest(repo)).toBe(inside.out)
    expect(inside.out).toContain('link ./link -> README.md')
    expect(inside.out).toMatch(/file x \.\/script\.sh/)
  })

  it('finds a change to a protected path in the patch and names it', async () => {
    await sh('mkdir -p .github/workflows && echo evil > .github/workflows/ci.yml')
    const changes = await sandbox.extractChanges()
    const violations = checkChanges(changes, policy)
    expect(violations).toEqual([expect.objectContaining({ path: '.github/workflows/ci.yml',
      rule: 'protected-path' })])
    await sh('rm -r .github')
  })
})

describe('a sandbox with a small memory limit', () => {
  it('kills a command that goes over it and stays usable', async () => {
    const repo = makeRepo()
    const runId = testRunId('oom')
    const sandbox = await startSandbox({ settings: testSandboxSettings({
      memoryBytes: 64 * 1024 * 1024 }), repoDir: repo, runId })
    try {
      // 200 MiB, zero-filled so every page is touched: far under what the host could give.
      const r = await sandbox.run('python3 -c "b = bytearray(200 * 1024 ** 2)"; echo "rc=$?"',
        { timeoutSeconds: 20 })
      expect(r.stdout.text).toBe('rc=137\n')
      expect(r.stderr.text).not.toMatch(/MemoryError/)
      expect((await sandbox.run('python3 -c "b = bytearray(16 * 1024 ** 2)" && echo fits'))
        .stdout.text).toBe('fits\n')
    } finally {
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })
})

describe('a change larger than max-patch-bytes', () => {
  it('is read only up to the cap and refused as patch-too-large, naming the setting',
    async () => {
      const repo = makeRepo()
      const runId = testRunId('bigpatch')
      const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo,
        runId, maxPatchBytes: 20_000 })
      const capped = { ...policy, maxPatchBytes: 20_000 }
      try {
        await sandbox.run('echo small >> README.md')
        const small = await sandbox.extractChanges()
        expect(small.oversized).toBeUndefined()
        expect(checkChanges(small, capped)).toEqual([])
        await sandbox.run('seq 1 200000 > big.txt && chmod +x script.sh && rm gone.txt')
        const big = await sandbox.extractChanges()
        expect(big.oversized).toBe(true)
        expect(big.patch.length).toBe(20_001)
        expect(big.files).toEqual([
          { path: 'README.md', status: 'modified', mode: '100644', binary: false },
          { path: 'big.txt', status: 'added', mode: '100644', binary: false },
          { path: 'gone.txt', status: 'deleted', binary: false },
          { path: 'script.sh', status: 'mode', mode: '100755', binary: false }])
        expect(checkChanges(big, capped)).toEqual([{ path: '', rule: 'patch-too-large',
          message: expect.stringMatching(/more than 20000 bytes.*max-patch-bytes/) }])
        const auditDir = mkdtempSync(join(tmpdir(), 'airlock-bigpatch-audit-'))
        try {
          const published = await publish({ output: 'patch', report: { task: { instructions:
            'x', origin: { kind: 'input', event: 'cli' } }, summary: '', steps: 1, tokens: 0,
          costUsd: 0 }, changes: big, repoDir: repo, auditDir, policy: capped,
          settings: settingsWithDefaults({ model: 'm' }).github, redact: text => text })
          expect(published.outcome).toMatchObject({ kind: 'refused' })
          expect(readFileSync(join(repo, 'README.md'), 'utf8')).toBe('hello\n')
        } finally {
          rmSync(auditDir, { recursive: true, force: true })
        }
      } finally {
        await sandbox.remove()
        rmSync(repo, { recursive: true, force: true })
      }
      expect(await containersOf(runId)).toEqual([])
    })
})

describe('credentials in the host checkout', () => {
  it('never enter the container', async () => {
    const repo = makeRepo()
    const runId = testRunId('creds')
    git(repo, 'config', 'http.https://github.com/.extraheader', 'AUTHORIZATION: basic SECRET1')
    git(repo, 'remote', 'add', 'origin', 'https://x-access-token:SECRET2@github.com/o/r.git')
    git(repo, 'config', 'credential.helper', 'store --file=/tmp/SECRET3')
    git(repo, 'config', 'includeIf.gitdir:/.path', '/home/SECRET4/.gitconfig')
    git(repo, 'config', 'url.https://u:SECRET5@example.com/.insteadOf', 'https://example.com/')
    // Files that a config includes, or a credential store, kept inside .git itself.
    writeFileSync(join(repo, '.git', 'secret.cfg'), '[http]\n\textraheader = SECRET6\n')
    git(repo, 'config', 'include.path', 'secret.cfg')
    writeFileSync(join(repo, '.git', 'credentials'), 'https://u:SECRET7@github.com\n')
    writeFileSync(join(repo, '.git', 'hooks', 'post-checkout'), '#!/bin/sh\necho SECRET8\n')
    const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId })
    try {
      const r = await sandbox.run('cat .git/config; git config --list --show-origin; '
        + 'grep -r SECRET .git || echo none')
      expect(r.stdout.text).not.toMatch(/SECRET|extraheader|credential|includeif/i)
      expect(r.stdout.text).toContain('remote.origin.url=https://github.com/o/r.git')
      expect(r.stdout.text).toMatch(/none\n$/)
      const listing = await sandbox.run('ls -A .git')
      for (const name of ['secret.cfg', 'credentials', 'hooks']) {
        expect(listing.stdout.text.split('\n')).not.toContain(name)
      }
      expect(listing.stdout.text).toMatch(/^HEAD\n/m)
      expect((await sandbox.run('git log --oneline')).stdout.text).toMatch(/start\n/)
      const work = await sandbox.run('git status --porcelain && echo more >> keep.txt && '
        + 'git diff --stat && git status --porcelain && git commit -qam next && git log '
        + '--format=%s')
      expect(work).toMatchObject({ exitCode: 0, stdout: { text: ' keep.txt | 1 +\n'
        + ' 1 file changed, 1 insertion(+)\n M keep.txt\nnext\nstart\n' } })
    } finally {
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })
})

describe('read-only mode', () => {
  it('refuses every write and still lets git read', async () => {
    const repo = makeRepo()
    writeFileSync(join(repo, 'README.md'), 'uncommitted\n')
    execFileSync('chmod', ['a+w', join(repo, 'keep.txt')])
    const runId = testRunId('ro')
    const sandbox = await startSandbox({ settings: testSandboxSettings({ readOnly: true }),
      repoDir: repo, runId })
    try {
      for (const write of ['echo x > README.md', 'echo x > keep.txt', 'touch new', 'rm gone.txt',
        'chmod +w README.md', 'mkdir d']) {
        expect((await sandbox.run(write)).exitCode).not.toBe(0)
      }
      await expect(sandbox.writeFile('x.txt', 'x')).rejects.toThrow(/read-only/)
      const status = await sandbox.run('git status --porcelain && git diff --stat')
      expect(status.exitCode).toBe(0)
      expect(status.stdout.text).toContain(' M README.md')
      expect((await sandbox.readFile('README.md')).toString()).toBe('uncommitted\n')
      expect((await sandbox.extractChanges()).patch.length).toBe(0)
    } finally {
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })
})

describe('a repository that is not a plain checkout', () => {
  const cases: [string, (repo: string) => void][] = [
    ['.git is missing', repo => rmSync(join(repo, '.git'), { recursive: true })],
    ['.git is a file', repo => {
      rmSync(join(repo, '.git'), { recursive: true })
      writeFileSync(join(repo, '.git'), 'gitdir: /elsewhere/modules/repo\n')
    }]
  ]
  it.each(cases)('gets one baseline commit of the copied files when %s', async (_, prepare) => {
    const repo = makeRepo()
    prepare(repo)
    const runId = testRunId('nogit')
    const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId })
    try {
      const start = await sandbox.run('git status --porcelain && git log --format="%an|%s" && '
        + 'git ls-files | wc -l && cat .git/HEAD')
      expect(start).toMatchObject({ exitCode: 0, stdout: { text: 'Airlock|The files as copied '
        + 'into the sandbox\n6\nref: refs/heads/main\n' } })
      const edit = await sandbox.run('echo more >> keep.txt && git diff --stat')
      expect(edit.stdout.text).toBe(' keep.txt | 1 +\n 1 file changed, 1 insertion(+)\n')
      const changes = await sandbox.extractChanges()
      expect(changes.files).toEqual([expect.objectContaining({ path: 'keep.txt',
        status: 'modified' })])
    } finally {
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })
})

describe('an edit in the second the checkout and the baseline were written', () => {
  // Git trusts an entry whose size and mtime (whole seconds) match the file, unless the entry
  // is no older than the index, and then it compares content. A same-size edit made in the
  // second of the checkout must therefore meet an index dated to that second, however late
  // the changes are read. Landing in one second depends on timing: each try starts at the
  // top of a second, and at least one try must have hit the case.
  it('is still found when the changes are read a second later', async () => {
    let hits = 0
    for (let attempt = 0; attempt < 4 && hits < 2; attempt++) {
      await sleep(1000 - Date.now() % 1000)
      const repo = makeRepo()
      const runId = testRunId('racy')
      const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo,
        runId })
      try {
        const edit = await sandbox.run("printf 'HELLO\\n' > README.md && stat -c %Y README.md")
        const written = Math.floor(statSync(join(repo, '.git/index')).mtimeMs / 1000)
        if (Number(edit.stdout.text) === written) hits++
        await sleep(1100 - Date.now() % 1000)
        const changes = await sandbox.extractChanges()
        expect(changes.files).toEqual([expect.objectContaining({ path: 'README.md',
          status: 'modified' })])
      } finally {
        await sandbox.remove()
        rmSync(repo, { recursive: true, force: true })
      }
    }
    expect(hits).toBeGreaterThan(0)
  })
})

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

describe('failures', () => {
  it('rejects pending and later calls quickly when the container is killed', async () => {
    const repo = makeRepo()
    const runId = testRunId('killed')
    const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId })
    try {
      const pending = sandbox.run('sleep 60')
      await new Promise(resolve => setTimeout(resolve, 300))
      const started = Date.now()
      await new Docker().getContainer(sandbox.containerId).kill()
      await expect(pending).rejects.toThrow(SandboxFailure)
      expect(Date.now() - started).toBeLessThan(5000)
      await expect(sandbox.run('true')).rejects.toThrow(SandboxFailure)
      await expect(sandbox.readFile('README.md')).rejects.toThrow(SandboxFailure)
    } finally {
      await sandbox.remove()
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })

  it('calls a wedged server a failure after the timeout and the grace', async () => {
    const repo = makeRepo()
    const runId = testRunId('wedged')
    const sandbox = await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId,
      graceMs: 1000 })
    try {
      // The command stops the server (its grandparent), which then never answers.
      const pending = sandbox.run('kill -STOP "$(ps -o ppid= -p $PPID)"', { timeoutSeconds: 1 })
      await expect(pending).rejects.toThrow(/no answer/)
    } finally {
      await sandbox.remove()
      rmSync(repo, { recursive: true, force: true })
    }
    expect(await containersOf(runId)).toEqual([])
  })

  it('leaves no container when the copy-in fails', async () => {
    const runId = testRunId('badrepo')
    await expect(startSandbox({ settings: testSandboxSettings(), runId,
      repoDir: '/nonexistent/airlock' })).rejects.toThrow(/tar/)
    expect(await containersOf(runId)).toEqual([])
  })

  it('says an image is missing and how to get it', async () => {
    const runId = testRunId('noimage')
    await expect(startSandbox({ settings: testSandboxSettings({ image: 'airlock-none:missing' }),
      runId, repoDir: '/tmp' })).rejects.toThrow(ImageUnusable)
    expect(await containersOf(runId)).toEqual([])
  })

  it('names the tool an image lacks', async () => {
    const docker = new Docker()
    const image = `airlock-test:no-git-${Date.now()}`
    const maker = await docker.createContainer({ Image: TEST_IMAGE, User: '0',
      Cmd: ['rm', '/usr/bin/git'] })
    await maker.start()
    await maker.wait()
    await maker.commit({ repo: image.split(':')[0], tag: image.split(':')[1] })
    await maker.remove()
    const repo = makeRepo()
    const runId = testRunId('nogitimage')
    try {
      await expect(startSandbox({ settings: testSandboxSettings({ image }), runId,
        repoDir: repo })).rejects.toThrow(/lacks git/)
      expect(await containersOf(runId)).toEqual([])
    } finally {
      await docker.getImage(image).remove()
      rmSync(repo, { recursive: true, force: true })
    }
  })

  it('sweeps every container of a run', async () => {
    const repo = makeRepo()
    const runId = testRunId('sweep')
    await startSandbox({ settings: testSandboxSettings(), repoDir: repo, runId })
    expect(await containersOf(runId)).toHaveLength(1)
    expect(await sweepContainers(runId)).toBe(1)
    expect(await containersOf(runId)).toEqual([])
    rmSync(repo, { recursive: true, force: true })
  })
})

/** Runs `command` in a throwaway container of the test image on `network`; its output. */
async function runOnNetwork(docker: Docker, network: string, command: string): Promise<string> {
  const container = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sh', '-c', command],
    Tty: true, HostConfig: { NetworkMode: network, AutoRemove: false } })
  try {
    await container.start()
    await container.wait()
    return (await container.logs({ stdout: true, stderr: true })).toString()
  } finally {
    await container.remove({ force: true })
  }
}
