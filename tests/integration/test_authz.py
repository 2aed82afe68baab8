"""The authorization matrix: every route of the route table (`ordinatus routes`) called by every
role (anonymous, platform admin, org admin, the trainer who owns the request and booking, another
trainer of the same organisation, the kiosk) on its own organisation's resources and on another
organisation's, with the answer each must get. A refused call gets exactly the status in the
table (401, 403 or 404 with the API's error body), never a 2xx, and writes nothing (gw.snapshot()
before and after). An allowed call is never 401 or 403.

The table below has one row per route. A route in the table that this build does not serve is
reported and skipped (rows written ahead for routes on their way, marked `soon`); a route this
build serves without a row fails the test: a new route needs its row here.

How to add a row: R(method, pattern, path, allow, ...) where
  pattern  the route table's pattern exactly (`ordinatus routes` prints them);
  path     the concrete path, with {org} {admin} {trainer} {other} {request} {fresh} {booking}
           {done} {session_type} {outbox} {sched} {manage} {survey} {feed} {email} filled from
           the organisation the cell is about (own or foreign);
  allow    the roles that get through: N anonymous, P platform admin, A org admin, T the owning
           trainer, O another trainer, K kiosk;
  deny     the status of a refused role when it is not the default (N 401, others 403);
  org      False for paths that name no organisation (no foreign cell);
  foreign  the status of a role on another organisation's resource (default 404 for A, T, O, K;
           N as on its own; P is everyone's and has no foreign cell);
  body     the JSON body (a dict, or a function of the cell for unique values);
  same     every caller gets this one status (routes that ignore the bearer token);
  public   an organisation's public route: anyone, on every organisation alike;
  may404   an allowed call may find nothing (a delete of what is already gone).
"""
import datetime
import itertools
import json
import re
import subprocess
import time

from gwtest import BIN, Checks, Gateway

c = Checks("authz")
ROLES = "NPATOK"
NAMES = {"N": "anonymous", "P": "platform_admin", "A": "org_admin", "T": "trainer",
         "O": "other_trainer", "K": "kiosk"}
NOW = "2026-12-01T08:00:00Z"  # the test clock's instant (a Tuesday)
NOW_EPOCH = int(datetime.datetime(2026, 12, 1, 8, tzinfo=datetime.timezone.utc).timestamp())
START = "2026-12-03T10:00:00Z"  # Thursday 11:00 in Berlin: inside the trainer's hours
START2 = "2026-12-03T12:00:00Z"
ROWS = []
uniq = itertools.count(1)


def R(method, pattern, path, allow, deny=None, org=True, foreign=None, body=None, same=None,
      soon=False, may404=False, public=False):
    ROWS.append(dict(method=method, pattern=pattern, path=path, allow=set(allow),
                     deny=deny or {}, org=org, foreign=foreign or {}, body=body, same=same,
                     soon=soon, may404=may404, public=public))


def new_user(cell):
    return {"email": "u%d@acme.example" % next(uniq), "name": "New User", "roles": ["trainer"]}


# ---- the table: one row per route ----
R("GET", "/healthz", "/healthz", ROLES, org=False)
R("GET", "/metrics", "/metrics", ROLES, org=False)
R("POST", "/v1/orgs", "/v1/orgs", "P", org=False,
  body={"name": "Another Org", "timezone": "UTC"})
R("GET", "/v1/orgs/{id}", "/v1/orgs/{org}", "PATOK")
R("POST", "/v1/orgs/{id}/users", "/v1/orgs/{org}/users", "PA", body=new_user)
R("GET", "/v1/orgs/{id}/users", "/v1/orgs/{org}/users", "PA")
# a user's own record, or an admin
R("GET", "/v1/orgs/{id}/users/{id}", "/v1/orgs/{org}/users/{trainer}", "PAT")
R("PATCH", "/v1/orgs/{id}/users/{id}", "/v1/orgs/{org}/users/{trainer}", "PA",
  body={"name": "Tom Trainer"})
R("GET", "/v1/orgs/{id}/settings", "/v1/orgs/{org}/settings", "PA")
R("PATCH", "/v1/orgs/{id}/settings", "/v1/orgs/{org}/settings", "PA",
  body={"survey_enabled": True})
R("POST", "/v1/orgs/{id}/session-types", "/v1/orgs/{org}/session-types", "PA",
  body={"name": "Go 1:1", "skills": ["go"], "lengths": [60], "price_cents": 100,
        "currency": "EUR"})
# public: the customer's intake form lists an organisation's session types
R("GET", "/v1/orgs/{id}/session-types", "/v1/orgs/{org}/session-types", ROLES, public=True)
R("GET", "/v1/orgs/{id}/session-types/{id}", "/v1/orgs/{org}/session-types/{session_type}",
  ROLES, public=True)
# the public intake: anyone, into any organisation
R("POST", "/v1/orgs/{id}/requests", "/v1/orgs/{org}/requests", ROLES, public=True,
  body={"customer": {"name": "Walk In", "email": "walkin@example.org"}, "skills": ["python"]})
R("GET", "/v1/orgs/{id}/requests", "/v1/orgs/{org}/requests", "PATO")
# a claimed request: its trainer and the admins
R("GET", "/v1/orgs/{id}/requests/{id}", "/v1/orgs/{org}/requests/{request}", "PAT")
R("PATCH", "/v1/orgs/{id}/requests/{id}", "/v1/orgs/{org}/requests/{request}", "T",
  deny={"P": 403}, body={"session_type_id": "{session_type}"})
R("POST", "/v1/orgs/{id}/requests/{id}/claim", "/v1/orgs/{org}/requests/{fresh}/claim", "TO",
  deny={"P": 403})
R("POST", "/v1/orgs/{id}/requests/{id}/cancel", "/v1/orgs/{org}/requests/{request}/cancel",
  "PAT",
  body={"reason": "matrix"})
R("GET", "/v1/orgs/{id}/outbox", "/v1/orgs/{org}/outbox", "PA")
R("POST", "/v1/orgs/{id}/outbox/{id}/retry", "/v1/orgs/{org}/outbox/{outbox}/retry", "PA")
# test clock routes (serve --test-clock only, never in production): no token asked
R("PUT", "/v1/test/clock", "/v1/test/clock", ROLES, org=False, body={"now": NOW})
R("POST", "/v1/test/tick", "/v1/test/tick", ROLES, org=False)
R("POST", "/v1/test/busy-refresh", "/v1/test/busy-refresh", ROLES, org=False)
R("PUT", "/v1/orgs/{id}/users/{id}/availability", "/v1/orgs/{org}/users/{trainer}/availability",
  "PAT", body={"weekly": [{"day": d, "start": "08:00", "end": "20:00"}
                         for d in ("mon", "tue", "wed", "thu", "fri")]})
R("GET", "/v1/orgs/{id}/users/{id}/availability", "/v1/orgs/{org}/users/{trainer}/availability",
  "PAT")
R("PUT", "/v1/orgs/{id}/users/{id}/calendar", "/v1/orgs/{org}/users/{trainer}/calendar", "PAT",
  body={"provider": "caldav", "url": "https://dav.example.org/cal/", "username": "tom",
        "password": "pw"})
R("DELETE", "/v1/orgs/{id}/users/{id}/calendar", "/v1/orgs/{org}/users/{trainer}/calendar",
  "PAT", may404=True)
R("GET", "/v1/orgs/{id}/users/{id}/calendar/connect",
  "/v1/orgs/{org}/users/{trainer}/calendar/connect?provider=google", "T")
R("GET", "/oauth/callback", "/oauth/callback?code=x&state=y", "", org=False, same=400)
R("GET", "/v1/orgs/{id}/calendar-connections", "/v1/orgs/{org}/calendar-connections", "PA")
R("POST", "/v1/orgs/{id}/users/{id}/feed", "/v1/orgs/{org}/users/{trainer}/feed", "T")
# the link routes: the token in the path is the credential
R("GET", "/v1/feeds/{s}", "/v1/feeds/{feed}.ics", ROLES, org=False)
R("POST", "/v1/orgs/{id}/requests/{id}/scheduling-link",
  "/v1/orgs/{org}/requests/{request}/scheduling-link", "T")
R("GET", "/v1/schedule/{s}", "/v1/schedule/{sched}", ROLES, org=False)
R("POST", "/v1/schedule/{s}/booking", "/v1/schedule/{sched}/booking", ROLES, org=False,
  body={"start": START2, "length_minutes": 60})
R("POST", "/v1/schedule/{s}/payment", "/v1/schedule/{sched}/payment", ROLES, org=False,
  body={"reference": "matrix"})
R("GET", "/v1/manage/{s}", "/v1/manage/{manage}", ROLES, org=False)
R("POST", "/v1/manage/{s}/cancel", "/v1/manage/{manage}/cancel", ROLES, org=False,
  body={"reason": "matrix"})
R("POST", "/v1/manage/{s}/reschedule", "/v1/manage/{manage}/reschedule", ROLES, org=False,
  body={"start": START2})
R("GET", "/v1/orgs/{id}/bookings", "/v1/orgs/{org}/bookings", "PATO")
# a booking: its trainer and the admins
R("GET", "/v1/orgs/{id}/bookings/{id}", "/v1/orgs/{org}/bookings/{booking}", "PAT")
# private notes: each author's own (an admin reads and writes only theirs)
R("GET", "/v1/orgs/{id}/bookings/{id}/notes", "/v1/orgs/{org}/bookings/{booking}/notes", "PAT")
R("POST", "/v1/orgs/{id}/bookings/{id}/notes", "/v1/orgs/{org}/bookings/{booking}/notes", "PAT",
  body={"body": "matrix note"})
R("GET", "/v1/orgs/{id}/bookings/{id}/effects", "/v1/orgs/{org}/bookings/{booking}/effects",
  "PAT")
R("POST", "/v1/orgs/{id}/bookings/{id}/{s}", "/v1/orgs/{org}/bookings/{booking}/confirm-payment",
  "PAT")
# where a booking can move to: its trainer and the admins
R("GET", "/v1/orgs/{id}/bookings/{id}/slots", "/v1/orgs/{org}/bookings/{booking}/slots", "PAT")
R("GET", "/v1/orgs/{id}/customers/{s}/bookings", "/v1/orgs/{org}/customers/{email}/bookings",
  "PA")
R("POST", "/v1/orgs/{id}/checkin", "/v1/orgs/{org}/checkin", "PAK",
  body={"customer_email": "nobody@example.org", "confirm": False})
R("GET", "/v1/orgs/{id}/reports/payouts",
  "/v1/orgs/{org}/reports/payouts?from=2026-11-01&to=2026-12-31", "PA")
R("GET", "/v1/survey/{s}", "/v1/survey/{survey}", ROLES, org=False)
R("POST", "/v1/survey/{s}", "/v1/survey/{survey}", ROLES, org=False,
  body={"rating": 5, "comment": "matrix"})
R("PUT", "/v1/orgs/{id}/providers/{s}", "/v1/orgs/{org}/providers/google", "PA",
  body={"client_id": "cid", "client_secret": "secret"})
R("GET", "/v1/orgs/{id}/providers", "/v1/orgs/{org}/providers", "PA")
# the admin's test email goes to the admin: an organisation's admin only
R("POST", "/v1/orgs/{id}/providers/smtp/test", "/v1/orgs/{org}/providers/smtp/test", "A")
R("DELETE", "/v1/orgs/{id}/providers/{s}", "/v1/orgs/{org}/providers/zoho", "PA", may404=True)
# sign-in (a session cookie beside bearer tokens): the bearer token plays no part here
R("POST", "/v1/auth/sign-in", "/v1/auth/sign-in", ROLES, org=False,
  body=lambda cell: {"email": "nobody%d@example.org" % next(uniq), "org": 1})
R("POST", "/v1/auth/login", "/v1/auth/login", "", org=False, same="refused",
  body={"token": "not-a-sign-in-token"})
R("GET", "/v1/auth/session", "/v1/auth/session", "", org=False, same=401)
R("POST", "/v1/auth/sign-out", "/v1/auth/sign-out", ROLES, org=False)
# the pages: public HTML; what they show comes from the API, with its own checks
for pattern, path in [("/", "/"), ("/login", "/login"), ("/login/{s}", "/login/x"),
                      ("/requests/{id}", "/requests/{request}"), ("/s/{s}", "/s/{sched}"),
                      ("/survey/{s}", "/survey/{survey}"), ("/b/{s}", "/b/{manage}"),
                      ("/dashboard", "/dashboard"), ("/calendar", "/calendar"),
                      ("/admin", "/admin"), ("/kiosk", "/kiosk"),
                      ("/static/{s}", "/static/style.css")]:
    R("GET", pattern, path, ROLES, org=False)


def pattern_re(pattern):
    out = ""
    for part in re.split(r"(\{id\}|\{s\})", pattern):
        out += {"{id}": "[1-9][0-9]*", "{s}": "[^/]+"}.get(part, re.escape(part))
    return re.compile("^" + out + "$")


def org_context(gw, name, domain):
    """An organisation with an admin, two trainers, a kiosk, a session type, a request claimed
    and booked by the first trainer (confirmed), one completed (its survey link), one new, a
    feed; every id and token the table's paths name."""
    org = gw.org(name, "Europe/Berlin")["id"]
    gw.intake_limits(org)
    base = "/v1/orgs/%d" % org
    ctx = {"org": org}
    admin = gw.user(org, "admin@" + domain, ["org_admin"])
    t1 = gw.user(org, "tom@" + domain, ["trainer"], ["python"], timezone="Europe/Berlin")
    t2 = gw.user(org, "tina@" + domain, ["trainer"], ["python"], timezone="Europe/Berlin")
    kiosk = gw.user(org, "desk@" + domain, ["kiosk"])
    ctx.update(admin=admin["id"], trainer=t1["id"], other=t2["id"])
    ctx["tokens"] = {"A": admin["token"], "T": t1["token"], "O": t2["token"], "K": kiosk["token"]}
    st = gw.ok("POST", base + "/session-types",
               {"name": "Python 1:1", "skills": ["python"], "lengths": [60], "price_cents": 5000,
                "currency": "EUR"}, admin["token"])
    ctx["session_type"] = st["id"]
    gw.ok("PUT", base + "/users/%d/availability" % t1["id"],
          {"weekly": [{"day": d, "start": "08:00", "end": "20:00"}
                      for d in ("mon", "tue", "wed", "thu", "fri")]}, t1["token"])
    email = "cara@" + domain
    done = gw.book(base, t1["token"], st["id"], ["python"], "Dora Done", "dora@" + domain,
                   "2026-12-02T10:00:00Z")
    gw.ok("POST", base + "/bookings/%d/complete" % done, {}, admin["token"])
    booking = gw.book(base, t1["token"], st["id"], ["python"], "Cara Customer", email, START)
    ctx.update(booking=booking, done=done, email=email)
    ctx["request"] = gw.ok("GET", base + "/bookings/%d" % booking, token=t1["token"])["request_id"]
    ctx["fresh"] = gw.ok("POST", base + "/requests",
                         {"customer": {"name": "New One", "email": "new@" + domain},
                          "skills": ["python"]})["id"]
    feed = gw.ok("POST", base + "/users/%d/feed" % t1["id"], token=t1["token"])
    ctx["feed"] = re.search(r"/v1/feeds/([A-Za-z0-9_-]+)\.ics", feed["url"]).group(1)
    ctx["outbox"] = gw.rows("SELECT id FROM outbox WHERE org_id = ? ORDER BY id", org)[0][0]
    return ctx


def link_tokens(gw, ctx, domain):
    """The scheduling, manage and survey tokens of ctx's customers, read from their emails."""
    want = {"sched": ("scheduling_link", "cara@", r"/s/([A-Za-z0-9_-]+)"),
            "manage": ("confirmation", "cara@", r"/b/([A-Za-z0-9_-]+)"),
            "survey": ("survey", "dora@", r"/survey/([A-Za-z0-9_-]+)")}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(k in ctx for k in want):
        for m in gw.maildir():
            for key, (kind, who, rx) in want.items():
                if str(m["X-Ordinatus-Kind"]) == kind and who + domain in str(m["To"]):
                    ctx[key] = re.search(rx, m.get_body(("plain",)).get_content()).group(1)
        time.sleep(0.1)
    for key in want:
        if key not in ctx:
            raise AssertionError("no %s email reached the customer of %s" % (key, domain))


def settle(gw):
    """Wait until no delivery due at the test clock's instant is pending or leased: the
    dispatcher's work must not show as a write of the call being checked."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not gw.rows("SELECT 1 FROM outbox WHERE status = 'leased' OR"
                       " (status = 'pending' AND next_attempt_at <= ?)", NOW_EPOCH):
            return
        time.sleep(0.1)


def fill(path, ctx):
    return re.sub(r"\{(\w+)\}", lambda m: str(ctx[m.group(1)]), path)


def fill_body(body, ctx):
    """the body with {name} strings filled (a whole "{session_type}" string becomes the id)"""
    if isinstance(body, dict):
        return {k: fill_body(v, ctx) for k, v in body.items()}
    if isinstance(body, list):
        return [fill_body(v, ctx) for v in body]
    if isinstance(body, str) and re.fullmatch(r"\{\w+\}", body):
        return ctx[body[1:-1]]
    return body


def expected(row, role, foreign):
    """('allow', None) or ('deny', status) for role on the own or foreign organisation"""
    if row["same"] is not None:
        return ("same", row["same"])
    if foreign and not row["public"]:
        if role in row["foreign"]:
            return ("deny", row["foreign"][role])
        if role == "N":
            return expected(row, role, False)
        return ("deny", 404)
    if role in row["allow"]:
        return ("allow", None)
    return ("deny", row["deny"].get(role, 401 if role == "N" else 403))


gw = Gateway(test_clock=True, extra_args=["--token-route-limit", "100000"])
try:
    gw.start()
    gw.ok("PUT", "/v1/test/clock", {"now": NOW})
    own = org_context(gw, "Acme Training", "acme.example")
    other = org_context(gw, "Other Training", "other.example")
    link_tokens(gw, own, "acme.example")
    link_tokens(gw, other, "other.example")
    tokens = dict(own["tokens"], P=gw.admin_token, N=None)

    served = json.loads(subprocess.run([BIN, "routes"], capture_output=True, text=True,
                                       check=True).stdout)
    served_keys = {(r["method"], r["pattern"]) for r in served}
    rows = {(r["method"], r["pattern"]): r for r in ROWS}
    c.eq(len(rows), len(ROWS), "one row per route in the table")
    for key in sorted(served_keys - set(rows)):
        c.check(False, "%s %s is served but has no row in the authorization table" % key)
    for key in sorted(set(rows) - served_keys):
        if rows[key]["soon"]:
            print("authz: %s %s is not in this build yet: its row waits" % key)
        else:
            c.check(False, "%s %s has a row but is not served" % key)
    for key, row in rows.items():
        c.check(pattern_re(row["pattern"]).match(fill(row["path"], own).split("?")[0]),
                "the path of %s %s matches its pattern" % key)

    # every cell, refusals first (in route table order), so that an allowed write cannot hide
    # a refusal behind a changed state; then the allowed ones
    cells = []
    for r in served:
        row = rows.get((r["method"], r["pattern"]))
        if not row:
            continue
        for role in ROLES:
            for foreign in ([False, True] if row["org"] else [False]):
                if foreign and role == "P":
                    continue  # the platform admin's organisation is every organisation
                cells.append((row, role, foreign))
    settle(gw)
    counts = {"allow": 0, "deny": 0, "same": 0}
    # refusals, fixed answers, allowed reads, allowed writes: a write cannot change what a
    # refusal or a read meets (a new feed URL, a cancelled booking)
    for phase in ("deny", "same", "allow-read", "allow-write"):
        for row, role, foreign in cells:
            kind, status = expected(row, role, foreign)
            if kind == "allow":
                if phase != ("allow-read" if row["method"] == "GET" else "allow-write"):
                    continue
            elif kind != phase:
                continue
            counts[kind] += 1
            ctx = other if foreign else own
            path = fill(row["path"], ctx)
            body = fill_body(row["body"](None) if callable(row["body"]) else row["body"], ctx)
            what = "%s %s as %s on %s organisation" % (row["method"], path, NAMES[role],
                                                       "a foreign" if foreign else "its own")
            if kind == "allow":
                got = gw.call(row["method"], path, body, tokens[role])
                ok = got.status not in (401, 403) and (foreign or row["may404"] or
                                                       got.status != 404)
                c.check(ok, "%s is allowed: got %d %s" % (what, got.status, got.raw[:160]))
                continue
            settle(gw)
            before = gw.snapshot()
            got = gw.call(row["method"], path, body, tokens[role])
            if status == "refused":
                c.check(400 <= got.status < 500, "%s is refused: got %d" % (what, got.status))
            else:
                c.eq(got.status, status, "%s: status" % what)
            if got.status >= 400 and got.json is not None:
                c.check(isinstance(got.json.get("error"), str) and
                        isinstance(got.json.get("message"), str),
                        "%s: the API's error body" % what)
            elif got.status >= 400:
                c.check(False, "%s: the error has the API's JSON body: %r" % (what, got.raw[:100]))
            settle(gw)
            c.eq(gw.snapshot(), before, "%s wrote nothing" % what)
    print("authz: %d routes, %d refused cells, %d fixed-answer cells, %d allowed cells"
          % (len(served), counts["deny"], counts["same"], counts["allow"]))
    gw.stop()
finally:
    gw.cleanup()
c.done()
