/**
 * The command server: a POSIX `sh` loop that is the container's main process, and the host
 * side that talks to it over the attach stream. One `docker exec` costs 150-190 ms; a request
 * to a shell that is already running costs about a millisecond.
 *
 * Request (host → server stdin): a header line `<nonce> <timeout> <cmdLen> <inputLen> <cwd>`,
 * then exactly cmdLen bytes of command text and inputLen bytes of input. Lengths, not
 * terminators, delimit the parts, so no command text can be mistaken for framing.
 * Reply: the command's own output, then `<nonce> <status>\n` on stdout and `<nonce>` on
 * stderr. The nonce is fresh and random for each request, so output cannot fake the end.
 *
 * Each command is one step: after it ends the server kills every other process of its user,
 * so nothing a command put in the background outlives it. Known shortcoming: a command that
 * kills the server itself (`kill -9 -1`, `pkill sh`) ends the sandbox with a SandboxFailure;
 * running the server as a second uid would prevent that but needs privileges we drop.
 */
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { SandboxFailure } from './errors.js'
import { FrameDemuxer, MarkerCutter } from './frames.js'
import type { ByteSink } from './output.js'

/** Where the server keeps the command file and input: a tmpfs of its own, see container-config. */
export const SERVER_STATE_DIR = '/run/airlock'

/** Tools the server and the sandbox's own git steps need from the image. */
export const REQUIRED_TOOLS = ['git', 'timeout', 'head', 'mkdir', 'cat', 'rm', 'cp', 'stat',
  'touch', 'find']

/** The server, run as `sh -c SERVER_SCRIPT`. Exits 3 naming what the image lacks. */
export const SERVER_SCRIPT = `
missing=''
for tool in ${REQUIRED_TOOLS.join(' ')}; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  printf 'airlock: the image lacks:%s\\n' "$missing" >&2
  exit 3
fi
state=${SERVER_STATE_DIR}
mkdir -p "$HOME" || exit 4
# An identity for commits the agent makes inside; the repository's own config still wins.
[ -e "$HOME/.gitconfig" ] ||
  printf '[user]\\n\\tname = Airlock agent\\n\\temail = agent@airlock.invalid\\n' \\
    > "$HOME/.gitconfig"
while IFS=' ' read -r nonce secs clen ilen cwd; do
  head -c "$clen" > "$state/cmd" || exit 5
  input=/dev/null
  if [ "$ilen" -gt 0 ]; then
    head -c "$ilen" > "$state/in" || exit 5
    input="$state/in"
  fi
  (
    cd "$cwd" && {
      echo 1000 2>/dev/null > /proc/self/oom_score_adj
      exec timeout -s KILL "$secs" sh "$state/cmd"
    }
  ) < "$input"
  status=$?
  n=0
  while [ "$n" -lt 1000 ] && kill -0 -1 2>/dev/null; do
    kill -9 -1 2>/dev/null
    n=$((n + 1))
  done
  rm -f "$state/in"
  printf '%s %s\\n' "$nonce" "$status"
  printf '%s' "$nonce" >&2
done
`

/** One request to the server. */
export interface ServerRequest {
  /** shell text, run by `sh` from a file */
  command: string
  timeoutSeconds: number
  /** absolute directory inside the container */
  cwd: string
  /** bytes the command reads on stdin; without it stdin is /dev/null */
  input?: Buffer
  stdout: ByteSink
  stderr: ByteSink
}

export interface ServerReply {
  exitCode: number
  timedOut: boolean
  durationMs: number
}

/** `timeout -s KILL` kills its own process group, itself included: the status is 128 + 9. */
const KILLED_STATUS = 137

interface Pending {
  nonce: string
  request: ServerRequest
  started: number
  stdout: MarkerCutter
  stderr: MarkerCutter
  statusLine: string
  resolve: (reply: ServerReply) => void
  reject: (error: Error) => void
  watchdog: NodeJS.Timeout
}

/** The host end of the attach stream: sends one request at a time and reads its reply. */
export class CommandChannel {
  private readonly stream: Duplex
  private readonly demuxer: FrameDemuxer
  private readonly graceMs: number
  private queue: Promise<unknown> = Promise.resolve()
  private pending: Pending | undefined
  private failed: SandboxFailure | undefined
  private unclaimed = ''
  private replies = 0

  /** `graceMs`: how long past a command's timeout before the server counts as wedged. */
  constructor(stream: Duplex, graceMs = 10_000) {
    this.stream = stream
    this.graceMs = graceMs
    this.demuxer = new FrameDemuxer((kind, payload) => this.route(kind, payload))
    stream.on('data', (chunk: Buffer) => this.demuxer.push(chunk))
    stream.on('end', () => this.fail('the container\'s output stream ended'))
    stream.on('close', () => this.fail('the connection to the container closed'))
    stream.on('error', error => this.fail(`the connection to the container failed: ${error}`))
  }

  /** The failure that ended the channel, if any. */
  get failure(): SandboxFailure | undefined {
    return this.failed
  }

  /** Output from before the first reply or between requests, e.g. why the server exited. */
  get strayOutput(): string {
    return this.unclaimed
  }

  /** Runs one request after those before it; rejects with SandboxFailure if the server is gone. */
  send(request: ServerRequest): Promise<ServerReply> {
    const next = this.queue.then(() => this.dispatch(request))
    this.queue = next.catch(() => undefined)
    return next
  }

  /** Ends the channel: the pending request and every later one reject with this reason. */
  fail(reason: string): void {
    if (this.failed) return
    this.failed = new SandboxFailure(`Sandbox failure: ${reason}.`
      + (this.unclaimed ? ` Last output: ${this.unclaimed.trim()}` : ''))
    const pending = this.pending
    this.pending = undefined
    if (pending) {
      clearTimeout(pending.watchdog)
      pending.reject(this.failed)
    }
    this.stream.destroy()
  }

  private dispatch(request: ServerRequest): Promise<ServerReply> {
    if (this.failed) return Promise.reject(this.failed)
    const nonce = randomBytes(16).toString('hex')
    const command = Buffer.from(request.command, 'utf8')
    const input = request.input ?? Buffer.alloc(0)
    const header = `${nonce} ${Math.max(1, Math.ceil(request.timeoutSeconds))} ${command.length} `
      + `${input.length} ${request.cwd}\n`
    return new Promise<ServerReply>((resolve, reject) => {
      const marker = Buffer.from(nonce, 'latin1')
      const pending: Pending = {
        nonce, request, started: performance.now(), statusLine: '', resolve, reject,
        stdout: new MarkerCutter(marker, chunk => request.stdout.write(chunk),
          rest => this.readStatus(pending, rest)),
        stderr: new MarkerCutter(marker, chunk => request.stderr.write(chunk),
          () => this.maybeFinish(pending)),
        watchdog: setTimeout(() => this.fail('the command server gave no answer '
          + `${this.graceMs / 1000} s after the command's timeout`),
        request.timeoutSeconds * 1000 + this.graceMs)
      }
      this.pending = pending
      this.stream.write(Buffer.concat([Buffer.from(header, 'utf8'), command, input]))
    })
  }

  private route(kind: 1 | 2, payload: Buffer): void {
    const pending = this.pending
    // Until the first reply, output may be the server's own complaint at start: keep it.
    if (!pending || this.replies === 0) {
      this.unclaimed = (this.unclaimed + payload.toString('utf8')).slice(-2000)
    }
    if (!pending) return
    if (kind === 1) pending.stdout.push(payload)
    else pending.stderr.push(payload)
  }

  private readStatus(pending: Pending, rest: Buffer): void {
    pending.statusLine += rest.toString('latin1')
    this.maybeFinish(pending)
  }

  private maybeFinish(pending: Pending): void {
    if (this.pending !== pending) return
    const newline = pending.statusLine.indexOf('\n')
    if (!pending.stderr.done || newline < 0) return
    this.pending = undefined
    this.replies++
    clearTimeout(pending.watchdog)
    const durationMs = performance.now() - pending.started
    const exitCode = Number(pending.statusLine.slice(0, newline).trim())
    // 137 is also what an OOM kill gives, so only a kill at or after the deadline is a timeout.
    const timedOut = exitCode === KILLED_STATUS
      && durationMs >= pending.request.timeoutSeconds * 1000 - 50
    pending.resolve({ exitCode, timedOut, durationMs })
  }
}
