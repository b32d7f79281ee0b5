/**
 * A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks
 * that drive the real `openai` client. Each request takes the next entry of the script (or
 * asks a function), and every request is recorded with its headers and parsed body.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One scripted tool call; `arguments` may be an object (serialised) or a raw string. */
export interface ScriptedToolCall {
  name: string
  arguments: Record<string, unknown> | string
  id?: string
}

export interface ScriptedUsage {
  prompt: number
  completion: number
  cached?: number
}

/** What the server does with one request. */
export type ScriptEntry =
  | { reply: { content?: string | null; toolCalls?: ScriptedToolCall[] }
      /** `null` leaves usage out of the response; absent means a small fixed usage */
      usage?: ScriptedUsage | null; finishReason?: string; delayMs?: number }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  /** never answers; the connection stays open until the client gives up */
  | { stall: true }
  /** closes the connection without a response */
  | { drop: true }

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  /** the parsed JSON body */
  body: Record<string, unknown>
  /** milliseconds since the server started */
  atMs: number
}

export type Script = ScriptEntry[] | ((request: RecordedRequest, index: number) => ScriptEntry)

/** A tool-call reply in one line: `toolReply('bash', { command: 'ls' })`. */
export function toolReply(name: string, args: Record<string, unknown> | string,
  usage?: ScriptedUsage | null): ScriptEntry {
  return { reply: { toolCalls: [{ name, arguments: args }] }, usage }
}

/** A reply carrying several tool calls at once. */
export function toolsReply(calls: ScriptedToolCall[], usage?: ScriptedUsage | null): ScriptEntry {
  return { reply: { toolCalls: calls }, usage }
}

/** A plain text reply with no tool call. */
export function textReply(content: string, usage?: ScriptedUsage | null): ScriptEntry {
  return { reply: { content }, usage }
}

/** An OpenAI-shaped error response. */
export function errorReply(status: number, message: string, code?: string,
  headers?: Record<string, string>): ScriptEntry {
  return { status, headers, body: { error: { message, type: 'scripted', code: code ?? null } } }
}

/** A running scripted server; `close()` also ends stalled connections. */
export class ModelServer {
  readonly requests: RecordedRequest[] = []
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly started = Date.now()
  private script: Script
  private nextId = 0

  private constructor(script: Script) {
    this.script = script
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', c => chunks.push(c as Buffer))
      req.on('end', () => this.answer(req.method ?? '', req.url ?? '', req.headers,
        Buffer.concat(chunks).toString('utf8'), res))
    })
    this.server.on('connection', socket => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  /** Starts a server on an ephemeral loopback port. */
  static async start(script: Script): Promise<ModelServer> {
    const s = new ModelServer(script)
    await new Promise<void>(resolve => s.server.listen(0, '127.0.0.1', resolve))
    return s
  }

  /** The base URL to give the client, ending in `/v1`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`
  }

  /** Replaces the script; the request count carries on. */
  setScript(script: Script): void {
    this.script = script
  }

  /** Chat-completion requests received, in order. */
  get completions(): RecordedRequest[] {
    return this.requests.filter(r => r.path.endsWith('/chat/completions'))
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private answer(method: string, path: string, headers: IncomingHttpHeaders, raw: string,
    res: ServerResponse): void {
    let body: Record<string, unknown>
    try {
      body = raw ? JSON.parse(raw) as Record<string, unknown> : {}
    } catch {
      body = { unparsable: raw }
    }
    const request = { method, path, headers, body, atMs: Date.now() - this.started }
    const index = this.requests.length
    this.requests.push(request)
    const entry = this.entryFor(request, index)
    if ('stall' in entry) return
    if ('drop' in entry) {
      res.socket?.destroy()
      return
    }
    if ('status' in entry) {
      send(res, entry.status, entry.body ?? { error: { message: `status ${entry.status}` } },
        entry.headers)
      return
    }
    const completion = this.completion(request, entry)
    if (entry.delayMs) setTimeout(() => send(res, 200, completion), entry.delayMs)
    else send(res, 200, completion)
  }

  private entryFor(request: RecordedRequest, index: number): ScriptEntry {
    if (typeof this.script === 'function') return this.script(request, index)
    return this.script[index] ?? errorReply(500, `model script exhausted at request ${index + 1}`)
  }

  private completion(request: RecordedRequest,
    entry: Extract<ScriptEntry, { reply: unknown }>): Record<string, unknown> {
    const calls = entry.reply.toolCalls ?? []
    const message: Record<string, unknown> = {
      role: 'assistant', content: entry.reply.content ?? null, refusal: null
    }
    if (calls.length > 0) {
      message.tool_calls = calls.map(c => ({
        id: c.id ?? `call_${++this.nextId}`, type: 'function',
        function: { name: c.name,
          arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) }
      }))
    }
    const result: Record<string, unknown> = {
      id: `chatcmpl-${this.requests.length}`, object: 'chat.completion',
      created: Math.floor(Date.now() / 1000), model: String(request.body.model ?? 'scripted'),
      choices: [{ index: 0, message, logprobs: null,
        finish_reason: entry.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop') }]
    }
    const usage = entry.usage === undefined ? { prompt: 100, completion: 20 } : entry.usage
    if (usage) {
      result.usage = {
        prompt_tokens: usage.prompt, completion_tokens: usage.completion,
        total_tokens: usage.prompt + usage.completion,
        prompt_tokens_details: { cached_tokens: usage.cached ?? 0 }
      }
    }
    return result
  }
}

function send(res: ServerResponse, status: number, body: unknown,
  headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json',
    'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** A loopback URL where nothing listens: a provider that is down. */
export async function closedPortUrl(): Promise<string> {
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>(resolve => probe.close(() => resolve()))
  return `http://127.0.0.1:${port}/v1`
}
