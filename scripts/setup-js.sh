#!/usr/bin/env bash
# Idempotent set-up for the npm package (pkg/): everything the wasm build and
# the JS tests need, into project-local caches. A second run takes seconds.
#   - rustup target wasm32-unknown-unknown
#   - wasm-bindgen-cli pinned to the wasm-bindgen version in Cargo.lock,
#     installed into ~/.cache/wasmtp/wasm-bindgen-<version>/ (about 2 minutes, once per machine)
#   - npm ci in pkg/ (binaryen's wasm-opt, esbuild, smtp-server, typescript), skipped
#     while package-lock.json is unchanged
#   - scripts/build-wasm.sh
#   - pkg/scripts/bundle.mjs (the Node entry as one module, dist/index.js)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[setup-js] %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v node >/dev/null 2>&1 || { log "node not found: install Node.js 18 or later"; exit 1; }

# ------------------------------------------------------------ rust target
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "adding rustup target wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
fi

# ------------------------------------------- wasm-bindgen-cli, pinned
# The CLI must match the wasm-bindgen crate exactly, or the generated glue
# refuses the module; the version comes from Cargo.lock.
if ! grep -q '^name = "wasm-bindgen"$' Cargo.lock; then
    log "Cargo.lock has no wasm-bindgen yet: resolving"
    cargo metadata --format-version 1 --features wasm >/dev/null
fi
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
# Cached per machine, not per clone: a fresh clone (CI) reuses the build.
WB_ROOT="${WASMTP_TOOL_CACHE:-$HOME/.cache/wasmtp}/wasm-bindgen-$WB_VERSION"
if [ -x "$WB_ROOT/bin/wasm-bindgen" ]; then
    log "wasm-bindgen-cli $WB_VERSION present"
else
    log "installing wasm-bindgen-cli $WB_VERSION into $WB_ROOT (takes a few minutes, once per machine)"
    # --locked first (the CLI's own tested dependency versions); a registry
    # mirror that lacks one of them gets the newest compatible ones instead.
    if ! cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --root "$WB_ROOT" --quiet; then
        log "--locked install failed (a locked dependency is missing from the registry); retrying without --locked"
        cargo install wasm-bindgen-cli --version "$WB_VERSION" --root "$WB_ROOT" --quiet
    fi
fi

# ------------------------------------------------------------- npm ci
PKG="$ROOT/pkg"
STAMP="$PKG/node_modules/.wasmtp-lock.sha256"
LOCK_SUM="$(sha256sum "$PKG/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
    log "pkg/node_modules up to date"
else
    log "npm ci in pkg/"
    (cd "$PKG" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
fi

# ------------------------------------------------------------ the build
bash "$ROOT/scripts/build-wasm.sh"
node "$PKG/scripts/bundle.mjs"
log "done"
