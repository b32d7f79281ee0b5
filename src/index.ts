// The action's entry point, for both the main and the post step (action.yml runs this file
// twice). The globals the bundled CommonJS code expects come first.
import './globals.js'
import { runAction } from './action.js'

void runAction()
