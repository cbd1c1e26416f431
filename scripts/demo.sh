#!/usr/bin/env bash
# The newcomer's tour: set up, start a local SMTP server (aiosmtpd with
# STARTTLS and AUTH, on 127.0.0.1, certificate from a throw-away test CA),
# send one real message with the npm package's command line (`npx wasmtp
# send`, i.e. pkg/bin/wasmtp.js: the Rust engine compiled to WebAssembly),
# show what the server received, and stop the server.
#
# Everything stays on loopback. The files of the last run are kept in
# .tools/demo/ (certificates, server log, received message).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh </dev/null

DEMO="$ROOT/.tools/demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
# The CLI reads the password from WASMTP_PASSWORD (never from a flag that shows in ps).
export WASMTP_PASSWORD="demo-password-$RANDOM"

echo
echo "==> Generating a test CA and a certificate for localhost in .tools/demo/certs"
bash tests/servers/make-certs.sh "$DEMO/certs"

echo "==> Starting aiosmtpd on 127.0.0.1 (STARTTLS + AUTH PLAIN/LOGIN/CRAM-MD5)"
.tools/venv/bin/python tests/servers/aiosmtpd_server.py --port 0 --spool "$DEMO/spool" \
    --tls starttls --cert "$DEMO/certs/server.pem" --key "$DEMO/certs/server.key" \
    --auth --auth-required --user demo --password "$WASMTP_PASSWORD" \
    >"$DEMO/server.out" 2>"$DEMO/server.log" </dev/null &
SERVER_PID=$!
stop_server() {
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap stop_server EXIT

PORT=""
for _ in $(seq 1 100); do
    PORT="$(sed -n 's/^ready port=\([0-9]*\).*/\1/p' "$DEMO/server.out")"
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "the demo server did not start; its log:" >&2
    cat "$DEMO/server.log" >&2
    exit 1
fi
echo "    listening on 127.0.0.1:$PORT (pid $SERVER_PID)"

echo
echo "==> Sending a message with the npm package's CLI (transcript below; the password is redacted)"
echo "    (pkg/bin/wasmtp.js is what \`npx wasmtp\` runs once the package is installed)"
send=(node pkg/bin/wasmtp.js send
    --host localhost --port "$PORT" --security starttls --ca "$DEMO/certs/ca.pem"
    --user demo
    --from 'Demo <demo@example.com>' --to friend@example.org
    --subject 'Hello from wasmtp ✓' --text 'It arrived: sent by the wasmtp SMTP engine (Rust in WebAssembly) over STARTTLS.'
    --html '<p>It arrived: sent by the <b>wasmtp</b> SMTP engine (Rust in WebAssembly) over STARTTLS.</p>' -v)
printf "    \$ WASMTP_PASSWORD=...%s\n" "$(printf " %q" "${send[@]}")"
if ! timeout 90 "${send[@]}" </dev/null; then
    echo "sending failed (server log: $DEMO/server.log)" >&2
    exit 1
fi

echo
echo "==> What the server received"
shopt -s nullglob
received=("$DEMO"/spool/*.eml)
if [ "${#received[@]}" -eq 0 ]; then
    echo "nothing arrived (server log: $DEMO/server.log)" >&2
    exit 1
fi
for eml in "${received[@]}"; do
    echo "--- envelope (${eml%.eml}.json)"
    cat "${eml%.eml}.json"
    echo
    echo "--- message ($eml, $(wc -c < "$eml") bytes)"
    tr -d '\r' < "$eml"
    echo "---"
done

stop_server
trap - EXIT
echo
echo "Done: the message went through STARTTLS (verified against the test CA) and AUTH, and arrived."
echo "Files of this run: .tools/demo/   Next: bash scripts/test.sh"
echo "The same from Node: see \"Node quick start\" in README.md (createClient from the wasmtp package)."
