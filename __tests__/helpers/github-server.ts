/**
 * A stand-in for the GitHub REST API on 127.0.0.1, for one repository. It keeps state
 * (collaborators, issues, comments, pull requests) and checks every request against GitHub's
 * OpenAPI description: the route must exist for the method, path and query parameters must
 * fit their schemas, and a JSON body must validate against the operation's request schema.
 * Anything else is recorded in `violations`, which a test asserts is empty, and answered 400.
 *
 * Responses carry the fields of GitHub's response schemas that Airlock reads, with GitHub's
 * types; they are not complete objects (a full pull request has some 80 required fields).
 */
import { createRequire } from 'node:module'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'

const require = createRequire(import.meta.url)

type Json = Record<string, unknown>

interface Operation {
  method: string
  template: string
  pattern: RegExp
  paramNames: string[]
  parameters: Json[]
  bodySchema?: Json
  bodyValidator?: ValidateFunction
}

export interface RecordedRequest {
  method: string
  path: string
  /** the route template from the OpenAPI description, when one matched */
  route?: string
  body?: unknown
  authorization?: string
}

export interface StandInUser {
  login: string
  type?: 'User' | 'Bot'
}

interface StoredComment {
  id: number
  issueNumber: number
  body: string
  user: StandInUser
}

interface StoredPull {
  number: number
  title: string
  body: string
  head: string
  base: string
  draft: boolean
  state: 'open' | 'closed'
  merged: boolean
  /** the head commit, for a pull request a person opened (`addPull`) */
  headSha?: string
  /** `owner/name` holding the head branch, when it is not this repository (a fork) */
  headRepository?: string
}

interface StoredIssue {
  number: number
  title: string
  body: string
  isPullRequest: boolean
}

/** A failure the next matching requests get, to exercise retry and rate-limit handling. */
export interface InjectedFailure {
  status: number
  headers?: Record<string, string>
  message?: string
  /** how many requests get it; default 1 */
  times?: number
}

let cachedSpec: Json | undefined
let cachedOperations: Operation[] | undefined
let cachedAjv: Ajv | undefined

function loadSpec(): { spec: Json; operations: Operation[]; ajv: Ajv } {
  if (!cachedSpec || !cachedOperations || !cachedAjv) {
    cachedSpec = require('@octokit/openapi/generated/api.github.com.json') as Json
    // GitHub's description is OpenAPI 3.0 with its own keywords (`x-github`, `example`), so
    // ajv runs non-strict; unknown formats are ignored quietly rather than logged.
    cachedAjv = new Ajv({ strict: false, validateSchema: false, allErrors: true, logger: false })
    const addFormats = addFormatsModule as unknown as (ajv: Ajv) => void
    addFormats(cachedAjv)
    cachedAjv.addFormat('repo.nwo', /^[^/\s]+\/[^/\s]+$/)
    cachedAjv.addSchema({ components: cachedSpec.components }, 'gh')
    cachedOperations = indexOperations(cachedSpec)
  }
  return { spec: cachedSpec, operations: cachedOperations, ajv: cachedAjv }
}

function indexOperations(spec: Json): Operation[] {
  const operations: Operation[] = []
  const components = spec.components as Json
  for (const [template, item] of Object.entries(spec.paths as Record<string, Json>)) {
    const paramNames: string[] = []
    const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g,
      (_m, name: string) => {
        paramNames.push(name)
        return '([^/]+)'
      })
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'patch', 'put', 'delete'].includes(method)) continue
      const opJson = op as Json
      const shared = (item.parameters as Json[] | undefined) ?? []
      const own = (opJson.parameters as Json[] | undefined) ?? []
      const parameters = [...shared, ...own].map(p => resolveRef(p, components))
      const requestBody = resolveRef(opJson.requestBody as Json | undefined, components)
      const content = requestBody?.content as Record<string, Json> | undefined
      operations.push({
        method: method.toUpperCase(), template, pattern: new RegExp(`^${source}$`), paramNames,
        parameters, bodySchema: content?.['application/json']?.schema as Json | undefined
      })
    }
  }
  return operations
}

function resolveRef<T extends Json | undefined>(node: T, components: Json): T {
  const ref = (node as Json | undefined)?.$ref
  if (typeof ref !== 'string') return node
  const [, kind, name] = /^#\/components\/([^/]+)\/(.+)$/.exec(ref) ?? []
  return (components[kind] as Json)[name] as T
}

/** Points `#/components/...` references at the shared `gh` schema, so ajv resolves them. */
function anchorRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(anchorRefs)
  if (node === null || typeof node !== 'object') return node
  return Object.fromEntries(Object.entries(node).map(([k, v]) =>
    [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `gh${v}` : anchorRefs(v)]))
}

/** The stand-in server; `close()` it in `afterAll`. */
export class GitHubStandIn {
  readonly owner: string
  readonly repo: string
  readonly requests: RecordedRequest[] = []
  /** requests that do not fit GitHub's OpenAPI description; a test expects none */
  readonly violations: string[] = []
  defaultBranch = 'main'
  private readonly server: Server
  private readonly collaborators = new Map<string, { permission: string; roleName: string }>()
  private readonly issues = new Map<number, StoredIssue>()
  private readonly comments = new Map<number, StoredComment>()
  private readonly pulls = new Map<number, StoredPull>()
  private readonly failures: Array<InjectedFailure & { route: string; left: number }> = []
  /** the login that writes comments and pull requests made with the token */
  readonly botUser: StandInUser = { login: 'github-actions[bot]', type: 'Bot' }
  private nextNumber = 1
  private nextCommentId = 1000
  private baseUrlValue = ''

  private constructor(repository: string) {
    ;[this.owner, this.repo] = repository.split('/')
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => {
        this.violations.push(`stand-in crashed on ${req.method} ${req.url}: ${String(error)}`)
        send(res, 500, { message: 'stand-in error' })
      })
    })
  }

  /** Starts a stand-in for `owner/name` on a free loopback port. */
  static async create(repository = 'octo-org/octo-repo'): Promise<GitHubStandIn> {
    loadSpec()
    const standIn = new GitHubStandIn(repository)
    await new Promise<void>(resolve => standIn.server.listen(0, '127.0.0.1', resolve))
    const { port } = standIn.server.address() as AddressInfo
    standIn.baseUrlValue = `http://127.0.0.1:${port}`
    return standIn
  }

  get baseUrl(): string {
    return this.baseUrlValue
  }

  get repository(): string {
    return `${this.owner}/${this.repo}`
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  /** Gives `login` a role: `admin`, `maintain`, `write`, `triage` or `read`. */
  addCollaborator(login: string, roleName: string): void {
    const permission = roleName === 'maintain' ? 'write' : roleName === 'triage' ? 'read'
      : roleName
    this.collaborators.set(login.toLowerCase(), { permission, roleName })
  }

  /** Creates an issue (or the issue side of a pull request) and returns its number. */
  addIssue(title: string, body: string, number?: number): number {
    const n = number ?? this.nextNumber++
    this.nextNumber = Math.max(this.nextNumber, n + 1)
    this.issues.set(n, { number: n, title, body, isPullRequest: false })
    return n
  }

  /** Opens a pull request as a person would, from `head` at `headSha`; returns its number. */
  addPull(pull: { title: string; body: string; head: string; headSha: string; base?: string
    headRepository?: string }): number {
    const number = this.nextNumber++
    this.pulls.set(number, { number, title: pull.title, body: pull.body, head: pull.head,
      base: pull.base ?? this.defaultBranch, draft: false, state: 'open', merged: false,
      headSha: pull.headSha, headRepository: pull.headRepository })
    this.issues.set(number, { number, title: pull.title, body: pull.body, isPullRequest: true })
    return number
  }

  /** Adds a comment as if `user` wrote it. */
  addComment(issueNumber: number, body: string, user: StandInUser): number {
    const id = this.nextCommentId++
    this.comments.set(id, { id, issueNumber, body, user })
    return id
  }

  /** Marks a pull request closed (by a person), optionally merged. */
  closePull(pullNumber: number, merged = false): void {
    const pull = this.pulls.get(pullNumber)
    if (!pull) throw new Error(`no pull request #${pullNumber}`)
    pull.state = 'closed'
    pull.merged = merged
  }

  /** Makes the next request(s) to the route template fail as given. */
  failNext(method: string, route: string, failure: InjectedFailure): void {
    this.failures.push({ ...failure, route: `${method.toUpperCase()} ${route}`,
      left: failure.times ?? 1 })
  }

  commentsOn(issueNumber: number): Array<{ id: number; body: string; author: string }> {
    return [...this.comments.values()].filter(c => c.issueNumber === issueNumber)
      .map(c => ({ id: c.id, body: c.body, author: c.user.login }))
  }

  pullRequests(): StoredPull[] {
    return [...this.pulls.values()].map(p => ({ ...p }))
  }

  /** Every text a client sent in a request body, for leak checks. */
  postedTexts(): string[] {
    return this.requests.filter(r => r.body !== undefined).map(r => JSON.stringify(r.body))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const method = req.method ?? 'GET'
    const raw = await readBody(req)
    const record: RecordedRequest = { method, path: url.pathname,
      authorization: req.headers.authorization }
    this.requests.push(record)
    let body: unknown
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw)
        record.body = body
      } catch {
        return this.reject(res, `${method} ${url.pathname}: body is not JSON`)
      }
    }
    const match = this.matchOperation(method, url.pathname)
    if (!match) {
      return this.reject(res, `${method} ${url.pathname}: no such route in GitHub's API`, 404)
    }
    const { op, params } = match
    record.route = op.template
    const problems = [...this.checkParameters(op, params, url.searchParams),
      ...this.checkBody(op, body)]
    if (problems.length > 0) {
      return this.reject(res, `${method} ${op.template}: ${problems.join('; ')}`)
    }
    const failure = this.failures.find(f => f.route === `${method} ${op.template}` && f.left > 0)
    if (failure) {
      failure.left--
      return send(res, failure.status, { message: failure.message ?? 'injected failure' },
        failure.headers)
    }
    if (params.owner?.toLowerCase() !== this.owner.toLowerCase()
      || params.repo?.toLowerCase() !== this.repo.toLowerCase()) {
      return send(res, 404, { message: 'Not Found' })
    }
    this.route(method, op.template, params, url.searchParams, body as Json, res)
  }

  private reject(res: ServerResponse, violation: string, status = 400): void {
    this.violations.push(violation)
    send(res, status, { message: violation })
  }

  private matchOperation(method: string, path: string):
    { op: Operation; params: Record<string, string> } | undefined {
    const { operations } = loadSpec()
    // Prefer the route with the fewest parameters, as GitHub's router does for literals.
    const candidates = operations.filter(o => o.method === method && o.pattern.test(path))
      .sort((a, b) => a.paramNames.length - b.paramNames.length)
    const op = candidates[0]
    if (!op) return undefined
    const values = op.pattern.exec(path)?.slice(1) ?? []
    const params = Object.fromEntries(op.paramNames.map((n, i) =>
      [n, decodeURIComponent(values[i])]))
    return { op, params }
  }

  private checkParameters(op: Operation, params: Record<string, string>,
    query: URLSearchParams): string[] {
    const problems: string[] = []
    const declared = new Map(op.parameters.map(p => [`${p.in}:${p.name}`, p]))
    for (const [name, value] of Object.entries(params)) {
      const spec = declared.get(`path:${name}`)
      problems.push(...checkValue(`path parameter ${name}`, value, spec?.schema as Json))
    }
    for (const [name, value] of query.entries()) {
      const spec = declared.get(`query:${name}`)
      if (!spec) problems.push(`query parameter ${name} is not in the operation`)
      else problems.push(...checkValue(`query parameter ${name}`, value, spec.schema as Json))
    }
    return problems
  }

  private checkBody(op: Operation, body: unknown): string[] {
    if (body === undefined) {
      const required = op.bodySchema && (op.bodySchema.required as string[] | undefined)?.length
      return required ? ['the operation requires a JSON body'] : []
    }
    if (!op.bodySchema) return ['the operation takes no JSON body']
    op.bodyValidator ??= loadSpec().ajv.compile(anchorRefs(op.bodySchema) as Json)
    if (op.bodyValidator(body)) return []
    return (op.bodyValidator.errors ?? []).map(e => `body${e.instancePath} ${e.message}`)
  }

  private route(method: string, route: string, params: Record<string, string>,
    query: URLSearchParams, body: Json, res: ServerResponse): void {
    const key = `${method} ${route.replace('/repos/{owner}/{repo}', '')}`
    switch (key) {
      case 'GET ':
        return send(res, 200, this.repositoryJson())
      case 'GET /collaborators/{username}/permission':
        return this.permission(params.username, res)
      case 'GET /issues/{issue_number}/comments':
        return this.listComments(Number(params.issue_number), query, res)
      case 'POST /issues/{issue_number}/comments':
        return this.createComment(Number(params.issue_number), body, res)
      case 'PATCH /issues/comments/{comment_id}':
        return this.updateComment(Number(params.comment_id), body, res)
      case 'GET /pulls':
        return this.listPulls(query, res)
      case 'GET /pulls/{pull_number}': {
        const pull = this.pulls.get(Number(params.pull_number))
        return pull ? send(res, 200, this.pullJson(pull)) : send(res, 404, { message: 'Not Found' })
      }
      case 'POST /pulls':
        return this.createPull(body, res)
      case 'PATCH /pulls/{pull_number}':
        return this.updatePull(Number(params.pull_number), body, res)
      default:
        return this.reject(res, `${method} ${route}: valid, but the stand-in does not serve it`,
          501)
    }
  }

  private repositoryJson(): Json {
    return {
      id: 1, node_id: 'R_1', name: this.repo, full_name: this.repository,
      private: false, default_branch: this.defaultBranch,
      owner: userJson({ login: this.owner, type: 'Organization' as 'User' }),
      html_url: `https://github.com/${this.repository}`
    }
  }

  private permission(username: string, res: ServerResponse): void {
    const entry = this.collaborators.get(username.toLowerCase())
    if (!entry) return send(res, 404, { message: 'Not Found' })
    send(res, 200, {
      permission: entry.permission, role_name: entry.roleName,
      user: { ...userJson({ login: username }), role_name: entry.roleName }
    })
  }

  private listComments(issueNumber: number, query: URLSearchParams, res: ServerResponse): void {
    if (!this.issues.has(issueNumber)) return send(res, 404, { message: 'Not Found' })
    const perPage = Number(query.get('per_page') ?? 30)
    const page = Number(query.get('page') ?? 1)
    const all = [...this.comments.values()].filter(c => c.issueNumber === issueNumber)
    const slice = all.slice((page - 1) * perPage, page * perPage)
    send(res, 200, slice.map(c => this.commentJson(c)))
  }

  private createComment(issueNumber: number, body: Json, res: ServerResponse): void {
    if (!this.issues.has(issueNumber)) return send(res, 404, { message: 'Not Found' })
    const id = this.addComment(issueNumber, String(body.body), this.botUser)
    send(res, 201, this.commentJson(this.comments.get(id) as StoredComment))
  }

  private updateComment(id: number, body: Json, res: ServerResponse): void {
    const comment = this.comments.get(id)
    if (!comment) return send(res, 404, { message: 'Not Found' })
    comment.body = String(body.body)
    send(res, 200, this.commentJson(comment))
  }

  private commentJson(c: StoredComment): Json {
    const base = `https://github.com/${this.repository}`
    return {
      id: c.id, node_id: `IC_${c.id}`, body: c.body, user: userJson(c.user),
      url: `${this.baseUrl}/repos/${this.repository}/issues/comments/${c.id}`,
      html_url: `${base}/issues/${c.issueNumber}#issuecomment-${c.id}`,
      issue_url: `${this.baseUrl}/repos/${this.repository}/issues/${c.issueNumber}`,
      created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
      author_association: c.user.type === 'Bot' ? 'NONE' : 'MEMBER'
    }
  }

  private listPulls(query: URLSearchParams, res: ServerResponse): void {
    const state = query.get('state') ?? 'open'
    const head = query.get('head')
    let pulls = [...this.pulls.values()].filter(p => state === 'all' || p.state === state)
    if (head) pulls = pulls.filter(p => `${this.owner}:${p.head}` === head)
    pulls.sort((a, b) => b.number - a.number)
    send(res, 200, pulls.map(p => this.pullJson(p)))
  }

  private createPull(body: Json, res: ServerResponse): void {
    const head = String(body.head)
    const taken = [...this.pulls.values()].find(p => p.head === head && p.state === 'open')
    if (taken) {
      return send(res, 422, { message: 'Validation Failed', errors: [{ resource: 'PullRequest',
        code: 'custom', message: `A pull request already exists for ${this.owner}:${head}.` }] })
    }
    const number = this.nextNumber++
    const pull: StoredPull = { number, title: String(body.title), body: String(body.body ?? ''),
      head, base: String(body.base), draft: body.draft === true, state: 'open', merged: false }
    this.pulls.set(number, pull)
    this.issues.set(number, { number, title: pull.title, body: pull.body, isPullRequest: true })
    send(res, 201, this.pullJson(pull))
  }

  private updatePull(number: number, body: Json, res: ServerResponse): void {
    const pull = this.pulls.get(number)
    if (!pull) return send(res, 404, { message: 'Not Found' })
    if (typeof body.title === 'string') pull.title = body.title
    if (typeof body.body === 'string') pull.body = body.body
    if (body.state === 'open' || body.state === 'closed') pull.state = body.state
    send(res, 200, this.pullJson(pull))
  }

  private pullJson(p: StoredPull): Json {
    return {
      id: p.number, node_id: `PR_${p.number}`, number: p.number, title: p.title, body: p.body,
      state: p.state, draft: p.draft, merged_at: p.merged ? '2026-01-02T00:00:00Z' : null,
      html_url: `https://github.com/${this.repository}/pull/${p.number}`,
      head: { ref: p.head, label: `${(p.headRepository ?? this.repository).split('/')[0]}:${
        p.head}`, sha: p.headSha ?? '0'.repeat(40),
      repo: { full_name: p.headRepository ?? this.repository } },
      base: { ref: p.base, label: `${this.owner}:${p.base}` },
      user: userJson(this.botUser)
    }
  }
}

function checkValue(what: string, value: string, schema: Json | undefined): string[] {
  if (!schema) return [`${what} is not in the operation`]
  if (schema.type === 'integer' && !/^\d+$/.test(value)) {
    return [`${what} must be an integer, got "${value}"`]
  }
  const allowed = schema.enum as string[] | undefined
  if (allowed && !allowed.includes(value)) {
    return [`${what} must be one of ${allowed.join(', ')}, got "${value}"`]
  }
  return []
}

function userJson(user: StandInUser): Json {
  return {
    login: user.login, id: 1, node_id: 'U_1', type: user.type ?? 'User', site_admin: false,
    html_url: `https://github.com/${user.login}`
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function send(res: ServerResponse, status: number, body: unknown,
  headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  res.end(JSON.stringify(body))
}
