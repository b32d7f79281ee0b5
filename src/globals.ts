/**
 * CommonJS globals for the ESM bundle. ncc inlines dockerode's dependency ssh2, which reads
 * `__dirname` and calls `require` at load time; in an ES module neither exists, so the
 * bundle would crash before Airlock says a word. This module is imported first by every
 * entry point, so the globals exist before any bundled CommonJS code runs.
 */
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const g = globalThis as Record<string, unknown>
g.__filename ??= self
g.__dirname ??= dirname(self)
g.require ??= createRequire(import.meta.url)
