// The one entry point of the bundle. The action runs it for its main and post steps;
// `bin/airlock.js` runs it as the command line. The globals the bundled CommonJS code
// expects come first.
import './globals.js'
import { runAction } from './action.js'
import { runCli } from './cli.js'

if (process.env.AIRLOCK_ENTRY === 'cli') {
  void runCli(process.argv.slice(2)).then(code => {
    process.exitCode = code
  })
} else {
  void runAction()
}
