#!/bin/sh
# The OpenSMTPD test instance's mda: saves one delivered message (stdin, to
# which OpenSMTPD has prepended "Return-Path: <envelope sender>" and
# "Delivered-To: <recipient>") as SPOOL/msg-<unique>.eml.
#   save-message.sh SPOOL
set -eu
spool="$1"
tmp="$(mktemp "$spool/.tmp.XXXXXX")"
cat > "$tmp"
mv "$tmp" "$spool/msg-${tmp##*.tmp.}.eml"
