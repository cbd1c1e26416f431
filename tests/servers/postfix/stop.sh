#!/usr/bin/env bash
# Stops a private Postfix instance started by start.sh: kills the master by
# its PID (from WORKDIR/queue/pid/master.pid; TERM, then KILL after 5 s)
# and its children, then removes WORKDIR unless --keep is given.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
PIDFILE="$DIR/queue/pid/master.pid"
if [ -s "$PIDFILE" ]; then
    pid="$(tr -d ' \n' < "$PIDFILE")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # The master's children (smtpd, qmgr, ...) are in its process group.
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Any child left behind (same process group as the master) goes too.
    pkill_pg() { local pg="$1"; [ -n "$pg" ] && kill -KILL -- "-$pg" 2>/dev/null || true; }
    pkill_pg "$pid"
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
