#!/bin/sh
# pipe(8) delivery for the private Postfix test instance (runs as nobody).
# Usage: save-message.sh SPOOL QUEUE_ID SENDER RECIPIENT...
# Writes SPOOL/QUEUE_ID.eml (the message, stdin, as Postfix delivers it) and
# then SPOOL/QUEUE_ID.meta (queue_id=, sender=, recipient= lines); the .meta
# file appears last (rename), so a reader that sees it can read both.
set -eu
spool="$1"; qid="$2"; sender="$3"; shift 3
tmp="$spool/.$qid.$$"
cat > "$tmp.eml"
{
    printf 'queue_id=%s\n' "$qid"
    printf 'sender=%s\n' "$sender"
    for r in "$@"; do printf 'recipient=%s\n' "$r"; done
} > "$tmp.meta"
mv "$tmp.eml" "$spool/$qid.eml"
mv "$tmp.meta" "$spool/$qid.meta"
