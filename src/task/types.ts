/** A task as the agent receives it, whatever event it came from. */

export type TaskOriginKind =
  | 'input' // the `task` input: workflow_dispatch, schedule, push, any other event, the CLI
  | 'issue' // an issue labelled with the trigger label
  | 'issue-comment' // a trigger comment on an issue
  | 'pr-comment' // a trigger comment on a pull request (conversation or review comment)

export interface TaskOrigin {
  kind: TaskOriginKind
  /** the GitHub event name, or `cli` */
  event: string
  /** `owner/name`, when the run is on GitHub */
  repository?: string
  /** the issue or pull request number the request came from */
  number?: number
  isPullRequest?: boolean
  /** the comment that asked, when a comment asked */
  commentId?: number
  /** a link a person can follow to where the request was made */
  url?: string
  /**
   * for a request made on a pull request, once checked against the checkout: the branch the
   * change is proposed into, and whether that branch is in this repository (else a fork)
   */
  pullHead?: { ref: string; sha: string; sameRepository: boolean }
}

/** Text that a stranger may have written: the agent sees it fenced and labelled as data. */
export interface UntrustedText {
  /** what it is, e.g. `issue #12 title and body` */
  label: string
  /** already cleaned of hidden markup and invisible or bidirectional control characters */
  text: string
  /**
   * login of whoever wrote it, when the payload says; for a labelled issue that is the
   * issue's author, not the requester who added the label
   */
  author?: string
}

export interface Task {
  /** what the workflow author wrote (`task` input), trusted; may be empty for issue runs */
  instructions: string
  /** the issue or comment text, when the request came from one */
  untrusted?: UntrustedText[]
  origin: TaskOrigin
  /** login of the person (or allowed bot) who asked */
  requester?: string
}
