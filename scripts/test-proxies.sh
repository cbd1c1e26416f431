#!/usr/bin/env bash
# Proxies and TLS client settings (tests/proxies), idempotent and bounded in time:
#   - scripts/setup-proxies.sh (danted, tinyproxy, the SOCKS5 test account)
#   - scripts/setup-js.sh (pkg/node_modules, the wasm build; quick when done)
#   - scripts/setup-runtimes.sh (deno and bun from tests/runtimes/node_modules)
#   - node --test tests/proxies/*.test.mjs: real danted and tinyproxy on
#     127.0.0.1 high ports, smtp-server behind them, each started and
#     stopped by PID; killed after PROXY_TESTS_TIMEOUT s (240)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[test-proxies] %s\n' "$*" >&2; }
started=$SECONDS

bash "$ROOT/scripts/setup-proxies.sh"
bash "$ROOT/scripts/setup-js.sh"
bash "$ROOT/scripts/setup-runtimes.sh"   # deno and bun, for the same cases in each runtime

cd "$ROOT"
log "node --test tests/proxies"
timeout --kill-after=10 "${PROXY_TESTS_TIMEOUT:-240}" node --test --test-timeout=120000 --test-concurrency=1 tests/proxies/*.test.mjs
log "done in $((SECONDS - started)) s"
