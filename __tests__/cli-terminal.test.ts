import { describe, expect, test } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { cliReporter, runCli, type Terminal } from '../src/cli.js'
import { EXIT_CODES } from '../src/cli-args.js'
import { terminalSafe } from '../src/terminal.js'
import { NODE } from './helpers/action-runner.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function capture(isTty = false): Terminal & { text: () => string } {
  let text = ''
  return { out: t => { text += t }, err: t => { text += t }, isTty, text: () => text }
}

describe('text the command line prints', () => {
  test('loses escape sequences and control characters, keeps newlines, tabs and Unicode', () => {
    expect(terminalSafe('a\x1b[2J\x1b[1;1Hb\x1b]0;pwned title\x07c\x1b]8;;http://x\x1b\\d'))
      .toBe('abcd')
    expect(terminalSafe('x\x9b31my\x1bPq#0;2;0;0;0\x1b\\z\x1bcw')).toBe('xyzw')
    expect(terminalSafe('one\r\ntwo\rthree\x08\x00\x7f\tfour\n')).toBe('one\ntwothree\tfour\n')
    expect(terminalSafe('naïve ✓ 日本 \u{1F600}')).toBe('naïve ✓ 日本 \u{1F600}')
    expect(terminalSafe('cut short \x1b[')).toBe('cut short ')
    expect(terminalSafe('\x1b')).toBe('')
  })

  test('the reporter strips what the agent wrote and redacts it, on one live line', () => {
    const term = capture(true)
    const reporter = cliReporter(term, text => text.replaceAll('sk-secret', '***'))
    reporter.progress('step 1/40 bash: echo \x1b]0;owned\x07hi\nrm -rf sk-secret')
    reporter.info('created "\x1b[31mred\x1b[0m.txt"\r')
    reporter.warning('bell\x07')
    expect(term.text()).toBe('\r\x1b[K  step 1/40 bash: echo hi rm -rf ***\n'
      + '  created "red.txt"\n  warning: bell\n')
  })

  test('--output pull-request and comment are refused on the command line', async () => {
    for (const output of ['pull-request', 'comment']) {
      const term = capture()
      const code = await runCli(['run', '--task', 'x', '--model', 'm', '--output', output],
        {}, term)
      expect(code).toBe(EXIT_CODES.usage)
      expect(term.text()).toBe(`airlock: --output ${output} is for the GitHub Action: the `
        + 'command line does not talk to GitHub. Use --output branch (a local branch with one '
        + 'commit, to push yourself) or --output patch (the default).\n')
    }
  })

  test('an unhandled rejection ends the command as a failure, said on stderr', () => {
    const script = 'import { failOnUnhandledRejection } from "./src/cli.js"\n'
      + 'failOnUnhandledRejection()\n'
      + 'void Promise.reject(new Error("boom \\x1b[2J"))\n'
      + 'setTimeout(() => process.stdout.write("went on\\n"), 50)\n'
    const child = spawnSync(NODE, ['--import', './scripts/ts-loader.mjs', '--input-type=module',
      '-e', script], { cwd: ROOT, encoding: 'utf8' })
    expect(child.status).toBe(EXIT_CODES.failed)
    expect(child.stderr).toContain('airlock: unexpected error: boom . This is a bug in Airlock')
    expect(child.stderr).not.toContain('\x1b')
  })
})
