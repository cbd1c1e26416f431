#!/usr/bin/env bash
# The DKIM suite (tests/dkim): messages signed by wasmtp checked by real
# verifiers, about a minute:
#   - apt, when missing: opendkim + opendkim-tools (the verifying milter),
#     python3-dkim + python3-nacl + python3-dnspython (dkimpy, Ed25519),
#     dnsmasq-base (the DNS server on loopback that publishes the test keys)
#   - scripts/setup-js.sh (wasm build, pkg/node_modules)
#   - npm ci in tests/dkim (nodemailer, pinned: the interop test)
#   - cargo build of examples/dkim_sign (the native Rust signer)
#   - node --test tests/dkim/*.test.mjs (Postfix, OpenDKIM and dnsmasq on
#     127.0.0.1 high ports, started and stopped by PID; needs root for Postfix)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/dkim"
log() { printf '[test-dkim] %s\n' "$*" >&2; }
started=$SECONDS

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
    # The packaged opendkim service is never started (the tests run their own).
    if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

bash "$ROOT/scripts/setup-js.sh"

STAMP="$DIR/node_modules/.wasmtp-lock.sha256"
LOCK_SUM="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
    log "tests/dkim/node_modules up to date"
else
    log "npm ci in tests/dkim (nodemailer)"
    (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
fi
# The package under test, by name.
ln -sfn ../../../pkg "$DIR/node_modules/wasmtp"

# The native API's signer (examples/dkim_sign, feature dkim-sign), checked by the same verifiers.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
log "cargo build --features dkim-sign --example dkim_sign"
(cd "$ROOT" && cargo build --quiet --features dkim-sign --example dkim_sign)
export WASMTP_DKIM_EXAMPLE="$ROOT/target/debug/examples/dkim_sign"

cd "$DIR"
timeout --kill-after=10 "${DKIM_TESTS_TIMEOUT:-300}" \
    node --test --test-concurrency=1 --test-timeout=240000 --test-reporter=spec ./*.test.mjs
log "done in $((SECONDS - started)) s"
