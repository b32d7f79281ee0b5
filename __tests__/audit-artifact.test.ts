import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runArtifactsUrl, uploadAuditArtifact } from '../src/audit/artifact.js'
import { writeSampleRun } from './helpers/audit-run.js'
import type { SampleRun } from './helpers/audit-run.js'
import { removeDir } from './helpers/audit-files.js'
import { runtimeToken, startResultsServer } from './helpers/audit-results-server.js'
import type { ResultsServer } from './helpers/audit-results-server.js'

const ACTIONS_ENV = ['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_RESULTS_URL', 'GITHUB_SERVER_URL',
  'GITHUB_REPOSITORY', 'GITHUB_RUN_ID']

describe('uploadAuditArtifact', () => {
  let run: SampleRun
  let server: ResultsServer
  const saved: Record<string, string | undefined> = {}
  const lines: string[] = []
  beforeAll(async () => {
    run = await writeSampleRun()
    server = await startResultsServer()
    for (const name of ACTIONS_ENV) saved[name] = process.env[name]
  })
  afterAll(async () => {
    await server.close()
    removeDir(run.dir)
    removeDir(run.repo)
  })
  beforeEach(() => {
    lines.length = 0
    Object.assign(process.env, {
      ACTIONS_RUNTIME_TOKEN: runtimeToken(), ACTIONS_RESULTS_URL: `${server.url}/`,
      GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'octo/repo',
      GITHUB_RUN_ID: '777'
    })
  })
  afterEach(() => {
    for (const name of ACTIONS_ENV) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  })

  it('uploads the whole audit directory through the real artifact client', async () => {
    const result = await uploadAuditArtifact(run.dir, 'airlock-audit', { log: l => lines.push(l) })
    expect(result).toEqual({ id: 4242,
      url: 'https://github.com/octo/repo/actions/runs/777/artifacts/4242' })
    expect(server.requests[0]).toMatch(/CreateArtifact$/)
    expect(server.requests.at(-1)).toMatch(/FinalizeArtifact$/)
    const zip = join(mkdtempSync(join(tmpdir(), 'airlock-zip-')), 'a.zip')
    writeFileSync(zip, server.uploads.get('airlock-audit')!)
    const listing = execFileSync('python3', ['-m', 'zipfile', '-l', zip], { encoding: 'utf8' })
    expect(listing).toMatch(/^audit\.jsonl\s/m)
    expect(listing).toMatch(/^outputs\/[0-9a-f]{64}\.txt\s/m)
    removeDir(join(zip, '..'))
    expect(lines.at(-1)).toMatch(/^Uploaded the audit log as artifact airlock-audit \(\d+ files/)
  })

  it('warns and returns nothing when the service refuses, never throws', async () => {
    server.failCreateWith = 400
    try {
      const result = await uploadAuditArtifact(run.dir, 'airlock-audit',
        { log: l => lines.push(l) })
      expect(result).toEqual({})
      expect(lines.at(-1)).toMatch(new RegExp('^warning: the audit log could not be uploaded as '
        + `artifact airlock-audit; it is still in ${run.dir}\\. Reason: `))
    } finally {
      server.failCreateWith = undefined
    }
  })

  it('is a no-op with a clear line outside GitHub Actions', async () => {
    delete process.env.ACTIONS_RUNTIME_TOKEN
    const before = server.requests.length
    const result = await uploadAuditArtifact(run.dir, 'airlock-audit', { log: l => lines.push(l) })
    expect(result).toEqual({})
    expect(lines).toEqual([`Not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN): the audit `
      + `log stays in ${run.dir}.`])
    expect(server.requests.length).toBe(before)
  })
})

describe('runArtifactsUrl', () => {
  const env = { GITHUB_SERVER_URL: 'https://ghe.example/', GITHUB_REPOSITORY: 'o/r',
    GITHUB_RUN_ID: '9' }
  it('links the run, or the artifact when its id is known', () => {
    expect(runArtifactsUrl(env)).toBe('https://ghe.example/o/r/actions/runs/9')
    expect(runArtifactsUrl(env, 5)).toBe('https://ghe.example/o/r/actions/runs/9/artifacts/5')
    expect(runArtifactsUrl({})).toBeUndefined()
  })
})
