#!/usr/bin/env bash
# Soak run of the outbox's model-based and 451-storm tests (tests/outbox):
# runs them N times in a row (default 20), both stores each time, every
# model run with fresh seeds, and stops at the first failure (its seed is in
# the output). Prints the passes and the wall time.
#   bash scripts/soak-outbox.sh 20
#   OUTBOX_MODEL_RUNS=1 bash scripts/soak-outbox.sh 5    # one model run per store per iteration
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-20}"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/wasmtp-outbox-soak-XXXXXX")"
log() { printf '[soak-outbox] %s\n' "$*" >&2; }
started=$SECONDS

for i in $(seq 1 "$N"); do
    t=$SECONDS
    skip=1
    [ "$i" -eq 1 ] && skip=0
    if ! OUTBOX_SKIP_SETUP=$skip bash "$ROOT/scripts/test-outbox.sh" model storm >"$LOG_DIR/run-$i.log" 2>&1; then
        grep -E '# (model|storm)|seed|✖' "$LOG_DIR/run-$i.log" | head -40 >&2 || true
        log "iteration $i of $N FAILED after $((i - 1)) passes; full log: $LOG_DIR/run-$i.log"
        exit 1
    fi
    grep -E '^# (model|storm)' "$LOG_DIR/run-$i.log" | sed "s/^/[soak-outbox] $i: /" >&2 || true
    log "iteration $i of $N passed in $((SECONDS - t)) s"
done
log "$N of $N iterations passed (model-based test and 451 storm, spool and BullMQ) in $((SECONDS - started)) s; logs in $LOG_DIR"
