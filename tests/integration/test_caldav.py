"""CalDAV: a trainer connects a CalDAV calendar collection, and their bookings become calendar
object resources in it, against a real Radicale 3 (Debian's radicale package) started here on
127.0.0.1 on a free port with a temporary storage folder and a plain htpasswd file, stopped by
its pid; with the test clock.

Connecting: every field checked, nothing stored on a bad one, the password sealed and never
shown, the user's calendar member shows the url. Then: confirm -> {url}/{uid}.ics is there
(parsed with python3-icalendar: no METHOD, the times, UID, SEQUENCE 0, the trainer as organizer,
no attendee), its ETag stored; reschedule -> the same resource, SEQUENCE 1; the resource changed
on the server by another client (a PUT here) -> the gateway's If-Match gets 412, it fetches the
fresh ETag and its write still wins; no stored ETag while the resource exists -> If-None-Match
gets 412, then If-Match; deleted on the server -> 404, made again; a changed password -> 401 ->
held, needs_reconnect, and reconnecting sends it; cancel -> the resource is gone (404).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import base64
from datetime import datetime, timezone

from icalendar import Calendar

from gwtest import Checks, Gateway, free_port

USER, PASSWORD, PASSWORD2 = "tia", "radicale-pass-NEVER-SHOWN", "second-pass-NEVER-SHOWN"

c = Checks("caldav")
tmp = tempfile.mkdtemp(prefix="ordinatus-radicale-")
RPORT = free_port()
HTPASSWD = os.path.join(tmp, "users")
STORAGE = os.path.join(tmp, "collections")
with open(HTPASSWD, "w") as f:
    f.write("%s:%s\n" % (USER, PASSWORD))
with open(os.path.join(tmp, "config"), "w") as f:
    f.write("[server]\nhosts = 127.0.0.1:%d\n"
            "[auth]\ntype = htpasswd\nhtpasswd_filename = %s\nhtpasswd_encryption = plain\n"
            "[rights]\ntype = owner_only\n"
            "[storage]\nfilesystem_folder = %s\n"
            "[web]\ntype = none\n"
            "[logging]\nlevel = warning\n" % (RPORT, HTPASSWD, STORAGE))
rad = subprocess.Popen(["/usr/bin/radicale", "--config", os.path.join(tmp, "config")],
                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "wb"))
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", RPORT), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
RURL = "http://127.0.0.1:%d" % RPORT
COLL = RURL + "/%s/bookings/" % USER
gw = Gateway(test_clock=True)
gw.start()
NOW = [0]


def dav(method, url, body=None, headers=None, password=PASSWORD):
    """One request to Radicale as the trainer: (status, headers, body)."""
    req = urllib.request.Request(url, data=body.encode() if isinstance(body, str) else body,
                                 method=method)
    cred = base64.b64encode(("%s:%s" % (USER, password)).encode()).decode()
    req.add_header("Authorization", "Basic " + cred)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


def set_clock(t):
    NOW[0] = t
    gw.ok("PUT", "/v1/test/clock", {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))})


def cal_rows(booking):
    return gw.rows("SELECT id, status, provider, last_error, attempts, next_attempt_at"
                   " FROM outbox WHERE kind = 'calendar' AND booking_id = ? ORDER BY id", booking)


def wait_row(booking, n, statuses=("sent", "dead", "skipped"), timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] in statuses:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def resource(booking):
    uid = gw.rows("SELECT uid FROM bookings WHERE id = ?", booking)[0][0]
    return COLL + urllib.parse.quote(uid, safe="") + ".ics", uid


def stored(booking):
    return tuple(gw.rows("SELECT calendar_event_id, calendar_etag FROM bookings WHERE id = ?",
                         booking)[0])


def vevent(text):
    cal = Calendar.from_ical(text)
    evs = [x for x in cal.walk() if x.name == "VEVENT"]
    return cal, evs


def utc(v):
    return v.dt.astimezone(timezone.utc) if v is not None else None


def resources():
    d = os.path.join(STORAGE, "collection-root", USER, "bookings")
    return sorted(n for n in os.listdir(d) if n.endswith(".ics")) if os.path.isdir(d) else []


try:
    st_, _, _ = dav("MKCALENDAR", COLL)
    c.eq(st_, 201, "Radicale made the calendar collection (MKCALENDAR)")

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
    ok = {"provider": "caldav", "url": COLL, "username": USER, "password": PASSWORD}
    before = gw.snapshot()
    bad = [
        (dict(ok, url=None), "url"),
        (dict(ok, url=""), "url"),
        (dict(ok, url="ftp://127.0.0.1/cal/"), "url"),
        (dict(ok, url="http://dav.example.com/cal/"), "url"),
        (dict(ok, url="https://tia:pw@dav.example.com/cal/"), "url"),
        (dict(ok, url="https:///cal/"), "url"),
        (dict(ok, url="https://dav.example.com/cal/#x"), "url"),
        (dict(ok, url="https://dav.example.com/cal/?a=b"), "url"),
        (dict(ok, url="https://dav.example.com/" + "c" * 1024), "url"),
        (dict(ok, url=5), "url"),
        (dict(ok, username=None), "username"),
        (dict(ok, username=""), "username"),
        (dict(ok, username="a:b"), "username"),
        (dict(ok, username="a\nb"), "username"),
        (dict(ok, password=None), "password"),
        (dict(ok, password=""), "password"),
        (dict(ok, password="p\x01w"), "password"),
        (dict(ok, password="p" * 1025), "password"),
        (dict(ok, refresh_token="x"), "refresh_token"),
        (dict(ok, calendar_id="x"), "calendar_id"),
    ]
    for body, field in bad:
        body = {k: v for k, v in body.items() if v is not None}
        r = gw.call("PUT", CAL, body, T1)
        c.check(r.status == 400 and r.json and r.json.get("field") == field,
                "bad connect %r is 400 naming %s: %r" % (sorted(body), field, r))
    c.check(gw.snapshot() == before, "refused connects stored nothing")

    r = gw.call("PUT", CAL, ok, T1)
    cal = (r.json or {}).get("calendar") or {}
    c.eq((r.status, cal.get("provider"), cal.get("url"), cal.get("status"),
          cal.get("last_error")), (200, "caldav", COLL, "connected", None),
         "Tia connects her CalDAV calendar; the member shows the url")
    c.check(PASSWORD not in r.raw and "password" not in cal, "the password is not in the answer")
    secret = gw.rows("SELECT secret FROM calendar_connections")[0][0]
    c.check(secret.startswith("sealed:") and PASSWORD not in secret and USER not in secret,
            "the credentials are stored sealed")

    def book(name, email, start):
        return gw.book(O, T1, st["id"], ["yoga"], name, email, start)

    # ---- confirm: the resource is there ----
    b1 = book("Cleo Customer", "cleo@example.test", "2026-12-02T09:00:00Z")
    row = wait_row(b1, 1)
    c.eq(row and row[1:3], ("sent", "caldav"), "the calendar row is sent through caldav")
    url, uid = resource(b1)
    code, hdrs, text = dav("GET", url)
    c.eq(code, 200, "GET {url}/{uid}.ics finds the booking")
    vcal, evs = vevent(text) if code == 200 else (None, [])
    c.check(vcal is not None and "METHOD" not in vcal, "no METHOD (RFC 4791 4.1)")
    ev = evs[0] if evs else {}
    c.eq(len(evs), 1, "one VEVENT")
    c.eq(str(ev.get("UID")), uid, "the booking's UID")
    c.eq(int(ev.get("SEQUENCE", -1)), 0, "SEQUENCE 0")
    c.eq(utc(ev.get("DTSTART")), datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc), "DTSTART")
    c.eq(utc(ev.get("DTEND")), datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc), "DTEND")
    c.eq(str(ev.get("SUMMARY")), "Private yoga with Cleo Customer", "SUMMARY")
    c.eq(str(ev.get("ORGANIZER", "")).lower(), "mailto:tia@by.test", "the trainer organizes")
    c.check("ATTENDEE" not in ev and "cleo@example.test" in str(ev.get("DESCRIPTION")),
            "no ATTENDEE (no server-side invitation); the description names the customer")
    c.eq(stored(b1), (url.rsplit("/", 1)[1], hdrs.get("ETag")),
         "the resource's name and ETag are stored with the booking")
    c.eq(len(resources()), 1, "one resource in the collection")

    # ---- reschedule: the same resource, SEQUENCE 1 ----
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T11:00:00Z"}, T1)
    c.eq(wait_row(b1, 2) and wait_row(b1, 2)[1], "sent", "the update row is sent")
    code, hdrs, text = dav("GET", url)
    ev = vevent(text)[1][0]
    c.eq((int(ev.get("SEQUENCE")), utc(ev.get("DTSTART"))),
         (1, datetime(2026, 12, 2, 11, 0, tzinfo=timezone.utc)), "moved, SEQUENCE 1")
    c.eq(len(resources()), 1, "still one resource")
    c.eq(stored(b1)[1], hdrs.get("ETag"), "the new ETag is stored")

    # ---- changed on the server by another client: 412, refetched, still written ----
    old_etag = stored(b1)[1]
    changed = text.replace("SUMMARY:Private yoga with Cleo Customer",
                           "SUMMARY:Edited in another client")
    code, hdrs, _ = dav("PUT", url, changed, {"Content-Type": "text/calendar; charset=utf-8",
                                              "If-Match": old_etag})
    c.check(code in (201, 204) and hdrs.get("ETag") and hdrs.get("ETag") != old_etag,
            "another client changed the resource: %r %r" % (code, hdrs.get("ETag")))
    code, _, _ = dav("PUT", url, changed, {"Content-Type": "text/calendar", "If-Match": old_etag})
    c.eq(code, 412, "the stored ETag is stale now (the server answers 412 to it)")
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T13:00:00Z"}, T1)
    row = wait_row(b1, 3)
    c.eq(row and (row[1], row[4]), ("sent", 1), "the update got 412, refetched, and was sent")
    code, hdrs, text = dav("GET", url)
    ev = vevent(text)[1][0]
    c.eq((int(ev.get("SEQUENCE")), utc(ev.get("DTSTART")), str(ev.get("SUMMARY"))),
         (2, datetime(2026, 12, 2, 13, 0, tzinfo=timezone.utc),
          "Private yoga with Cleo Customer"), "the booking's version won, SEQUENCE 2")
    c.eq(stored(b1)[1], hdrs.get("ETag"), "the fresh ETag is stored")

    # ---- no ETag stored (a server that sent none) but the resource exists: If-None-Match
    # gets 412, the current ETag is fetched, the write goes with If-Match ----
    db = gw.db()
    db.execute("UPDATE bookings SET calendar_etag = NULL WHERE id = ?", (b1,))
    db.commit()
    db.close()
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T12:00:00Z"}, T1)
    row = wait_row(b1, 4)
    code, hdrs, text = dav("GET", url)
    ev = vevent(text)[1][0]
    c.check(row is not None and row[1] == "sent" and
            utc(ev.get("DTSTART")) == datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc) and
            int(ev.get("SEQUENCE")) == 3 and stored(b1)[1] == hdrs.get("ETag"),
            "without a stored ETag the existing resource is updated: %r" % (row,))
    c.eq(len(resources()), 1, "still one resource")

    # ---- deleted on the server: the If-Match PUT gets 404, made again ----
    code, _, _ = dav("DELETE", url)
    c.eq(code, 200, "another client deleted the resource")
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T13:30:00Z"}, T1)
    row = wait_row(b1, 5)
    code, hdrs, text = dav("GET", url)
    c.check(row is not None and row[1] == "sent" and code == 200 and
            int(vevent(text)[1][0].get("SEQUENCE")) == 4 and stored(b1)[1] == hdrs.get("ETag"),
            "a resource deleted on the server is made again: %r %r" % (row, code))

    # ---- a changed password: 401, held, needs_reconnect; reconnecting sends the held row ----
    with open(HTPASSWD, "w") as f:
        f.write("%s:%s\n" % (USER, PASSWORD2))
    gw.ok("POST", O + "/bookings/%d/reschedule" % b1, {"start": "2026-12-02T14:00:00Z"}, T1)
    row = wait_row(b1, 6, statuses=("held", "sent", "dead"))
    c.check(row is not None and row[1] == "held" and "401" in (row[3] or "") and
            "reconnect" in (row[3] or ""), "401 holds the row with the reason: %r" % (row,))
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1).get("calendar") or {}
    c.eq(cal.get("status"), "needs_reconnect", "the calendar needs reconnecting")
    r = gw.call("PUT", CAL, dict(ok, password=PASSWORD2), T1)
    c.eq((r.json or {}).get("calendar", {}).get("status"), "connected", "reconnected")
    c.eq(wait_row(b1, 6) and wait_row(b1, 6)[1], "sent", "the held row is sent on reconnect")
    code, _, text = dav("GET", url, password=PASSWORD2)
    ev = vevent(text)[1][0]
    c.eq(utc(ev.get("DTSTART")), datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc),
         "moved with the new password")

    # ---- cancel: gone ----
    gw.ok("POST", O + "/bookings/%d/cancel" % b1, {"reason": "ill"}, T1)
    c.eq(wait_row(b1, 7) and wait_row(b1, 7)[1], "sent", "the delete row is sent")
    code, _, _ = dav("GET", url, password=PASSWORD2)
    c.eq(code, 404, "the resource is gone")
    c.eq(resources(), [], "the collection is empty")

    snap = json.dumps(gw.snapshot(), default=str)
    c.check(PASSWORD not in snap and PASSWORD2 not in snap, "no password in the database")
    logtext = gw.read_log()
    c.check(PASSWORD not in logtext and PASSWORD2 not in logtext, "no password in the log")
finally:
    try:
        gw.stop()
    finally:
        gw.cleanup()
        rad.terminate()
        rad.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
c.done()
