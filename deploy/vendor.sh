#!/usr/bin/env bash
# Copy the browser libraries into static/vendor/ (git-ignored), from npm packages
# pinned by package-lock.json. The hub serves them itself: nothing loads from a CDN,
# so the exam page works at bridge points that reach only the hub.
#
#   bash deploy/vendor.sh            # npm ci (npm install when there is no lock), then copy
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v npm >/dev/null 2>&1; then
  echo "vendor.sh: npm is required (apt-get install npm)" >&2
  exit 1
fi

if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

VENDOR="$ROOT/static/vendor"
SIO="$ROOT/node_modules/socket.io-client/dist"
NOBLE="$ROOT/node_modules/@noble/ciphers"

mkdir -p "$VENDOR"
cp "$SIO/socket.io.min.js" "$VENDOR/socket.io.min.js"
[[ -f "$SIO/socket.io.min.js.map" ]] && cp "$SIO/socket.io.min.js.map" "$VENDOR/"

# @noble/ciphers 2.x ships its ES modules at the package root (1.x had them under esm/);
# they import each other as "./utils.js", so the flat copy keeps them resolvable from
# /static/vendor/noble-ciphers/aes.js.
if [[ -d "$NOBLE/esm" ]]; then
  NOBLE_ESM="$NOBLE/esm"
else
  NOBLE_ESM="$NOBLE"
fi
rm -rf "$VENDOR/noble-ciphers"
mkdir -p "$VENDOR/noble-ciphers"
cp "$NOBLE_ESM"/*.js "$VENDOR/noble-ciphers/"
cp "$NOBLE/LICENSE" "$VENDOR/noble-ciphers/LICENSE"
# 1.x's esm/ folder holds a package.json with "type": "module"; harmless to keep.
[[ -f "$NOBLE_ESM/package.json" && "$NOBLE_ESM" != "$NOBLE" ]] && cp "$NOBLE_ESM/package.json" "$VENDOR/noble-ciphers/"

for f in socket.io.min.js noble-ciphers/aes.js noble-ciphers/utils.js noble-ciphers/_polyval.js; do
  [[ -s "$VENDOR/$f" ]] || { echo "vendor.sh: $VENDOR/$f is missing" >&2; exit 1; }
done
echo "vendor.sh: socket.io-client $(node -p "require('./node_modules/socket.io-client/package.json').version")," \
     "@noble/ciphers $(node -p "require('./node_modules/@noble/ciphers/package.json').version") → static/vendor/"
