/**
 * Everything Airlock posts to GitHub passes through here: secrets are redacted by value, and
 * `@mentions` are broken so that nothing the agent (or an issue author, quoted back) wrote can
 * ping a person or a team. Text the model wrote also loses its HTML and images, so it cannot
 * embed a tracker or hide content in the pull request.
 */

/** Turns any text into text safe to post. */
export type Postable = (text: string) => string

/** Builds the filter from the run's redactor (`createRedactor(settings.secrets)`). */
export function makePostable(redact: (text: string) => string): Postable {
  return text => neutralizeMentions(redact(text))
}

// A mention is `@login` or `@org/team` not glued to a word (an e-mail address is no mention).
const MENTION = /(^|[^\w`@])@([a-z0-9](?:[a-z0-9-]{0,38})(?:\/[\w.-]+)?)/gi

/** Puts a zero-width joiner after each `@` that GitHub would read as a mention. */
export function neutralizeMentions(text: string): string {
  return text.replace(MENTION, '$1@\u200D$2')
}

// Fenced blocks and inline code spans render nothing, so they are kept as written.
const CODE = /(^|\n)(```|~~~)[\s\S]*?(?:\n\2[^\n]*(?=\n|$)|$)|`[^`\n]+`/g

/** Strips what could render from model-written Markdown: images and HTML outside code. */
export function plainMarkdown(text: string): string {
  let out = ''
  let last = 0
  for (const match of text.matchAll(CODE)) {
    out += defang(text.slice(last, match.index)) + match[0]
    last = match.index + match[0].length
  }
  return out + defang(text.slice(last))
}

function defang(prose: string): string {
  return prose
    .replace(/!\[([^\]]*)\]\s*[([][^)\]]*[)\]]/g, '$1 (image removed)')
    // A reference definition could give a later `![x][ref]` or autolink its target.
    .replace(/^ {0,3}\[[^\]]+\]:\s*\S+.*$/gm, '')
    .replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
