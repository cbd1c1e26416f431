#!/usr/bin/env bash
# Stops a private Dovecot started by start.sh: the master by the PID in
# WORKDIR/run/master.pid (TERM, then KILL after 5 s), then any of its
# service processes (lmtp, auth, log, ...: children of that PID, listed
# before the master goes) still alive; removes WORKDIR unless --keep.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
source "$(dirname "${BASH_SOURCE[0]}")/../stop-daemon.sh"
pid="$(pid_in "$DIR/run/master.pid")"
if [ -n "$pid" ]; then
    children=()
    for stat in /proc/[0-9]*/stat; do
        # Field 4 of /proc/N/stat is the parent PID (the name in field 2 has no spaces here).
        read -r child _ _ ppid _ < "$stat" 2>/dev/null || continue
        [ "$ppid" = "$pid" ] && children+=("$child")
    done
    term_then_kill "$pid"
    for child in "${children[@]}"; do kill -KILL "$child" 2>/dev/null || true; done
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
