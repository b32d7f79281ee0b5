import * as core from '@actions/core'
import Docker from 'dockerode'

/** Runs the main step, or the post step when the main step already ran in this job. */
export async function runAction(): Promise<void> {
  const docker = new Docker()
  core.info(`docker: ${typeof docker.listContainers}`)
}
