#!/usr/bin/env bash
# The whole test run: set-up (idempotent), type check, lint with zero warnings, the
# generated docs being current, then every test, the Docker ones included. (That dist/
# matches the sources is checked by .ci/run, which rebuilds it.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ "${CI:-}" = true ] && ! command -v chromium >/dev/null 2>&1; then
  # The transcript test renders the HTML page in a real browser.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
npm run typecheck
npm run lint
npm run docs:check
npm test
