#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for N seconds each (default 60).
#
#   scripts/fuzz.sh [seconds]
#
# Installs cargo-fuzz if missing (cached in ~/.cargo/bin), builds all
# targets once, then runs each from the committed corpus (fuzz/corpus/<t>,
# read-only; new inputs go to fuzz/target/corpus/<t>). Exits non-zero if any
# target crashes, hangs (> 5 s on one input) or exceeds 512 MB, and prints
# the path of the input that did it (under fuzz/artifacts/<t>/).
#
# Works on stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# Environment:
#   FUZZ_TARGETS    space-separated subset of targets (default: all)
#   FUZZ_SANITIZER  none (default) or address. The crate has no `unsafe`, so
#                   ASan adds little but halves the speed and lengthens the build.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-none}"
targets="${FUZZ_TARGETS:-reply_parser session address_and_headers tls_engine_session}"

# Per target: max input length and dictionary.
max_len() {
    case "$1" in
        reply_parser) echo 8192 ;;
        address_and_headers) echo 2048 ;;
        *) echo 4096 ;;
    esac
}
dict() {
    case "$1" in
        address_and_headers) echo "fuzz/address.dict" ;;
        *) echo "fuzz/smtp.dict" ;;
    esac
}

start=$(date +%s)
echo "== building fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"
built=$(date +%s)
echo "   built in $((built - start)) s"

mkdir -p fuzz/target/logs
failed=()
for t in $targets; do
    work="fuzz/target/corpus/$t"
    seeds="fuzz/corpus/$t"
    mkdir -p "$work" "$seeds" "fuzz/artifacts/$t"
    log="fuzz/target/logs/$t.log"
    marker="$(mktemp)"
    echo "== $t: ${seconds} s"
    set +e
    cargo fuzz run -s "$sanitizer" "$t" "$work" "$seeds" -- \
        -max_total_time="$seconds" \
        -max_len="$(max_len "$t")" \
        -rss_limit_mb=512 \
        -timeout=5 \
        -dict="$(dict "$t")" \
        -print_final_stats=1 \
        >"$log" 2>&1
    status=$?
    set -e
    grep -E '^Done [0-9]+ runs' "$log" | sed 's/^/   /' || true
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | sed 's/^/   /' || true
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "!! $t failed (exit $status); log: $log"
        grep -E -A 3 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 20 | sed 's/^/   /' || true
        found=$(find "fuzz/artifacts/$t" -type f -newer "$marker" 2>/dev/null || true)
        if [ -n "$found" ]; then
            echo "$found" | sed 's/^/   crash input: /'
            echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer $t <crash input>"
        else
            tail -n 20 "$log" | sed 's/^/   /'
        fi
    fi
    rm -f "$marker"
done

end=$(date +%s)
echo "== total $((end - start)) s (build $((built - start)) s)"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "!! fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "== no crash, hang or memory blow-up found"
