import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import Docker from 'dockerode'
import { verifyAuditLog } from '../src/audit/index.js'
import { createActionJob, type ActionJob } from './helpers/action-runner.js'
import { TEST_IMAGE } from './helpers/docker-sandbox.js'
import { createPublishRepos, type PublishRepos } from './helpers/git-publish-repo.js'
import { GitHubStandIn } from './helpers/github-server.js'
import { ModelServer, toolReply, type ScriptEntry } from './helpers/model-server.js'

const REPOSITORY = 'octo-org/octo-repo'
const API_KEY = 'sk-hostile-action-key-0042'
const TOKEN = 'ghs_hostile_action_token_0042'

/** Lines that would drive the runner if printed at the start of a line of the step's log. */
const INJECTIONS = ['::add-mask::Airlock', '::error::pwned-error', '::stop-commands::pwned',
  '::set-output name=outcome::changes-published', '##[error]pwned-legacy',
  '::warning file=x::pwned-warning', '::endgroup::']

/** Labels of everything a job left on the engine: its run ids start with GITHUB_RUN_ID. */
async function engineLeftovers(job: ActionJob): Promise<string[]> {
  const docker = new Docker()
  const containers = await docker.listContainers({ all: true, filters: { label: ['airlock.run'] } })
  const networks = await docker.listNetworks({ filters: { label: ['airlock.run'] } })
  return [...containers.map(c => c.Labels['airlock.run']),
    ...networks.map(n => n.Labels?.['airlock.run'] ?? '')]
    .filter(run => run.startsWith(`${job.runId}-`))
}

describe('the built action under attack and under kill', () => {
  let github: GitHubStandIn
  let repos: PublishRepos
  let model: ModelServer | undefined
  let job: ActionJob | undefined

  beforeEach(async () => {
    github = await GitHubStandIn.create(REPOSITORY)
    repos = createPublishRepos()
  })
  afterEach(async () => {
    await model?.close()
    model = undefined
    if (job) {
      expect(await engineLeftovers(job)).toEqual([])
      job.remove()
      job = undefined
    }
    repos.remove()
    expect(github.violations).toEqual([])
    await github.close()
  })

  async function prepare(script: ScriptEntry[], inputs: Record<string, string>):
    Promise<ActionJob> {
    model = await ModelServer.start(script)
    job = createActionJob({ eventName: 'workflow_dispatch', repository: REPOSITORY,
      payload: { inputs: {}, ref: 'refs/heads/main', repository: { full_name: REPOSITORY },
        sender: { login: 'octocat', type: 'User' } },
      workspace: repos.checkout, apiUrl: github.baseUrl,
      inputs: { model: 'scripted', 'base-url': model.baseUrl, 'api-key': API_KEY,
        'github-token': TOKEN, image: TEST_IMAGE, memory: '256m', cpus: '1',
        'pids-limit': '64', 'tmp-size': '32m', 'command-timeout': '20', task: 'Do it.',
        ...inputs } })
    return job
  }

  test('workflow commands in command output and in the summary do not reach the runner',
    async () => {
      const printAll = INJECTIONS.map(l => `echo '${l}'`).join('; ')
      const job = await prepare([
        toolReply('bash', { command: printAll }),
        toolReply('finish', { summary: INJECTIONS.join('\n') })
      ], { verify: `${printAll}; exit 1` })
      const main = await job.startMain().done
      expect(main.outputs.outcome).toBe('no-changes')
      // Every line the runner would take as a command is one Airlock wrote itself.
      const live = main.stdout.split('\n').map(l => l.trim())
        .filter(l => l.startsWith('::') || l.startsWith('##['))
      const ours = new RegExp('^::(group::[A-Z][a-z]+ing\\b.*|endgroup::|debug::.*'
        + '|(notice|warning|error)::Airlock: .*)$')
      // Airlock masks only the secrets it was given, raw and in base64; any other mask line
      // was injected (a mask of a common word would blank it out of the whole log).
      const masks = new Set([API_KEY, TOKEN].flatMap(v => [v, Buffer.from(v).toString('base64')])
        .map(v => `::add-mask::${v}`))
      expect(live.filter(l => !ours.test(l) && !masks.has(l))).toEqual([])
      expect(live.filter(l => masks.has(l)).length).toBeGreaterThan(0)
      expect(live.filter(l => /pwned|stop-commands|set-output/.test(l))).toEqual([])
      expect(live.filter(l => l === '::endgroup::').length)
        .toBe(live.filter(l => l.startsWith('::group::')).length)
      // The verify output was printed, as text.
      expect(main.stdout).toContain('pwned-error')
      expect(main.outputs.outcome).not.toBe('changes-published')
      expect(verifyAuditLog(main.outputs['audit-path'])).toMatchObject({ ok: true,
        complete: true })
    })

  test('SIGKILL mid-run leaves the container and network; the post step removes both',
    async () => {
      const job = await prepare([toolReply('bash', { command: 'sleep 60' }),
        toolReply('finish', { summary: 'never' })], { setup: 'true' })
      const step = job.startMain()
      await step.waitForOutput('::group::Running the agent')
      // Wait for the command to be in flight: the model has been asked once.
      while ((model?.completions.length ?? 0) < 1) await new Promise(r => setTimeout(r, 50))
      await new Promise(r => setTimeout(r, 500))
      step.child.kill('SIGKILL')
      const main = await step.done
      expect(main.signal).toBe('SIGKILL')
      const left = await engineLeftovers(job)
      expect(left.length).toBeGreaterThanOrEqual(2)
      const post = await job.runPost(main.state)
      expect(post.code).toBe(0)
      expect(post.stdout).toContain('Removed 1 container(s) this run left behind.')
      expect(post.stdout).toMatch(/Removed \d+ network\(s\) this run left behind\./)
      // The log was cut short by the kill: its chain is intact, and verify says it has no end.
      const audit = verifyAuditLog(`${job.temp}/airlock-${main.state.runId}`)
      expect(audit).toMatchObject({ ok: false, intact: true, complete: false })
    })
})
