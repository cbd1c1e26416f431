#!/usr/bin/python3
"""Verifies every DKIM-Signature of each message file with dkimpy, looking
the keys up in the DNS server given (a dnsmasq the tests run on loopback).

    verify.py DNS_PORT FILE...

Prints one JSON line per file: {"file", "results": [{"d", "s", "a", "pass"}]}.
"""
import json
import re
import sys

import dkim
import dns.resolver


def main():
    port = int(sys.argv[1])
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 5

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(name.rstrip("."), "TXT")
        except Exception:
            return b""
        return b"".join(b"".join(record.strings) for record in answer)

    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            message = f.read()
        verifier = dkim.DKIM(message)
        count = len(re.findall(rb"(?im)^dkim-signature:", message.split(b"\r\n\r\n", 1)[0]))
        results = []
        for index in range(count):
            ok = False
            try:
                ok = bool(verifier.verify(idx=index, dnsfunc=dnsfunc))
            except Exception as error:  # a broken signature is a failure, not a crash
                results.append({"pass": False, "error": str(error)})
                continue
            sig = verifier.signature_fields or {}
            results.append({
                "d": (sig.get(b"d") or b"").decode(),
                "s": (sig.get(b"s") or b"").decode(),
                "a": (sig.get(b"a") or b"").decode(),
                "pass": ok,
            })
        print(json.dumps({"file": path, "results": results}), flush=True)


if __name__ == "__main__":
    main()
