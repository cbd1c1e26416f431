#!/usr/bin/env bash
# The direct delivery suite (tests/mx): createClient({ mx: true }) against
# dnsmasq (tests/servers/dns), smtp-server instances and raw listeners on
# 127.0.0.2-8, the private Postfix on 127.0.0.7 (needs root) and an
# HTTPS server for MTA-STS policies, all on loopback. Needs dnsmasq-base
# (scripts/setup-dkim.sh, run by scripts/setup.sh) and pkg/node_modules and
# the wasm build (scripts/setup-js.sh). Bounded: the run is killed after
# MX_TESTS_TIMEOUT seconds (default 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[test-mx] %s\n' "$*" >&2; }
started=$SECONDS

bash "$ROOT/scripts/setup-js.sh"
[ -x /usr/sbin/dnsmasq ] || bash "$ROOT/scripts/setup-dkim.sh"

cd "$ROOT"
timeout --kill-after=10 "${MX_TESTS_TIMEOUT:-120}" node --test --test-timeout=60000 tests/mx/*.test.mjs
log "done in $((SECONDS - started)) s"
