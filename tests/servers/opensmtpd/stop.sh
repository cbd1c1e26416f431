#!/usr/bin/env bash
# Stops a private OpenSMTPD started by start.sh: the daemon by the PID in
# WORKDIR/smtpd.pid (TERM, then KILL after 5 s), then what is left of its
# process group (start.sh ran it under setsid); its mount namespace goes
# with its last process. Removes WORKDIR unless --keep is given.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
source "$(dirname "${BASH_SOURCE[0]}")/../stop-daemon.sh"
pid="$(pid_in "$DIR/smtpd.pid")"
if [ -n "$pid" ]; then
    term_then_kill "$pid"
    # setsid made the daemon a session and process-group leader.
    kill -KILL -- "-$pid" 2>/dev/null || true
fi
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
