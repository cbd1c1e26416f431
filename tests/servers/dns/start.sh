#!/usr/bin/env bash
# Starts dnsmasq as a private, authoritative-only DNS server on 127.0.0.1:PORT
# for wasmtp's tests (MX delivery, MTA-STS, the domain doctor).
#
#   start.sh PORT ZONE.conf [PIDFILE]
#
# ZONE.conf holds dnsmasq options, one per line, for example:
#   mx-host=example.test,mx1.example.test,10        an MX record
#   host-record=mx1.example.test,127.0.0.2          A (and AAAA: ,::1)
#   txt-record=_mta-sts.example.test,"v=STSv1; id=1" a TXT record
#   dns-rr=nullmx.test,15,000000                    a null MX (RFC 7505: 0 ".")
# Records have a TTL of 300 s (local-ttl). Every name not in the file is
# answered NXDOMAIN (local=/#/): nothing is
# forwarded, no /etc/hosts, no /etc/resolv.conf, no internet.
# UDP and TCP on PORT; prints "ready port=PORT pid=PID" once it answers, and
# writes the PID to PIDFILE (default ZONE.conf.pid). Stop with stop.sh PIDFILE.
# dnsmasq comes from apt (dnsmasq-base; scripts/setup-dkim.sh installs it).
set -euo pipefail

PORT="${1:?usage: start.sh PORT ZONE.conf [PIDFILE]}"
ZONE="${2:?usage: start.sh PORT ZONE.conf [PIDFILE]}"
PIDFILE="${3:-$ZONE.pid}"
DNSMASQ="${DNSMASQ:-/usr/sbin/dnsmasq}"
[ -x "$DNSMASQ" ] || { echo "dnsmasq not found at $DNSMASQ: run scripts/setup.sh" >&2; exit 1; }
[ -r "$ZONE" ] || { echo "cannot read $ZONE" >&2; exit 1; }
ZONE="$(cd "$(dirname "$ZONE")" && pwd)/$(basename "$ZONE")"
LOG="$PIDFILE.log"
rm -f "$PIDFILE"

# Without --keep-in-foreground dnsmasq daemonizes and writes PIDFILE itself.
# --user: stay the current user (as root it would switch to "nobody", who
# may not read ZONE.conf in a private folder).
"$DNSMASQ" --port="$PORT" --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --no-poll --local='/#/' --local-ttl=300 --conf-file="$ZONE" \
    --pid-file="$PIDFILE" --user="$(id -un)" --log-facility="$LOG" --log-queries

# Ready (bounded: 5 s) once the PID file is written and the log says
# "started": dnsmasq binds its sockets before either.
for _ in $(seq 1 50); do
    if [ -s "$PIDFILE" ] && grep -q 'started, version' "$LOG" 2>/dev/null; then
        echo "ready port=$PORT pid=$(tr -d ' \n' <"$PIDFILE")"
        exit 0
    fi
    sleep 0.1
done
echo "dnsmasq did not start on port $PORT:" >&2
tail -n 20 "$LOG" >&2 2>/dev/null || true
exit 1
