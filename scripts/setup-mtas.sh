#!/usr/bin/env bash
# Idempotent set-up of the other real MTAs the tests run as private
# instances on 127.0.0.1 (tests/mtas, tests/servers/{exim,dovecot,opensmtpd}).
# Called by scripts/setup.sh; each step is skipped when already done.
#
#   - Dovecot 2.3 LMTP: dovecot-core + dovecot-lmtpd from apt (they do not
#     conflict with Postfix). Their maintainer scripts would start the system
#     service: a temporary policy-rc.d forbids that when none is in place.
#   - Exim 4.96 (exim4-daemon-light) and OpenSMTPD 6.8 (opensmtpd) conflict
#     with the postfix package, so they are not installed: apt-get download +
#     dpkg -x unpack them into .tools/mta/root; their libraries (libidn12,
#     libevent, ...) come from apt. The tests run the unpacked binaries.
#   - the system users and groups the packages' own scripts would create,
#     because the binaries look them up by their compiled-in names:
#     Debian-exim (Exim), opensmtpd and opensmtpq (OpenSMTPD);
#   - empty mount points for OpenSMTPD's compiled-in paths (its start.sh
#     bind-mounts private directories over them in its own mount namespace):
#     /var/spool/smtpd, /var/lib/opensmtpd/empty, /usr/libexec/opensmtpd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[setup-mtas] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    # Not fatal for the rest of the set-up: tests/mtas fails with this reason.
    log "WARNING: not root: nothing installed; the private Exim, Dovecot and OpenSMTPD instances (tests/mtas) need root"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ------------------------------------------------------------ apt packages
# Dovecot, and the libraries of the unpacked Exim and OpenSMTPD binaries.
APT_PACKAGES=(dovecot-core dovecot-lmtpd
    libidn12 libgnutls30 libgnutls-dane0 libidn2-0 libnsl2 libpcre2-8-0 libdb5.3 libcrypt1
    libevent-2.1-7 libpam0g libssl3 zlib1g util-linux)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    temporary_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Keep the system Dovecot service from starting: the tests run their own.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        temporary_policy=1
    fi
    status=0
    apt_install "${missing[@]}" || status=$?
    [ -n "$temporary_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ "$status" -eq 0 ] || { log "apt-get install failed"; exit "$status"; }
else
    log "apt packages present (dovecot-core, dovecot-lmtpd, libraries)"
fi

# ------------------------------------------- unpacked Exim and OpenSMTPD
MTA="$ROOT/.tools/mta"
UNPACKED=(exim4-base exim4-daemon-light opensmtpd)
if [ -x "$MTA/root/usr/sbin/exim4" ] && [ -x "$MTA/root/usr/sbin/smtpd" ] \
    && [ -d "$MTA/root/usr/libexec/opensmtpd" ]; then
    log "Exim and OpenSMTPD present in .tools/mta"
else
    log "downloading and unpacking: ${UNPACKED[*]}"
    rm -rf "$MTA"
    mkdir -p "$MTA/debs" "$MTA/root"
    # apt-get download writes to the current directory, as the _apt user when it can.
    chmod 777 "$MTA/debs"
    if ! (cd "$MTA/debs" && apt-get download -qq "${UNPACKED[@]}" >/dev/null 2>&1); then
        apt-get update -qq
        apt_updated=1
        (cd "$MTA/debs" && apt-get download -qq "${UNPACKED[@]}" >/dev/null)
    fi
    for deb in "$MTA"/debs/*.deb; do dpkg -x "$deb" "$MTA/root"; done
fi
# Exim re-executes itself as its own user (Debian-exim) for each delivery,
# so every folder above the unpacked binary must let other users through
# (search permission only, no listing), also when the checkout lives in a
# private (0700) folder such as a mktemp -d.
dir="$MTA"
while [ "$dir" != "/" ]; do
    chmod o+x "$dir" 2>/dev/null || true
    dir="$(dirname "$dir")"
done
for binary in "$MTA/root/usr/sbin/exim4" "$MTA/root/usr/sbin/smtpd"; do
    if ldd "$binary" | grep -q 'not found'; then
        log "$binary misses libraries:"; ldd "$binary" | grep 'not found' >&2; exit 1
    fi
done

# ------------------------------------------------------- users and groups
if ! getent passwd Debian-exim >/dev/null; then
    log "adding system user Debian-exim"
    adduser --system --group --quiet --home /var/spool/exim4 --no-create-home \
        --disabled-login --force-badname Debian-exim
fi
for name in opensmtpd opensmtpq; do
    getent group "$name" >/dev/null || addgroup --system --quiet "$name"
    if ! getent passwd "$name" >/dev/null; then
        log "adding system user $name"
        adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home \
            --disabled-password --ingroup "$name" "$name" 2>/dev/null
    fi
done

# ---------------------------------------------------- OpenSMTPD mount points
mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty /usr/libexec/opensmtpd

log "done"
