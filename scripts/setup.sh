#!/usr/bin/env bash
# Everything a fresh Debian or Ubuntu machine needs before Airlock's demo or tests run:
# the npm packages (Node 24 among them), a running Docker engine and the local sandbox image.
# Safe to run again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'airlock: %s\n' "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
  say "npm is missing: install Node.js 20 or newer (https://nodejs.org), then run this again."
  exit 1
fi
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]
then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/docker-up.sh
bash scripts/build-test-image.sh airlock-test:bookworm
