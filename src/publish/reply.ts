/**
 * The one comment Airlock writes per request: created when work starts ("working on it") and
 * edited in place with the outcome. A re-run of the same request (the same issue label or the
 * same trigger comment) finds its earlier comment by a hidden marker and edits that one.
 *
 * Known shortcoming: the earlier comment is recognised by its marker and a bot author, not by
 * the exact account, because a `GITHUB_TOKEN` cannot ask who it is. Another bot with write
 * access could plant a marker comment and have it overwritten; naming the app's login in
 * settings would close that.
 */
import type { GitHub } from '../github/client.js'
import type { TaskOrigin } from '../task/types.js'
import type { Postable } from './postable.js'

/** The marker key of a request: its trigger comment, or the issue or pull request. */
function requestKey(origin: TaskOrigin): string {
  return origin.commentId !== undefined ? `comment-${origin.commentId}`
    : `${origin.isPullRequest ? 'pull' : 'issue'}-${origin.number}`
}

export class Reply {
  private readonly github: GitHub
  private readonly issueNumber: number
  private readonly marker: string
  private readonly postable: Postable
  private readonly runUrl?: string
  private commentId?: number
  private commentUrl?: string
  private written?: string

  /** whether an earlier comment with the marker is edited instead of writing a new one */
  private readonly reuseEarlier: boolean

  private constructor(github: GitHub, issueNumber: number, key: string, postable: Postable,
    runUrl: string | undefined, reuseEarlier: boolean) {
    this.github = github
    this.reuseEarlier = reuseEarlier
    this.issueNumber = issueNumber
    this.marker = `<!-- airlock:request=${key} -->`
    this.postable = postable
    this.runUrl = runUrl
  }

  /** The reply for a request, or `undefined` when the request came from no issue or PR. */
  static forOrigin(github: GitHub, origin: TaskOrigin, postable: Postable,
    runUrl?: string): Reply | undefined {
    if (origin.number === undefined) return undefined
    return new Reply(github, origin.number, requestKey(origin), postable, runUrl, true)
  }

  /**
   * A reply to a refused request: always a new comment, never an edit of this request's
   * earlier one. A label re-added by someone without write access must not overwrite the
   * result (and the pull request link) of the run that a maintainer started.
   */
  static forRefusal(github: GitHub, origin: TaskOrigin, postable: Postable,
    runUrl?: string): Reply | undefined {
    if (origin.number === undefined) return undefined
    return new Reply(github, origin.number, `${requestKey(origin)}-refused`, postable, runUrl,
      false)
  }

  /** The comment's address, once it exists. */
  get url(): string | undefined {
    return this.commentUrl
  }

  /** Says that work has started, reusing this request's earlier comment if there is one. */
  async start(): Promise<void> {
    const run = this.runUrl ? ` ([run](${this.runUrl}))` : ''
    await this.write(`⏳ Airlock is working on this${run}. This comment will be updated with `
      + 'the result.')
  }

  /** Writes the final text, editing the started comment (or an earlier run's) in place. */
  async finish(markdown: string): Promise<string> {
    return this.write(markdown)
  }

  /**
   * Replaces `from` with `to` in what was last written, in one edit; `false` when there is
   * no comment yet or the text does not hold `from`.
   */
  async replaceText(from: string, to: string): Promise<boolean> {
    if (this.written === undefined || !this.written.includes(from)) return false
    await this.write(this.written.split(from).join(to))
    return true
  }

  private async write(markdown: string): Promise<string> {
    const body = `${this.postable(markdown)}\n\n${this.marker}`
    if (this.commentId === undefined && this.reuseEarlier) {
      const earlier = (await this.github.listComments(this.issueNumber))
        .find(c => c.authorIsBot && c.body.includes(this.marker))
      if (earlier) this.commentId = earlier.id
    }
    const comment = this.commentId === undefined
      ? await this.github.createComment(this.issueNumber, body)
      : await this.github.updateComment(this.commentId, body)
    this.commentId = comment.id
    this.commentUrl = comment.url
    this.written = markdown
    return comment.url
  }
}
