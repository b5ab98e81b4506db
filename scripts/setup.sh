#!/usr/bin/env bash
# Installs what the service needs and npm does not bring, then dependencies, then builds.
# Idempotent: each step runs only when something is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; } || missing+=(ffmpeg)
# Makes keys and certificates (README, Security); the HTTPS test makes a self-signed one with it.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${SETUP_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
# The tests also check LZ4 interoperability against the reference CLI.
if [ "${SETUP_CHROMIUM:-0}" = 1 ] && ! command -v lz4 >/dev/null 2>&1; then missing+=(lz4); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: ${missing[*]} missing and not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run --silent build
