"""Busy times of a connected calendar leave the offered slots, against
tests/helpers/fake_google.py (freeBusy) and tests/helpers/fake_graph.py (calendarView) on
127.0.0.1, with the test clock (the busy-time thread is off there: POST /v1/test/busy-refresh
fetches every connected calendar at once, as the thread does every 10 minutes).

For each provider: a busy block in the fake calendar -> that slot is missing from GET
/v1/schedule/{token}, a transparent (free) event blocks nothing; booking the busy slot -> 409
slot_taken naming the calendar; the gateway's own event for a booking blocks nothing (the
trainer moves the booking onto time its own old event still covers); a failing fetch keeps the
block and the user's calendar member shows the error; a good fetch clears it. The fakes are
stopped by their pids.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from gwtest import Checks, Gateway, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.join(HERE, "..", "helpers")
CLIENT_ID = "busy-client"
CLIENT_SECRET = "busy-client-secret-never-shown"
RT = "1//busy-refresh-token-NEVER-IN-THE-DB"

c = Checks("busy")
procs = []


def start_fake(name):
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(HELPERS, name), "--client-id",
                          CLIENT_ID, "--client-secret", CLIENT_SECRET, "--refresh-token", RT],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    procs.append(p)
    return "http://127.0.0.1:%d" % int(p.stdout.readline())


def fake_call(base, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


gw = Gateway(test_clock=True)
gw.start()
NOW = 1796025600  # 2026-11-30T08:00:00Z, a Monday
DAY = 86400
WED = NOW + 2 * DAY - 8 * 3600  # 2026-12-02T00:00:00Z


def run_provider(name, provider, settings, add_event, connect, fail, unfail, own_events,
                 extra=None):
    """One trainer of one organisation whose calendar is provider's fake (connect: the PUT
    calendar body, settings: the organisation's provider settings or None; extra(offered): more
    checks on the first link's slots)."""
    org = gw.org("Busy %s" % name, "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@%s.test" % name, ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@%s.test" % name, ["trainer"], ["yoga"], name="Tia",
                  timezone="Europe/Berlin", token=A)
    T = tia["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR", "step_minutes": 30}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % tia["id"], {"weekly": week}, T)
    if settings:
        gw.ok("PUT", O + "/providers/%s" % provider, settings, A)
    r = gw.call("PUT", O + "/users/%d/calendar" % tia["id"],
                connect or {"provider": provider, "refresh_token": RT}, T)
    c.eq(r.status, 200, "%s: Tia connects her calendar" % name)
    cal = (r.json or {}).get("calendar") or {}
    c.eq((cal.get("busy_fetched_at"), cal.get("busy_error")), (None, None),
         "%s: not fetched yet" % name)

    # the dentist (10:00-11:00Z on Wednesday) and a free (transparent) event (13:00-14:00Z)
    add_event(WED + 10 * 3600, WED + 11 * 3600, False)
    add_event(WED + 13 * 3600, WED + 14 * 3600, True)
    res = gw.ok("POST", "/v1/test/busy-refresh")
    c.check(res.get("fetched", 0) >= 1 and res.get("failed") == 0,
            "%s: the refresh fetched the calendar: %r" % (name, res))
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T).get("calendar", {})
    c.eq((cal.get("busy_fetched_at"), cal.get("busy_error")), (iso(NOW), None),
         "%s: the calendar member shows the fetch" % name)
    c.check(RT not in json.dumps(cal), "%s: no secret in the member" % name)

    def link(email):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": "Cleo", "email": email},
                                              "skills": ["yoga"]})
        gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T)
        gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T)
        gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for m in gw.maildir():
                if str(m["X-Ordinatus-Kind"]) == "scheduling_link" and email in str(m["To"]):
                    return re.search(r"/s/([A-Za-z0-9_-]+)",
                                     m.get_body(("plain",)).get_content()).group(1)
            time.sleep(0.05)
        raise RuntimeError("no scheduling link for " + email)

    def starts(tok):
        view = gw.ok("GET", "/v1/schedule/%s" % tok)
        return {s["start"] for s in view["slots"]}

    tok = link("cleo@%s.test" % name)
    offered = starts(tok)
    for h in (9.5, 10, 10.5):
        c.check(iso(WED + int(h * 3600)) not in offered,
                "%s: %s overlaps the dentist: not offered" % (name, iso(WED + int(h * 3600))))
    for h in (9, 11, 13, 13.5):
        c.check(iso(WED + int(h * 3600)) in offered,
                "%s: %s is offered" % (name, iso(WED + int(h * 3600))))
    if extra:
        extra(offered)

    r = gw.call("POST", "/v1/schedule/%s/booking" % tok,
                {"start": iso(WED + 10 * 3600), "length_minutes": 60})
    c.eq(r.status, 409, "%s: booking the busy slot is 409" % name)
    c.eq((r.json or {}).get("error"), "slot_taken", "%s: slot_taken" % name)
    c.check("calendar" in (r.json or {}).get("message", ""),
            "%s: the message names the calendar: %r" % (name, r.json))

    # the gateway's own event blocks nothing: book 15:00Z, let the event be written, fetch
    b = gw.ok("POST", "/v1/schedule/%s/booking" % tok,
              {"start": iso(WED + 15 * 3600), "length_minutes": 60})
    gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay-" + name})
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % b["booking_id"], token=T)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not gw.rows(
            "SELECT 1 FROM bookings WHERE id = ? AND calendar_event_id IS NOT NULL",
            b["booking_id"]):
        time.sleep(0.05)
    c.check(own_events() >= 1, "%s: the booking's event is in the calendar" % name)
    gw.ok("POST", "/v1/test/busy-refresh")
    r = gw.call("POST", O + "/bookings/%d/reschedule" % b["booking_id"],
                {"start": iso(WED + 15 * 3600 + 1800)}, T)
    c.eq(r.status, 200, "%s: moving the booking onto its own event's time is allowed: %r"
         % (name, r))

    # a failing fetch keeps the block and says so on the connection
    fail()
    res = gw.ok("POST", "/v1/test/busy-refresh")
    c.eq(res.get("failed"), 1, "%s: the fetch failed" % name)
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T).get("calendar", {})
    c.check(cal.get("busy_error") and cal.get("busy_fetched_at") == iso(NOW),
            "%s: the member shows the error, the last good fetch kept: %r" % (name, cal))
    c.check(RT not in json.dumps(cal) and CLIENT_SECRET not in json.dumps(cal),
            "%s: no secret in the error" % name)
    tok2 = link("dora@%s.test" % name)
    c.check(iso(WED + 10 * 3600) not in starts(tok2),
            "%s: the last known block stays in force" % name)
    unfail()
    gw.ok("POST", "/v1/test/busy-refresh")
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T).get("calendar", {})
    c.eq(cal.get("busy_error"), None, "%s: a good fetch clears the error" % name)


try:
    gw.ok("PUT", "/v1/test/clock", {"now": iso(NOW)})

    # ---- Google: freeBusy ----
    G = start_fake("fake_google.py")

    def g_add(a, b, transparent):
        ev = {"start": {"dateTime": iso(a)}, "end": {"dateTime": iso(b)}, "summary": "Dentist"}
        if transparent:
            ev["transparency"] = "transparent"
        fake_call(G, "/_control", {"add_event": {"calendar": "primary", "event": ev}})

    def g_own():
        evs = fake_call(G, "/_state")["events"].get("primary", {}).values()
        return len([e for e in evs if "extendedProperties" in e])

    run_provider("google", "google",
                 {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "token_url": G + "/token", "api_base": G + "/calendar/v3", "timeout": 2},
                 g_add, None,
                 lambda: fake_call(G, "/_control", {"freebusy_error": "internalError"}),
                 lambda: fake_call(G, "/_control", {"freebusy_error": None}), g_own)
    st = fake_call(G, "/_state")
    body = (st.get("freebusy_bodies") or [{}])[0]
    c.eq(body.get("items"), [{"id": "primary"}], "freeBusy asks for the connection's calendar")
    c.eq(body.get("timeMin"), iso(NOW), "freeBusy from now")
    c.eq(body.get("timeMax"), iso(NOW + 14 * DAY), "freeBusy for the next 14 days")

    # ---- Microsoft Graph: calendarView, one event a page ----
    M = start_fake("fake_graph.py")
    fake_call(M, "/_control", {"page_size": 1})

    def m_add(a, b, transparent):
        ev = {"subject": "Dentist", "showAs": "free" if transparent else "busy",
              "start": {"dateTime": iso(a)[:-1], "timeZone": "UTC"},
              "end": {"dateTime": iso(b)[:-1], "timeZone": "UTC"}}
        fake_call(M, "/_control", {"add_event": {"calendar": "default", "event": ev}})
        # a cancelled occurrence blocks nothing either
        ev = dict(ev, showAs="busy", isCancelled=True,
                  start={"dateTime": iso(a + 3 * 3600)[:-1], "timeZone": "UTC"},
                  end={"dateTime": iso(b + 3 * 3600)[:-1], "timeZone": "UTC"})
        fake_call(M, "/_control", {"add_event": {"calendar": "default", "event": ev}})

    def m_own():
        evs = fake_call(M, "/_state")["events"].get("default", {}).values()
        return len([e for e in evs if e.get("transactionId")])

    run_provider("graph", "outlook",
                 {"tenant": "contoso", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "token_url": M + "/contoso/oauth2/v2.0/token", "api_base": M + "/v1.0",
                  "timeout": 2},
                 m_add, None,
                 lambda: fake_call(M, "/_control", {"inject": {"path": "/calendarView",
                                                               "status": 503, "times": 1}}),
                 lambda: None, m_own)
    views = [e for e in fake_call(M, "/_state")["log"] if e["path"].endswith("/calendarView")]
    c.check(views and all(e["prefer"] == 'outlook.timezone="UTC"' for e in views),
            "every calendarView asks for UTC")
    c.check(any("skiptoken" in (e["query"] or "") for e in views),
            "the gateway followed @odata.nextLink")
    c.check(views and "startDateTime=" + iso(NOW) in urllib.parse.unquote(views[0]["query"]),
            "calendarView from now: %r" % (views and views[0]["query"]))


    # ---- CalDAV: Radicale, a time-range calendar-query ----
    USER, PASSWORD = "tia", "radicale-pass-NEVER-SHOWN"
    tmp = tempfile.mkdtemp(prefix="ordinatus-radicale-")
    RPORT = free_port()
    STORAGE = os.path.join(tmp, "collections")
    with open(os.path.join(tmp, "users"), "w") as f:
        f.write("%s:%s\n" % (USER, PASSWORD))
    with open(os.path.join(tmp, "config"), "w") as f:
        f.write("[server]\nhosts = 127.0.0.1:%d\n"
                "[auth]\ntype = htpasswd\nhtpasswd_filename = %s\n"
                "htpasswd_encryption = plain\n[rights]\ntype = owner_only\n"
                "[storage]\nfilesystem_folder = %s\n[web]\ntype = none\n"
                "[logging]\nlevel = warning\n" % (RPORT, os.path.join(tmp, "users"), STORAGE))
    RAD = []

    def rad_start():
        p = subprocess.Popen(["/usr/bin/radicale", "--config", os.path.join(tmp, "config")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        RAD.append(p)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", RPORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)

    def rad_stop():
        p = RAD.pop()
        p.terminate()
        p.wait()

    rad_start()
    COLL = "http://127.0.0.1:%d/%s/bookings/" % (RPORT, USER)

    def dav(method, url, body=None, ctype=None):
        req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (USER, PASSWORD)).encode()).decode())
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    c.eq(dav("MKCALENDAR", COLL), 201, "Radicale made the calendar collection")
    NUM = [0]

    def ics(a, b, extra=""):
        NUM[0] += 1
        return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//busy//EN\r\n"
                "BEGIN:VEVENT\r\nUID:dentist-%d@example.test\r\nDTSTAMP:20261130T080000Z\r\n"
                "DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Dentist\r\n%sEND:VEVENT\r\n"
                "END:VCALENDAR\r\n" % (NUM[0], time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(a)),
                                        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(b)), extra))

    def d_add(a, b, transparent):
        body = ics(a, b, "TRANSP:TRANSPARENT\r\n" if transparent else "")
        c.eq(dav("PUT", COLL + "test-%d.ics" % NUM[0], body, "text/calendar"), 201,
             "the test PUT an event")
        if not transparent:
            # a daily one from Tuesday 08:00Z (it recurs on Wednesday) and a cancelled one
            body = ics(a - DAY - 2 * 3600, a - DAY - 2 * 3600 + 1800,
                       "RRULE:FREQ=DAILY;COUNT=3\r\n")
            c.eq(dav("PUT", COLL + "test-%d.ics" % NUM[0], body, "text/calendar"), 201,
                 "the test PUT a recurring event")
            body = ics(a + 2 * 3600, a + 3 * 3600, "STATUS:CANCELLED\r\n")
            c.eq(dav("PUT", COLL + "test-%d.ics" % NUM[0], body, "text/calendar"), 201,
                 "the test PUT a cancelled event")

    def d_own():
        d = os.path.join(STORAGE, "collection-root", USER, "bookings")
        return len([n for n in os.listdir(d) if "ordinatus" in n])

    def d_extra(offered):
        c.check(iso(WED + 8 * 3600) not in offered and iso(WED + 7 * 3600 + 1800) not in
                offered, "caldav: the recurring event's Wednesday instance blocks 08:00-08:30")
        c.check(iso(WED + DAY + 8 * 3600) not in offered,
                "caldav: and its Thursday instance")
        c.check(iso(WED + 12 * 3600) in offered, "caldav: the cancelled event blocks nothing")

    run_provider("caldav", "caldav", None, d_add,
                 {"provider": "caldav", "url": COLL, "username": USER, "password": PASSWORD},
                 rad_stop, rad_start, d_own, d_extra)
    rad_stop()
    shutil.rmtree(tmp, ignore_errors=True)

    c.check(RT not in gw.read_log() and CLIENT_SECRET not in gw.read_log() and
            "radicale-pass" not in gw.read_log(), "no secret in the gateway's log")
finally:
    gw.cleanup()
    for p in procs:
        p.terminate()
        p.wait()
c.done()
