// Lets Node run the TypeScript sources directly (scripts, benchmarks): Node 24 strips the
// types itself; this hook only maps the `.js` specifiers the sources use to their `.ts` files.
import { register } from 'node:module'

register('data:text/javascript,' + encodeURIComponent(`
  import { existsSync } from 'node:fs'
  import { fileURLToPath } from 'node:url'
  export async function resolve(specifier, context, next) {
    if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL) {
      const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL)
      if (ts.protocol === 'file:' && existsSync(fileURLToPath(ts))) {
        return next(ts.href, context)
      }
    }
    return next(specifier, context)
  }
`))
