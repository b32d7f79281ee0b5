import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { executeTool, type ToolOptions } from '../src/agent/tools.js'
import { LocalSandbox } from './helpers/agent-local-sandbox.js'

const options: ToolOptions = { commandTimeoutSeconds: 10, readOnly: false,
  memoryBytes: 256 * 1024 * 1024 }

describe('the bash tool on a command that did not end by itself', () => {
  let box: LocalSandbox

  beforeEach(async () => {
    box = await LocalSandbox.create()
  })

  afterEach(async () => {
    await box.remove()
  })

  const bash = async (command: string, extra: Partial<ToolOptions> = {}) =>
    (await executeTool(box, 'bash', JSON.stringify({ command }), { ...options, ...extra }))
      .observation.split('\n')[0]

  test('says a SIGKILL was most likely the memory limit, and names the setting', async () => {
    expect(await bash('kill -9 $$')).toBe('exit code: 137 (killed by SIGKILL, most likely for '
      + "going over the sandbox's memory limit: `memory` is 256 MiB; use less memory, e.g. "
      + 'fewer parallel jobs or smaller inputs)')
    expect(await bash('kill -9 $$', { memoryBytes: 2 * 1024 ** 3 })).toContain('`memory` is 2 GiB')
    expect(await bash('kill -9 $$', { memoryBytes: undefined }))
      .toContain('memory limit: the `memory` setting;')
  })

  test('keeps the timeout reason for a timed-out command and adds nothing to other exits',
    async () => {
      expect(await bash('sleep 5', { commandTimeoutSeconds: 1 }))
        .toBe('exit code: 137 (killed after the 1s timeout)')
      expect(await bash('exit 1')).toBe('exit code: 1')
    })
})
