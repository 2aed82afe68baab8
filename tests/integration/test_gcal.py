"""Google Calendar: a trainer connects a calendar, and their bookings become events in it,
against tests/helpers/fake_google.py (Google's token endpoint and Calendar API v3 events, with
their checks and error bodies) on 127.0.0.1, with the test clock.

Connecting: every field checked, nothing stored on a bad one, the refresh token sealed and never
shown. Then: confirm -> one event at the right local times; reschedule -> the same event moved;
an expired access token -> refreshed once, the call repeated; 429 with Retry-After -> retried
then; 500 -> retried; an insert whose answer is lost -> retried, still one event; a slow answer
-> timed out and retried; cancel -> the event cancelled; invalid_grant -> the row held with the
reason and the calendar needs_reconnect; reconnecting sends the held row; a trainer without
a calendar -> skipped. The fake is stopped by its pid.
"""
import json
import os
import re
import subprocess
import time
import urllib.request

from gwtest import Checks, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "helpers", "fake_google.py")
CLIENT_ID = "1234-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-client-secret-never-shown"
RT1 = "1//refresh-token-one-NEVER-IN-THE-DB"
RT2 = "1//refresh-token-two-NEVER-IN-THE-DB"

c = Checks("gcal")
fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--client-id", CLIENT_ID, "--client-secret",
                         CLIENT_SECRET, "--refresh-token", RT1], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL)
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
    """The n-th (1-based) calendar row of the booking once its status is one of statuses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] in statuses:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def wait_retry(booking, n, timeout=15):
    """The n-th row once it failed at least once and waits (pending, attempts > 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] == "pending" and rows[n - 1][4] > 0:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def events():
    return state()["events"].get("primary", {})


try:
    set_clock(1796025600)  # 2026-11-30T08:00:00Z, a Monday
    org = gw.org("Berlin Yoga", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@by.test", ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@by.test", ["trainer"], ["yoga"], name="Tia Trainer",
                  timezone="Europe/Berlin", token=A)
    tom = gw.user(org["id"], "tom@by.test", ["trainer"], ["boxing"], name="Tom Trainer", token=A)
    T1, T2 = tia["token"], tom["token"]
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
        ({"provider": "yahoo", "refresh_token": RT1}, "provider"),
        ({"provider": "caldav", "refresh_token": RT1}, "refresh_token"),
        ({"provider": "google"}, "refresh_token"),
        ({"provider": "google", "refresh_token": ""}, "refresh_token"),
        ({"provider": "google", "refresh_token": "a\nb"}, "refresh_token"),
        ({"provider": "google", "refresh_token": "x" * 2049}, "refresh_token"),
        ({"provider": "google", "refresh_token": RT1, "calendar_id": "a b"}, "calendar_id"),
        ({"provider": "google", "refresh_token": RT1, "calendar_id": "x" * 255}, "calendar_id"),
        ({"provider": "google", "refresh_token": RT1, "calendar_id": 5}, "calendar_id"),
        ({"provider": "google", "refresh_token": RT1, "extra": 1}, "extra"),
        ({"refresh_token": RT1}, "provider"),
    ]
    for body, field in bad:
        r = gw.call("PUT", CAL, body, T1)
        c.check(r.status == 400 and r.json and r.json.get("field") == field,
                "bad connect %r is 400 naming %s: %r" % (list(body), field, r))
    r = gw.call("PUT", CAL, {"provider": "yahoo", "refresh_token": RT1}, T1)
    c.check("caldav" in r.json.get("message", ""), "the message says which providers there are: %r"
            % r.json)
    c.eq(gw.call("PUT", CAL, {"provider": "google", "refresh_token": RT1}, T2).status, 403,
         "another trainer cannot connect Tia's calendar")
    c.eq(gw.call("PUT", O + "/users/999/calendar", {"provider": "google", "refresh_token": RT1},
                 A).status, 404, "no such user")
    c.eq(gw.call("DELETE", CAL, token=T1).status, 404, "nothing to disconnect yet")
    c.check(gw.snapshot() == before, "refused connects stored nothing")

    r = gw.call("PUT", CAL, {"provider": "google", "refresh_token": RT1}, T1)
    c.eq(r.status, 200, "Tia connects her Google calendar")
    cal = (r.json or {}).get("calendar") or {}
    c.eq((cal.get("provider"), cal.get("calendar_id"), cal.get("status"), cal.get("last_error")),
         ("google", "primary", "connected", None), "calendar member after connecting")
    c.eq(cal.get("connected_at"), "2026-11-30T08:00:00Z", "connected_at is the clock's time")
    c.check(RT1 not in r.raw, "the refresh token is not in the answer")
    got = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1)
    c.eq(got.get("calendar", {}).get("status"), "connected", "GET user shows the calendar")
    users = gw.ok("GET", O + "/users", token=A)
    c.eq([u["id"] for u in users if "calendar" in u], [tia["id"]],
         "the users list shows only Tia's calendar")
    secret = gw.rows("SELECT secret FROM calendar_connections")[0][0]
    c.check(secret.startswith("sealed:") and RT1 not in secret, "refresh token stored sealed")

    gw.ok("PUT", O + "/providers/google", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                           "token_url": FURL + "/token",
                                           "api_base": FURL + "/calendar/v3", "timeout": 2}, A)

    def book(name, email, start):
        return gw.book(O, T1, st["id"], ["yoga"], name, email, start)

    # ---- confirm: one event, at the right local times ----
    b1 = book("Cleo Customer", "cleo@example.test", "2026-12-02T09:00:00Z")
    row = wait_row(b1, 1)
    c.eq(row and row[1:3], ("sent", "google"), "the calendar row is sent through google")
    evs = events()
    c.eq(len(evs), 1, "one event in Tia's calendar")
    eid, ev = next(iter(evs.items())) if evs else ("", {})
    c.check(re.fullmatch(r"[a-v0-9]{5,1024}", eid) is not None, "event id is base32hex: %r" % eid)
    c.eq(ev.get("start"), {"dateTime": "2026-12-02T10:00:00+01:00", "timeZone": "Europe/Berlin"},
         "start in Tia's zone")
    c.eq(ev.get("end"), {"dateTime": "2026-12-02T11:00:00+01:00", "timeZone": "Europe/Berlin"},
         "end in Tia's zone")
    c.eq(ev.get("summary"), "Private yoga with Cleo Customer", "summary")
    c.eq(ev.get("attendees"), [{"email": "cleo@example.test", "displayName": "Cleo Customer"}],
         "the customer is the attendee")
    c.check("Delivery: arranged by the trainer" in ev.get("description", ""),
            "description names the delivery: %r" % ev.get("description"))
    uid = gw.rows("SELECT uid, calendar_event_id FROM bookings WHERE id = ?", b1)[0]
    c.eq(ev.get("extendedProperties", {}).get("private", {}).get("ordinatus_uid"), uid[0],
         "the booking's UID is on the event")
    c.eq(uid[1], eid, "the event id is stored with the booking (result hook)")
    log = state()["log"]
    c.check(all(e["query"].get("sendUpdates") == "none" for e in log
                if e["path"].startswith("/calendar/")), "every API call has sendUpdates=none")
    c.eq(state()["token_calls"], 1, "one token call so far")
    eff = gw.ok("GET", O + "/bookings/%d/effects" % b1, token=T1)
    c.eq([(e["provider"], e["status"]) for e in eff if e["kind"] == "calendar"],
         [("google", "sent")], "the booking's effects show the calendar row sent by google")

    # ---- reschedule: the same event, moved (and the token from the cache) ----
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T11:00:00Z"}, T1)
    c.eq(wait_row(b1, 2) and wait_row(b1, 2)[1], "sent", "the update row is sent")
    evs = events()
    c.eq(list(evs), [eid], "still one event, the same id")
    c.eq(evs.get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T12:00:00+01:00",
         "the event moved")
    # each calendar worker keeps its own context (2 workers): at most one token each
    c.check(state()["token_calls"] <= 2, "the access token was reused: %d token calls"
            % state()["token_calls"])

    # ---- an expired access token: refreshed once, the call repeated ----
    control(expire_tokens=True)
    calls = state()["token_calls"]
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T13:00:00Z"}, T1)
    c.eq(wait_row(b1, 3) and wait_row(b1, 3)[1], "sent", "sent after the 401")
    c.eq(state()["token_calls"], calls + 1, "one refresh after the 401")
    c.check(any(e["injected"] is None and e["method"] == "PATCH" for e in state()["log"][-3:]),
            "the PATCH was repeated with the new token")
    c.eq(events().get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T14:00:00+01:00",
         "moved after the refresh")

    # ---- 429 with Retry-After: waits what Google asked ----
    control(inject={"method": "PATCH", "status": 429, "retry_after": "120"})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T14:00:00Z"}, T1)
    row = wait_retry(b1, 4)
    c.check(row is not None and row[5] - NOW[0] == 120 and "429" in (row[3] or ""),
            "429: retried 120 s later, the reason kept: %r" % (row,))
    set_clock(NOW[0] + 121)
    c.eq(wait_row(b1, 4) and wait_row(b1, 4)[1], "sent", "sent once Retry-After passed")
    c.eq(events().get(eid, {}).get("start", {}).get("dateTime"), "2026-12-02T15:00:00+01:00",
         "moved after the 429")

    # ---- 500: transient ----
    control(inject={"method": "PATCH", "status": 500})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T15:00:00Z"}, T1)
    row = wait_retry(b1, 5)
    c.check(row is not None and "backendError" in (row[3] or ""), "500 retried: %r" % (row,))
    set_clock(NOW[0] + 60)
    c.eq(wait_row(b1, 5) and wait_row(b1, 5)[1], "sent", "sent after the 500")

    # ---- an insert whose answer is lost: retried, 409, patched: still one event ----
    # twice: libcurl itself sends a request again once when a reused connection closes without
    # an answer (the second try, on a fresh connection, would get 409); both answers are lost
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
    posts = [e for e in state()["log"] if e["method"] == "POST" and e["path"].endswith("/events")]
    # Booking 1's insert, then Dan's: created (answer lost), 409 (lost), 409 (patched); one
    # more when this worker's token had expired (a 401 first)
    c.check(len(posts) - 1 in (3, 4), "Dan's insert was tried again: %d" % (len(posts) - 1))
    c.eq(evs.get(gw.rows("SELECT calendar_event_id FROM bookings WHERE id = ?", b2)[0][0],
                 {}).get("summary"), "Private yoga with Dan Customer", "it is Dan's event")

    # ---- a slow answer: timed out (2 s), retried ----
    control(inject={"method": "PATCH", "delay": 4})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b2, {"start": "2026-12-03T10:00:00Z"}, T1)
    row = wait_retry(b2, 2)
    c.check(row is not None and "curl error 28" in (row[3] or ""),
            "a slow answer times out: %r" % (row,))
    set_clock(NOW[0] + 60)
    c.eq(wait_row(b2, 2) and wait_row(b2, 2)[1], "sent", "sent on the retry")

    # ---- cancel: the event is removed ----
    gw.ok("POST", O + "/bookings/%d/cancel" % b1, {"reason": "ill"}, T1)
    c.eq(wait_row(b1, 6) and wait_row(b1, 6)[1], "sent", "the delete row is sent")
    c.eq(events().get(eid, {}).get("status"), "cancelled", "the event is gone (cancelled)")

    # ---- invalid_grant: held with the reason, the calendar needs reconnecting ----
    control(revoke=RT1, expire_tokens=True)
    gw.ok("POST", O + "/bookings/%d/cancel" % b2, {"reason": "moved away"}, T1)
    row = wait_row(b2, 3, statuses=("sent", "dead", "skipped", "held"))
    c.check(row is not None and row[1] == "held" and "invalid_grant" in (row[3] or "")
            and "reconnect" in (row[3] or ""), "invalid_grant holds the row: %r" % (row,))
    got = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1)
    cal = got.get("calendar") or {}
    c.eq(cal.get("status"), "needs_reconnect", "the calendar needs reconnecting")
    c.check("invalid_grant" in (cal.get("last_error") or ""), "with the reason: %r" % cal)
    b2_eid = gw.rows("SELECT calendar_event_id FROM bookings WHERE id = ?", b2)[0][0]
    c.eq(events().get(b2_eid, {}).get("status"), "confirmed", "the event is still there")

    # ---- reconnect: the held row goes out by itself ----
    control(add_refresh_token=RT2)
    r = gw.call("PUT", CAL, {"provider": "google", "refresh_token": RT2}, T1)
    c.eq((r.json or {}).get("calendar", {}).get("status"), "connected", "reconnected")
    c.eq(wait_row(b2, 3) and wait_row(b2, 3)[1], "sent", "the held row is sent")
    c.eq(events().get(b2_eid, {}).get("status"), "cancelled", "and the event removed")
    c.check(RT1 not in json.dumps(gw.snapshot(), default=str) and
            RT2 not in json.dumps(gw.snapshot(), default=str) and
            CLIENT_SECRET not in json.dumps(gw.snapshot(), default=str),
            "no refresh token or client secret in the database in clear")
    c.check(RT2 not in gw.read_log() and CLIENT_SECRET not in gw.read_log(),
            "no secret in the log")

    # ---- disconnected: calendar rows are skipped, provider none ----
    r = gw.call("DELETE", CAL, token=T1)
    c.check(r.status == 200 and "calendar" not in (r.json or {}), "disconnected: %r" % r)
    n_events = len(events())
    b3 = book("Eve Customer", "eve@example.test", "2026-12-04T09:00:00Z")
    row = wait_row(b3, 1)
    c.check(row is not None and row[1:3] == ("skipped", "none") and
            "no calendar" in (row[3] or ""), "without a calendar: skipped: %r" % (row,))
    c.eq(len(events()), n_events, "nothing reached Google")
finally:
    try:
        gw.stop()
    finally:
        gw.cleanup()
        fake.terminate()
        fake.wait(timeout=10)
c.done()
