#!/usr/bin/env bash
# Builds the sandbox image the tests, benchmarks and the demo use, without any image
# registry: a minimal Debian root filesystem made by debootstrap and brought in with
# `docker import`. Skips the work when the image already exists.
set -euo pipefail

name="${1:-airlock-test:bookworm}"
if docker image inspect "$name" >/dev/null 2>&1; then
  printf 'airlock: image %s is already here\n' "$name" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
printf 'airlock: building %s with debootstrap (about a minute)\n' "$name" >&2
# git, coreutils (timeout) and a shell are what the sandbox needs; curl, procps and
# python3 are what the tests use to probe the container from inside.
debootstrap --variant=minbase --include=git,curl,procps,python3-minimal,ca-certificates \
  bookworm "$root" "$mirror" >/tmp/airlock-debootstrap.log 2>&1 \
  || { tail -20 /tmp/airlock-debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
printf 'airlock: built %s\n' "$name" >&2
