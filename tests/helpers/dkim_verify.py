#!/usr/bin/python3
"""dkim_verify.py - check a DKIM signature offline (used by tests/unit/test_smtp_client.c).

usage: dkim_verify.py MESSAGE PUBLIC_KEY_PEM [SELECTOR DOMAIN]

Exits 0 when MESSAGE (a file, CRLF or LF line ends) carries a DKIM signature (RFC 6376) that
verifies against PUBLIC_KEY_PEM, 1 when it does not, 2 on a usage error. No DNS is used: the key
record "v=DKIM1; k=rsa; p=..." is made from the PEM and served through dkimpy's dnsfunc. When
SELECTOR and DOMAIN are given, a lookup of any other name than SELECTOR._domainkey.DOMAIN fails.
"""
import sys

import dkim


def main(argv):
    if len(argv) not in (3, 5):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        message = f.read()
    with open(argv[2], "rb") as f:
        pem = f.read()
    # p= is the base64 DER SubjectPublicKeyInfo, which is exactly the PEM body (RFC 6376 3.6.1)
    body = b"".join(line.strip() for line in pem.splitlines()
                    if line.strip() and not line.startswith(b"-----"))
    record = b"v=DKIM1; k=rsa; p=" + body
    expected = None
    if len(argv) == 5:
        expected = "%s._domainkey.%s" % (argv[3], argv[4])

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        if expected is not None and name.rstrip(".").lower() != expected.lower():
            sys.stderr.write("unexpected key lookup: %s\n" % name)
            return None
        return record

    ok = dkim.verify(message, dnsfunc=dnsfunc, minkey=1024)
    if not ok:
        sys.stderr.write("DKIM signature does not verify\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
