// The one entry point of the bundle. The action runs it for its main and post steps;
// `bin/airlock.js` runs it as the command line. The globals the bundled CommonJS code
// expects come first.
import './globals.js'
import { runAction } from './action.js'
import { failOnUnhandledRejection, runCli } from './cli.js'

if (process.env.AIRLOCK_ENTRY === 'cli') {
  failOnUnhandledRejection()
  void runCli(process.argv.slice(2)).then(code => {
    // An unhandled rejection along the way already made it a failure; that stands.
    process.exitCode ??= code
  })
} else {
  void runAction()
}
