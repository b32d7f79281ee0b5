/** The connection to the Docker engine, the image, and the sweep of a run's containers. */
import Docker from 'dockerode'
import { DockerUnavailable, ImageUnusable, messageOf } from './errors.js'
import type { ImageInfo } from './types.js'
import { RUN_LABEL } from './container-config.js'

const PING_TIMEOUT_MS = 5000

/**
 * The address whose engine did not answer this process's last attempt, and why. Cleanup
 * reads it so that an engine already known to be dead is not pinged again, each sweep
 * waiting out its own timeout and warning about containers that never existed.
 */
let unreachable: { address: string; message: string } | undefined

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
  const address = engineAddress()
  try {
    await Promise.race([docker.ping(), timeout])
  } catch (error) {
    unreachable = { address, message: messageOf(error) }
    throw new DockerUnavailable(`No Docker engine answers at ${address} `
      + `(${messageOf(error)}). Start Docker on this machine (\`sudo systemctl start docker\`), `
      + 'check that this user may open its socket (e.g. is in the `docker` group), or set '
      + 'DOCKER_HOST to an engine this machine can reach.')
  } finally {
    clearTimeout(timer)
  }
  unreachable = undefined
  return docker
}

/**
 * Why the engine at the current address did not answer this process's last attempt to
 * connect, naming the address; `undefined` when it answered or was not tried.
 */
export function engineFoundUnreachable(): string | undefined {
  const address = engineAddress()
  return unreachable?.address === address
    ? `no Docker engine answered at ${address} (${unreachable.message})` : undefined
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
      + `(${messageOf(error)}). Pull it (\`docker pull ${name}\`) from a machine that reaches `
      + 'its registry, build it there (`docker build -t` with that name), or set the input '
      + '`image` to one that exists here (`docker image ls` lists them).')
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

/**
 * Removes every container labelled with the run, volumes included; returns how many. Without
 * an engine given, an engine found unreachable moments ago is not tried again: no container
 * can have been made on it since, so none is there to remove.
 */
export async function sweepContainers(runId: string, docker?: Docker): Promise<number> {
  if (!docker && engineFoundUnreachable()) return 0
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
