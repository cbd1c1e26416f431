#!/usr/bin/env python3
"""A real SMTP server for wasmtp's integration tests and demo, on aiosmtpd.

Listens on 127.0.0.1 only. Every accepted message is written to --spool as
two files with the same sequence number:

  NNNNNN.eml   the exact bytes of the message as received after DATA
               (aiosmtpd's envelope.original_content: CRLF line ends as sent,
               dot-stuffing already removed, terminating ".\\r\\n" excluded)
  NNNNNN.json  the envelope and session facts: mail_from, rcpt_tos,
               mail_options, rcpt_options, auth (login + mechanism or null),
               tls (version string or null), queue_id, size

The .json file is written last (atomically, via rename), so a test that sees
it can read both. Once listening, one line "ready port=<port>" goes to stdout.

Usage (see --help):
  aiosmtpd_server.py --port 0 --spool DIR [--tls none|starttls|implicit
      --cert C --key K] [--auth] [--user U --password P] [--auth-required]
      [--reject-prefix reject]
"""

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback only; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port, 0 = pick a free one (printed in the ready line)")
    p.add_argument("--spool", required=True, help="directory for received messages")
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert", help="server certificate chain (PEM), for --tls starttls|implicit")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--auth", action="store_true", help="offer AUTH PLAIN LOGIN CRAM-MD5")
    p.add_argument("--user", default="user")
    p.add_argument("--password", default="password")
    p.add_argument("--auth-required", action="store_true", help="refuse MAIL before a successful AUTH")
    p.add_argument("--reject-prefix", default="reject",
                   help="recipients whose local part starts with this get 550 5.1.1 ('' = none)")
    p.add_argument("--hostname", default="localhost", help="name in the greeting and EHLO reply")
    p.add_argument("--smtputf8", action="store_true", help="advertise SMTPUTF8")
    p.add_argument("--no-pipelining", dest="pipelining", action="store_false",
                   help="do not advertise PIPELINING (advertised by default)")
    p.add_argument("--enhanced-status-codes", action="store_true", help="advertise ENHANCEDSTATUSCODES")
    p.add_argument("--debug", action="store_true", help="log the SMTP session to stderr")
    return p.parse_args()


class Handler:
    def __init__(self, args):
        self.args = args
        self.counter = itertools.count(1)
        os.makedirs(args.spool, exist_ok=True)

    # ---------------------------------------------------------------- AUTH
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        """Checks PLAIN and LOGIN (aiosmtpd passes a LoginPassword)."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login == self.args.user.encode() and auth_data.password == self.args.password.encode())
        if ok:
            session.wasmtp_auth = {"login": self.args.user, "mechanism": mechanism}
        return AuthResult(success=ok, handled=False)

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        """RFC 2195: 334 <base64 challenge>, client answers base64("user hexdigest")."""
        if len(args) > 1:  # CRAM-MD5 has no initial response
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.randbelow(10**10)}.{int(time.time())}@{self.args.hostname}>".encode()
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes):  # MISSING: aborted or bad base64, already answered
            return AuthResult(success=False, handled=True)
        try:
            user, digest = response.decode("utf-8").rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        expected = hmac.new(self.args.password.encode(), challenge, hashlib.md5).hexdigest()
        if user == self.args.user and hmac.compare_digest(digest.lower(), expected):
            server.session.wasmtp_auth = {"login": user, "mechanism": "CRAM-MD5"}
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        return AuthResult(success=False, handled=False)

    # ---------------------------------------------------------------- EHLO
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = []
        for line in responses:
            # aiosmtpd prints "250-AUTH " even with every mechanism excluded.
            if line.startswith("250-AUTH") and (not self.args.auth or not line[len("250-AUTH"):].strip()):
                continue
            out.append(line)
        if self.args.pipelining:
            # aiosmtpd reads commands one line at a time from a stream, so
            # pipelined commands (RFC 2920) work; it just never says so.
            out.insert(-1, "250-PIPELINING")
        if self.args.enhanced_status_codes:
            out.insert(-1, "250-ENHANCEDSTATUSCODES")
        return out

    # ------------------------------------------------------------ envelope
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        prefix = self.args.reject_prefix
        if prefix and address.split("@", 1)[0].lower().startswith(prefix.lower()):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        queue_id = f"Q{os.getpid()}X{n:06d}"
        base = os.path.join(self.args.spool, f"{n:06d}")
        raw = envelope.original_content or b""
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "auth": getattr(session, "wasmtp_auth", None),
            "tls": ssl_object.version() if ssl_object is not None else None,
            "ehlo": session.host_name,
            "queue_id": queue_id,
            "size": len(raw),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(base + ".json.tmp", base + ".json")
        return f"250 2.0.0 Ok: queued as {queue_id}"


def main():
    args = parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("refusing to listen on a non-loopback address")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)
    if not args.debug:
        # aiosmtpd warns about its own deprecated Session.login_data on every AUTH.
        logging.getLogger("mail.log").setLevel(logging.ERROR)

    ssl_ctx = None
    if args.tls != "none":
        if not (args.cert and args.key):
            sys.exit("--tls starttls|implicit needs --cert and --key")
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.cert, args.key)

    handler = Handler(args)
    smtp_kwargs = dict(
        hostname=args.hostname,
        ident="wasmtp test server (aiosmtpd)",
        decode_data=False,
        enable_SMTPUTF8=args.smtputf8,
        data_size_limit=64 * 1024 * 1024,
    )
    if args.tls == "starttls":
        smtp_kwargs["tls_context"] = ssl_ctx
        smtp_kwargs["require_starttls"] = False
    if args.auth:
        smtp_kwargs["authenticator"] = handler.authenticator
        smtp_kwargs["auth_required"] = args.auth_required
        # aiosmtpd only counts STARTTLS as TLS; implicit TLS is TLS from the first
        # byte, and "none" is for allowInsecureAuth tests.
        smtp_kwargs["auth_require_tls"] = args.tls == "starttls"
    else:
        # No AUTH at all: drop every mechanism, so EHLO does not advertise AUTH.
        smtp_kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN", "CRAM-MD5"]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, **smtp_kwargs),
        host=args.host, port=args.port,
        ssl=ssl_ctx if args.tls == "implicit" else None,
        reuse_address=True,
    ))
    port = server.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print(f"ready port={port} tls={args.tls} auth={'on' if args.auth else 'off'}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
