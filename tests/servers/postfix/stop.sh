#!/usr/bin/env bash
# Stops a private Postfix instance started by start.sh: kills the master by
# its PID (from WORKDIR/queue/pid/master.pid; TERM, then KILL after 5 s)
# and its children, then removes WORKDIR unless --keep is given.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
source "$(dirname "${BASH_SOURCE[0]}")/../stop-daemon.sh"
pid="$(pid_in "$DIR/queue/pid/master.pid")"
if [ -n "$pid" ]; then
    # The master's children (smtpd, qmgr, ...) are in its process group:
    # any left behind go with it.
    term_then_kill "$pid"
    kill -KILL -- "-$pid" 2>/dev/null || true
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
