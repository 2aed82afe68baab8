#!/usr/bin/env python3
"""fake_zoho.py - a stand-in for Zoho Accounts' token endpoint and the Zoho Assist API v2
scheduled sessions, for tests/integration/test_zoho.py. Python's http.server on 127.0.0.1, a free
port printed as the first line of stdout; stopped by its pid (SIGTERM).

  fake_zoho.py --client-id ID --client-secret S --refresh-token RT

What it enforces, after www.zoho.com/assist/api/refresh-access-token.html and
www.zoho.com/assist/api/schedulesession.html:

  POST /oauth/v2/token   refresh_token, client_id, client_secret, grant_type=refresh_token, in the
                         form body or the query. A wrong client is {"error": "invalid_client"},
                         an unknown refresh token {"error": "invalid_code"}, both with HTTP 200
                         as Zoho answers them. Success: {"access_token", "expires_in": 3600,
                         "api_domain", "token_type": "Bearer"}.
  POST /api/v2/session/schedule
                         "Authorization: Zoho-oauthtoken {token}" with a token issued here and not
                         expired, else 401 {"error": {"code": 1002, "message": "invalid_oauthtoken"}}
                         (ASSUMED shape); Content-Type application/json; mode SCHEDULE, title,
                         customer_email, schedule_time, schedule_upto (ms, upto > time),
                         utc_offset (+HH:MM), time_zone, reminder required, else 400. Answer:
                         {"representation": {"statue": "ok", "schedule_id", "technician_url",
                         "customer_url"}, "resource_type": "/api/v2/session/schedule"}.
  PUT    /api/v2/session/schedule/{id}   the same body; moves the session (ASSUMED endpoint)
  DELETE /api/v2/session/schedule/{id}   removes it; 404 when unknown (ASSUMED endpoint)

Test controls: POST /_control {"inject": {"method", "path", "status", "retry_after", "times",
"drop"}}, {"expire_tokens": true}, {"revoke": "RT"}; GET /_state: {"sessions": {id: body},
"deleted": [ids], "token_calls": n, "log": [...]}.
"""
import argparse
import json
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"sessions": {}, "deleted": [], "token_calls": 0, "log": []}
TOKENS = {}
REFRESH = set()
INJECT = []
CLIENT = {}
NEXT = [215000000000000001]
OFFSET_RE = re.compile(r"^[+-]\d\d:\d\d$")
REQUIRED = ("mode", "title", "customer_email", "schedule_time", "schedule_upto", "utc_offset",
            "time_zone", "reminder")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_zoho: " + (fmt % args) + "\n")

    def send_json(self, status, obj, headers=()):
        out = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def injection(self, path):
        with LOCK:
            for inj in INJECT:
                if inj.get("method") and inj["method"] != self.command:
                    continue
                if inj.get("path") and inj["path"] not in path:
                    continue
                inj["times"] = inj.get("times", 1) - 1
                if inj["times"] <= 0:
                    INJECT.remove(inj)
                return dict(inj)
        return None

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if url.path == "/_control":
            return self.control(json.loads(raw or b"{}"))
        if url.path == "/_state":
            with LOCK:
                return self.send_json(200, STATE)
        with LOCK:
            STATE["log"].append({"method": self.command, "path": url.path})
        if url.path == "/oauth/v2/token" and self.command == "POST":
            return self.token(raw, url.query)
        if not url.path.startswith("/api/v2/session/schedule"):
            return self.send_json(404, {"error": {"code": 404, "message": "not found"}})
        auth = self.headers.get("Authorization") or ""
        tok = auth[len("Zoho-oauthtoken "):] if auth.startswith("Zoho-oauthtoken ") else None
        with LOCK:
            good = tok is not None and TOKENS.get(tok, 0) > time.time()
        if not good:
            return self.send_json(401, {"error": {"code": 1002, "message": "invalid_oauthtoken"}})
        inj = self.injection(url.path)
        if inj and inj.get("drop"):
            self.apply(url.path, raw)  # done on Zoho's side, the answer lost
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if inj:
            hdrs = [("Retry-After", inj["retry_after"])] if inj.get("retry_after") else []
            return self.send_json(inj["status"], {"error": {"code": inj["status"],
                                                            "message": "injected"}}, hdrs)
        status, body = self.apply(url.path, raw)
        return self.send_json(status, body)

    def apply(self, path, raw):
        tail = path[len("/api/v2/session/schedule"):].strip("/")
        if self.command == "DELETE":
            with LOCK:
                if tail not in STATE["sessions"]:
                    return 404, {"error": {"code": 404, "message": "schedule not found"}}
                del STATE["sessions"][tail]
                STATE["deleted"].append(tail)
            return 200, {"representation": {"status": "success"}, "resource_type": "schedule"}
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return 415, {"error": {"code": 415, "message": "Content-Type must be JSON"}}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": {"code": 400, "message": "invalid JSON"}}
        missing = [k for k in REQUIRED if k not in body]
        if missing or body.get("mode") != "SCHEDULE" or \
                not isinstance(body.get("schedule_time"), int) or \
                not isinstance(body.get("schedule_upto"), int) or \
                body["schedule_upto"] <= body["schedule_time"] or \
                not OFFSET_RE.match(str(body.get("utc_offset"))):
            return 400, {"error": {"code": 400, "message": "invalid params %s" % missing}}
        with LOCK:
            if self.command == "PUT":
                if tail not in STATE["sessions"]:
                    return 404, {"error": {"code": 404, "message": "schedule not found"}}
                sid = tail
            elif self.command == "POST" and not tail:
                sid = str(NEXT[0])
                NEXT[0] += 1
            else:
                return 405, {"error": {"code": 405, "message": "method not allowed"}}
            STATE["sessions"][sid] = body
        base = "http://127.0.0.1:%d/assist-schedule" % self.server.server_address[1]
        return 200, {"representation": {
            "statue": "ok", "schedule_id": sid,
            "technician_url": base + "?digest=t%s&role=V&schedule_id=%s" % (sid[-4:], sid),
            "customer_url": base + "?digest=c%s&role=A&schedule_id=%s" % (sid[-4:], sid)},
            "resource_type": "/api/v2/session/schedule"}

    def token(self, raw, query):
        f = dict(urllib.parse.parse_qsl(query))
        if (self.headers.get("Content-Type") or "").startswith(
                "application/x-www-form-urlencoded"):
            f.update(dict(urllib.parse.parse_qsl(raw.decode())))
        with LOCK:
            STATE["token_calls"] += 1
        if f.get("grant_type") != "refresh_token":
            return self.send_json(200, {"error": "unsupported_grant_type"})
        if f.get("client_id") != CLIENT["id"] or f.get("client_secret") != CLIENT["secret"]:
            return self.send_json(200, {"error": "invalid_client"})
        if f.get("refresh_token") not in REFRESH:
            return self.send_json(200, {"error": "invalid_code"})
        tok = "1000." + secrets.token_hex(16)
        with LOCK:
            TOKENS[tok] = time.time() + 3600
        return self.send_json(200, {"access_token": tok, "expires_in": 3600,
                                    "api_domain": "https://www.zohoapis.com",
                                    "token_type": "Bearer"})

    def control(self, body):
        with LOCK:
            if "inject" in body:
                INJECT.append(dict(body["inject"]))
            if body.get("expire_tokens"):
                for k in TOKENS:
                    TOKENS[k] = 0
            if "revoke" in body:
                REFRESH.discard(body["revoke"])
        return self.send_json(200, {"ok": True})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--refresh-token", action="append", default=[])
    a = ap.parse_args()
    CLIENT["id"], CLIENT["secret"] = a.client_id, a.client_secret
    REFRESH.update(a.refresh_token)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except SystemExit:
        pass


if __name__ == "__main__":
    main()
