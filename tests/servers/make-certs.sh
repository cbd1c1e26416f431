#!/usr/bin/env bash
# Generates throw-away test certificates into DIR (openssl CLI):
#   ca.pem / ca.key                 a test CA ("wasmtp test CA")
#   server.pem / server.key         localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the CA
#   selfsigned.pem / selfsigned.key a self-signed localhost certificate (no CA)
# Usage: make-certs.sh DIR     (idempotent: keeps existing files)
set -euo pipefail
DIR="${1:?usage: make-certs.sh DIR}"
mkdir -p "$DIR"
cd "$DIR"
OPENSSL="${OPENSSL:-openssl}"
command -v "$OPENSSL" >/dev/null || { echo "openssl not found: run scripts/setup.sh" >&2; exit 1; }
[ -s server.pem ] && [ -s ca.pem ] && [ -s selfsigned.pem ] && exit 0

cat > ext.cnf <<'CNF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; }
q "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=wasmtp test CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints = critical, CA:TRUE" -addext "keyUsage = critical, keyCertSign, cRLSign"
q "$OPENSSL" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr
q "$OPENSSL" x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile ext.cnf -extensions server -out server.pem
q "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=localhost" -keyout selfsigned.key -out selfsigned.pem \
    -addext "subjectAltName = DNS:localhost, IP:127.0.0.1" -addext "basicConstraints = critical, CA:FALSE" \
    -addext "extendedKeyUsage = serverAuth"
chmod 600 ./*.key
rm -f server.csr ca.srl ext.cnf
