#!/usr/bin/env python3
"""rest_server.py - a canned HTTP/1.1 server for the REST client's unit tests (test_rest.c).

Listens on 127.0.0.1 on a free port and prints that port as the first line of stdout; stops on
SIGTERM. Every request, whatever its method and path, is answered from its query string:

  status=N        the status (default 200)
  retry_after=V   a Retry-After header with V ("http-date+S": an HTTP-date S seconds ahead)
  delay=S         sleep S seconds before answering
  ctype=T         the Content-Type (default application/json)
  raw=TEXT        the body, instead of the echo
  big=N           a body of N bytes of 'x'
  close=1         read the request, then close the connection without an answer

The default body is JSON echoing the request: {"method", "path", "query", "headers" (names
lower-cased), "body", "form" (a parsed x-www-form-urlencoded body), "peer_port"}: the peer port
shows whether the client reused its connection.
"""
import email.utils
import json
import signal
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("rest_server: " + (fmt % args) + "\n")

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if q.get("close"):
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if q.get("delay"):
            time.sleep(float(q["delay"]))
        status = int(q.get("status", "200"))
        if "raw" in q:
            out = q["raw"].encode()
        elif "big" in q:
            out = b"x" * int(q["big"])
        else:
            form = {}
            if self.headers.get("Content-Type") == "application/x-www-form-urlencoded":
                form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            out = json.dumps({"method": self.command, "path": url.path, "query": q,
                              "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body.decode("utf-8", "replace"), "form": form,
                              "peer_port": self.client_address[1]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", q.get("ctype", "application/json"))
        ra = q.get("retry_after")
        if ra:
            if ra.startswith("http-date+"):
                ra = email.utils.formatdate(time.time() + int(ra[10:]), usegmt=True)
            self.send_header("Retry-After", ra)
        if status != 204:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_PROPFIND = answer


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
