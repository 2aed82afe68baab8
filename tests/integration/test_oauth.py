"""OAuth 2.0 with PKCE: a trainer connects a Google calendar through the consent flow, against
tests/helpers/fake_google.py (its authorization endpoint checks the request and answers with a
code; its token endpoint checks the code, the redirect_uri, the client and that SHA-256 of the
code_verifier is the challenge), with the test clock. Every redirect is followed by hand
(urllib, no automatic redirects): the Location is read and checked.

Connect -> the provider -> the callback -> connected, the refresh token stored only sealed (the
database files do not hold it); a reused, a wrong and an expired state (11 minutes) are 400
naming state and store nothing; access_denied and a refused code are 400. Revocation: the
booking's calendar row is held (not dead, not retried), the user needs_reconnect with the
reason, exactly one calendar_reconnect email; a second held row sends no second email; the
admin listing and /metrics show it. Reconnecting through the flow sends the held rows.
"""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from gwtest import Checks, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "helpers", "fake_google.py")
CLIENT_ID = "5678-oauth.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-oauth-secret-never-shown"

c = Checks("oauth")
gw = Gateway(test_clock=True)
REDIRECT = gw.url + "/oauth/callback"
fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--client-id", CLIENT_ID, "--client-secret",
                         CLIENT_SECRET, "--redirect-uri", REDIRECT], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL)
FURL = "http://127.0.0.1:%d" % int(fake.stdout.readline())
gw.start()
NOW = [0]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url, token=None):
    """(status, Location or None, body) of one GET, redirects not followed."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with OPENER.open(req, timeout=30) as r:
            return r.status, r.headers.get("Location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), e.read().decode()


def fake_call(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(FURL + path, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def control(**kw):
    fake_call("/_control", kw)


def set_clock(t):
    NOW[0] = t
    gw.ok("PUT", "/v1/test/clock", {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))})


def db_bytes():
    # the database files, or every value of the PostgreSQL tables
    return gw.at_rest()


def cal_rows(booking):
    return gw.rows("SELECT id, status, provider, last_error, attempts FROM outbox"
                   " WHERE kind = 'calendar' AND booking_id = ? ORDER BY id", booking)


def wait_row(booking, n, statuses, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cal_rows(booking)
        if len(rows) >= n and rows[n - 1][1] in statuses:
            return rows[n - 1]
        time.sleep(0.05)
    rows = cal_rows(booking)
    return rows[n - 1] if len(rows) >= n else None


def reconnect_mails():
    return [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "calendar_reconnect"]


try:
    set_clock(1796025600)  # 2026-11-30T08:00:00Z, a Monday
    org = gw.org("Oslo Pilates", "Europe/Oslo")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@op.test", ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@op.test", ["trainer"], ["pilates"], name="Tia Trainer",
                  timezone="Europe/Oslo", token=A)
    tom = gw.user(org["id"], "tom@op.test", ["trainer"], ["pilates"], name="Tom Trainer",
                  token=A)
    T1, T2 = tia["token"], tom["token"]
    CONNECT = gw.url + O + "/users/%d/calendar/connect" % tia["id"]

    # ---- connect: refused before anything is stored ----
    before = gw.snapshot()
    st, loc, body = get(CONNECT, T1)
    c.check(st == 400 and json.loads(body).get("field") == "provider", "no provider: 400 %r"
            % body)
    st, loc, body = get(CONNECT + "?provider=caldav", T1)
    c.check(st == 400 and json.loads(body).get("field") == "provider", "caldav: 400 %r" % body)
    st, loc, body = get(CONNECT + "?provider=google", T1)
    c.check(st == 409 and json.loads(body).get("error") == "invalid_state" and
            "providers/google" in json.loads(body).get("message", ""),
            "no Google settings: 409 saying how to set them: %r" % body)
    st, loc, body = get(CONNECT + "?provider=outlook", T1)
    c.eq(st, 409, "no Microsoft settings: 409")
    c.eq(get(CONNECT + "?provider=google", T2)[0], 403, "another trainer cannot start it")
    c.eq(get(CONNECT + "?provider=google")[0], 401, "a token is needed")
    c.check(gw.snapshot() == before, "refused connects stored nothing")

    gw.ok("PUT", O + "/providers/google", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                           "authorize_url": FURL + "/o/oauth2/v2/auth",
                                           "token_url": FURL + "/token",
                                           "api_base": FURL + "/calendar/v3", "timeout": 2}, A)
    prov = gw.ok("GET", O + "/providers", token=A)
    c.eq(prov.get("google", {}).get("authorize_url"), FURL + "/o/oauth2/v2/auth",
         "authorize_url is a provider setting")
    gw.ok("PUT", O + "/providers/outlook", {"client_id": "ms-client", "client_secret": "ms-s"}, A)
    prov = gw.ok("GET", O + "/providers", token=A)
    c.eq(prov.get("outlook", {}).get("authorize_url"),
         "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
         "outlook's authorize_url defaults from the tenant")
    st, loc, body = get(CONNECT + "?provider=outlook", T1)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc or "").query))
    c.check(st == 302 and loc.startswith("https://login.microsoftonline.com/common/oauth2/v2.0/"
                                         "authorize?") and
            q.get("scope") == "offline_access Calendars.ReadWrite" and
            q.get("response_mode") == "query" and q.get("code_challenge_method") == "S256" and
            q.get("redirect_uri") == REDIRECT and q.get("client_id") == "ms-client",
            "outlook: 302 to Microsoft with its parameters: %r" % loc)

    def connect_flow():
        """connect -> fake's consent -> (callback URL, authorization query)"""
        st, loc, body = get(CONNECT + "?provider=google", T1)
        c.check(st == 302 and loc and loc.startswith(FURL + "/o/oauth2/v2/auth?"),
                "connect: 302 to the authorization endpoint: %r %r" % (st, loc))
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        st, back, body = get(loc)
        c.check(st == 302 and back and back.startswith(REDIRECT + "?"),
                "the provider sends the browser back: %r %r %r" % (st, back, body))
        return back, q

    # ---- connect through the flow ----
    back, q = connect_flow()
    c.eq((q.get("client_id"), q.get("redirect_uri"), q.get("response_type"),
          q.get("access_type"), q.get("prompt"), q.get("include_granted_scopes"),
          q.get("code_challenge_method")),
         (CLIENT_ID, REDIRECT, "code", "offline", "consent", "true", "S256"),
         "the authorization request's parameters")
    c.eq(q.get("scope"), "https://www.googleapis.com/auth/calendar.events "
         "https://www.googleapis.com/auth/calendar.freebusy", "both calendar scopes")
    c.check(re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("state", "")) is not None and
            re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")) is not None,
            "state and code_challenge are 43 base64url characters")
    c.check(q["state"].encode() not in db_bytes(), "the state is stored only hashed")
    st, loc, body = get(back)
    c.check(st == 302 and loc == gw.url + "/dashboard", "callback: 302 to the dashboard: %r %r"
            % (st, loc))
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1).get("calendar") or {}
    c.eq((cal.get("provider"), cal.get("calendar_id"), cal.get("status")),
         ("google", "primary", "connected"), "Tia's calendar is connected")
    issued = fake_call("/_state")["issued"]
    c.eq(len(issued), 1, "the fake issued one refresh token")
    RT = issued[0] if issued else "none"
    c.check(RT.encode() not in db_bytes(), "the refresh token is not in the database files")
    secret = gw.rows("SELECT secret FROM calendar_connections")[0][0]
    c.check(secret.startswith("sealed:"), "it is stored sealed")
    c.check(RT not in gw.read_log() and q["state"] not in gw.read_log(),
            "neither the token nor the state is logged")

    # ---- a reused, a wrong, an expired state: 400, nothing stored ----
    conns = gw.rows("SELECT * FROM calendar_connections ORDER BY 1")
    st, loc, body = get(back)
    c.check(st == 400 and json.loads(body).get("field") == "state" and
            json.loads(body).get("error") == "invalid_field", "a reused state: 400 %r" % body)
    st, loc, body = get(REDIRECT + "?code=4/0Afake&state=" + "x" * 43)
    c.check(st == 400 and json.loads(body).get("field") == "state", "a wrong state: 400 %r"
            % body)
    st, loc, body = get(REDIRECT + "?code=4/0Afake")
    c.check(st == 400 and json.loads(body).get("field") == "state", "no state: 400 %r" % body)
    back2, q2 = connect_flow()
    set_clock(NOW[0] + 11 * 60)
    st, loc, body = get(back2)
    c.check(st == 400 and json.loads(body).get("field") == "state" and
            "expired" in json.loads(body).get("message", ""), "an expired state: 400 %r" % body)
    c.eq(gw.rows("SELECT * FROM calendar_connections ORDER BY 1"), conns,
         "none of them stored anything")
    c.eq(len(fake_call("/_state")["issued"]), 1, "and no code was exchanged")

    # ---- the provider says no; the token endpoint refuses the code ----
    control(deny=True)
    back3, _ = connect_flow()
    control(deny=False)
    st, loc, body = get(back3)
    c.check(st == 400 and "access_denied" in json.loads(body).get("message", ""),
            "access_denied: 400 with the provider's words: %r" % body)
    back4, _ = connect_flow()
    bad = re.sub(r"code=[^&]+", "code=4%2F0Atampered", back4)
    st, loc, body = get(bad)
    c.check(st == 400 and json.loads(body).get("field") == "code" and
            "invalid_grant" in json.loads(body).get("message", ""),
            "a refused code: 400 naming the token endpoint's error: %r" % body)
    c.eq(gw.rows("SELECT * FROM calendar_connections ORDER BY 1"), conns, "nothing stored")

    # ---- bookings go to the calendar ----
    stype = gw.ok("POST", O + "/session-types", {"name": "Mat pilates", "skills": ["pilates"],
                                                 "lengths": [60], "price_cents": 4000,
                                                 "currency": "NOK"}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % tia["id"], {"weekly": week}, T1)

    def book(name, email, start):
        return gw.book(O, T1, stype["id"], ["pilates"], name, email, start)

    b1 = book("Cleo Customer", "cleo@example.test", "2026-12-02T09:00:00Z")
    row = wait_row(b1, 1, ("sent", "dead", "held"))
    c.eq(row and row[1:3], ("sent", "google"), "the first booking's event is written")

    # ---- revocation: held, needs_reconnect, one email ----
    control(revoke=RT, expire_tokens=True)
    b2 = book("Dan Customer", "dan@example.test", "2026-12-03T09:00:00Z")
    row = wait_row(b2, 1, ("sent", "dead", "held"))
    c.check(row is not None and row[1] == "held" and "invalid_grant" in (row[3] or ""),
            "the revoked grant holds the row: %r" % (row,))
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1).get("calendar") or {}
    c.check(cal.get("status") == "needs_reconnect" and "invalid_grant" in
            (cal.get("last_error") or ""), "the user needs to reconnect, with why: %r" % cal)
    deadline = time.monotonic() + 10
    while not reconnect_mails() and time.monotonic() < deadline:
        time.sleep(0.05)
    mails = reconnect_mails()
    c.eq(len(mails), 1, "one calendar_reconnect email")
    m = mails[0] if mails else {}
    if mails:
        c.eq(str(m["Subject"]), "Reconnect your calendar", "its subject")
        c.check("tia@op.test" in str(m["To"]), "to Tia: %r" % str(m["To"]))
        text = m.get_body(("plain",)).get_content()
        c.check(gw.url + "/dashboard" in text, "with the link to the dashboard: %r" % text)
        c.check(RT not in m.as_string(), "no token in the email")
    b3 = book("Eve Customer", "eve@example.test", "2026-12-04T09:00:00Z")
    row3 = wait_row(b3, 1, ("sent", "dead", "held"))
    c.check(row3 is not None and row3[1] == "held" and row3[4] == 0,
            "a later row is held without calling Google: %r" % (row3,))
    set_clock(NOW[0] + 3600)
    gw.ok("POST", "/v1/test/tick", {})
    time.sleep(1.5)
    c.eq([r[1] for r in cal_rows(b2) + cal_rows(b3)], ["held", "held"],
         "held rows are not retried as time passes")
    c.eq(len(reconnect_mails()), 1, "still one calendar_reconnect email")
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE kind = 'calendar_reconnect'")[0][0], 1,
         "one calendar_reconnect row")
    listing = gw.call("GET", O + "/calendar-connections", token=A)
    c.check(listing.status == 200 and [(x["user_id"], x["user_name"], x["provider"], x["status"])
                                       for x in listing.json] ==
            [(tia["id"], "Tia Trainer", "google", "needs_reconnect")] and
            "invalid_grant" in (listing.json[0].get("last_error") or "") and
            "secret" not in listing.raw and "sealed" not in listing.raw,
            "the admin listing: %r" % listing)
    c.eq(gw.call("GET", O + "/calendar-connections", token=T1).status, 403,
         "a trainer cannot list the connections")
    held_list = gw.ok("GET", O + "/outbox?status=held", token=A)
    c.eq(sorted(x["booking_id"] for x in held_list), sorted([b2, b3]),
         "the outbox lists the held rows")
    metrics = gw.call("GET", "/metrics").raw
    c.check('ordinatus_calendar_connections{provider="google",status="needs_reconnect"} 1'
            in metrics, "the connections gauge")
    c.check(re.search(r'ordinatus_effects_held_total\{kind="calendar",provider="google"\} 1',
                      metrics) is not None, "the held counter")

    # ---- reconnect through the flow: the held rows go out ----
    back5, _ = connect_flow()
    st, loc, body = get(back5)
    c.eq((st, loc), (302, gw.url + "/dashboard"), "reconnected")
    r2 = wait_row(b2, 1, ("sent", "dead"))
    r3 = wait_row(b3, 1, ("sent", "dead"))
    c.check(r2 and r3 and r2[1] == "sent" and r3[1] == "sent", "the held rows are sent: %r %r"
            % (r2, r3))
    evs = fake_call("/_state")["events"].get("primary", {})
    c.eq(sorted(e.get("summary") for e in evs.values()),
         ["Mat pilates with Cleo Customer", "Mat pilates with Dan Customer",
          "Mat pilates with Eve Customer"], "the fake has every booking's event")
    cal = gw.ok("GET", O + "/users/%d" % tia["id"], token=T1).get("calendar") or {}
    c.eq((cal.get("status"), cal.get("last_error")), ("connected", None), "connected again")
    c.check(all(t.encode() not in db_bytes() for t in fake_call("/_state")["issued"]) and
            CLIENT_SECRET.encode() not in db_bytes(), "no token or secret in the database files")
    c.check(CLIENT_SECRET not in gw.read_log(), "no secret in the log")
finally:
    try:
        gw.stop()
    finally:
        gw.cleanup()
        fake.terminate()
        fake.wait(timeout=10)
c.done()
