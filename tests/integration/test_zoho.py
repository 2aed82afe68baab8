"""Zoho Assist: an organisation that delivers by Zoho Assist gets a scheduled remote session for
every confirmed booking, against tests/helpers/fake_zoho.py (Zoho Accounts' token endpoint and
the Assist API v2 scheduled sessions, with their checks and error bodies) on 127.0.0.1, with the
test clock.

Without a Zoho provider the row is dead with the reason. With one: confirm -> one session at the
booking's time for the customer; the booking's session_link is the technician URL; the customer
gets a session_link email with the join URL; the reminder carries the join URL; an expired token
is refreshed once; reschedule -> the session moved (429 with Retry-After first: retried); cancel
-> the session deleted; a refused refresh token -> dead with a clear reason. Stopped by pid.
"""
import json
import os
import subprocess
import time
import urllib.request

from gwtest import Checks, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "helpers", "fake_zoho.py")
CLIENT_ID = "1000.ZOHOTESTCLIENT"
CLIENT_SECRET = "zoho-client-secret-never-shown"
RT = "1000.refresh-token-NEVER-IN-THE-LOG"

c = Checks("zoho")
fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--client-id", CLIENT_ID, "--client-secret",
                         CLIENT_SECRET, "--refresh-token", RT], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL)
FURL = "http://127.0.0.1:%d" % int(fake.stdout.readline())
gw = Gateway(test_clock=True)
gw.start()


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


def set_clock(iso):
    gw.ok("PUT", "/v1/test/clock", {"now": iso})


def zrows(booking):
    return gw.rows("SELECT id, status, provider, last_error, attempts, dedupe_key, payload"
                   " FROM outbox WHERE kind = 'zoho_session' AND booking_id = ? ORDER BY id",
                   booking)


def wait_row(booking, n, statuses=("sent", "dead", "skipped"), timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = zrows(booking)
        if len(rows) >= n and rows[n - 1][1] in statuses:
            return rows[n - 1]
        time.sleep(0.05)
    rows = zrows(booking)
    return rows[n - 1] if len(rows) >= n else None


def mails(kind, to):
    return [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == kind and to in str(m["To"])]


def wait_mails(kind, to, n, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = mails(kind, to)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return mails(kind, to)


def text_of(m):
    return m.get_body(("plain",)).get_content()


def html_of(m):
    return m.get_body(("html",)).get_content()


def ms(iso):
    return int(time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone) * 1000


try:
    set_clock("2026-11-30T08:00:00Z")
    org = gw.org("Remote Yoga", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@ry.test", ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@ry.test", ["trainer"], ["yoga"], name="Tia Trainer",
                  timezone="Europe/Berlin", token=A)
    T1 = tia["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % tia["id"], {"weekly": week}, T1)
    gw.ok("PATCH", O + "/settings", {"delivery_method": "zoho_assist", "reminder_hours": [24]}, A)

    def book(name, email, start):
        return gw.book(O, T1, st["id"], ["yoga"], name, email, start)

    # ---- no Zoho provider configured: dead, with the reason (as before) ----
    b0 = book("Nina Nobody", "nina@example.test", "2026-12-01T09:00:00Z")
    row = wait_row(b0, 1)
    c.check(row is not None and row[1] == "dead" and
            "no Zoho Assist provider is configured for this organisation" in (row[3] or ""),
            "without a Zoho provider: dead with the reason: %r" % (row,))
    c.eq(row and row[5], "zoho:%d" % b0, "the create row's dedupe key")

    gw.ok("PUT", O + "/providers/zoho", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "refresh_token": RT, "accounts_url": FURL,
                                          "api_base": FURL, "timeout": 3}, A)

    # ---- confirm: one session, the right time and customer ----
    b1 = book("Cleo <Customer>", "cleo@example.test", "2026-12-02T09:00:00Z")
    row = wait_row(b1, 1)
    c.check(row is not None and row[1:3] == ("sent", "zoho"), "the create row is sent: %r"
            % (row,))
    sessions = state()["sessions"]
    c.eq(len(sessions), 1, "one session on Zoho")
    sid, sess = next(iter(sessions.items())) if sessions else (None, {})
    c.eq(sess.get("schedule_time"), ms("2026-12-02T09:00:00Z"), "schedule_time is the start")
    c.eq(sess.get("schedule_upto"), ms("2026-12-02T10:00:00Z"), "schedule_upto is the end")
    c.eq(sess.get("customer_email"), "cleo@example.test", "the customer's email")
    c.eq(sess.get("title"), "Private yoga with Cleo <Customer>", "the title")
    c.eq((sess.get("time_zone"), sess.get("utc_offset")), ("Europe/Berlin", "+01:00"),
         "the trainer's zone and its offset")
    c.eq(sess.get("mode"), "SCHEDULE", "mode SCHEDULE")
    tech = "%s/assist-schedule?digest=t%s&role=V&schedule_id=%s" % (FURL, sid[-4:], sid)
    join = "%s/assist-schedule?digest=c%s&role=A&schedule_id=%s" % (FURL, sid[-4:], sid)
    bk = gw.ok("GET", O + "/bookings/%d" % b1, token=T1)
    c.eq(bk.get("session_link"), tech, "the booking's session_link is the technician URL")
    c.eq(gw.rows("SELECT zoho_session_id FROM bookings WHERE id = ?", b1)[0][0], sid,
         "the session id is stored for later")

    # ---- the customer's session_link email, with the join URL ----
    got = wait_mails("session_link", "cleo@example.test", 1)
    c.eq(len(got), 1, "one session_link email to the customer")
    if got:
        m = got[0]
        c.check(join in text_of(m), "the text part has the join URL")
        c.check(join.replace("&", "&amp;") in html_of(m), "the HTML part has the join URL")
        c.check("Cleo &lt;Customer&gt;" in html_of(m) and "<Customer>" not in html_of(m),
                "user text is escaped in the HTML part")
        c.check(tech not in text_of(m), "the customer never sees the technician URL")
    keys = [r[0] for r in gw.rows("SELECT dedupe_key FROM outbox WHERE kind = 'session_link'"
                                  " AND booking_id = ?", b1)]
    c.eq(keys, ["session_link:%d:0" % b1], "its dedupe key")

    # ---- the reminder carries the join URL ----
    set_clock("2026-12-01T08:50:00Z")
    tk = gw.ok("POST", "/v1/test/tick")
    set_clock("2026-12-01T09:00:30Z")  # a reminder goes out at its point, 24 h before
    got = wait_mails("reminder", "cleo@example.test", 1)
    if not got:
        print("tick", tk, gw.rows("SELECT kind, status, last_error, booking_id FROM outbox"
                                  " WHERE kind = 'reminder'"))
    c.check(len(got) >= 1 and join in text_of(got[-1]) and tech not in text_of(got[-1]),
            "the reminder carries the join URL: %r" % [text_of(g) for g in got])

    # ---- expired token: refreshed once; reschedule: the session moved ----
    calls = state()["token_calls"]
    control(expire_tokens=True)
    control(inject={"method": "PUT", "path": "/session/schedule", "status": 429,
                    "retry_after": "0", "times": 1})
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-03T10:00:00Z"}, T1)
    row = wait_row(b1, 2)
    c.check(row is not None and row[1] == "sent" and row[4] == 2 and
            row[5] == "zoho:%d:1" % b1, "the update row: 429 then sent: %r" % (row,))
    c.eq(state()["token_calls"], calls + 1, "the expired token was refreshed once")
    sessions = state()["sessions"]
    c.eq(list(sessions), [sid], "still one session, the same id")
    c.eq(sessions.get(sid, {}).get("schedule_time"), ms("2026-12-03T10:00:00Z"),
         "the session moved")
    got = wait_mails("session_link", "cleo@example.test", 2)
    c.eq(len(got), 2, "a session_link email for the new time")
    conf = wait_mails("confirmation", "cleo@example.test", 2)
    ics = ""
    for part in (conf[-1].walk() if len(conf) >= 2 else []):
        if part.get_content_type() == "text/calendar":
            ics = part.get_content().replace("\r\n ", "").replace("\n ", "")
    c.check("role=A" in ics and "role=V" not in ics and tech not in text_of(conf[-1]),
            "the customer's new invite and confirmation carry the join URL, not the technician's")

    # ---- cancel: the session deleted ----
    gw.ok("POST", O + "/bookings/%d/cancel" % b1, {"reason": "ill"}, T1)
    row = wait_row(b1, 3)
    c.check(row is not None and row[1] == "sent" and row[5] == "zoho_cancel:%d" % b1,
            "the cancel row is sent: %r" % (row,))
    c.eq(state()["deleted"], [sid], "the session was deleted on Zoho")
    c.eq(gw.ok("GET", O + "/bookings/%d" % b1, token=T1).get("session_link"), None,
         "the booking has no session link any more")

    # ---- a refused refresh token: dead with a clear reason ----
    control(revoke=RT)
    control(expire_tokens=True)
    b2 = book("Dan Customer", "dan@example.test", "2026-12-04T09:00:00Z")
    row = wait_row(b2, 1)
    c.check(row is not None and row[1] == "dead" and
            "refused the organisation's refresh token" in (row[3] or ""),
            "invalid_code: dead with the reason: %r" % (row,))
    log = gw.read_log()
    c.check(RT not in log and CLIENT_SECRET not in log and "1000." not in (row[3] or ""),
            "no secret or token in the log or the row")
finally:
    try:
        gw.stop()
    finally:
        gw.cleanup()
        fake.terminate()
        fake.wait(timeout=10)
c.done()
