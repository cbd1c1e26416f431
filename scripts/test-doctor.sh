#!/usr/bin/env bash
# The connection doctor's tests (tests/doctor), idempotent and bounded in time:
#   - Debian's chromium and websockify, installed with apt-get when missing
#     (the e2e test drives chromium with playwright-core; the page reaches
#     SMTP servers through websockify; its python3 also serves the test's
#     black-hole port), and dnsmasq-base (the domain doctor's local DNS)
#   - scripts/setup-js.sh (toolchain, pkg/node_modules, the three wasm
#     artifacts; quick when done)
#   - npm ci in tests/doctor (playwright-core, pinned by its package-lock.json),
#     skipped while the lockfile is unchanged
#   - node --test: findings.test.js (a fake server per finding), cli.test.js
#     (`wasmtp doctor`), domain.test.js (diagnose({ domain }) and `wasmtp
#     doctor --domain` against dnsmasq and a local MTA-STS server),
#     e2e.test.js (the page in headless Chromium; saves
#     tests/doctor/doctor-page.png), domain-page.test.js (its domain tab, DNS
#     over a local DoH endpoint; saves tests/doctor/doctor-domain-page.png);
#     killed after DOCTOR_TESTS_TIMEOUT s (300)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/doctor"
log() { printf '[test-doctor] %s\n' "$*" >&2; }
started=$SECONDS

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v websockify >/dev/null 2>&1 || missing+=(websockify)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    SUDO=()
    [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 "${SUDO[@]}" apt-get update -qq
    timeout 900 "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$ROOT/scripts/setup-js.sh"

STAMP="$DIR/node_modules/.wasmtp-lock.sha256"
LOCK_SUM="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
    log "tests/doctor/node_modules up to date"
else
    log "npm ci in tests/doctor (playwright-core)"
    (cd "$DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
fi

log "node --test findings.test.js cli.test.js domain.test.js e2e.test.js domain-page.test.js"
cd "$DIR"
timeout --kill-after=10 "${DOCTOR_TESTS_TIMEOUT:-300}" \
    node --test --test-timeout=180000 findings.test.js cli.test.js domain.test.js e2e.test.js domain-page.test.js
log "done in $((SECONDS - started)) s"
