/**
 * The container's layout and its hardened configuration, in one place.
 *
 * Layout: an anonymous volume at `/workspace` (the mount point stays root-owned), the
 * repository at `/workspace/repo` (created by the tar with the owner the mode calls for),
 * HOME at `/tmp/home` on the `/tmp` tmpfs, and the command server's files on a tmpfs of
 * their own at `/run/airlock`, so an agent that fills `/tmp` does not wedge the server.
 */
import type { ContainerCreateOptions } from 'dockerode'
import type { SandboxSettings } from '../settings.js'
import { SERVER_SCRIPT, SERVER_STATE_DIR } from './command-server.js'

export const VOLUME_DIR = '/workspace'
export const REPO_NAME = 'repo'
export const WORKDIR = `${VOLUME_DIR}/${REPO_NAME}`
export const HOME_DIR = '/tmp/home'
export const RUN_LABEL = 'airlock.run'
export const OWNER_LABEL = 'airlock'

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const SERVER_STATE_BYTES = 64 * 1024 * 1024
const OPEN_FILES = 4096
/**
 * The largest file any process may write (RLIMIT_FSIZE; past it the writer gets SIGXFSZ).
 * The workspace is an anonymous Docker volume on the host's disk, and neither the volume nor
 * overlay2 on ext4 can cap its total size, so this is the defence that exists everywhere: one
 * runaway write stops at 1 GiB, and the command timeout bounds how many such files fit in.
 * Known shortcoming: many files, each under the cap, can still fill the host's disk until the
 * command times out; a workspace on a size-capped filesystem (a tmpfs filled through the
 * command server instead of `putArchive`, or an xfs project quota) would close it.
 */
export const MAX_FILE_BYTES = 1024 ** 3

/** The container's whole environment, built here and never copied from the host's. */
export function containerEnv(): string[] {
  return [
    `PATH=${PATH}`,
    `HOME=${HOME_DIR}`,
    'LANG=C.UTF-8',
    'CI=true',
    // The workspace belongs to another uid in read-only mode; git must still read it.
    'GIT_CONFIG_COUNT=1',
    'GIT_CONFIG_KEY_0=safe.directory',
    'GIT_CONFIG_VALUE_0=*'
  ]
}

/** Numeric uid and gid from settings' `uid:gid`. */
export function parseUser(user: string): { uid: number; gid: number } {
  const [uid, gid] = user.split(':').map(Number)
  return { uid, gid: gid ?? uid }
}

/**
 * Create options for the run's one container: every hardening setting is stated here.
 * `network` names a per-run Docker network to start on; without it there is none at all.
 */
export function containerSpec(settings: SandboxSettings, runId: string,
  network?: string): ContainerCreateOptions {
  const { uid, gid } = parseUser(settings.user)
  const tmpfs = (size: number, mode: string): string =>
    `rw,nosuid,nodev,size=${size},mode=${mode},uid=${uid},gid=${gid}`
  return {
    Image: settings.image,
    User: `${uid}:${gid}`,
    Entrypoint: ['sh'],
    Cmd: ['-c', SERVER_SCRIPT],
    Env: containerEnv(),
    WorkingDir: '/',
    Labels: { [OWNER_LABEL]: '1', [RUN_LABEL]: runId },
    Tty: false,
    OpenStdin: true,
    StdinOnce: false,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: network === undefined,
    Volumes: { [VOLUME_DIR]: {} },
    HostConfig: {
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: {
        '/tmp': tmpfs(settings.tmpSizeBytes, '1777'),
        [SERVER_STATE_DIR]: tmpfs(SERVER_STATE_BYTES, '0700')
      },
      Init: true,
      Memory: settings.memoryBytes,
      MemorySwap: settings.memoryBytes,
      NanoCpus: settings.nanoCpus,
      PidsLimit: settings.pidsLimit,
      Ulimits: [
        { Name: 'nofile', Soft: OPEN_FILES, Hard: OPEN_FILES },
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'fsize', Soft: MAX_FILE_BYTES, Hard: MAX_FILE_BYTES }
      ],
      NetworkMode: network ?? 'none',
      // On a run network Docker's resolver forwards names it cannot answer to servers the
      // container cannot reach; each lookup then fails after 1 s instead of 10.
      DnsOptions: network === undefined ? [] : ['timeout:1', 'attempts:1'],
      IpcMode: 'private',
      Binds: [],
      Devices: [],
      // Output reaches the host through the attach stream only; a flood fills no log file.
      LogConfig: { Type: 'none', Config: {} },
      AutoRemove: false
    }
  }
}
