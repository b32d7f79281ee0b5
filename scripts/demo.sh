#!/usr/bin/env bash
# Set-up, then the built-in demo: a recorded run of a real fix replayed in the sandbox on a
# sample repository, with no model and no API key. Leaves a patch and an HTML transcript.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
node_modules/.bin/node bin/airlock.js demo
