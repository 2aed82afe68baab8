"""Outlook (Microsoft Graph): a trainer connects an Outlook calendar, and their bookings become
events in it, against tests/helpers/fake_graph.py (the identity platform's v2.0 token endpoint
and Graph v1.0 events, with Microsoft's checks and error bodies) on 127.0.0.1, with the test
clock.

Connecting: every field checked, nothing stored on a bad one, the refresh token sealed and never
shown. Then: confirm -> one event at the right times, with the booking's transactionId, no
attendee (Graph would invite them), its id stored on the booking; reschedule -> the same event
moved; a create whose answer was lost -> retried, still one event; an expired access token ->
refreshed once, the call repeated; 429 with Retry-After -> retried then; 503 -> retried; an
event deleted in Outlook -> an update creates it again; cancel -> the event deleted;
invalid_grant -> the row held with the reason, the calendar needs_reconnect, one email. The fake is
stopped by its pid.
"""
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

from gwtest import Checks, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "helpers", "fake_graph.py")
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
CLIENT_SECRET = "Qx8Q~client-secret-never-shown"
RT1 = "M.C5-refresh-token-one-NEVER-IN-THE-DB"
CALID = "AAMkADIwNjlkZTQ2LWNhbGVuZGFyLTE="

c = Checks("outlook")
fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--client-id", CLIENT_ID, "--client-secret",
                         CLIENT_SECRET, "--refresh-token", RT1, "--calendar", CALID],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
FPORT = int(fake.stdout.readline())
FURL = "http://127.0.0.1:%d" % FPORT
gw = Gateway(test_clock=True)
gw.start()
NOW = [0]


def fake_call(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(FURL + path, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def state():
    return fake_call("/_state")


def control(**kw):
    fake_call("/_control", kw)


def set_clock(t):
    NOW[0] = t
    gw.ok("PUT", "/v1/test/clock", {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))})


def cal_rows(booking):
    return gw.rows("SELECT id, status, provider, last_error, attempts, next_attempt_at, payload"
                   " FROM outbox WHERE kind = 'calendar' AND booking_id = ? ORDER BY id", booking)


def wait_row(booking, n, statuses=("sent", "dead", "skipped"), timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] in statuses:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def wait_retry(booking, n, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] == "pending" and rows[n - 1][4] > 0:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def events(cal=CALID):
    return state()["events"].get(cal, {})


def event_id(booking):
    return gw.rows("SELECT calendar_event_id FROM bookings WHERE id = ?", booking)[0][0]


try:
    set_clock(1796025600)  # 2026-11-30T08:00:00Z, a Monday
    org = gw.org("Berlin Yoga", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@by.test", ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@by.test", ["trainer"], ["yoga"], name="Tia Trainer",
                  timezone="Europe/Berlin", token=A)
    T1 = tia["token"]
    CAL = O + "/users/%d/calendar" % tia["id"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % tia["id"], {"weekly": week}, T1)

    # ---- connecting: every field checked, nothing stored on a bad one ----
    before = gw.snapshot()
    bad = [
        ({"provider": "outlook"}, "refresh_token"),
        ({"provider": "outlook", "refresh_token": ""}, "refresh_token"),
        ({"provider": "outlook", "refresh_token": "a\tb"}, "refresh_token"),
        ({"provider": "outlook", "refresh_token": "x" * 2049}, "refresh_token"),
        ({"provider": "outlook", "refresh_token": RT1, "calendar_id": "a b"}, "calendar_id"),
        ({"provider": "outlook", "refresh_token": RT1, "calendar_id": ""}, "calendar_id"),
        ({"provider": "outlook", "refresh_token": RT1, "calendar_id": 7}, "calendar_id"),
        ({"provider": "outlook", "refresh_token": RT1, "url": "https://x.test/"}, "url"),
        ({"provider": "Outlook", "refresh_token": RT1}, "provider"),
    ]
    for body, field in bad:
        r = gw.call("PUT", CAL, body, T1)
        c.check(r.status == 400 and r.json and r.json.get("field") == field,
                "bad connect %r is 400 naming %s: %r" % (list(body), field, r))
    c.check(gw.snapshot() == before, "refused connects stored nothing")

    r = gw.call("PUT", CAL, {"provider": "outlook", "refresh_token": RT1}, T1)
    cal = (r.json or {}).get("calendar") or {}
    c.eq((r.status, cal.get("provider"), cal.get("calendar_id"), cal.get("status")),
         (200, "outlook", None, "connected"), "connected to the default calendar")
    r = gw.call("PUT", CAL, {"provider": "outlook", "refresh_token": RT1, "calendar_id": CALID},
                T1)
    cal = (r.json or {}).get("calendar") or {}
    c.eq((r.status, cal.get("provider"), cal.get("calendar_id"), cal.get("status"),
          cal.get("last_error")), (200, "outlook", CALID, "connected", None),
         "Tia connects her Outlook calendar")
    c.check(RT1 not in r.raw, "the refresh token is not in the answer")
    secret = gw.rows("SELECT secret FROM calendar_connections")[0][0]
    c.check(secret.startswith("sealed:") and RT1 not in secret, "refresh token stored sealed")

    gw.ok("PUT", O + "/providers/outlook", {"tenant": "contoso", "client_id": CLIENT_ID,
                                            "client_secret": CLIENT_SECRET,
                                            "token_url": FURL + "/contoso/oauth2/v2.0/token",
                                            "api_base": FURL + "/v1.0", "timeout": 2}, A)

    def book(name, email, start):
        return gw.book(O, T1, st["id"], ["yoga"], name, email, start)

    # ---- confirm: one event, at the right times, nobody invited ----
    b1 = book("Cleo Customer", "cleo@example.test", "2026-12-02T09:00:00Z")
    row = wait_row(b1, 1)
    c.eq(row and row[1:3], ("sent", "outlook"), "the calendar row is sent through outlook")
    evs = events()
    c.eq(len(evs), 1, "one event in Tia's calendar")
    eid, ev = next(iter(evs.items())) if evs else ("", {})
    c.eq(ev.get("start"), {"dateTime": "2026-12-02T09:00:00", "timeZone": "UTC"}, "start")
    c.eq(ev.get("end"), {"dateTime": "2026-12-02T10:00:00", "timeZone": "UTC"}, "end")
    c.eq(ev.get("subject"), "Private yoga with Cleo Customer", "subject")
    c.check(not ev.get("attendees") and state()["invitations"] == 0,
            "no attendee: Graph invites nobody")
    body = (ev.get("body") or {}).get("content", "")
    c.check("cleo@example.test" in body and "Delivery: arranged by the trainer" in body,
            "the body names the customer and the delivery: %r" % body)
    c.check(re.fullmatch(r"[a-v0-9]{52}", ev.get("transactionId") or "") is not None,
            "the transactionId is the booking's key: %r" % ev.get("transactionId"))
    c.eq(event_id(b1), eid, "Graph's event id is stored with the booking (result hook)")
    c.eq(state()["scopes"][0], "offline_access Calendars.ReadWrite", "the token request's scope")

    # ---- reschedule: the same event, moved (the token from the cache) ----
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T11:00:00Z"}, T1)
    c.eq(wait_row(b1, 2) and wait_row(b1, 2)[1], "sent", "the update row is sent")
    evs = events()
    c.eq(list(evs), [eid], "still one event, the same id")
    c.eq(evs.get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T11:00:00",
         "the event moved")
    c.check(any(e["method"] == "PATCH" and eid in urllib.parse.unquote(e["path"])
                for e in state()["log"]),
            "moved with PATCH /me/events/{id}")
    c.check(state()["token_calls"] <= 2, "the access token was reused: %d token calls"
            % state()["token_calls"])

    # ---- an expired access token: refreshed once, the call repeated ----
    control(expire_tokens=True)
    calls = state()["token_calls"]
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T13:00:00Z"}, T1)
    c.eq(wait_row(b1, 3) and wait_row(b1, 3)[1], "sent", "sent after the 401")
    c.eq(state()["token_calls"], calls + 1, "one refresh after the 401")
    c.eq(events().get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T13:00:00",
         "moved after the refresh")

    # ---- 429 with Retry-After: waits what Graph asked ----
    control(inject={"method": "PATCH", "status": 429, "retry_after": "120"})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T14:00:00Z"}, T1)
    row = wait_retry(b1, 4)
    c.check(row is not None and row[5] - NOW[0] == 120 and "429" in (row[3] or "")
            and "ApplicationThrottled" in (row[3] or ""),
            "429: retried 120 s later, Graph's words kept: %r" % (row,))
    set_clock(NOW[0] + 121)
    c.eq(wait_row(b1, 4) and wait_row(b1, 4)[1], "sent", "sent once Retry-After passed")
    c.eq(events().get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T14:00:00",
         "moved after the 429")

    # ---- 503: transient ----
    control(inject={"method": "PATCH", "status": 503})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T15:00:00Z"}, T1)
    row = wait_retry(b1, 5)
    c.check(row is not None and "serviceNotAvailable" in (row[3] or ""),
            "503 retried: %r" % (row,))
    set_clock(NOW[0] + 60)
    c.eq(wait_row(b1, 5) and wait_row(b1, 5)[1], "sent", "sent after the 503")

    # ---- a create whose answer is lost: retried, the transactionId finds it: one event ----
    # twice: libcurl itself sends a request again once when a reused connection closes without
    # an answer; both answers are lost
    control(inject={"method": "POST", "path": "/events", "drop": True, "times": 2})
    b2 = book("Dan Customer", "dan@example.test", "2026-12-03T09:00:00Z")
    row = wait_retry(b2, 1)
    c.check(row is not None and "curl error" in (row[3] or ""),
            "the lost answer is a transient failure: %r" % (row,))
    c.eq(len(events()), 2, "the event was created although its answer was lost")
    set_clock(NOW[0] + 60)
    c.eq(wait_row(b2, 1) and wait_row(b2, 1)[1], "sent", "the retry is sent")
    evs = events()
    c.eq(len(evs), 2, "still one event for the second booking")
    posts = [e for e in state()["log"] if e["method"] == "POST" and e["path"].endswith("/events")
             and e.get("status") == 201]
    c.check(len(posts) >= 3, "Dan's create was sent again: %d POSTs" % len(posts))
    c.eq(evs.get(event_id(b2), {}).get("subject"), "Private yoga with Dan Customer",
         "the stored id is Dan's event")

    # ---- deleted in Outlook: the next update creates it again ----
    control(delete_event=event_id(b2))
    gw.ok("POST", O + "/bookings/%d/reschedule" % b2, {"start": "2026-12-03T10:00:00Z"}, T1)
    row = wait_row(b2, 2)
    c.eq(row and row[1], "sent", "the update after a deletion in Outlook is sent")
    evs = events()
    c.check(len(evs) == 2 and event_id(b2) in evs and
            evs[event_id(b2)]["start"]["dateTime"] == "2026-12-03T10:00:00",
            "made again at the new time, its new id stored: %r" % list(evs))

    # ---- cancel: the event is deleted ----
    gw.ok("POST", O + "/bookings/%d/cancel" % b1, {"reason": "ill"}, T1)
    c.eq(wait_row(b1, 6) and wait_row(b1, 6)[1], "sent", "the delete row is sent")
    c.check(eid not in events(), "the event is gone")
    c.check(any(e["method"] == "DELETE" and eid in urllib.parse.unquote(e["path"])
                for e in state()["log"]),
            "deleted with DELETE /me/events/{id}")

    # ---- invalid_grant: the row held with the reason, the calendar needs reconnecting ----
    control(revoke=RT1, expire_tokens=True)
    gw.ok("POST", O + "/bookings/%d/cancel" % b2, {"reason": "moved away"}, T1)
    row = wait_row(b2, 3, statuses=("held", "sent", "dead"))
    c.check(row is not None and row[1] == "held" and "invalid_grant" in (row[3] or "")
            and "AADSTS70008" in (row[3] or "") and "reconnect" in (row[3] or ""),
            "invalid_grant holds the row with the reason: %r" % (row,))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [
            m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "calendar_reconnect"]:
        time.sleep(0.05)
    rec = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "calendar_reconnect"]
    c.eq([m["To"].addresses[0].addr_spec for m in rec], ["tia@by.test"],
         "one calendar_reconnect email to the trainer")
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1).get("calendar") or {}
    c.eq(cal.get("status"), "needs_reconnect", "the calendar needs reconnecting")
    c.check("invalid_grant" in (cal.get("last_error") or ""), "with the reason: %r" % cal)
    c.check(event_id(b2) in events(), "the event is still there")

    snap = json.dumps(gw.snapshot(), default=str)
    c.check(RT1 not in snap and CLIENT_SECRET not in snap, "no secret in the database in clear")
    logtext = gw.read_log()
    c.check(RT1 not in logtext and CLIENT_SECRET not in logtext and "eyJ0eXAi" not in logtext,
            "no secret or access token in the log")
finally:
    try:
        gw.stop()
    finally:
        gw.cleanup()
        fake.terminate()
        fake.wait(timeout=10)
c.done()
