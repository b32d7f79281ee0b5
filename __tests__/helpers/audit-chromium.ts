/** Loads a local HTML file in real headless Chromium and returns the DOM after it ran. */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

export const CHROMIUM = '/usr/bin/chromium'

export async function dumpDom(file: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'airlock-chromium-'))
  try {
    return await new Promise<string>((resolve, reject) => {
      execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu',
        '--disable-background-networking', '--no-first-run', `--user-data-dir=${profile}`,
        '--virtual-time-budget=2000', '--dump-dom', pathToFileURL(file).href],
      { maxBuffer: 256 * 1024 ** 2, timeout: 60_000 },
      (error, stdout, stderr) => error
        ? reject(new Error(`chromium failed: ${error.message}\n${stderr}`))
        : resolve(stdout))
    })
  } finally {
    rmSync(profile, { recursive: true, force: true })
  }
}
