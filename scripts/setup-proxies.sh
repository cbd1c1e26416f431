#!/usr/bin/env bash
# What the proxy suite (tests/proxies, scripts/test-proxies.sh) needs,
# idempotent (about a second when done):
#   - apt: dante-server (danted, a SOCKS5 proxy) and tinyproxy (an HTTP
#     CONNECT proxy with BasicAuth, 1.11+); the suite runs private instances
#     on 127.0.0.1 high ports, never the system services
#   - a system account for danted's user/password method (RFC 1929), which
#     checks the system's password database: "wasmtp-proxy", no home, no
#     shell, the password the suite uses. Skipped when not root (the suite
#     then skips the SOCKS5 credential tests and says so).
set -euo pipefail

log() { printf '[setup-proxies] %s\n' "$*" >&2; }
SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo -n)

missing=()
command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || missing+=(dante-server)
command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 "${SUDO[@]}" apt-get update -qq
    timeout 600 "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "danted and tinyproxy present"
fi

PROXY_USER=wasmtp-proxy
PROXY_PASS='proxy pass'
if id "$PROXY_USER" >/dev/null 2>&1; then
    log "account $PROXY_USER present"
elif [ "$(id -u)" = 0 ]; then
    log "adding account $PROXY_USER (danted's user/password method checks system accounts)"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PROXY_USER"
    echo "$PROXY_USER:$PROXY_PASS" | chpasswd
else
    log "not root: no account $PROXY_USER, the SOCKS5 credential tests will be skipped"
fi
