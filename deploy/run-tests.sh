#!/usr/bin/env bash
# Install what the tests need (Python packages, npm browser libraries, Debian's Chromium
# and ffmpeg when missing) and run the whole suite. PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379) are expected to be running; with CI set, tests needing them fail
# instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} not installed (needs root: apt-get install ${missing[*]})" >&2
  fi
fi

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
