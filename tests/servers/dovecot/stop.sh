#!/usr/bin/env bash
# Stops a private Dovecot started by start.sh: the master by the PID in
# WORKDIR/run/master.pid (TERM, then KILL after 5 s), then any of its
# service processes (lmtp, auth, log, ...: children of that PID, listed
# before the master goes) still alive; removes WORKDIR unless --keep.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
PIDFILE="$DIR/run/master.pid"
if [ -s "$PIDFILE" ]; then
    pid="$(tr -d ' \n' < "$PIDFILE")"
    children=()
    for stat in /proc/[0-9]*/stat; do
        # Field 4 of /proc/N/stat is the parent PID (the name in field 2 has no spaces here).
        read -r child _ _ ppid _ < "$stat" 2>/dev/null || continue
        [ "$ppid" = "$pid" ] && children+=("$child")
    done
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    for child in "${children[@]}"; do kill -KILL "$child" 2>/dev/null || true; done
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
