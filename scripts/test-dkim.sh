#!/usr/bin/env bash
# The DKIM suite (tests/dkim): messages signed by wasmtp checked by real
# verifiers, about a minute:
#   - scripts/setup-dkim.sh (apt: opendkim, dkimpy, dnsmasq; npm ci in
#     tests/dkim for nodemailer) and scripts/setup-js.sh (wasm, pkg/node_modules)
#   - cargo build of examples/dkim_sign (the native Rust signer)
#   - node --test tests/dkim/*.test.mjs (Postfix, OpenDKIM and dnsmasq on
#     127.0.0.1 high ports, started and stopped by PID; needs root for Postfix)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/dkim"
log() { printf '[test-dkim] %s\n' "$*" >&2; }
started=$SECONDS

bash "$ROOT/scripts/setup-dkim.sh"
bash "$ROOT/scripts/setup-js.sh"

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
