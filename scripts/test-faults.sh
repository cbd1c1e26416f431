#!/usr/bin/env bash
# The fail-safe suite (issue 5): the npm package against a scripted fake
# SMTP server on real loopback sockets (tests/kit/), in tests/faults/:
#   kit.test.mjs            the fake-server kit itself
#   starttls.test.mjs       STARTTLS stripping, response injection, tampering
#   odd-codes.test.mjs      odd reply codes to greeting/EHLO/HELO/STARTTLS/RSET/QUIT
#   faults.test.mjs         close / reset / stall / garbage at every phase; the pool
#                           never re-sends an "unknown" message
#   load.test.mjs           10,000 messages, pool of 4, 5% 4xx, random drops (prints its tally)
#   hostile-input.test.mjs  CR / LF / NUL / over-long input: EINPUT, nothing sent
#   secrets.test.mjs        no password or token in transcripts, errors, reports, CLI output
# Every file also scans everything it saw for the test secrets; this script
# scans the whole run's output once more. Known engine/package bugs are
# `todo` tests pointing at NOTES-failsafe-findings.md.
# Extra arguments pick files: scripts/test-faults.sh starttls load
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[test-faults] %s\n' "$*" >&2; }
started=$SECONDS

if ! bash "$ROOT/scripts/setup-js.sh"; then
    # The js tests step reports a broken set-up; these tests can still run
    # against the package as built, if it is there.
    if [ -f "$ROOT/pkg/wasm/wasmtp_bg.wasm" ] && [ -d "$ROOT/pkg/node_modules/mailparser" ]; then
        log "WARNING: scripts/setup-js.sh failed; testing the package as it is built in pkg/wasm"
    else
        log "scripts/setup-js.sh failed and pkg/ is not built"
        exit 1
    fi
fi

node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 3) ? 0 : 1)' \
    || { log "Node.js 18.3 or later is needed (socket.resetAndDestroy)"; exit 1; }
command -v openssl >/dev/null || { log "openssl is needed for the test CA (scripts/setup.sh installs it)"; exit 1; }
command -v python3 >/dev/null || { log "python3 is needed for a listener that never accepts (scripts/setup.sh installs it)"; exit 1; }

cd "$ROOT"
files=()
if [ "$#" -gt 0 ]; then
    for name in "$@"; do files+=("tests/faults/${name%.test.mjs}.test.mjs"); done
else
    files=(tests/faults/*.test.mjs)
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/wasmtp-faults.XXXXXX.log")"
trap 'rm -f "$LOG"' EXIT
log "node --test ${files[*]}"
status=0
timeout --kill-after=10 "${FAULT_TESTS_TIMEOUT:-300}" \
    node --test --test-timeout=200000 "${files[@]}" 2>&1 | tee "$LOG" || status=$?

log "scanning the run's output for the test password and token"
if ! node tests/kit/secrets.mjs "$LOG"; then
    status=1
fi
log "done in $((SECONDS - started)) s (exit $status)"
exit "$status"
