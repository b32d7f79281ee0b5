#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine. On Debian or Ubuntu it installs
# Debian's docker.io and starts dockerd when none runs; elsewhere it says what to do.
set -euo pipefail

say() { printf 'airlock: %s\n' "$*" >&2; }

if [ -n "${DOCKER_HOST:-}" ]; then
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && exit 0
  say "DOCKER_HOST=$DOCKER_HOST does not answer; fix it or unset it to use the local engine."
  exit 1
fi

if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then exit 0; fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ -r /etc/os-release ] && grep -Eq '^ID(_LIKE)?=.*(debian|ubuntu)' /etc/os-release; then
    if [ "$(id -u)" -ne 0 ]; then
      say "no Docker engine here; run this script as root to install docker.io, or install Docker."
      exit 1
    fi
    say "installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  else
    say "no Docker engine here. Install Docker (https://docs.docker.com/engine/install/)"
    say "and start it, or point DOCKER_HOST at an engine you can reach."
    exit 1
  fi
fi

if [ "$(id -u)" -ne 0 ]; then
  say "dockerd is installed but not running; start it (sudo systemctl start docker)."
  exit 1
fi

say "starting dockerd"
nohup dockerd >/var/log/airlock-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
say "dockerd did not come up in 60 s; see /var/log/airlock-dockerd.log"
exit 1
