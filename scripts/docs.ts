// Writes `action.yml` from the input list in src/inputs.ts, then the README's inputs and
// outputs tables from `action.yml`. With --check it writes nothing and fails when either
// file is not what it would write, so CI catches a table that drifted.
import { readFileSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { INPUTS, OUTPUTS } from '../src/inputs.js'

const check = process.argv.includes('--check')
const root = new URL('../', import.meta.url)
let stale = false

function update(file: string, text: string): void {
  const path = new URL(file, root)
  let old = ''
  try {
    old = readFileSync(path, 'utf8')
  } catch {
    // a missing file is simply stale
  }
  if (old === text) return
  if (check) {
    console.error(`${file} is out of date: run \`npm run docs\` and commit the result.`)
    stale = true
  } else {
    writeFileSync(path, text)
    console.log(`wrote ${file}`)
  }
}

const action = {
  name: 'Airlock',
  description: 'Run an LLM coding agent on a copy of your repository in a locked-down '
    + 'container; get a pull request, a comment or a patch, and a tamper-evident audit log.',
  author: 'Airlock',
  branding: { icon: 'shield', color: 'blue' },
  inputs: Object.fromEntries(INPUTS.map(i => [i.name, {
    description: i.description,
    required: false,
    ...(i.default !== undefined ? { default: i.default } : {})
  }])),
  outputs: Object.fromEntries(OUTPUTS.map(o => [o.name, { description: o.description }])),
  runs: { using: 'node24', main: 'dist/index.js', post: 'dist/index.js' }
}
const header = '# Generated from src/inputs.ts by `npm run docs`; edit that file, not this one.\n'
// yaml's width leaves out the indentation and never splits a word: 88 keeps every line of
// the file within 100 columns.
const actionYml = header + stringify(action, { lineWidth: 88 })
update('action.yml', actionYml)

// The README tables are made from action.yml as written, so the two cannot drift.
const parsed = parse(actionYml) as typeof action
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
const inputsTable = ['| input | default | description |', '| --- | --- | --- |',
  ...Object.entries(parsed.inputs).map(([name, spec]) => {
    const def = (spec as { default?: string }).default
    return `| \`${name}\` | ${def ? `\`${cell(def)}\`` : ''} | ${cell(spec.description)} |`
  })].join('\n')
const outputsTable = ['| output | description |', '| --- | --- |',
  ...Object.entries(parsed.outputs).map(([n, s]) => `| \`${n}\` | ${cell(s.description)} |`)]
  .join('\n')

function replaceBlock(text: string, name: string, body: string): string {
  const start = `<!-- ${name}:start (generated from action.yml by npm run docs) -->`
  const end = `<!-- ${name}:end -->`
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${name} markers`)
  return text.slice(0, from) + `${start}\n${body}\n` + text.slice(to)
}

const readme = readFileSync(new URL('README.md', root), 'utf8')
update('README.md',
  replaceBlock(replaceBlock(readme, 'inputs', inputsTable), 'outputs', outputsTable))
if (stale) process.exitCode = 1
