#!/usr/bin/env python3
"""fake_google.py - a stand-in for Google's OAuth 2.0 token endpoint and Calendar API v3 events,
for tests/integration/test_gcal.py. Python's http.server on 127.0.0.1, a free port printed as
the first line of stdout; stopped by its pid (SIGTERM).

  fake_google.py --client-id ID --client-secret S [--refresh-token RT ...] [--redirect-uri U]

It enforces what Google enforces (developers.google.com/identity/protocols/oauth2/web-server,
developers.google.com/calendar/api/v3/reference/events/*, .../calendar/api/guides/errors), with
Google's own error bodies:

  GET /o/oauth2/v2/auth  the authorization endpoint (the user consents at once): checks client_id,
                         redirect_uri (--redirect-uri), response_type=code, the scope (both
                         calendar scopes), state present and code_challenge_method=S256 with a
                         43-character code_challenge; answers 302 to redirect_uri with a fresh
                         code and the same state. A bad request is 400 with Google's words
                         (invalid_request, redirect_uri_mismatch, invalid_client); with
                         {"deny": true} set by /_control, 302 with error=access_denied.
  POST /token            grant_type=authorization_code (RFC 6749 4.1.3, RFC 7636 4.6): code
                         (issued here, once, 10 minutes), redirect_uri (the same), client_id,
                         client_secret, code_verifier whose base64url SHA-256 is the code's
                         challenge, else 400 invalid_grant ("Malformed auth code." / "Bad
                         Request" as Google words them); success gives a new refresh token
                         (valid from then on) with the access token.
  POST /token            application/x-www-form-urlencoded; grant_type=refresh_token, client_id,
                         client_secret, refresh_token. A wrong client is 401 invalid_client, an
                         unknown or revoked refresh token 400 invalid_grant ("Token has been
                         expired or revoked."), anything missing 400 invalid_request. Success:
                         {"access_token", "expires_in": 3599, "scope", "token_type": "Bearer"}.
  /calendar/v3/calendars/{calendarId}/events[/{eventId}]
                         Authorization: Bearer with a token issued here and not expired, else
                         401 authError "Invalid Credentials". POST (insert) and PATCH need
                         Content-Type application/json; insert needs start and end (dateTime or
                         date) and an id of base32hex characters (a-v, 0-9), 5 to 1024 long; an
                         id that exists, even a deleted one, is 409 duplicate. PATCH and GET of
                         an unknown id are 404 notFound; DELETE marks the event cancelled (204),
                         of a cancelled one is 410 deleted, of an unknown one 404. sendUpdates,
                         when present, must be all, externalOnly or none.

  POST /calendar/v3/freeBusy
                         (developers.google.com/workspace/calendar/api/v3/reference/freebusy/
                         query) Bearer as above, Content-Type application/json, a body with
                         timeMin and timeMax (RFC 3339, timeMin < timeMax) and items [{"id"}],
                         else 400. Answers {"kind": "calendar#freeBusy", "timeMin", "timeMax",
                         "calendars": {id: {"busy": [{"start", "end"}]}}}: the confirmed,
                         opaque events of that calendar overlapping the range (the gateway's
                         own included, as Google does), merged, in UTC; with
                         {"freebusy_error": "reason"} set, {"errors": [{"domain": "global",
                         "reason"}], "busy": []} for every calendar instead.

Test controls (not Google's): POST /_control with JSON
  {"inject": {"method": "POST", "path": "/events", "status": 429, "retry_after": "120",
              "times": 1, "drop": false, "delay": 0}}
      the next matching request(s) get that status with Google's body for it ("drop": do the
      request, then close the connection without an answer, skipping requests refused with
      401; "delay": answer that much later)
  {"expire_tokens": true}        every access token issued so far stops working (401)
  {"revoke": "RT"}               that refresh token is refused from now on (invalid_grant)
  {"add_refresh_token": "RT"}    a new grant
  {"deny": true|false}           the authorization endpoint answers error=access_denied
  {"add_event": {"calendar": id, "event": {...}}}  an event made in Google (the trainer's
                                 dentist appointment): start/end {"dateTime"}, optional
                                 "transparency": "transparent", "status"
  {"freebusy_error": "reason"|null}  freeBusy reports that error for every calendar
and GET /_state: {"events": {calendarId: {eventId: event}}, "token_calls": n, "log": [...],
"issued": [refresh tokens issued by the code grant]}.
"""
import argparse
import base64
import datetime
import hashlib
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
STATE = {"events": {}, "token_calls": 0, "log": [], "issued": []}
CODES = {}            # authorization code -> {challenge, redirect_uri, expires}
SCOPES = {"https://www.googleapis.com/auth/calendar.events",
          "https://www.googleapis.com/auth/calendar.freebusy"}
TOKENS = {}           # access token -> expiry (time.time())
REFRESH = set()       # valid refresh tokens
INJECT = []
CLIENT = {}
ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")


def gerror(code, reason, message, domain="global", **extra):
    err = {"domain": domain, "reason": reason, "message": message}
    err.update(extra)
    return {"error": {"errors": [err], "code": code, "message": message}}


BODIES = {
    400: gerror(400, "badRequest", "Bad Request"),
    401: gerror(401, "authError", "Invalid Credentials", locationType="header",
                location="Authorization"),
    403: gerror(403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits"),
    404: gerror(404, "notFound", "Not Found"),
    409: gerror(409, "duplicate", "The requested identifier already exists."),
    410: gerror(410, "deleted", "Resource has been deleted"),
    429: gerror(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits"),
    500: gerror(500, "backendError", "Backend Error"),
    503: gerror(503, "backendError", "Backend Error"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_google: " + (fmt % args) + "\n")

    def send_json(self, status, obj, headers=()):
        out = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def injection(self, path, drop):
        """The first injection for this request (drop ones only when drop), used up."""
        with LOCK:
            for inj in INJECT:
                if bool(inj.get("drop")) != drop:
                    continue
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
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        raw = self.body()
        if url.path == "/_control":
            return self.control(json.loads(raw or b"{}"))
        if url.path == "/_state":
            with LOCK:
                return self.send_json(200, STATE)
        inj = self.injection(url.path, False)
        entry = {"method": self.command, "path": url.path, "query": query,
                 "injected": inj and {k: v for k, v in inj.items() if k != "times"}}
        with LOCK:
            STATE["log"].append(entry)
        if inj and inj.get("delay"):
            time.sleep(float(inj["delay"]))
        if inj and inj.get("status"):
            status = int(inj["status"])
            headers = [("Retry-After", str(inj["retry_after"]))] if inj.get("retry_after") else []
            body = inj.get("body") or BODIES.get(status, gerror(status, "error", "Error"))
            return self.send_json(status, body, headers)
        if url.path == "/o/oauth2/v2/auth" and self.command == "GET":
            return self.authorize(query)
        if url.path == "/token" and self.command == "POST":
            status, obj = self.token(raw)
        else:
            status, obj = self.calendar(url.path, query, raw)
        # a drop injection applies to a request that got past authentication: it took effect
        # (or was refused: a 409) and its answer is lost on the way back. A 401 (a stale token)
        # is answered and keeps the injection for the next try.
        drop = status != 401 and self.injection(url.path, True)
        if drop:
            with LOCK:
                entry["injected"] = {"drop": True}
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_json(status, obj)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

    def control(self, c):
        with LOCK:
            if "inject" in c:
                INJECT.append(c["inject"])
            if c.get("expire_tokens"):
                for t in TOKENS:
                    TOKENS[t] = 0
            if c.get("revoke"):
                REFRESH.discard(c["revoke"])
            if c.get("add_refresh_token"):
                REFRESH.add(c["add_refresh_token"])
            if "deny" in c:
                CLIENT["deny"] = bool(c["deny"])
            if c.get("add_event"):
                ev = dict(c["add_event"]["event"])
                ev.setdefault("id", secrets.token_hex(13))
                ev.setdefault("status", "confirmed")
                STATE["events"].setdefault(c["add_event"]["calendar"], {})[ev["id"]] = ev
            if "freebusy_error" in c:
                CLIENT["freebusy_error"] = c["freebusy_error"]
            if "freebusy_calls" in c:
                STATE["freebusy_calls"] = 0
        self.send_json(200, {"ok": True})

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def authorize(self, q):
        """developers.google.com/identity/protocols/oauth2/web-server, steps 2 and 4."""
        def bad(error, desc):
            return self.send_json(400, {"error": error, "error_description": desc})
        if q.get("client_id") != CLIENT["id"]:
            return bad("invalid_client", "The OAuth client was not found.")
        if q.get("redirect_uri") != CLIENT["redirect_uri"]:
            return bad("redirect_uri_mismatch", "redirect_uri does not match: %r"
                       % q.get("redirect_uri"))
        if q.get("response_type") != "code":
            return bad("unsupported_response_type", "response_type must be code")
        if set((q.get("scope") or "").split()) != SCOPES:
            return bad("invalid_scope", "Some requested scopes were invalid: %r" % q.get("scope"))
        if not q.get("state"):
            return bad("invalid_request", "state is required by this fake")
        if q.get("code_challenge_method") != "S256" or \
                not re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge") or ""):
            return bad("invalid_request", "Invalid code_challenge_method or code_challenge")
        sep = "&" if "?" in q["redirect_uri"] else "?"
        if CLIENT.get("deny"):
            return self.redirect(q["redirect_uri"] + sep + urllib.parse.urlencode(
                {"error": "access_denied", "state": q["state"]}))
        code = "4/0A" + secrets.token_urlsafe(30)
        with LOCK:
            CODES[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                           "expires": time.time() + 600}
        return self.redirect(q["redirect_uri"] + sep + urllib.parse.urlencode(
            {"state": q["state"], "code": code, "scope": q["scope"]}))

    def code_grant(self, f):
        """RFC 6749 4.1.3 with RFC 7636 4.6: the code once, its redirect_uri and verifier."""
        if f.get("client_id") != CLIENT["id"] or f.get("client_secret") != CLIENT["secret"]:
            return 401, {"error": "invalid_client",
                         "error_description": "The OAuth client was not found."}
        with LOCK:
            c = CODES.pop(f.get("code") or "", None)
        if not c or c["expires"] < time.time():
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        if f.get("redirect_uri") != c["redirect_uri"]:
            return 400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
        verifier = f.get("code_verifier") or ""
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if digest.rstrip(b"=").decode() != c["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        rt = "1//0g" + secrets.token_urlsafe(30)
        tok = "ya29." + secrets.token_urlsafe(24)
        with LOCK:
            REFRESH.add(rt)
            STATE["issued"].append(rt)
            TOKENS[tok] = time.time() + 3599
        return 200, {"access_token": tok, "expires_in": 3599, "refresh_token": rt,
                     "scope": " ".join(sorted(SCOPES)), "token_type": "Bearer"}

    def token(self, raw):
        """RFC 6749 6 and 5.2, as Google answers them."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request", "error_description": "Bad Request"}
        f = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        with LOCK:
            STATE["token_calls"] += 1
        if f.get("grant_type") == "authorization_code":
            return self.code_grant(f)
        if f.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type: %s" % f.get("grant_type")}
        if f.get("client_id") != CLIENT["id"] or f.get("client_secret") != CLIENT["secret"]:
            return 401, {"error": "invalid_client",
                         "error_description": "The OAuth client was not found."}
        if not f.get("refresh_token"):
            return 400, {"error": "invalid_request",
                         "error_description": "Missing required parameter: refresh_token"}
        with LOCK:
            if f["refresh_token"] not in REFRESH:
                return 400, {"error": "invalid_grant",
                             "error_description": "Token has been expired or revoked."}
            tok = "ya29." + secrets.token_urlsafe(24)
            TOKENS[tok] = time.time() + 3599
        return 200, {"access_token": tok, "expires_in": 3599,
                     "scope": "https://www.googleapis.com/auth/calendar.events",
                     "token_type": "Bearer"}

    def freebusy(self, raw):
        """developers.google.com/workspace/calendar/api/v3/reference/freebusy/query"""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            return 400, gerror(400, "parseError", "This API does not support parsing "
                               "form-encoded input.")
        try:
            q = json.loads(raw)
            tmin, tmax = parse_time(q["timeMin"]), parse_time(q["timeMax"])
            ids = [it["id"] for it in q["items"]]
        except (ValueError, KeyError, TypeError):
            return 400, gerror(400, "badRequest", "Bad Request")
        if tmin >= tmax or not ids:
            return 400, gerror(400, "timeRangeEmpty", "The specified time range is empty.")
        out = {}
        with LOCK:
            STATE["freebusy_calls"] = STATE.get("freebusy_calls", 0) + 1
            STATE.setdefault("freebusy_bodies", []).append(q)
            for cid in ids:
                if CLIENT.get("freebusy_error"):
                    out[cid] = {"errors": [{"domain": "global",
                                            "reason": CLIENT["freebusy_error"]}], "busy": []}
                    continue
                spans = []
                for ev in STATE["events"].get(cid, {}).values():
                    if ev.get("status") == "cancelled" or ev.get("transparency") == "transparent":
                        continue
                    try:
                        a = parse_time(ev["start"]["dateTime"])
                        b = parse_time(ev["end"]["dateTime"])
                    except (KeyError, ValueError, TypeError):
                        continue
                    a, b = max(a, tmin), min(b, tmax)
                    if a < b:
                        spans.append([a, b])
                spans.sort()
                merged = []
                for a, b in spans:
                    if merged and a <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], b)
                    else:
                        merged.append([a, b])
                out[cid] = {"busy": [{"start": fmt_time(a), "end": fmt_time(b)}
                                     for a, b in merged]}
        return 200, {"kind": "calendar#freeBusy", "timeMin": q["timeMin"],
                     "timeMax": q["timeMax"], "calendars": out}

    def calendar(self, path, query, raw):
        if path == "/calendar/v3/freeBusy" and self.command == "POST":
            auth = self.headers.get("Authorization") or ""
            with LOCK:
                ok = auth.startswith("Bearer ") and TOKENS.get(auth[7:], 0) > time.time()
            if not ok:
                return 401, BODIES[401]
            return self.freebusy(raw)
        m = re.fullmatch(r"/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?", path)
        if not m:
            return 404, BODIES[404]
        auth = self.headers.get("Authorization") or ""
        with LOCK:
            ok = auth.startswith("Bearer ") and TOKENS.get(auth[7:], 0) > time.time()
        if not ok:
            return 401, BODIES[401]
        if "sendUpdates" in query and query["sendUpdates"] not in ("all", "externalOnly",
                                                                   "none"):
            return 400, gerror(400, "invalidParameter", "Invalid value for: sendUpdates")
        cal = urllib.parse.unquote(m.group(1))
        eid = m.group(2) and urllib.parse.unquote(m.group(2))
        ev = None
        if self.command in ("POST", "PATCH", "PUT"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != "application/json":
                return 400, gerror(400, "parseError", "This API does not support parsing "
                                   "form-encoded input.")
            try:
                ev = json.loads(raw)
            except ValueError:
                return 400, gerror(400, "parseError", "Parse Error")
        with LOCK:
            events = STATE["events"].setdefault(cal, {})
            if self.command == "POST" and eid is None:
                for k in ("start", "end"):
                    t = ev.get(k)
                    if not isinstance(t, dict) or not (t.get("dateTime") or t.get("date")):
                        return 400, gerror(400, "required", "Missing end time." if k == "end"
                                           else "Missing start time.")
                new_id = ev.get("id") or secrets.token_hex(13)
                if not ID_RE.match(new_id):
                    return 400, gerror(400, "invalid", "Invalid resource id value.")
                if new_id in events:
                    return 409, BODIES[409]
                ev["id"] = new_id
                ev.setdefault("status", "confirmed")
                ev["iCalUID"] = ev.get("iCalUID") or new_id + "@google.com"
                ev["sequence"] = 0
                events[new_id] = ev
                return 200, ev
            if eid is None:
                return 404, BODIES[404]
            cur = events.get(eid)
            if self.command == "GET":
                return (200, cur) if cur else (404, BODIES[404])
            if self.command == "PATCH":
                if not cur:
                    return 404, BODIES[404]
                ev.pop("id", None)
                cur.update(ev)
                cur["sequence"] = cur.get("sequence", 0) + 1
                return 200, cur
            if self.command == "DELETE":
                if not cur:
                    return 404, BODIES[404]
                if cur.get("status") == "cancelled":
                    return 410, BODIES[410]
                cur["status"] = "cancelled"
                return 204, None
        return 400, BODIES[400]


def parse_time(s):
    """RFC 3339 to Unix seconds"""
    if not isinstance(s, str):
        raise ValueError(s)
    return int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def fmt_time(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--refresh-token", action="append", default=[])
    ap.add_argument("--redirect-uri", default="")
    a = ap.parse_args()
    CLIENT.update(id=a.client_id, secret=a.client_secret, redirect_uri=a.redirect_uri)
    REFRESH.update(a.refresh_token)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
