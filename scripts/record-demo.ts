// Records the demo run that `airlock demo` replays: the built command line (dist/) runs a
// scripted model, which fixes demo/sample-repo the way a model would, in the real sandbox.
// Run it after changing the sandbox, the tools or the audit format, then commit
// demo/recording. Needs Docker and the image airlock-test:bookworm.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ModelServer, toolReply } from '../__tests__/helpers/model-server.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const recording = `${root}demo/recording`

const server = await ModelServer.start([
  toolReply('bash', { command: 'python3 test_slugify.py' }),
  toolReply('read_file', { path: 'slugify.py' }),
  toolReply('edit_file', {
    path: 'slugify.py',
    old_text: '    slug = re.sub(r"[^a-z0-9]", "-", slug)\n    return slug\n',
    new_text: '    slug = re.sub(r"[^a-z0-9]+", "-", slug)\n    return slug.strip("-")\n'
  }),
  toolReply('bash', { command: 'python3 test_slugify.py && git status --short' }),
  toolReply('finish', { summary: 'Runs of separators now collapse into one dash, and dashes '
    + 'at either end are trimmed, so all four checks in test_slugify.py pass.' })
])
try {
  rmSync(recording, { recursive: true, force: true })
  // spawn, not spawnSync: the scripted model answers from this very process.
  const run = spawn(`${root}node_modules/.bin/node`, [`${root}bin/airlock.js`, 'run',
    '--repo', `${root}demo/sample-repo`, '--model', 'scripted-demo', '--base-url',
    server.baseUrl, '--image', 'airlock-test:bookworm', '--audit-dir', recording,
    '--task', 'Fix slugify so that test_slugify.py passes.'],
  { stdio: 'inherit', env: { PATH: process.env.PATH, HOME: process.env.HOME } })
  process.exitCode = await new Promise<number>(done => run.on('exit', code => done(code ?? 1)))
} finally {
  await server.close()
}
