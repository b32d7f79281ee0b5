/**
 * The one list of Airlock's inputs. `action.yml` is generated from it (so is the README's
 * inputs table, from `action.yml`), and the command line takes each input `foo-bar` as the
 * flag `--foo-bar`, so a run on a laptop and a run in CI read the same settings.
 * Parsing and validation live in `settings.ts`; this file only names and documents.
 */

export interface InputSpec {
  /** kebab-case name, as in `action.yml` and as a CLI flag */
  name: string
  description: string
  /** default as the runner would pass it; `undefined` means empty */
  default?: string
  /** the value is a secret: never a CLI flag, masked at once, redacted everywhere */
  secret?: boolean
  /** the CLI reads this environment variable instead of a flag */
  cliEnv?: string
  /** means something only to the action on GitHub: the command line neither lists nor takes it */
  githubOnly?: boolean
}

export const INPUTS: readonly InputSpec[] = [
  // What to do
  { name: 'task', description: 'What the agent should do. Ignored when the run comes from an '
    + 'issue label or a trigger comment, where the issue or comment is the task.' },
  { name: 'output', default: 'auto', description: 'Where the result goes: `pull-request`, '
    + '`comment`, `patch`, `none`, or `auto` (a pull request when there are changes, else a '
    + 'comment on the originating issue or pull request). With `none` nothing is published, '
    + 'but a request made on an issue or pull request still gets the outcome as its reply. '
    + 'The CLI takes `patch`, `branch` and `none`.' },
  { name: 'repository-path', default: '.', description: 'The checkout to work on, relative to '
    + 'the workspace. The CLI calls it `--repo`.' },

  // The model
  { name: 'model', description: 'The model name the endpoint expects, e.g. `gpt-4.1`.' },
  { name: 'base-url', default: 'https://api.openai.com/v1', description: 'The '
    + 'OpenAI-compatible endpoint (OpenAI, Azure, OpenRouter, vLLM, Ollama, a gateway).' },
  { name: 'api-key', secret: true, cliEnv: 'AIRLOCK_API_KEY', description: 'The API key for '
    + '`base-url`. On the command line it is read from `AIRLOCK_API_KEY` (or '
    + '`OPENAI_API_KEY`), never from a flag.' },
  { name: 'input-price', description: 'USD per million prompt tokens for `model`, for cost '
    + 'accounting and `max-cost-usd`.' },
  { name: 'output-price', description: 'USD per million completion tokens for `model`.' },
  { name: 'cached-input-price', description: 'USD per million cached prompt tokens (defaults '
    + 'to `input-price`).' },
  { name: 'fallback-providers', description: 'Further providers, tried in order when the one '
    + 'before keeps failing. YAML list of `{model, base-url, api-key-env, input-price, '
    + 'output-price, cached-input-price}`; `api-key-env` names an environment variable that '
    + 'holds the key.' },
  { name: 'request-timeout-seconds', default: '300', description: 'A model request that has '
    + 'not answered by then is abandoned (and retried).' },
  { name: 'max-retries', default: '4', description: 'Retries per model request on 429, 5xx, '
    + 'timeouts and connection errors, before the next provider takes over.' },
  { name: 'context-tokens', default: '128000', description: 'The model\'s context window; '
    + 'the oldest tool outputs are elided as the conversation nears it.' },

  // Budgets
  { name: 'max-steps', default: '40', description: 'Most model turns for the run.' },
  { name: 'timeout-minutes', default: '30', description: 'Wall-clock budget for the whole '
    + 'run.' },
  { name: 'max-tokens', default: '2000000', description: 'Most prompt plus completion tokens '
    + 'for the run.' },
  { name: 'max-cost-usd', default: '5', description: 'Most spend for the run in USD; counted '
    + 'only for providers with prices.' },

  // The sandbox
  { name: 'image', default: 'buildpack-deps:bookworm-scm', description: 'The container image '
    + 'the agent works in. It needs `sh`, `git` and coreutils (`timeout`).' },
  { name: 'user', default: '1000:1000', description: 'The non-root `uid:gid` commands run as.' },
  { name: 'memory', default: '4g', description: 'Memory limit (swap is not added on top).' },
  { name: 'cpus', default: '2', description: 'CPU limit, in cores.' },
  { name: 'pids-limit', default: '512', description: 'Most processes at once in the '
    + 'container.' },
  { name: 'tmp-size', default: '1g', description: 'Size of the scratch tmpfs (`/tmp`).' },
  { name: 'command-timeout', default: '600', description: 'Seconds one command may run before '
    + 'it and everything it started are killed.' },
  { name: 'read-only', default: 'false', description: 'Make the workspace read-only, for '
    + 'triage, review and reports: the agent can only answer in words.' },
  { name: 'network', default: 'none', description: 'Network while the agent works: `none`, '
    + '`allowlist` (only `allowed-hosts`, through a proxy run by the action) or `open`.' },
  { name: 'allowed-hosts', description: 'With `network: allowlist`: host names the agent may '
    + 'reach over HTTP(S), one per line or comma-separated; `*.example.com` matches subdomains.' },
  { name: 'setup', description: 'Commands run in the sandbox before the agent starts (e.g. '
    + '`npm ci`), one per line.' },
  { name: 'setup-network', default: 'open', description: 'Network during `setup`: `open`, '
    + '`allowlist` or `none`.' },
  { name: 'verify', description: 'Commands run after the agent finishes (e.g. `npm test`), one '
    + 'per line; the result goes into the pull request or comment.' },
  { name: 'verify-required', default: 'false', description: 'When `verify` fails, publish '
    + 'nothing: the outcome is `failed` and the step fails; a request made on an issue or pull '
    + 'request gets the failure and the verify output as its reply, and the patch stays in the '
    + 'audit log.' },

  // What may change
  { name: 'protected-paths', default: '.github/workflows/**', description: 'Globs of paths the '
    + 'agent may not change, one per line or comma-separated.' },
  { name: 'max-changed-files', default: '200', description: 'Most files one change may touch.' },
  { name: 'max-patch-bytes', default: '5000000', description: 'Largest change, as a binary '
    + 'patch, in bytes.' },

  // GitHub
  { name: 'github-token', default: '${{ github.token }}', secret: true, cliEnv: 'GITHUB_TOKEN',
    description: 'Token for the GitHub API and the push. It never enters the container.' },
  { name: 'trigger-label', default: 'airlock', githubOnly: true, description: 'An issue '
    + 'labelled with it becomes a task.' },
  { name: 'trigger-phrase', default: '/airlock', githubOnly: true, description: 'A comment '
    + 'starting with it becomes a task; the rest of the comment is the instruction.' },
  { name: 'allowed-bots', githubOnly: true, description: 'Bot accounts allowed to trigger '
    + 'runs, by exact login (e.g. `renovate[bot]`), one per line or comma-separated.' },
  { name: 'allowed-forks', githubOnly: true, description: 'Fork repositories (`owner/name`) '
    + 'whose code may be run under `pull_request_target`; `*` allows every fork.' },
  { name: 'branch-prefix', default: 'airlock/', description: 'Prefix of the branches Airlock '
    + 'pushes.' },
  { name: 'base-branch', githubOnly: true, description: 'Branch the pull request targets '
    + '(default: the repository\'s default branch).' },
  { name: 'draft', default: 'true', githubOnly: true, description: 'Open pull requests as '
    + 'drafts. A run whose budget ran out always opens a draft.' },

  // The record
  { name: 'secrets', secret: true, description: 'Further secret values to redact from '
    + 'everything Airlock writes, one per line.' },
  { name: 'audit-dir', description: 'Where the audit log is written (default: a folder under '
    + 'the runner\'s temp directory; on the command line, `~/.airlock/runs/RUN-ID`).' },
  { name: 'artifact-name', default: 'airlock-audit', githubOnly: true, description: 'Name of '
    + 'the uploaded audit artifact.' }
]

export interface OutputSpec {
  name: string
  description: string
}

export const OUTPUTS: readonly OutputSpec[] = [
  { name: 'outcome', description: 'How the run ended: `changes-published`, `no-changes`, '
    + '`refused`, `budget-exhausted`, `failed` or `cancelled`.' },
  { name: 'pull-request-url', description: 'URL of the pull request opened or updated.' },
  { name: 'pull-request-number', description: 'Number of that pull request.' },
  { name: 'branch', description: 'The branch pushed.' },
  { name: 'comment-url', description: 'URL of the comment written.' },
  { name: 'patch-path', description: 'Path of the patch file written.' },
  { name: 'audit-path', description: 'The audit directory.' },
  { name: 'steps', description: 'Model turns taken.' },
  { name: 'tokens', description: 'Prompt plus completion tokens used.' },
  { name: 'cost-usd', description: 'Spend in USD, where prices were given.' }
]
