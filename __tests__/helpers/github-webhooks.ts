/**
 * GitHub's published example webhook payloads (`@octokit/webhooks-examples`), deep-copied so
 * a test can adjust the few fields its case needs.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

interface Definition {
  name: string
  examples: Array<Record<string, unknown>>
}

const definitions = require('@octokit/webhooks-examples') as Definition[]

/** A copy of the first example of `event` whose action is `action` (any when omitted). */
export function webhookExample(event: string, action?: string): Record<string, unknown> {
  const definition = definitions.find(d => d.name === event)
  const example = definition?.examples.find(e => action === undefined || e.action === action)
  if (!example) throw new Error(`no published example for ${event}.${action ?? '*'}`)
  return structuredClone(example)
}
