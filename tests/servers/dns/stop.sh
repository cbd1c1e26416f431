#!/usr/bin/env bash
# Stops a dnsmasq started by start.sh: stop.sh PIDFILE (then removes it and its log).
set -euo pipefail
PIDFILE="${1:?usage: stop.sh PIDFILE}"
# shellcheck source=../stop-daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/../stop-daemon.sh"
term_then_kill "$(pid_in "$PIDFILE")"
rm -f "$PIDFILE" "$PIDFILE.log"
