#!/usr/bin/env bash
# Builds the engine to WebAssembly for the npm package: pkg/wasm/wasmtp.js,
# pkg/wasm/wasmtp_bg.wasm (and wasmtp.d.ts for reference).
#
#   cargo (profile "wasm": opt-level z, LTO, panic=abort)
#     -> wasm-bindgen --target web (pinned to the crate version in Cargo.lock)
#     -> wasm-opt -Oz (npm package binaryen, from pkg/node_modules; never the OS one)
#
# Tools are expected from scripts/setup-js.sh. A rebuild takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[build-wasm] %s\n' "$*" >&2; }

WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
WASM_BINDGEN="$ROOT/.tools/wasm-bindgen-$WB_VERSION/bin/wasm-bindgen"
WASM_OPT="$ROOT/pkg/node_modules/.bin/wasm-opt"
[ -x "$WASM_BINDGEN" ] || { log "missing $WASM_BINDGEN: run scripts/setup-js.sh"; exit 1; }
[ -x "$WASM_OPT" ] || { log "missing $WASM_OPT: run scripts/setup-js.sh (npm ci in pkg)"; exit 1; }

# A separate target dir: no lock contention with native builds and tests.
TARGET_DIR="$ROOT/target/wasm"
log "cargo rustc (wasm32-unknown-unknown, profile wasm)"
# `cargo rustc --crate-type cdylib` rather than a [lib] crate-type in
# Cargo.toml: native builds stay rlib-only.
cargo rustc --quiet --lib --crate-type cdylib --target wasm32-unknown-unknown --profile wasm \
    --no-default-features --features wasm --target-dir "$TARGET_DIR"

ARTIFACT="$TARGET_DIR/wasm32-unknown-unknown/wasm/wasmtp.wasm"
OUT="$ROOT/pkg/wasm"
mkdir -p "$OUT"
# wasm-opt (binaryen's npm build) takes ~10 s: skip the post-processing
# when its output is newer than cargo's (FORCE=1 redoes it).
if [ -z "${FORCE:-}" ] && [ -f "$OUT/wasmtp.js" ] && [ "$OUT/wasmtp_bg.wasm" -nt "$ARTIFACT" ] \
    && [ "$OUT/wasmtp_bg.wasm" -nt "$0" ]; then
    log "pkg/wasm is up to date ($(wc -c <"$OUT/wasmtp_bg.wasm") bytes raw, $(gzip -9 -c "$OUT/wasmtp_bg.wasm" | wc -c) gzip)"
    exit 0
fi
log "wasm-bindgen $WB_VERSION --target web"
"$WASM_BINDGEN" --target web --out-dir "$OUT" --out-name wasmtp "$ARTIFACT"

# The feature flags rustc enables by default for wasm32-unknown-unknown;
# wasm-opt must know them or it refuses the module.
log "wasm-opt -Oz"
"$WASM_OPT" -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$OUT/wasmtp_bg.wasm" -o "$OUT/wasmtp_bg.wasm"

raw=$(wc -c <"$OUT/wasmtp_bg.wasm")
gz=$(gzip -9 -c "$OUT/wasmtp_bg.wasm" | wc -c)
log "pkg/wasm/wasmtp_bg.wasm: $raw bytes raw, $gz bytes gzip -9"
