#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs every test:
#   1. cargo test --all-features   (unit, scripted and real-server tests:
#      aiosmtpd and a private Postfix on 127.0.0.1, see tests/real_servers.rs;
#      Exim, Dovecot LMTP and OpenSMTPD, see tests/other_mtas.rs)
#   2. cargo build --target wasm32-unknown-unknown --no-default-features --lib
#      (the engine must build for wasm, also with TLS inside: --features tls-engine)
#   3. lint: cargo fmt --check, cargo clippy --all-features --all-targets -D warnings
#   4. scripts/test-js.sh and the other suites (npm package, outbox, doctor,
#      proxies and TLS client settings, fail-safe, other MTAs, DKIM against
#      OpenDKIM and dkimpy, direct delivery to MX hosts, fuzz, runtimes)
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any step failed. Works unattended (CI=true, no stdin).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh </dev/null || { echo "scripts/setup.sh failed" >&2; exit 1; }

failed=()
step() {
    local name="$1"; shift
    echo
    echo "==> $name: $*"
    if "$@" </dev/null; then
        echo "==> $name: ok"
    else
        echo "==> $name: FAILED" >&2
        failed+=("$name")
    fi
}

step "rust tests" cargo test --all-features
step "wasm build" cargo build --target wasm32-unknown-unknown --no-default-features --lib
step "wasm build (TLS in the engine)" cargo build --target wasm32-unknown-unknown --no-default-features --features tls-engine --lib
step "rustfmt" cargo fmt --check
step "clippy" cargo clippy --quiet --all-features --all-targets -- -D warnings
# Every suite is mandatory: a missing script fails its step (bash cannot
# open it) instead of dropping the suite from the run.
step "js tests" bash scripts/test-js.sh
step "outbox tests" bash scripts/test-outbox.sh
step "doctor tests" bash scripts/test-doctor.sh
step "proxy and TLS client settings tests" bash scripts/test-proxies.sh
step "fail-safe tests" bash scripts/test-faults.sh
step "other MTAs (Exim, Dovecot LMTP, OpenSMTPD, Postfix)" bash scripts/test-mtas.sh
step "dkim tests" bash scripts/test-dkim.sh
step "direct delivery (MX, MTA-STS)" bash scripts/test-mx.sh
# A bounded pass of every fuzz target over its committed corpus (FUZZ_SECONDS each).
step "fuzz (bounded)" bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
step "runtime tests" bash scripts/test-runtimes.sh

echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all tests passed"
