#!/usr/bin/python3
"""smtp_server.py - a local SMTP server for tests/unit/test_smtp_client.c (aiosmtpd).

usage: smtp_server.py --dir DIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASS]
                      [--fail-first N] [--reject] [--port N] [--save-rejected]

Listens on 127.0.0.1 on a free port (bound to port 0, or --port N to come back on the port of a
server that was stopped) and prints that port as the first line of stdout. Every accepted message is saved as DIR/NNNN.eml (the DATA bytes as received, dot-stuffing
removed) with DIR/NNNN.json beside it: {"mail_from", "rcpt_tos", "peer_port", "tls",
"auth_login"}. Both are written to a temporary name and renamed, so a reader never sees half.

  --starttls CERT KEY  offer STARTTLS (RFC 3207) and require it before MAIL
  --tls CERT KEY       implicit TLS from the first byte (smtps, RFC 8314)
  --auth USER:PASS     require AUTH (PLAIN or LOGIN, RFC 4954); other credentials get 535,
                       and DIR/auth-failures holds how many logins were refused so far
  --fail-first N       answer the first N messages with "451 4.3.0 ..." after DATA
  --reject             answer RCPT TO with "550 5.1.1 ..."
  --save-rejected      also save the DATA of messages answered 451 as DIR/rejected-NNNN.eml
                       (so a test sees what each failed try carried, e.g. its Message-ID)

Canned replies (the C test looks for these texts):
  451 4.3.0 Test server: try again later
  550 5.1.1 Test server: mailbox unavailable

Stops on SIGTERM or SIGINT (the test kills it by its pid) and exits 0.
"""
import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLY_451 = "451 4.3.0 Test server: try again later"
REPLY_550 = "550 5.1.1 Test server: mailbox unavailable"


class Handler:
    """aiosmtpd handler: the failure modes and the saving of messages."""

    def __init__(self, directory, fail_first, reject, save_rejected=False):
        self.directory = directory
        self.fail_left = fail_first
        self.reject = reject
        self.save_rejected = save_rejected
        self.rejected = 0
        self.saved = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return REPLY_550
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            if self.save_rejected:
                self.rejected += 1
                write_atomic(os.path.join(self.directory, "rejected-%04d.eml" % self.rejected),
                             envelope.original_content)
            return REPLY_451
        self.saved += 1
        base = os.path.join(self.directory, "%04d" % self.saved)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "peer_port": session.peer[1] if session.peer else None,
            "tls": (session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None),
            "auth_login": (session.auth_data.login.decode("utf-8", "replace")
                           if isinstance(session.auth_data, LoginPassword) else None),
        }
        write_atomic(base + ".eml", envelope.original_content)
        write_atomic(base + ".json", json.dumps(meta).encode("utf-8"))
        return "250 2.0.0 Ok: queued as %04d" % self.saved


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_authenticator(user, password, directory):
    refused = [0]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user
              and auth_data.password == password)
        if not ok:
            refused[0] += 1
            write_atomic(os.path.join(directory, "auth-failures"), b"%d" % refused[0])
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticator


def main():
    parser = argparse.ArgumentParser(description="local SMTP server for tests")
    parser.add_argument("--dir", required=True)
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    tls.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASS")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reject", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--save-rejected", action="store_true")
    args = parser.parse_args()

    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")

    context = None
    if args.starttls or args.tls:
        cert, key = args.starttls or args.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

    authenticator = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        authenticator = make_authenticator(user.encode(), password.encode(), args.dir)

    handler = Handler(args.dir, args.fail_first, args.reject, args.save_rejected)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(handler, hostname="localhost", loop=loop,
                    tls_context=context if args.starttls else None,
                    require_starttls=bool(args.starttls),
                    authenticator=authenticator,
                    auth_required=authenticator is not None,
                    auth_require_tls=False)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(16)
    server = loop.run_until_complete(
        loop.create_server(factory, sock=sock, ssl=context if args.tls else None))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, loop.stop)
    sys.stdout.write("%d\n" % sock.getsockname()[1])
    sys.stdout.flush()
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
