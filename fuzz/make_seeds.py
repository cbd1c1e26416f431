#!/usr/bin/env python3
"""Writes hand-made seed inputs into fuzz/corpus/<target>/seed-*.

Seeds are real-looking server dialogs (Postfix-style EHLO, STARTTLS, AUTH,
pipelined replies, DATA and BDAT, LMTP, failures) in each target's input
format, so the fuzzers start deep in the protocol instead of at the
greeting. Run it from anywhere; it only (over)writes files named seed-*.

    python3 fuzz/make_seeds.py
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ----- session / tls_engine_session input format ------------------------------
# flags byte(s), then server bytes with actions escaped by 0xFF.

SEC = {"tls": 0, "starttls": 1, "opportunistic": 2, "none": 3}
CRED = {None: 0, "password": 1, "plain": 2, "login": 3, "cram-md5": 4,
        "oauth2": 5, "xoauth2": 6, "oauthbearer": 7}
PORT = {587: 0, 465: 1, 25: 2, 2525: 3}


def flags(security, cred=None, bytewise=False, lmtp=False, insecure_auth=False,
          port=587, no_pipelining=False, no_chunking=False, one_in_flight=False,
          small_limits=False):
    f0 = SEC[security] | CRED[cred] << 2 | bytewise << 5 | lmtp << 6 | insecure_auth << 7
    f1 = (PORT[port] | no_pipelining << 2 | no_chunking << 3 | one_in_flight << 4
          | small_limits << 5)
    return bytes([f0, f1])


def S(*lines):
    """Server lines (CRLF added), arriving in one read (a read boundary follows)."""
    return ("".join(l + "\r\n" for l in lines)).encode().replace(b"\xff", b"\xff\xff") + b"\xff."


def op(code, arg=None):
    out = b"\xff" + code.encode()
    if arg is not None:
        out += bytes([arg])
    return out


TLS, TLS_UNVERIFIED, EOF, CLOSE, NOOP, ABORT, TLSFAIL, BREAK, BYTEWISE = (
    op("T"), op("U"), op("E"), op("C"), op("N"), op("A"), op("F"), op("."), op("B"))


def WAIT(ms):
    return op("W", ms // 100) if ms < 12_800 else op("W", 128 + min(ms // 10_000, 127))


def MSG(n=0):
    return op("M", n)


def SOCKFAIL(stalled=False):
    return op("S", int(stalled))


GREET = S("220 mx.example.com ESMTP Postfix (Debian/GNU)")
EHLO_PRE = S("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY",
             "250-ETRN", "250-STARTTLS", "250-ENHANCEDSTATUSCODES", "250-8BITMIME",
             "250-DSN", "250-SMTPUTF8", "250 CHUNKING")
EHLO_POST = S("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-ETRN",
              "250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER", "250-AUTH=PLAIN LOGIN",
              "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-DSN", "250-SMTPUTF8",
              "250 CHUNKING")
EHLO_NO_TLS = S("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000",
                "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 DSN")
READY = S("220 2.0.0 Ready to start TLS")
AUTH_OK = S("235 2.7.0 Authentication successful")
QUEUED = "250 2.0.0 Ok: queued as 4ABCD1234F"
BYE = S("221 2.0.0 Bye")


def session_seeds():
    seeds = {}
    # STARTTLS + AUTH PLAIN + pipelined BDAT, the usual submission dialog.
    seeds["starttls-plain-bdat"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_PRE + READY + TLS + EHLO_POST
        + AUTH_OK + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # The same with DATA (no CHUNKING use) and dot-stuffed body.
    seeds["starttls-plain-data"] = (
        flags("starttls", "plain", no_chunking=True) + MSG(8) + GREET + EHLO_PRE + READY + TLS
        + EHLO_POST + AUTH_OK + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>")
        + S(QUEUED) + CLOSE + BYE)
    # Implicit TLS, AUTH LOGIN, two recipients, one refused.
    seeds["tls-login-rcpt-refused"] = (
        flags("tls", "login", port=465) + MSG(1) + TLS + GREET + EHLO_POST
        + S("334 VXNlcm5hbWU6") + S("334 UGFzc3dvcmQ6") + AUTH_OK
        + S("250 2.1.0 Ok", "550 5.1.1 <r0@example.org>: Recipient address rejected: User unknown",
            "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # CRAM-MD5, not pipelined, DATA.
    seeds["tls-cram-md5"] = (
        flags("tls", "cram-md5", port=465, no_pipelining=True, no_chunking=True) + MSG(0) + TLS
        + GREET + EHLO_POST + S("334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcuY211LmVkdT4=")
        + AUTH_OK + S("250 2.1.0 Ok") + S("250 2.1.5 Ok") + S("354 go ahead") + S(QUEUED)
        + CLOSE + BYE)
    # XOAUTH2 refused with the JSON challenge, then the empty response.
    seeds["xoauth2-refused"] = (
        flags("starttls", "xoauth2") + MSG(0) + GREET + EHLO_PRE + READY + TLS + EHLO_POST
        + S("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==")
        + S("535 5.7.8 Username and Password not accepted") + BYE)
    seeds["oauthbearer-ok"] = (
        flags("tls", "oauthbearer", port=465) + MSG(0) + TLS + GREET + EHLO_POST + AUTH_OK
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # Opportunistic against a server without STARTTLS: plaintext delivery.
    seeds["opportunistic-plain-delivery"] = (
        flags("opportunistic", port=25) + MSG(16) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 go") + S(QUEUED) + CLOSE + BYE)
    # Opportunistic with credentials but no TLS: must refuse to AUTH.
    seeds["opportunistic-no-tls-creds"] = (
        flags("opportunistic", "password", port=25) + MSG(0) + GREET
        + S("250-mx.example.com", "250-AUTH PLAIN LOGIN", "250 PIPELINING") + BYE)
    # STARTTLS offered, but the STARTTLS command refused.
    seeds["opportunistic-starttls-454"] = (
        flags("opportunistic", port=25) + MSG(0) + GREET + EHLO_PRE
        + S("454 4.7.0 TLS not available due to local problem")
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # Mode none with STARTTLS advertised: never sent.
    seeds["none-ignores-starttls"] = (
        flags("none", port=25) + MSG(0) + GREET + EHLO_PRE
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # starttls required, not offered: fails before anything sensitive.
    seeds["starttls-missing"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_NO_TLS + BYE)
    # STARTTLS 220 with bytes piggy-backed (response injection, CVE-2011-0411 style).
    seeds["starttls-injection"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_PRE
        + S("220 2.0.0 Ready to start TLS", "250-injected", "235 2.7.0 ok") + TLS + EHLO_POST
        + AUTH_OK + CLOSE + BYE)
    # TLS with an unverified certificate: credentials must not cross it.
    seeds["starttls-unverified-cert"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_PRE + READY + TLS_UNVERIFIED
        + EHLO_POST + AUTH_OK + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    seeds["tls-unverified-cert-insecure-allowed"] = (
        flags("tls", "password", insecure_auth=True, port=465) + MSG(0) + TLS_UNVERIFIED + GREET
        + EHLO_POST + AUTH_OK + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # Handshake fails; handshake never completes.
    seeds["starttls-handshake-fails"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_PRE + READY + TLSFAIL)
    seeds["tls-handshake-timeout"] = flags("tls", port=465) + MSG(0) + WAIT(40_000)
    # Port 465 spoken to in plaintext: silence, then the probe time-out.
    seeds["port-465-silence"] = flags("starttls", port=465) + MSG(0) + WAIT(4_000)
    # Greeting refusals and temporary failures.
    seeds["greeting-554"] = flags("starttls") + MSG(0) + S("554 5.7.1 No SMTP service here")
    seeds["greeting-421-multiline"] = (
        flags("opportunistic", port=25) + MSG(0)
        + S("421-4.7.0 mx.example.com Too many connections", "421 4.7.0 Try again later") + EOF)
    # EHLO refused: HELO fallback.
    seeds["helo-fallback"] = (
        flags("opportunistic", port=25) + MSG(0) + GREET + S("502 5.5.2 Error: command not recognized")
        + S("250 mx.example.com") + S("250 Ok") + S("250 Ok") + S("354 go") + S("250 Ok")
        + CLOSE + BYE)
    # Two messages, pipelined; the first is refused at MAIL, no RSET needed.
    seeds["two-messages-mail-refused"] = (
        flags("none", port=25, no_chunking=True) + MSG(0) + MSG(1) + GREET + EHLO_NO_TLS
        + S("451 4.3.0 Temporary failure", "554 5.5.1 Error: no valid recipients",
            "554 5.5.1 Error: no valid recipients")
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "354 go") + S(QUEUED) + CLOSE + BYE)
    # The first message's only recipient is refused after MAIL succeeded: RSET, then the next.
    seeds["two-messages-rset"] = (
        flags("none", port=25, no_chunking=True) + MSG(0) + MSG(1) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok", "550 5.1.1 <r0@example.org>: Recipient address rejected",
            "554 5.5.1 Error: no valid recipients")
        + S("250 2.0.0 Ok", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "354 go") + S(QUEUED)
        + CLOSE + BYE)
    # SIZE too small for the declared size (message with SIZE=).
    seeds["size-exceeded"] = (
        flags("none", port=25) + MSG(0x40 | 0x30) + GREET
        + S("250-mx.example.com", "250-SIZE 100", "250 PIPELINING") + CLOSE + BYE)
    # DSN and 8BITMIME parameters, SMTPUTF8 server.
    seeds["dsn-8bit"] = (
        flags("none", port=25) + MSG(0x80 | 0x10) + GREET + EHLO_PRE
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # BDAT in small chunks (small limits), several replies.
    seeds["bdat-small-chunks"] = (
        flags("none", port=25, small_limits=True) + MSG(0x30) + GREET
        + S("250-mx", "250-PIPELINING", "250 CHUNKING")
        + S("250 2.1.0 Ok", "250 2.1.5 Ok") + S(*["250 2.0.0 chunk ok"] * 112) + S(QUEUED)
        + CLOSE + BYE)
    # BDAT refused mid-way.
    seeds["bdat-refused"] = (
        flags("none", port=25) + MSG(0) + GREET + S("250-mx", "250-PIPELINING", "250 CHUNKING")
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "552 5.3.4 Message too big") + CLOSE + BYE)
    # Final reply lost: the connection dies after the end of data.
    seeds["eof-after-data"] = (
        flags("none", port=25, no_chunking=True) + MSG(0) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 go") + EOF)
    seeds["data-end-timeout"] = (
        flags("none", port=25, no_chunking=True) + MSG(0) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 go") + WAIT(700_000))
    # LMTP: one final reply per recipient.
    seeds["lmtp"] = (
        flags("none", lmtp=True, port=2525) + MSG(2) + GREET + S("250-lmtp.example.com", "250-PIPELINING", "250 ENHANCEDSTATUSCODES")
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 no such user", "250 2.1.5 Ok", "354 go")
        + S("250 2.0.0 <r0@example.org> delivered", "452 4.2.2 <r2@example.org> mailbox full")
        + CLOSE + BYE)
    # NOOP and an idle close by the server.
    seeds["noop-idle-close"] = (
        flags("none", port=25) + GREET + EHLO_NO_TLS + NOOP + S("250 2.0.0 Ok") + WAIT(1000)
        + S("421 4.4.2 mx.example.com Error: timeout exceeded") + EOF)
    # Bytewise feeding, bare LF replies, a reply split across reads.
    seeds["bytewise-bare-lf"] = (
        flags("none", bytewise=True, port=25) + MSG(0) + b"220 mx\n" + b"250-mx\n250 PIPELINING\n"
        + b"250 ok\n250 o" + BREAK + b"k\n354 go\n" + b"250 queued\n" + CLOSE + b"221 bye\n")
    # Garbage and a socket failure.
    seeds["garbage"] = flags("starttls") + MSG(0) + GREET + b"\x16\x03\x01\x00\xa5\x01\x00" + BREAK
    seeds["socket-failure-stalled"] = (
        flags("none", port=25) + MSG(0) + GREET + EHLO_NO_TLS + SOCKFAIL(True))
    seeds["abort-mid-session"] = (
        flags("starttls", "password") + MSG(0) + GREET + EHLO_PRE + READY + TLS + EHLO_POST + ABORT)
    # Insecure auth allowed on a plaintext link.
    seeds["insecure-auth-allowed"] = (
        flags("none", "password", insecure_auth=True, port=25) + MSG(0) + GREET + EHLO_POST
        + AUTH_OK + S("250 2.1.0 Ok", "250 2.1.5 Ok", QUEUED) + CLOSE + BYE)
    # One transaction in flight at a time.
    seeds["one-in-flight"] = (
        flags("none", port=25, one_in_flight=True) + MSG(0) + MSG(3) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok") + S("250 2.1.5 Ok") + S("354 go") + S(QUEUED)
        + S("250 2.1.0 Ok") + S(*["250 2.1.5 Ok"] * 4) + S("354 go") + S(QUEUED) + CLOSE + BYE)
    # Auth failures.
    seeds["auth-535"] = (
        flags("tls", "password", port=465) + MSG(0) + TLS + GREET + EHLO_POST
        + S("535 5.7.8 Error: authentication failed: authentication failure") + CLOSE + BYE)
    seeds["auth-unsupported"] = (
        flags("tls", "password", port=465) + MSG(0) + TLS + GREET
        + S("250-mx.example.com", "250 AUTH GSSAPI NTLM") + CLOSE + BYE)
    # Small reply limits, overlong EHLO.
    seeds["reply-too-long"] = (
        flags("none", port=25, small_limits=True) + GREET
        + S("250-mx.example.com " + "X" * 200, "250 OK"))
    return seeds


def tls_flags(security, port465=False):
    return bytes([SEC[security] | port465 << 2])


# A TLS 1.2 ServerHello-shaped record, an alert and garbage records.
SERVER_HELLO = bytes.fromhex(
    "160303004a0200004603035f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
    "0a20" + "11" * 32 + "c02f00")
ALERT = bytes.fromhex("15030300020228")
APPDATA = bytes.fromhex("1703030010") + bytes(16)


def tls_seeds():
    seeds = {}
    starttls = GREET + EHLO_PRE + READY
    seeds["starttls-then-serverhello"] = tls_flags("starttls") + starttls + SERVER_HELLO
    seeds["starttls-then-alert"] = tls_flags("starttls") + starttls + ALERT
    seeds["tls-serverhello-split"] = tls_flags("tls", True) + SERVER_HELLO[:7] + BREAK + SERVER_HELLO[7:]
    seeds["tls-appdata"] = tls_flags("tls", True) + APPDATA + ALERT
    seeds["tls-plaintext-greeting"] = tls_flags("tls") + GREET
    seeds["tls-timeout"] = tls_flags("tls", True) + MSG(1) + WAIT(40_000)
    seeds["opportunistic-plain"] = (
        tls_flags("opportunistic") + MSG(0) + GREET + EHLO_NO_TLS
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 go") + S(QUEUED) + CLOSE + BYE)
    seeds["starttls-injected-bytes"] = (
        tls_flags("starttls") + GREET + EHLO_PRE + S("220 2.0.0 go", "250 injected") + SERVER_HELLO)
    return seeds


# ----- reply_parser: 7 header bytes (limits, split seed) + server bytes ----------

def reply_seeds():
    seeds = {}
    default = b"\xff\xff\xff"
    dialogs = {
        "postfix": GREET + EHLO_PRE + READY + EHLO_POST + AUTH_OK
        + S("250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", QUEUED) + BYE,
        "exchange": S("220 mail.example.com Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024 00:00:00 +0000",
                      "250-mail.example.com Hello [192.0.2.1]", "250-SIZE 37748736", "250-PIPELINING",
                      "250-DSN", "250-ENHANCEDSTATUSCODES", "250-STARTTLS", "250-AUTH NTLM LOGIN",
                      "250-8BITMIME", "250-BINARYMIME", "250 CHUNKING",
                      "550 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."),
        "gmail": S("220 smtp.gmail.com ESMTP a1-20020a170902 - gsmtp",
                   "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
                   "535-5.7.8 Username and Password not accepted. For more information, go to",
                   "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-20020a170902 - gsmtp"),
        "bare": b"354\r\n220 hi\n250-a\n250 b\r\n",
        "odd": b"250-first\r\n251 second\r\n250 2.0.0\r\n5",
        "malformed": b"220 ok\r\nHTTP/1.1 400 Bad Request\r\n",
        "tls-on-plain": b"\x16\x03\x03\x00\x4a\x02\x00\x00\x46\x03\x03",
        "lmtp": S("250 2.1.5 Ok", "250 2.0.0 <a@example.org> delivered", "452 4.2.2 <b@example.org> Mailbox full"),
    }
    for name, data in dialogs.items():
        seeds[name] = default + b"\x01\x00\x00\x00" + data
        seeds[name + "-bytewise"] = default + b"\x04\x00\x00\x00" + data
    seeds["small-limits"] = b"\x10\x02\x04" + b"\x37\x13\x00\x00" + EHLO_PRE
    seeds["long-line"] = default + b"\x99\x00\x00\x00" + b"250 " + b"x" * 5000 + b"\r\n"
    seeds["many-lines"] = default + b"\x01\x02\x03\x04" + b"250-x\r\n" * 300 + b"250 end\r\n"
    return seeds


# ----- address_and_headers: flags + fields separated by 0xFF ------------------------

def fields(flags_byte, *values):
    return bytes([flags_byte]) + b"\xff".join(v.encode() if isinstance(v, str) else v for v in values)


def address_seeds():
    seeds = {}
    # field 0: validators; 1 from, 2 to, 3 cc, 4 reply-to, 5 subject, 6 text, 7 html,
    # 8 header name, 9 header value, 10 filename, 11 content type, 12 cid, 13 content, 14 -, 15 message id
    seeds["simple"] = fields(0, "ann@example.com", "Ann <ann@example.com>", "bob@example.org", "", "",
                             "Hello", "Hi Bob,\nsee you.\n")
    seeds["utf8"] = fields(0x01 | 0x02 | 0x04, "josé@exämple.com", "José Müller <josé@exämple.com>",
                           "\"Doe, John\" <j@example.org>, =?utf-8?q?x?= <x@example.org>",
                           "Zoë <zoe@example.net>", "reply@example.com",
                           "Grüße aus Köln — ünïcödé subject that is long enough to need folding in its header line",
                           "Zeile mit Umlauten: äöü\r\n.\r\n" + "x" * 1000, "<p>héllo</p>")
    seeds["header-injection"] = fields(0x10, "ann@example.com\r\nRCPT TO:<evil@x>", "ann@example.com",
                                       "bob@example.org", "", "", "Subject\r\nBcc: evil@example.com",
                                       "text", "", "X-Tag", "value\r\nX-Injected: 1")
    seeds["attachment"] = fields(0x20 | 0x04 | 0x10, "<ann@example.com>", "ann@example.com", "bob@example.org",
                                 "", "", "Report", "see attached", "<img src=\"cid:logo\">", "X-Mailer",
                                 "wasmtp", "rapport été 2024 \"final\".pdf", "application/pdf", "logo@example.com",
                                 b"%PDF-1.4\x00\x01\x02\xfe" * 20)
    seeds["streamed"] = fields(0x20 | 0x40 | 0x80 | 0x08, "[IPv6:2001:db8::1]", "ann@[192.0.2.1]",
                               "bob@example.org", "", "", "", "", "", "", "", "a.txt", "", "",
                               "line one\nline two\n" * 10, "", "<unique.1234@example.com>")
    seeds["quoted-local"] = fields(0, "\"john..doe\"@example.com", "\"very.(),:;<>[]\\\".VERY.\\\"very@\\\\ \\\"very\\\".unusual\"@strange.example.com",
                                   "x@xn--bcher-kva.example", "", "", "=?utf-8?b?5pel5pys?=")
    seeds["ehlo-name"] = fields(0, "client.example.com")
    seeds["long-address"] = fields(0, "a" * 64 + "@" + ".".join(["b" * 63] * 4))
    seeds["list"] = fields(0, "a@example.com, \"B, b\" <b@example.com>, , c@example.com,")
    return seeds


def main():
    for target, seeds in [("session", session_seeds()), ("tls_engine_session", tls_seeds()),
                          ("reply_parser", reply_seeds()), ("address_and_headers", address_seeds())]:
        for name, data in seeds.items():
            write(target, name, data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
