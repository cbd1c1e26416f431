#!/usr/bin/env bash
# npm ci in tests/runtimes (deno, bun, miniflare + workerd,
# pinned by its package-lock.json), skipped while the lockfile is unchanged;
# then node_modules/wasmtp -> pkg, so each runtime imports the package by
# name. Used by scripts/test-runtimes.sh and scripts/test-proxies.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/runtimes"
log() { printf '[setup-runtimes] %s\n' "$*" >&2; }

STAMP="$DIR/node_modules/.wasmtp-lock.sha256"
LOCK_SUM="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
    log "tests/runtimes/node_modules up to date"
else
    log "npm ci in tests/runtimes (deno, bun, miniflare/workerd)"
    (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
fi
# The package under test, by name (its exports map is what users resolve).
ln -sfn ../../../pkg "$DIR/node_modules/wasmtp"
