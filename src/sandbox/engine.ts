/** The connection to the Docker engine, the image, and the sweep of a run's containers. */
import Docker from 'dockerode'
import { DockerUnavailable, ImageUnusable, messageOf } from './errors.js'
import type { ImageInfo } from './types.js'
import { RUN_LABEL } from './container-config.js'

const PING_TIMEOUT_MS = 5000

/**
 * Connects to the engine named by DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH),
 * or the local socket, and checks that it answers.
 */
export async function connectEngine(): Promise<Docker> {
  let docker: Docker
  try {
    docker = new Docker()
  } catch (error) {
    throw new DockerUnavailable(`Cannot set up the Docker client: ${messageOf(error)}. `
      + 'Check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.')
  }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${PING_TIMEOUT_MS / 1000} s`)),
      PING_TIMEOUT_MS)
  })
  try {
    await Promise.race([docker.ping(), timeout])
  } catch (error) {
    throw new DockerUnavailable(`No Docker engine answers at ${engineAddress()} `
      + `(${messageOf(error)}). Start one (\`bash scripts/docker-up.sh\`, or start dockerd), `
      + 'or set DOCKER_HOST to an engine you can reach.')
  } finally {
    clearTimeout(timer)
  }
  return docker
}

function engineAddress(): string {
  const host = process.env.DOCKER_HOST
  return host ? `DOCKER_HOST=${host}` : 'the local socket /var/run/docker.sock'
}

/** The image's id and digests, pulling it first when it is not on this machine. */
export async function ensureImage(docker: Docker, name: string,
  log: (line: string) => void): Promise<ImageInfo> {
  try {
    return describe(name, await docker.getImage(name).inspect())
  } catch (error) {
    if (statusOf(error) !== 404) throw error
  }
  log(`sandbox: image ${name} is not here; pulling it`)
  try {
    const stream = await docker.pull(name)
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, error => (error ? reject(error) : resolve()))
    })
    return describe(name, await docker.getImage(name).inspect())
  } catch (error) {
    throw new ImageUnusable(`The image ${name} is not on this machine and pulling it failed `
      + `(${messageOf(error)}). Pull it (\`docker pull ${name}\`) where a registry is `
      + 'reachable, build it (`bash scripts/build-test-image.sh` builds airlock-test:bookworm), '
      + 'or set the `image` input to one that is here.')
  }
}

function describe(name: string, inspect: Docker.ImageInspectInfo): ImageInfo {
  return { name, id: inspect.Id, digests: inspect.RepoDigests ?? [] }
}

/** HTTP status of an engine error, when it has one. */
export function statusOf(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode
  return typeof code === 'number' ? code : undefined
}

/** Removes every container labelled with the run, volumes included; returns how many. */
export async function sweepContainers(runId: string, docker?: Docker): Promise<number> {
  const engine = docker ?? await connectEngine()
  const found = await engine.listContainers({
    all: true, filters: { label: [`${RUN_LABEL}=${runId}`] }
  })
  let removed = 0
  for (const info of found) {
    try {
      await engine.getContainer(info.Id).remove({ force: true, v: true })
      removed++
    } catch (error) {
      // Another sweep or the run's own cleanup may have got there first.
      if (statusOf(error) !== 404) throw error
    }
  }
  return removed
}
