#!/usr/bin/env bash
# Stops a private Exim started by start.sh: the daemon by the PID in
# WORKDIR/exim.pid (TERM, then KILL after 5 s), and the delivery processes
# it forked (found by PID: processes whose command line names this
# instance's exim.conf), then removes WORKDIR unless --keep is given.
#   stop.sh WORKDIR [--keep]
set -uo pipefail
DIR="${1:?usage: stop.sh WORKDIR [--keep]}"
KEEP="${2:-}"
source "$(dirname "${BASH_SOURCE[0]}")/../stop-daemon.sh"
term_then_kill "$(pid_in "$DIR/exim.pid")"
# Children that outlive the daemon (an SMTP session or a delivery still running).
for proc in /proc/[0-9]*; do
    cmd="$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null)" || continue
    case "$cmd" in *"$DIR/exim.conf"*) kill -KILL "${proc#/proc/}" 2>/dev/null || true ;; esac
done
if [ "$KEEP" != "--keep" ]; then
    rm -rf "$DIR"
fi
exit 0
