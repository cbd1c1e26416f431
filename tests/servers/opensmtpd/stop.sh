#!/usr/bin/env bash
# Stops a private OpenSMTPD started by start.sh: the daemon by the PID in
# WORKDIR/smtpd.pid (TERM, then KILL after 5 s), then what is left of its
# process group (start.sh ran it under setsid); its mount namespace goes
# with its last process. Removes WORKDIR unless --keep is given.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
PIDFILE="$DIR/smtpd.pid"
if [ -s "$PIDFILE" ]; then
    pid="$(tr -d ' \n' < "$PIDFILE")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    # setsid made the daemon a session and process-group leader.
    [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
