/**
 * The example workflows in `examples/workflows/` are what people copy, so each one is held to
 * what the action accepts: every `with:` key is an input of `action.yml`, the values pass the
 * same settings validation the action runs, the token has only the permissions the step's
 * output needs, and the triggers are events GitHub knows.
 */
import { describe, expect, test } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { readSettings } from '../src/settings.js'
import { actionDefaults } from './helpers/action-runner.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIR = join(ROOT, 'examples', 'workflows')

/** The events that can trigger a workflow, with the activity types of those that have them. */
const EVENTS: Record<string, string[] | null> = {
  branch_protection_rule: ['created', 'edited', 'deleted'],
  check_run: ['created', 'rerequested', 'completed', 'requested_action'],
  check_suite: ['completed'],
  create: null, delete: null, deployment: null, deployment_status: null,
  discussion: ['created', 'edited', 'deleted', 'transferred', 'pinned', 'unpinned', 'labeled',
    'unlabeled', 'locked', 'unlocked', 'category_changed', 'answered', 'unanswered'],
  discussion_comment: ['created', 'edited', 'deleted'],
  fork: null, gollum: null,
  issue_comment: ['created', 'edited', 'deleted'],
  issues: ['opened', 'edited', 'deleted', 'transferred', 'pinned', 'unpinned', 'closed',
    'reopened', 'assigned', 'unassigned', 'labeled', 'unlabeled', 'locked', 'unlocked',
    'milestoned', 'demilestoned', 'typed', 'untyped'],
  label: ['created', 'edited', 'deleted'],
  merge_group: ['checks_requested'],
  milestone: ['created', 'closed', 'opened', 'edited', 'deleted'],
  page_build: null, public: null,
  pull_request: ['assigned', 'unassigned', 'labeled', 'unlabeled', 'opened', 'edited',
    'closed', 'reopened', 'synchronize', 'converted_to_draft', 'ready_for_review', 'locked',
    'unlocked', 'review_requested', 'review_request_removed', 'auto_merge_enabled',
    'auto_merge_disabled', 'milestoned', 'demilestoned', 'enqueued', 'dequeued'],
  pull_request_review: ['submitted', 'edited', 'dismissed'],
  pull_request_review_comment: ['created', 'edited', 'deleted'],
  pull_request_target: ['assigned', 'unassigned', 'labeled', 'unlabeled', 'opened', 'edited',
    'closed', 'reopened', 'synchronize', 'converted_to_draft', 'ready_for_review', 'locked',
    'unlocked', 'review_requested', 'review_request_removed', 'auto_merge_enabled',
    'auto_merge_disabled'],
  push: null,
  registry_package: ['published', 'updated'],
  release: ['published', 'unpublished', 'created', 'edited', 'deleted', 'prereleased',
    'released'],
  repository_dispatch: null, schedule: null, status: null,
  watch: ['started'],
  workflow_call: null, workflow_dispatch: null,
  workflow_run: ['completed', 'requested', 'in_progress']
}

/** The permission scopes the token can carry, and the levels each takes. */
const SCOPES = ['actions', 'attestations', 'checks', 'contents', 'deployments', 'discussions',
  'id-token', 'issues', 'models', 'packages', 'pages', 'pull-requests', 'repository-projects',
  'security-events', 'statuses']

type Json = Record<string, unknown>

interface Workflow {
  file: string
  doc: Json
}

const workflows: Workflow[] = readdirSync(DIR).filter(f => /\.ya?ml$/.test(f)).sort()
  .map(file => ({ file, doc: parseYaml(readFileSync(join(DIR, file), 'utf8')) as Json }))

interface AirlockStep {
  with: Record<string, unknown>
  env: Record<string, unknown>
}

function airlockSteps(doc: Json): AirlockStep[] {
  const jobs = Object.values(doc.jobs as Record<string, Json>)
  return jobs.flatMap(job => (job.steps as Json[]).filter(step =>
    typeof step.uses === 'string' && /(^|\/)airlock@/.test(step.uses)))
    .map(step => ({ with: (step.with ?? {}) as Record<string, unknown>,
      env: (step.env ?? {}) as Record<string, unknown> }))
}

/** The events a workflow's `on:` names, with their `types:` when given. */
function triggers(doc: Json): Map<string, string[] | undefined> {
  const on = doc.on
  const found = new Map<string, string[] | undefined>()
  if (typeof on === 'string') found.set(on, undefined)
  else if (Array.isArray(on)) for (const e of on) found.set(String(e), undefined)
  else {
    for (const [name, config] of Object.entries((on ?? {}) as Record<string, unknown>)) {
      const types = (config as Json | null)?.types
      found.set(name, Array.isArray(types) ? types.map(String) : undefined)
    }
  }
  return found
}

/** Stands in for `${{ … }}` expressions the way the runner would fill them, with samples. */
function evaluate(value: unknown): string {
  return String(value).replace(/\$\{\{\s*secrets\.(\w+)\s*\}\}/g, 'sample-secret-$1')
}

/** The write scopes an Airlock step needs for its output. */
function neededWrites(step: AirlockStep, events: string[]): string[] {
  const output = String(step.with.output ?? 'auto')
  const replies = events.some(e => ['issues', 'issue_comment'].includes(e)) ? ['issues'] : []
  if (output === 'comment') return ['pull-requests', ...replies]
  if (output === 'patch' || output === 'none') return []
  return ['contents', 'pull-requests', ...replies]
}

describe('example workflows', () => {
  const inputs = new Set(Object.keys((parseYaml(readFileSync(join(ROOT, 'action.yml'),
    'utf8')) as { inputs: Json }).inputs))

  test('there are examples, and each has an Airlock step', () => {
    expect(workflows.length).toBeGreaterThanOrEqual(3)
    for (const { file, doc } of workflows) {
      expect([file, airlockSteps(doc).length > 0]).toEqual([file, true])
    }
  })

  test.each(workflows.map(w => [w.file, w] as const))('%s: every with: key is an input',
    (_file, { doc }) => {
      for (const step of airlockSteps(doc)) {
        const unknown = Object.keys(step.with).filter(key => !inputs.has(key))
        expect(unknown).toEqual([])
      }
    })

  test.each(workflows.map(w => [w.file, w] as const))(
    '%s: the with: values pass the action\'s own settings validation', (_file, { doc }) => {
      for (const step of airlockSteps(doc)) {
        const given = Object.fromEntries(Object.entries(step.with)
          .map(([k, v]) => [k, evaluate(v)]))
        const env = Object.fromEntries(Object.entries(step.env)
          .map(([k, v]) => [k, evaluate(v)]))
        const defaults = actionDefaults()
        const settings = readSettings(name => given[name] ?? defaults[name] ?? '', env)
        expect(settings.providers[0].model).toBe(given.model)
        // Keys come from secrets, never written into the workflow.
        expect(String(step.with['api-key'])).toMatch(/^\$\{\{\s*secrets\.\w+\s*\}\}$/)
      }
    })

  test.each(workflows.map(w => [w.file, w] as const))(
    '%s: least-privilege permissions, only the writes its output needs', (_file, { doc }) => {
      const events = [...triggers(doc).keys()]
      const blocks = [doc.permissions, ...Object.values(doc.jobs as Record<string, Json>)
        .map(job => job.permissions)].filter(p => p !== undefined)
      const jobs = Object.entries(doc.jobs as Record<string, Json>)
      const uncovered = jobs.filter(([, job]) => !doc.permissions && !job.permissions)
      expect(uncovered.map(([name]) => name)).toEqual([])
      const granted = new Map<string, string>()
      for (const block of blocks) {
        expect(typeof block).toBe('object')
        for (const [scope, level] of Object.entries(block as Json)) {
          expect(SCOPES).toContain(scope)
          expect(['read', 'write', 'none']).toContain(level)
          if (level === 'write' || !granted.has(scope)) granted.set(scope, String(level))
        }
      }
      const writes = [...granted].filter(([, level]) => level === 'write').map(([s]) => s)
      const needed = new Set(airlockSteps(doc).flatMap(step => neededWrites(step, events)))
      expect(writes.sort()).toEqual([...needed].sort())
      expect(granted.get('contents')).toBeDefined()
    })

  test.each(workflows.map(w => [w.file, w] as const))(
    '%s: triggers are events GitHub knows, with valid activity types', (_file, { doc }) => {
      const found = triggers(doc)
      expect(found.size).toBeGreaterThan(0)
      for (const [name, types] of found) {
        expect(Object.keys(EVENTS)).toContain(name)
        const known = EVENTS[name]
        if (types) {
          expect(known).not.toBeNull()
          for (const type of types) expect(known).toContain(type)
        }
      }
    })
})
