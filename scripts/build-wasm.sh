#!/usr/bin/env bash
# Builds the engine to WebAssembly for the npm package, as three artifacts:
#   core  (--features wasm):            pkg/wasm/wasmtp.js, wasmtp_bg.wasm
#   tls   (--features wasm,tls-engine): pkg/wasm/wasmtp_tls.js, wasmtp_tls_bg.wasm
#         (TLS inside the engine: rustls + ring + webpki-roots; only loaded
#          by clients with tls: { engine: 'wasm' }, so hosts with native TLS
#          never pay for it)
#   doctor (--features wasm,doctor):    pkg/wasm/wasmtp_doctor.js, wasmtp_doctor_bg.wasm
#         (the TLS artifact plus the connection doctor's bindings; only
#          loaded by diagnose(), `wasmtp doctor` and the www/ page)
#   mx     (--features mx-wasm):        pkg/wasm/wasmtp_mx.js, wasmtp_mx_bg.wasm
#         (MX host order and MTA-STS policies, no engine; only loaded by
#          clients with mx: true)
# (and a .d.ts next to each, for reference).
#
#   cargo (profile "wasm": opt-level z, LTO, panic=abort)
#     -> wasm-bindgen --target web (pinned to the crate version in Cargo.lock)
#     -> wasm-opt -Os --low-memory-unused (npm package binaryen, from
#        pkg/node_modules; never the OS one). -Os, not -Oz: measured smaller
#        after gzip on these modules (0.2 KB for core, 0.9 KB for tls).
#        --low-memory-unused: Rust's wasm32 layout puts the stack first
#        (growing down towards 0), so no code addresses the first 1 KiB on
#        purpose, and binaryen may fold constant offsets into loads and stores.
#
# Tools are expected from scripts/setup-js.sh. A rebuild takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[build-wasm] %s\n' "$*" >&2; }

WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
WASM_BINDGEN="${WASMTP_TOOL_CACHE:-$HOME/.cache/wasmtp}/wasm-bindgen-$WB_VERSION/bin/wasm-bindgen"
WASM_OPT="$ROOT/pkg/node_modules/.bin/wasm-opt"
[ -x "$WASM_BINDGEN" ] || { log "missing $WASM_BINDGEN: run scripts/setup-js.sh"; exit 1; }
[ -x "$WASM_OPT" ] || { log "missing $WASM_OPT: run scripts/setup-js.sh (npm ci in pkg)"; exit 1; }

# `cargo rustc --crate-type cdylib` rather than a [lib] crate-type in
# Cargo.toml: native builds stay rlib-only. A separate target dir per
# artifact: no lock contention with native builds and tests, and no
# rebuild ping-pong between the two feature sets.
OUT="$ROOT/pkg/wasm"
mkdir -p "$OUT"

# build <name> <features>
build() {
    local name="$1" features="$2"
    local target_dir="$ROOT/target/wasm-$name"
    log "[$name] cargo rustc --features $features (wasm32-unknown-unknown, profile wasm)"
    cargo rustc --quiet --lib --crate-type cdylib --target wasm32-unknown-unknown --profile wasm \
        --no-default-features --features "$features" --target-dir "$target_dir"

    local artifact="$target_dir/wasm32-unknown-unknown/wasm/wasmtp.wasm"
    local stem="wasmtp"
    [ "$name" = core ] || stem="wasmtp_$name"
    local wasm="$OUT/${stem}_bg.wasm"
    # wasm-opt (binaryen's npm build) takes ~10 s per artifact: skip the
    # post-processing when its output is newer than cargo's (FORCE=1 redoes it).
    if [ -z "${FORCE:-}" ] && [ -f "$OUT/$stem.js" ] && [ "$wasm" -nt "$artifact" ] && [ "$wasm" -nt "$0" ]; then
        log "[$name] pkg/wasm/${stem}_bg.wasm is up to date ($(wc -c <"$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) gzip)"
        return
    fi
    # Built in a scratch directory and moved into pkg/wasm at the end, so a
    # test or bench running meanwhile sees the old files or the new ones,
    # never a half-written or unoptimised module.
    local scratch
    scratch="$(mktemp -d "$OUT/.build-$name.XXXXXX")"
    log "[$name] wasm-bindgen $WB_VERSION --target web"
    "$WASM_BINDGEN" --target web --out-dir "$scratch" --out-name "$stem" "$artifact"

    # The feature flags rustc enables by default for wasm32-unknown-unknown;
    # wasm-opt must know them or it refuses the module.
    log "[$name] wasm-opt -Os"
    "$WASM_OPT" -Os --low-memory-unused --strip-debug --strip-producers \
        --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$scratch/${stem}_bg.wasm" -o "$scratch/${stem}_bg.wasm"
    # The module before its glue: the glue's imports must match a module already in place.
    mv -f "$scratch/${stem}_bg.wasm" "$wasm"
    for f in "$scratch"/*; do mv -f "$f" "$OUT/"; done
    rmdir "$scratch"
    log "[$name] pkg/wasm/${stem}_bg.wasm: $(wc -c <"$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzip -9"
}

build core wasm
build tls wasm,tls-engine
build doctor wasm,doctor
build dkim wasm,dkim-wasm
build mx mx-wasm
