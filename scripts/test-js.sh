#!/usr/bin/env bash
# Tests the npm package: set-up (idempotent, quick when done), then the
# node:test suite in pkg/test against real smtp-server instances on
# 127.0.0.1, then the TypeScript declarations with tsc --noEmit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[test-js] %s\n' "$*" >&2; }

bash "$ROOT/scripts/setup-js.sh"

cd "$ROOT/pkg"
log "npm test"
npm test --silent
log "tsc --noEmit (index.d.ts against types-test/usage.ts)"
npm run --silent typecheck
log "all JS checks passed"
