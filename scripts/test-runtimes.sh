#!/usr/bin/env bash
# The runtime acceptance suite: the npm package's send suite
# (tests/runtimes/suite.js) in Node, Deno, Bun and workerd (through
# miniflare), against the test SMTP servers (pkg/test/helpers/server.js:
# smtp-server from pkg/node_modules) on 127.0.0.1, plus the wasm size
# budgets (bench/size.mjs). Idempotent and bounded in time:
#   - scripts/setup-js.sh (toolchain, pkg/node_modules, wasm build; quick when done)
#   - scripts/setup-runtimes.sh: npm ci in tests/runtimes (deno, bun, miniflare
#     + workerd; skipped while the lockfile is unchanged) and
#     node_modules/wasmtp -> pkg, so each runtime imports the package by name
#   - node bench/size.mjs, then node tests/runtimes/run.mjs (each runtime has
#     a time limit; the whole run is killed after RUNTIME_TESTS_TIMEOUT s)
# Extra arguments pick runtimes: scripts/test-runtimes.sh deno workerd
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/runtimes"
log() { printf '[test-runtimes] %s\n' "$*" >&2; }
started=$SECONDS

bash "$ROOT/scripts/setup-js.sh"

bash "$ROOT/scripts/setup-runtimes.sh"

log "wasm sizes (bench/size.mjs)"
node "$ROOT/bench/size.mjs"

export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
log "send suite per runtime (tests/runtimes/run.mjs $*)"
cd "$DIR"
timeout --kill-after=10 "${RUNTIME_TESTS_TIMEOUT:-480}" node run.mjs "$@"
log "done in $((SECONDS - started)) s"
