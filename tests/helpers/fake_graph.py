#!/usr/bin/env python3
"""fake_graph.py - a stand-in for the Microsoft identity platform's v2.0 token endpoint and
Microsoft Graph v1.0 calendar events, for tests/integration/test_outlook.py. Python's http.server
on 127.0.0.1, a free port printed as the first line of stdout; stopped by its pid (SIGTERM).

  fake_graph.py --client-id ID --client-secret S --refresh-token RT [--refresh-token RT2 ...]
                [--calendar ID ...]

It enforces what Microsoft enforces (learn.microsoft.com/entra/identity-platform/
v2-oauth2-auth-code-flow, learn.microsoft.com/graph/api/calendar-post-events, .../event-update,
.../event-delete, .../resources/datetimetimezone, .../graph/errors), with Microsoft's error
bodies:

  POST /{tenant}/oauth2/v2.0/token
      application/x-www-form-urlencoded; grant_type=refresh_token, client_id, client_secret,
      refresh_token and scope (space separated; offline_access Calendars.ReadWrite). A wrong
      client is 401 invalid_client (AADSTS7000215), an unknown or revoked refresh token 400
      invalid_grant (AADSTS70008), a missing or comma separated scope 400 invalid_scope
      (AADSTS70011), anything else missing 400 invalid_request (AADSTS900144); every error body
      has error, error_description, error_codes, timestamp, trace_id, correlation_id. Success:
      {"token_type": "Bearer", "scope", "expires_in": 3599, "ext_expires_in", "access_token",
      "refresh_token"}: a new refresh token each time, of the same grant (the old one keeps
      working, as Microsoft's do).
  /v1.0/me/events, /v1.0/me/calendars/{id}/events (POST), /v1.0/me/events/{id} (GET, PATCH,
  DELETE)
      Authorization: Bearer with a token issued here and not expired, else 401
      InvalidAuthenticationToken. POST and PATCH need Content-Type application/json (else 415);
      POST needs subject, start and end, each a dateTimeTimeZone with dateTime and a timeZone
      Graph supports (UTC, the Windows names below, the documented IANA names), else 400
      ErrorInvalidRequest / TimeZoneNotSupportedException. A POST whose transactionId an event
      already has returns that event (201) and makes none. An unknown calendar or event is 404
      ErrorItemNotFound; an id that is not Graph's shape 400 ErrorInvalidIdMalformed. DELETE
      removes the event (204). An event with attendees counts an invitation per attendee in
      "invitations" (Graph sends them; the gateway must never cause one).

  GET /v1.0/me/calendarView, /v1.0/me/calendars/{id}/calendarView
      (learn.microsoft.com/graph/api/user-list-calendarview) Bearer as above; startDateTime and
      endDateTime required (ISO 8601; else 400 ErrorInvalidParameter). The events of that
      calendar overlapping the range, {"value": [{"id", "start", "end", "showAs",
      "isCancelled", "transactionId"}]}, "page_size" (control; default 100) per page with an
      absolute "@odata.nextLink" ($skiptoken) to the next. Times are given back in UTC only
      when the request has Prefer: outlook.timezone="UTC" (the log records the Prefer header);
      without it, in "Pacific Standard Time" as Graph's default for such a mailbox would be.

Test controls (not Microsoft's): POST /_control with JSON
  {"inject": {"method": "POST", "path": "/events", "status": 429, "retry_after": "120",
              "times": 1, "drop": false, "delay": 0}}
      the next matching request(s) get that status with Graph's body for it ("drop": do the
      request, then close the connection without an answer, skipping requests refused with
      401; "delay": answer that much later)
  {"expire_tokens": true}        every access token issued so far stops working (401)
  {"revoke": "RT"}               that grant (every refresh token issued from RT) is refused
  {"add_refresh_token": "RT"}    a new grant
  {"delete_event": "ID"}         the event is deleted (as the trainer would in Outlook)
  {"add_event": {"calendar": "default", "event": {...}}}  an event the trainer made in Outlook
  {"page_size": n}               calendarView page size
and GET /_state: {"events": {calendar: {id: event}}, "token_calls": n, "invitations": n,
"log": [...]}.
"""
import argparse
import base64
import datetime
import json
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"events": {"default": {}}, "token_calls": 0, "invitations": 0, "log": []}
TOKENS = {}           # access token -> expiry (time.time())
REFRESH = {}          # refresh token -> grant (the first refresh token of it)
REVOKED = set()       # revoked grants
INJECT = []
CLIENT = {}
ID_RE = re.compile(r"^AAMk[A-Za-z0-9_-]{40,}=?$")
# the dateTimeTimeZone page: UTC, Windows names (a few), and its "additional time zones"
ZONES = {"UTC", "Pacific Standard Time", "Eastern Standard Time", "W. Europe Standard Time",
         "GMT Standard Time", "Central Europe Standard Time", "Tokyo Standard Time",
         "Etc/GMT", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Warsaw",
         "Europe/Budapest", "America/New_York", "America/Los_Angeles", "America/Chicago",
         "Asia/Tokyo", "Australia/Sydney"}


def token_error(status, error, code, text):
    return status, {"error": error, "error_description": "AADSTS%d: %s Trace ID: %s "
                    "Correlation ID: %s Timestamp: %s" % (code, text, uuid.uuid4(), uuid.uuid4(),
                                                          time.strftime("%Y-%m-%d %H:%M:%SZ")),
                    "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
                    "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}


def gerror(code, message):
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "request-id": str(uuid.uuid4()),
                                     "client-request-id": str(uuid.uuid4())}}}


BODIES = {
    400: gerror("ErrorInvalidRequest", "Your request is invalid."),
    401: gerror("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    404: gerror("ErrorItemNotFound", "The specified object was not found in the store."),
    429: gerror("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: gerror("generalException", "General Exception while processing"),
    503: gerror("serviceNotAvailable", "Service Unavailable"),
    504: gerror("UnknownError", "Gateway Timeout"),
}


def new_id():
    return "AAMk" + base64.urlsafe_b64encode(secrets.token_bytes(105)).decode().rstrip("=") + "="


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_graph: " + (fmt % args) + "\n")

    def send_json(self, status, obj, headers=()):
        out = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def injection(self, path, drop):
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
        raw = self.body()
        if url.path == "/_control":
            return self.control(json.loads(raw or b"{}"))
        if url.path == "/_state":
            with LOCK:
                return self.send_json(200, STATE)
        inj = self.injection(url.path, False)
        entry = {"method": self.command, "path": url.path, "query": url.query,
                 "prefer": self.headers.get("Prefer"),
                 "injected": inj and {k: v for k, v in inj.items() if k != "times"}}
        with LOCK:
            STATE["log"].append(entry)
        if inj and inj.get("delay"):
            time.sleep(float(inj["delay"]))
        if inj and inj.get("status"):
            status = int(inj["status"])
            headers = [("Retry-After", str(inj["retry_after"]))] if inj.get("retry_after") else []
            body = inj.get("body") or BODIES.get(status, gerror("UnknownError", "Error"))
            return self.send_json(status, body, headers)
        if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", url.path) and self.command == "POST":
            status, obj = self.token(raw)
        elif url.path.endswith("/calendarView") and self.command == "GET":
            status, obj = self.calendar_view(url.path, url.query)
        else:
            status, obj = self.graph(url.path, raw)
        entry["status"] = status
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
                REVOKED.add(REFRESH.get(c["revoke"], c["revoke"]))
            if c.get("add_refresh_token"):
                REFRESH[c["add_refresh_token"]] = c["add_refresh_token"]
            if c.get("add_event"):
                ev = dict(c["add_event"]["event"])
                ev.setdefault("id", new_id())
                STATE["events"].setdefault(c["add_event"]["calendar"], {})[ev["id"]] = ev
            if c.get("page_size"):
                CLIENT["page_size"] = int(c["page_size"])
            if c.get("delete_event"):
                for evs in STATE["events"].values():
                    evs.pop(c["delete_event"], None)
        self.send_json(200, {"ok": True})

    def token(self, raw):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            return token_error(400, "invalid_request", 900144, "The request body must contain "
                               "the following parameter: 'grant_type'.")
        f = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        with LOCK:
            STATE["token_calls"] += 1
            STATE.setdefault("scopes", []).append(f.get("scope"))
        if f.get("grant_type") != "refresh_token":
            return token_error(400, "unsupported_grant_type", 70003, "The app requested an "
                               "unsupported grant type '%s'." % f.get("grant_type"))
        if f.get("client_id") != CLIENT["id"]:
            return token_error(400, "unauthorized_client", 700016, "Application with "
                               "identifier '%s' was not found in the directory."
                               % f.get("client_id"))
        if f.get("client_secret") != CLIENT["secret"]:
            return token_error(401, "invalid_client", 7000215, "Invalid client secret "
                               "provided. Ensure the secret being sent in the request is the "
                               "client secret value, not the client secret ID.")
        scope = f.get("scope") or ""
        if not scope or "," in scope or "Calendars.ReadWrite" not in scope.split(" "):
            return token_error(400, "invalid_scope", 70011, "The provided request must "
                               "include a 'scope' input parameter.")
        if not f.get("refresh_token"):
            return token_error(400, "invalid_request", 900144, "The request body must contain "
                               "the following parameter: 'refresh_token'.")
        with LOCK:
            grant = REFRESH.get(f["refresh_token"])
            if grant is None or grant in REVOKED:
                return token_error(400, "invalid_grant", 70008, "The provided authorization "
                                   "code or refresh token has expired due to inactivity. Send "
                                   "a new interactive authorization request for this user and "
                                   "resource.")
            tok = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(32)
            TOKENS[tok] = time.time() + 3599
            rt = "M.C5" + secrets.token_urlsafe(30)
            REFRESH[rt] = grant
        return 200, {"token_type": "Bearer", "scope": "Calendars.ReadWrite",
                     "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok,
                     "refresh_token": rt}

    def check_event(self, ev, partial):
        if not isinstance(ev, dict):
            return gerror("ErrorInvalidRequest", "Empty Payload. JSON content expected.")
        if not partial and not ev.get("subject"):
            return gerror("ErrorInvalidRequest", "Subject is required.")
        for k in ("start", "end"):
            if partial and k not in ev:
                continue
            t = ev.get(k)
            if not isinstance(t, dict) or not t.get("dateTime") or not t.get("timeZone"):
                return gerror("ErrorInvalidRequest", "Property '%s' is required." % k)
            if t["timeZone"] not in ZONES:
                return gerror("TimeZoneNotSupportedException", "A valid TimeZone value must "
                              "be specified. The following TimeZone value is not supported: "
                              "'%s'." % t["timeZone"])
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", t["dateTime"]):
                return gerror("ErrorInvalidRequest", "Cannot convert the literal '%s' to the "
                              "expected type 'Edm.DateTime'." % t["dateTime"])
        return None

    def calendar_view(self, path, query):
        """learn.microsoft.com/graph/api/user-list-calendarview"""
        m = re.fullmatch(r"/v1\.0/me/(?:calendars/([^/]+)/)?calendarView", path)
        if not m:
            return 400, gerror("BadRequest", "Resource not found for the segment.")
        auth = self.headers.get("Authorization") or ""
        with LOCK:
            ok = auth.startswith("Bearer ") and TOKENS.get(auth[7:], 0) > time.time()
        if not ok:
            return 401, BODIES[401]
        q = dict(urllib.parse.parse_qsl(query))
        try:
            a, b = utc_seconds(q["startDateTime"]), utc_seconds(q["endDateTime"])
        except (KeyError, ValueError):
            return 400, gerror("ErrorInvalidParameter", "This request requires a time window "
                               "specified by the query string parameters StartDateTime and "
                               "EndDateTime.")
        utc = (self.headers.get("Prefer") or "").replace(" ", "") == 'outlook.timezone="UTC"'
        cal = urllib.parse.unquote(m.group(1)) if m.group(1) else "default"
        skip = int(q.get("$skiptoken") or 0)
        size = CLIENT.get("page_size", 100)
        with LOCK:
            if cal not in STATE["events"]:
                return 404, BODIES[404]
            found = []
            for ev in STATE["events"][cal].values():
                try:
                    s = utc_seconds(ev["start"]["dateTime"], ev["start"].get("timeZone"))
                    e = utc_seconds(ev["end"]["dateTime"], ev["end"].get("timeZone"))
                except (KeyError, ValueError, TypeError):
                    continue
                if s < b and e > a:
                    found.append((s, e, ev))
        found.sort(key=lambda x: x[0])
        out = []
        for s, e, ev in found[skip:skip + size]:
            zone = "UTC" if utc else "Pacific Standard Time"
            shift = 0 if utc else -8 * 3600
            out.append({"id": ev["id"], "showAs": ev.get("showAs", "busy"),
                        "isCancelled": bool(ev.get("isCancelled")),
                        "transactionId": ev.get("transactionId"),
                        "start": {"dateTime": wall(s + shift), "timeZone": zone},
                        "end": {"dateTime": wall(e + shift), "timeZone": zone}})
        page = {"value": out}
        if skip + size < len(found):
            nq = dict(q)
            nq["$skiptoken"] = str(skip + size)
            page["@odata.nextLink"] = "http://%s:%d%s?%s" % (
                self.server.server_address[0], self.server.server_address[1], path,
                urllib.parse.urlencode(nq))
        return 200, page

    def graph(self, path, raw):
        m = re.fullmatch(r"/v1\.0/me/(?:calendars/([^/]+)/)?events(?:/([^/]+))?", path)
        if not m:
            return 400, gerror("BadRequest", "Resource not found for the segment.")
        auth = self.headers.get("Authorization") or ""
        with LOCK:
            ok = auth.startswith("Bearer ") and TOKENS.get(auth[7:], 0) > time.time()
        if not ok:
            return 401, BODIES[401]
        cal = urllib.parse.unquote(m.group(1)) if m.group(1) else "default"
        eid = m.group(2) and urllib.parse.unquote(m.group(2))
        ev = None
        if self.command in ("POST", "PATCH"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != "application/json":
                return 415, gerror("UnsupportedMediaType", "Content-Type application/json "
                                   "is required.")
            try:
                ev = json.loads(raw)
            except ValueError:
                return 400, gerror("BadRequest", "Unable to read JSON request payload.")
        with LOCK:
            if self.command == "POST" and eid is None:
                if cal not in STATE["events"]:
                    return 404, BODIES[404]
                err = self.check_event(ev, False)
                if err:
                    return 400, err
                tid = ev.get("transactionId")
                for evs in STATE["events"].values():
                    for cur in evs.values():
                        if tid and cur.get("transactionId") == tid:
                            return 201, cur
                ev["id"] = new_id()
                ev["iCalUId"] = "040000008200E00074C5B7101A82E008" + secrets.token_hex(28)
                STATE["invitations"] += len(ev.get("attendees") or [])
                STATE["events"][cal][ev["id"]] = ev
                return 201, ev
            if eid is None or m.group(1):
                return 405, gerror("ErrorInvalidRequest", "The OData request is not "
                                   "supported.")
            if not ID_RE.match(eid):
                return 400, gerror("ErrorInvalidIdMalformed", "Id is malformed.")
            cur = None
            for evs in STATE["events"].values():
                if eid in evs:
                    cur, home = evs[eid], evs
            if cur is None:
                return 404, BODIES[404]
            if self.command == "GET":
                return 200, cur
            if self.command == "PATCH":
                err = self.check_event(ev, True)
                if err:
                    return 400, err
                for k in ("id", "transactionId", "iCalUId"):
                    ev.pop(k, None)
                cur.update(ev)
                STATE["invitations"] += len(ev.get("attendees") or [])
                return 200, cur
            if self.command == "DELETE":
                del home[eid]
                return 204, None
        return 405, BODIES[400]


def utc_seconds(v, zone="UTC"):
    """ISO 8601 (with Z or offset, or wall clock in zone UTC) to Unix seconds"""
    if zone not in (None, "UTC"):
        raise ValueError(zone)
    v = v.replace("Z", "+00:00")
    d = datetime.datetime.fromisoformat(v[:19] + v[19:].lstrip("0123456789."))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp())


def wall(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.0000000")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--refresh-token", action="append", default=[])
    ap.add_argument("--calendar", action="append", default=[])
    a = ap.parse_args()
    CLIENT.update(id=a.client_id, secret=a.client_secret)
    for rt in a.refresh_token:
        REFRESH[rt] = rt
    for cal in a.calendar:
        STATE["events"][cal] = {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
