/**
 * Sandbox benchmarks, each against a baseline measured in the same run:
 *  - per-command overhead (`true` × N) against the `docker exec` CLI;
 *  - container start + first command against `docker run -d` + `docker exec`;
 *  - copying a ~200 MB, 20,000-file repository in against `docker cp`;
 *  - host memory while a 100 MB output flood passes through.
 * Run: node_modules/.bin/node --import ./scripts/ts-loader.mjs bench/sandbox.ts
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { startSandbox, sweepContainers, type Sandbox } from '../src/sandbox/index.js'
import { containerSpec, parseUser } from '../src/sandbox/container-config.js'
import { copyIn } from '../src/sandbox/workspace.js'
import { settingsWithDefaults } from '../src/settings.js'

const IMAGE = process.env.AIRLOCK_BENCH_IMAGE ?? 'airlock-test:bookworm'
const RUN_ID = `bench-${randomBytes(4).toString('hex')}`
const settings = settingsWithDefaults({ image: IMAGE, model: 'bench',
  'base-url': 'http://127.0.0.1:1/v1' }).sandbox
const docker = new Docker()
const scratch = mkdtempSync(join(tmpdir(), 'airlock-bench-'))
const baselineContainers: string[] = []

const now = (): number => performance.now()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const dockerCli = (...args: string[]): string =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()

function report(name: string, ours: number, baseline: number, target: number, unit = 'ms'): void {
  const ratio = ours / baseline
  console.log(`${name.padEnd(34)} ours ${ours.toFixed(2).padStart(9)} ${unit}   baseline `
    + `${baseline.toFixed(2).padStart(9)} ${unit}   ratio ${ratio.toFixed(3)}x `
    + `(target ≤ ${target}x: ${ratio <= target ? 'met' : 'MISSED'})`)
}

function git(dir: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@example.com', '-c', 'gc.auto=0',
    ...args],
    { cwd: dir, stdio: 'ignore', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } })
}

function smallRepo(): string {
  const dir = join(scratch, 'small')
  mkdirSync(dir)
  writeFileSync(join(dir, 'README.md'), 'bench\n')
  git(dir, 'init', '-q')
  git(dir, 'add', '-A')
  git(dir, 'commit', '-qm', 'x')
  return dir
}

/** 20,000 files of 10 KiB of random bytes (incompressible) in 200 directories, committed. */
function bigRepo(): string {
  const dir = join(scratch, 'big')
  for (let d = 0; d < 200; d++) {
    const sub = join(dir, `dir${d}`)
    mkdirSync(sub, { recursive: true })
    for (let f = 0; f < 100; f++) writeFileSync(join(sub, `file${f}.bin`), randomBytes(10_240))
  }
  git(dir, 'init', '-q')
  git(dir, 'add', '-A')
  git(dir, 'commit', '-qm', 'x')
  return dir
}

async function perCommand(sandbox: Sandbox, n: number): Promise<void> {
  for (let i = 0; i < 10; i++) await sandbox.run('true')
  let t = now()
  for (let i = 0; i < n; i++) await sandbox.run('true')
  const ours = (now() - t) / n
  const m = Math.min(n, 30)
  t = now()
  for (let i = 0; i < m; i++) dockerCli('exec', sandbox.containerId, 'true')
  const baseline = (now() - t) / m
  report(`per command (true, n=${n}/${m})`, ours, baseline, 0.1)
}

async function startAndFirst(repo: string, rounds: number): Promise<void> {
  const ours: number[] = []
  const base: number[] = []
  for (let i = 0; i < rounds; i++) {
    let t = now()
    const sandbox = await startSandbox({ settings, repoDir: repo, runId: RUN_ID, docker })
    await sandbox.run('true')
    ours.push(now() - t)
    await sandbox.remove()
    t = now()
    // No network on either side: the sandbox starts with none, so the baseline pays for no
    // bridge endpoint either.
    const id = dockerCli('run', '-d', '--network', 'none', '--label', `airlock.run=${RUN_ID}`,
      IMAGE, 'sleep', 'infinity')
    baselineContainers.push(id)
    dockerCli('exec', id, 'true')
    base.push(now() - t)
    dockerCli('rm', '-f', id)
  }
  report(`start + first command (median of ${rounds})`, median(ours), median(base), 1.0)
}

async function copyRepo(repo: string): Promise<void> {
  const spec = containerSpec(settings, RUN_ID)
  const ours = await docker.createContainer(spec)
  let t = now()
  const copied = await peakRssGrowth(() => copyIn(ours, repo, { ...parseUser(settings.user),
    readOnly: false }))
  const oursMs = now() - t
  await ours.remove({ force: true, v: true })
  const theirs = await docker.createContainer(spec)
  t = now()
  dockerCli('cp', `${repo}/.`, `${theirs.id}:/workspace/`)
  const baseMs = now() - t
  await theirs.remove({ force: true, v: true })
  report('copy in 200 MB / 20,000 files', oursMs, baseMs, 1.0)
  console.log(`  host RSS while copying in: +${copied.mib.toFixed(1)} MiB at peak (the tar `
    + 'streams; the repository is not held in memory)')
  t = now()
  const sandbox = await startSandbox({ settings, repoDir: repo, runId: RUN_ID, docker })
  const whole = now() - t
  t = now()
  await sandbox.run('echo x >> dir0/file0.bin')
  const changes = await sandbox.extractChanges()
  const extract = now() - t
  await sandbox.remove()
  console.log(`  whole start with that repository (create, copy, baseline): ${whole.toFixed(0)} `
    + `ms; one change out: ${extract.toFixed(0)} ms (${changes.files.length} file)`)
}

/** `work`'s result and how far this process's RSS rose above its start while it ran. */
async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; mib: number }> {
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
  try {
    const result = await work()
    return { result, mib: (peak - before) / 2 ** 20 }
  } finally {
    clearInterval(sampler)
  }
}

/** Peak host RSS growth while a flood passes: bounded memory does not grow with the flood. */
async function flood(sandbox: Sandbox, bytes: number): Promise<void> {
  const t = now()
  const { result, mib } = await peakRssGrowth(() => sandbox.run(`head -c ${bytes} /dev/zero`))
  const ms = now() - t
  console.log(`${String(bytes / 1e6).padStart(4)} MB output flood: ${ms.toFixed(0)} ms `
    + `(${(bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s), ${result.stdout.bytes} bytes `
    + `counted, host RSS +${mib.toFixed(1)} MiB at peak`)
}

async function main(): Promise<void> {
  console.log(`sandbox benchmarks on ${IMAGE}, engine ${(await docker.version()).Version}`)
  const small = smallRepo()
  const sandbox = await startSandbox({ settings, repoDir: small, runId: RUN_ID, docker })
  try {
    await perCommand(sandbox, 300)
    await flood(sandbox, 10_000_000)
    await flood(sandbox, 100_000_000)
    await flood(sandbox, 10_000_000)
  } finally {
    await sandbox.remove()
  }
  await startAndFirst(small, 5)
  if (process.argv.includes('--quick')) return
  console.log('generating the 200 MB repository…')
  await copyRepo(bigRepo())
}

try {
  await main()
} finally {
  for (const id of baselineContainers) {
    try { dockerCli('rm', '-f', id) } catch { /* already removed */ }
  }
  await sweepContainers(RUN_ID, docker)
  rmSync(scratch, { recursive: true, force: true })
}
