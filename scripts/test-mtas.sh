#!/usr/bin/env bash
# The other-MTA suite (tests/mtas): the npm package against private Exim
# 4.96, Dovecot 2.3 LMTP, OpenSMTPD 6.8 (plaintext) and Postfix 3.7
# instances on 127.0.0.1, each started and stopped by the tests by PID.
# Ten messages at once through one pooled connection, message 4 refused at
# RCPT, MAIL (4xx), DATA or after its data; every outcome is checked against
# what the server delivered and with which envelope sender. About 40 s.
# Nothing is skipped: a missing server fails the run with the reason
# (scripts/setup.sh installs them through scripts/setup-mtas.sh; needs root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[test-mtas] %s\n' "$*" >&2; }
started=$SECONDS

bash "$ROOT/scripts/setup-mtas.sh"
bash "$ROOT/scripts/setup-js.sh"

cd "$ROOT"
log "node --test tests/mtas/*.test.mjs"
status=0
timeout --kill-after=10 "${MTA_TESTS_TIMEOUT:-240}" \
    node --test --test-timeout=120000 tests/mtas/*.test.mjs || status=$?
log "done in $((SECONDS - started)) s (exit $status)"
exit "$status"
