#!/usr/bin/env node
// The `airlock` command: the same bundle as the action, entered through its command line.
process.env.AIRLOCK_ENTRY = 'cli'
await import('../dist/index.js')
