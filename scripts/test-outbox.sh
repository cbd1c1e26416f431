#!/usr/bin/env bash
# The outbox acceptance suite (tests/outbox), bounded in time (about 3-4
# minutes on 2 cores; the whole run is killed after OUTBOX_TESTS_TIMEOUT s):
#   - redis-server from apt when missing (the tests start their own on a
#     high loopback port, with an AOF in a temp directory, and stop it by PID)
#   - scripts/setup-js.sh (pkg/node_modules with bullmq + ioredis, and
#     smtp-server for the test server in pkg/test/helpers/server.js; wasm build)
#   - npm ci in tests/outbox (miniflare + workerd; pinned by its
#     package-lock.json), skipped while the lockfile is unchanged
#   - node --test: spool.test.mjs (policy, decisions, two processes on one
#     spool), crash.test.mjs (SIGKILL at each point of an attempt, spool and
#     BullMQ), load.test.mjs (5,000 messages, 3 worker processes on Redis, 5%
#     4xx), workers.test.mjs (Cloudflare Queues + D1 in workerd via miniflare,
#     pkg/README.md's outbox example), model.test.mjs (random operations,
#     SIGKILLed workers and a server that refuses, defers and cuts, against a
#     model of the promised semantics; OUTBOX_MODEL_RUNS seeds per store,
#     default 2), storm.test.mjs (600 messages in a 451 storm with 300
#     parallel status() calls, both stores)
# Arguments pick test files: scripts/test-outbox.sh crash load
# OUTBOX_SKIP_SETUP=1 skips the set-up (scripts/soak-outbox.sh, after its first run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/outbox"
log() { printf '[test-outbox] %s\n' "$*" >&2; }
started=$SECONDS

setup_outbox() {
    if ! command -v redis-server >/dev/null 2>&1; then
        log "installing redis-server (apt)"
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        export DEBIAN_FRONTEND=noninteractive
        if ! $SUDO apt-get install -y -q redis-server >/dev/null 2>&1; then
            $SUDO apt-get update -q >/dev/null
            $SUDO apt-get install -y -q redis-server >/dev/null
        fi
    fi

    bash "$ROOT/scripts/setup-js.sh"

    STAMP="$DIR/node_modules/.wasmtp-lock.sha256"
    LOCK_SUM="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
        log "tests/outbox/node_modules up to date"
    else
        log "npm ci in tests/outbox (miniflare/workerd)"
        (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
        echo "$LOCK_SUM" >"$STAMP"
    fi
}
[ "${OUTBOX_SKIP_SETUP:-0}" = 1 ] || setup_outbox
# The package under test, by name.
ln -sfn ../../../pkg "$DIR/node_modules/wasmtp"

files=()
for name in "${@:-spool crash load workers model storm}"; do
    for f in $name; do files+=("$f.test.mjs"); done
done
log "node --test ${files[*]}"
cd "$DIR"
timeout --kill-after=10 "${OUTBOX_TESTS_TIMEOUT:-600}" \
    node --test --test-concurrency=1 --test-timeout=240000 --test-reporter=spec "${files[@]}"
log "done in $((SECONDS - started)) s"
