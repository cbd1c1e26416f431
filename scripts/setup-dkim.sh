#!/usr/bin/env bash
# Idempotent set-up for the DKIM suite (tests/dkim, scripts/test-dkim.sh):
#   - apt, when missing: opendkim + opendkim-tools (the verifying milter; its
#     packaged service is never started, the tests run their own),
#     python3-dkim + python3-nacl + python3-dnspython (dkimpy, Ed25519),
#     dnsmasq-base (the loopback DNS server that publishes the test keys; also
#     tests/servers/dns, used by tests/mx, pkg/test/dns.test.js and the runtime suite)
#   - npm ci in tests/dkim (nodemailer, pinned: the interop test), skipped
#     while its package-lock.json is unchanged
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/dkim"
log() { printf '[setup-dkim] %s\n' "$*" >&2; }

PACKAGES=(opendkim opendkim-tools python3-dkim python3-nacl python3-dnspython dnsmasq-base)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing (apt): ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    log "apt packages present"
fi

if command -v npm >/dev/null 2>&1; then
    STAMP="$DIR/node_modules/.wasmtp-lock.sha256"
    LOCK_SUM="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
        log "tests/dkim/node_modules up to date"
    else
        log "npm ci in tests/dkim (nodemailer)"
        (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
        echo "$LOCK_SUM" >"$STAMP"
    fi
fi
