/**
 * The action's cold start and the bundle's size. Each round runs the built `dist/index.js`
 * as the runner does (a `workflow_dispatch` event, every input at its default but the model
 * and the image) and times process start to the first model request arriving at the scripted
 * server; side by side, the baseline is the start of a bare `node -e ''`. The step's own log
 * lines, timed as they arrive, split out loading the bundle and starting the sandbox.
 *
 *   node_modules/.bin/node --import ./scripts/ts-loader.mjs bench/action.ts [rounds]
 */
import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import Docker from 'dockerode'
import { BUNDLE, createActionJob, NODE } from '../__tests__/helpers/action-runner.js'
import { createPublishRepos } from '../__tests__/helpers/git-publish-repo.js'
import { GitHubStandIn } from '../__tests__/helpers/github-server.js'
import { webhookExample } from '../__tests__/helpers/github-webhooks.js'
import { ModelServer, toolReply } from '../__tests__/helpers/model-server.js'

const ROUNDS = Number(process.argv[2] ?? 7)
const IMAGE = process.env.AIRLOCK_TEST_IMAGE ?? 'airlock-test:bookworm'

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Process start to exit of `node -e ''`: what any Node action pays before its first line. */
async function bareNode(): Promise<number> {
  const began = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(NODE, ['-e', ''], { stdio: 'ignore' })
    child.on('error', reject)
    child.on('close', () => resolve())
  })
  return performance.now() - began
}

interface ColdStart {
  /** process start to the first model request at the server */
  firstRequestMs: number
  /** process start to the first line the step prints: Node plus loading the bundle */
  firstLineMs: number
  /** the "Starting the sandbox" group: network, container, workspace copy */
  sandboxMs: number
}

async function actionColdStart(github: GitHubStandIn): Promise<ColdStart> {
  const repos = createPublishRepos()
  let firstRequestAt = 0
  // The first answer ends the run (no change, no PR), so a round costs one sandbox.
  const model = await ModelServer.start(() => {
    firstRequestAt ||= performance.now()
    return toolReply('finish', { summary: 'nothing to do' })
  })
  const job = createActionJob({ eventName: 'workflow_dispatch',
    payload: webhookExample('workflow_dispatch'), repository: github.repository,
    workspace: repos.checkout, apiUrl: github.baseUrl,
    inputs: { task: 'Say hello.', model: 'bench', 'base-url': model.baseUrl,
      'api-key': 'sk-bench-cold-start-0', 'github-token': 'ghs_bench_token_000000',
      image: IMAGE } })
  try {
    const began = performance.now()
    const step = job.startMain()
    const at = (text: string): Promise<number> =>
      step.waitForOutput(text, 60000).then(() => performance.now())
    const [firstLine, sandboxFrom, sandboxTo] = await Promise.all([at('::'),
      at('::group::Starting the sandbox'), at(', workspace /')])
    const result = await step.done
    if (result.outputs.outcome !== 'no-changes') {
      throw new Error(`bench run ended ${result.outputs.outcome}:\n${result.stdout}`)
    }
    await job.runPost(result.state)
    return { firstRequestMs: firstRequestAt - began, firstLineMs: firstLine - began,
      sandboxMs: sandboxTo - sandboxFrom }
  } finally {
    await model.close()
    job.remove()
    repos.remove()
  }
}

async function main(): Promise<void> {
  const github = await GitHubStandIn.create('octo-org/octo-repo')
  const bare: number[] = []
  const runs: ColdStart[] = []
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternate the order so neither side always runs on a warm page cache.
      if (round % 2 === 0) bare.push(await bareNode())
      runs.push(await actionColdStart(github))
      if (round % 2 === 1) bare.push(await bareNode())
    }
  } finally {
    await github.close()
  }
  const left = await new Docker().listContainers({ all: true,
    filters: { label: ['airlock.run'] } })
  const ours = left.filter(c => /^\d+-1-/.test(c.Labels['airlock.run'] ?? ''))
  if (ours.length > 0) console.warn(`warning: ${ours.length} container(s) left behind`)

  const bytes = statSync(BUNDLE).size
  const gzip = gzipSync(readFileSync(BUNDLE)).length
  const first = median(runs.map(r => r.firstRequestMs))
  const base = median(bare)
  const rows: Array<[string, string]> = [
    [`action: process start → first model request (median of ${ROUNDS})`,
      `${first.toFixed(0)} ms`],
    ['  of which: process start → first log line (Node + bundle load)',
      `${median(runs.map(r => r.firstLineMs)).toFixed(0)} ms`],
    ['  of which: starting the sandbox (network, container, workspace)',
      `${median(runs.map(r => r.sandboxMs)).toFixed(0)} ms`],
    [`baseline: node -e '' start to exit (median of ${ROUNDS})`, `${base.toFixed(0)} ms`],
    ['ratio action / baseline', (first / base).toFixed(1)],
    ['dist/index.js', `${bytes} bytes (${(bytes / 2 ** 20).toFixed(2)} MiB)`],
    ['dist/index.js gzip -6', `${gzip} bytes (${(gzip / 2 ** 20).toFixed(2)} MiB)`]
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`)
  console.log(`all rounds, first request (ms): ${runs.map(r => r.firstRequestMs.toFixed(0))
    .join(' ')}`)
}

await main()
