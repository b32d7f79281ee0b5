/**
 * The start and the end of a run's record, the same for the action and the command line:
 * the `run.start` event, and at the end the outcome event, the HTML transcript, the step
 * summary and the artifact upload, each attempted whatever happened before it.
 */
import { appendFileSync } from 'node:fs'
import {
  type AuditLog, renderStepSummary, uploadAuditArtifact, verifyAuditLog, writeTranscript
} from './audit/index.js'
import type { Reporter } from './reporter.js'
import { messageOf, type RunResult } from './run.js'
import type { Settings } from './settings.js'

export interface RunRecord {
  audit: AuditLog
  reporter: Reporter
  settings: Settings
  startedAt: number
  mode: 'action' | 'cli' | 'replay'
}

/** Airlock's version, written into every log. */
export const AIRLOCK_VERSION = '0.1.0'

/** Writes the `run.start` event: the version and the settings with every secret left out. */
export function recordRunStart(record: RunRecord, runId: string): void {
  record.audit.record({ type: 'run.start', runId, airlockVersion: AIRLOCK_VERSION,
    mode: record.mode, settings: publicSettings(record.settings) })
}

/** The settings as they may be shown: keys, the token and extra secrets removed. */
export function publicSettings(settings: Settings): Record<string, unknown> {
  const { github, providers, ...rest } = settings
  const { token, ...githubRest } = github
  return {
    ...rest,
    secrets: `${rest.secrets.length} value(s)`,
    github: { ...githubRest, token: token ? 'set' : 'empty' },
    providers: providers.map(({ apiKey, ...p }) => ({ ...p, apiKey: apiKey ? 'set' : 'empty' }))
  }
}

export interface FinishedRecord {
  transcriptPath?: string
  /** the uploaded artifact's page, on GitHub */
  url?: string
}

/**
 * Ends the record: outcome event, transcript, step summary (when the runner gave a file for
 * it) and the artifact upload (on GitHub). Never throws; what fails is a warning.
 */
export async function finishRecord(record: RunRecord, result: RunResult,
  artifactName: string, env: NodeJS.ProcessEnv = process.env): Promise<FinishedRecord> {
  const { audit, reporter } = record
  const agent = result.agent
  audit.record({ type: 'outcome', kind: result.outcome.kind, message: result.outcome.message,
    steps: agent?.steps ?? 0, tokens: agent ? agent.usage.prompt + agent.usage.completion : 0,
    costUsd: agent?.costUsd ?? 0, durationMs: Date.now() - record.startedAt,
    ending: agent?.ending.kind,
    budget: agent?.ending.kind === 'budget-exhausted' ? agent.ending.budget : undefined })
  audit.close()
  const finished: FinishedRecord = {}
  attempt(reporter, 'Writing the transcript', () => {
    finished.transcriptPath = writeTranscript(audit.dir, { redact: audit.redact })
  })
  const upload = await uploadAuditArtifact(audit.dir, artifactName,
    { env, log: line => reporter.info(line) })
  finished.url = upload.url
  if (env.GITHUB_STEP_SUMMARY) {
    attempt(reporter, 'Writing the step summary', () => {
      const events = verifyAuditLog(audit.dir).events
      appendFileSync(env.GITHUB_STEP_SUMMARY as string,
        renderStepSummary(events, { redact: audit.redact, auditUrl: upload.url,
          verifyTail: result.verify?.tail }) + '\n')
    })
  }
  return finished
}

function attempt(reporter: Reporter, what: string, body: () => void): void {
  try {
    body()
  } catch (error) {
    reporter.warning(`${what} failed: ${messageOf(error)}`)
  }
}
