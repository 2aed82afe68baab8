"""Sign-in by emailed link, the session cookie and its CSRF token, end to end.

POST /v1/auth/sign-in answers 202 {} alike (status, body, about the same time) for an active
trainer or org admin and for an unknown address, another organisation, a kiosk or a
deactivated user; only the first two get a sign_in email (parsed from the maildir) with the link
{public_url}/login/{token}. The link works once (a second login 410, two racing logins: one
wins), for 15 minutes of the test clock. The login sets the cookie HttpOnly, SameSite=Lax,
Path=/, Secure only with an https public URL; the cookie reads the API like the user's token;
a change made with it needs X-CSRF-Token (403 and nothing written without it, or with another
origin), bearer calls need none; sign-out and deactivation end the session (401). No answer
carries Access-Control-Allow-Origin. Sign-ins per address are limited (429 with Retry-After,
nothing written); bad bodies are 400 naming the field and write nothing. No token reaches the
log.
"""
import calendar
import re
import statistics
import threading
import time

from gwtest import Checks, Gateway

c = Checks("signin")


def link_tokens(gw, to):
    """The tokens of every sign_in email to address to, oldest first."""
    out = []
    for m in gw.maildir():
        if str(m["X-Ordinatus-Kind"]) == "sign_in" and to in str(m["To"]):
            found = re.search(re.escape(gw_public(gw)) + r"/login/([A-Za-z0-9_-]+)",
                              m.get_body(("plain",)).get_content())
            out.append(found.group(1) if found else None)
    return out


def gw_public(gw):
    return getattr(gw, "public", gw.url)


def wait_token(gw, to, n=1):
    """The n-th sign_in token to `to`, waiting for its email."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        toks = link_tokens(gw, to)
        if len(toks) >= n:
            return toks[n - 1]
        time.sleep(0.05)
    return None


def cookie_of(r):
    """(the name=value pair, the set of attributes) of the answer's Set-Cookie, or None."""
    sc = r.headers.get("Set-Cookie")
    if not sc:
        return None
    parts = [p.strip() for p in sc.split(";")]
    return parts[0], {p.split("=")[0].lower(): (p.split("=", 1)[1] if "=" in p else True)
                      for p in parts[1:]}


def same(before, after, what):
    """Check that two gw.snapshot()s are equal, naming only the tables that differ."""
    diff = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
    c.eq(diff, [], what + " (tables that changed)")


def login(gw, token):
    r = gw.call("POST", "/v1/auth/login", {"token": token})
    ck = cookie_of(r)
    return r, (ck[0] if ck else None)


def sign_in(gw, email, org):
    return gw.call("POST", "/v1/auth/sign-in", {"email": email, "org": org})


gw = Gateway(test_clock=True)
gw.start()
try:
    T0 = "2026-12-01T09:00:00Z"
    gw.ok("PUT", "/v1/test/clock", {"now": T0})
    org = gw.org("Riverside Fitness")["id"]
    other = gw.org("Other Org")["id"]
    OP = "/v1/orgs/%d" % org
    admin = gw.user(org, "olga@example.com", ["org_admin"], name="Olga Admin")
    ana = gw.user(org, "ana@example.com", ["trainer"], ["yoga"], name="Ana Lindqvist")
    ben = gw.user(org, "ben@example.com", ["trainer"], ["yoga"], name="Ben Okafor")
    kiosk = gw.user(org, "desk@example.com", ["kiosk"], name="Front Desk")
    gone = gw.user(org, "gone@example.com", ["trainer"], name="Gone Trainer")
    gw.ok("PATCH", OP + "/users/%d" % gone["id"], {"active": False}, admin["token"])
    # trainers for the timing comparison: each signs in once, as does each unknown address
    timers = [gw.user(org, "t%d@example.com" % i, ["trainer"])["id"] for i in range(8)]

    # ---- sign-in: the same answer for everyone ----
    before = gw.snapshot()
    for who, o in (("nobody@example.com", org), ("ben@example.com", other),
                   ("desk@example.com", org), ("gone@example.com", org),
                   ("admin@example.com", org)):
        r = sign_in(gw, who, o)
        c.eq((r.status, r.json), (202, {}), "sign-in of %s in org %d" % (who, o))
        c.check("Set-Cookie" not in r.headers, "no cookie from a sign-in")
    r = sign_in(gw, "ben@example.com", 999999)
    c.eq((r.status, r.json), (202, {}), "sign-in to an organisation that does not exist")
    same(before, gw.snapshot(), "sign-ins that name nobody who may sign in write nothing")

    known, unknown = [], []
    for i in range(8):
        t = time.perf_counter()
        a = sign_in(gw, "t%d@example.com" % i, org)
        known.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = sign_in(gw, "stranger%d@example.com" % i, org)
        unknown.append(time.perf_counter() - t)
        c.eq((a.status, a.raw, b.status, b.raw), (202, "{}", 202, "{}"),
             "known and unknown address %d: the same status and body" % i)
        c.eq(sorted(a.headers), sorted(b.headers), "known and unknown: the same header names")
    mk, mu = statistics.median(known), statistics.median(unknown)
    print("  sign-in median: known %.2f ms, unknown %.2f ms" % (mk * 1000, mu * 1000))
    c.check(abs(mk - mu) < 0.05, "known and unknown take about the same time (%.1f vs %.1f ms)"
            % (mk * 1000, mu * 1000))

    # the trainer's email: kind, recipient, subject, link; its outbox row and dedupe key
    c.eq(sign_in(gw, "Ana@Example.com", org).status, 202, "sign-in of Ana (address case ignored)")
    tok = wait_token(gw, "ana@example.com")
    c.check(tok is not None and len(tok) >= 40, "Ana's sign_in email carries /login/{token}")
    m = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "sign_in"
         and "ana@example.com" in str(m["To"])][0]
    c.eq(str(m["Subject"]), "Your sign-in link for Riverside Fitness", "sign_in subject")
    c.check("15 minutes" in m.get_body(("plain",)).get_content(), "the email says 15 minutes")
    c.check(m.get_body(("html",)) is not None and tok in m.get_body(("html",)).get_content(),
            "the HTML part links the same token")
    rows = gw.rows("SELECT kind, dedupe_key, deadline_at FROM outbox WHERE kind = 'sign_in'"
                   " AND dedupe_key LIKE ?", "sign_in:%d:%%" % ana["id"])
    c.eq(len(rows), 1, "one sign_in outbox row for Ana")
    c.check(re.fullmatch(r"sign_in:%d:\d+" % ana["id"], rows[0][1]) is not None,
            "dedupe key sign_in:{user}:{link}: %r" % rows[0][1])
    c.eq(rows[0][2], calendar.timegm(time.strptime(T0, "%Y-%m-%dT%H:%M:%SZ")) + 900,
         "the email's deadline is the link's end")
    c.eq(gw.rows("SELECT count(*) FROM sign_in_links WHERE token_hash = ?", tok), [(0,)],
         "the token itself is not stored (only its hash)")
    for who in ("nobody@example.com", "desk@example.com", "gone@example.com"):
        c.eq(link_tokens(gw, who), [], "no email to %s" % who)
    c.eq(sign_in(gw, "olga@example.com", org).status, 202, "sign-in of the org admin")
    otok = wait_token(gw, "olga@example.com")
    c.check(otok is not None, "an org admin gets a sign-in link")

    # ---- login: once ----
    before = gw.snapshot()
    r = gw.call("POST", "/v1/auth/login", {"token": "A" * 43})
    c.eq((r.status, r.json and r.json.get("error")), (404, "not_found"), "unknown token: 404")
    c.check("Set-Cookie" not in r.headers, "unknown token: no cookie")
    same(before, gw.snapshot(), "an unknown token writes nothing")
    r, ana_cookie = login(gw, tok)
    c.eq(r.status, 200, "login with Ana's link")
    c.eq(r.json and r.json["user"], {"id": ana["id"], "org_id": org, "name": "Ana Lindqvist",
                                     "email": "ana@example.com", "roles": ["trainer"]},
         "login answers the user")
    ana_csrf = r.json and r.json.get("csrf_token")
    c.check(isinstance(ana_csrf, str) and len(ana_csrf) >= 40, "login answers a CSRF token")
    name, attrs = cookie_of(r)
    c.check(name.startswith("ordinatus_session=") and len(name) > 50, "the session cookie")
    c.check(attrs.get("httponly") is True, "cookie HttpOnly")
    c.eq(attrs.get("samesite"), "Lax", "cookie SameSite=Lax")
    c.eq(attrs.get("path"), "/", "cookie Path=/")
    c.check("secure" not in attrs, "no Secure with an http public URL")
    c.eq(attrs.get("max-age"), "43200", "the session lasts 12 hours")
    c.eq(gw.rows("SELECT count(*) FROM sessions WHERE session_hash = ?",
                 name.split("=", 1)[1]), [(0,)], "the cookie value is not stored (its hash is)")
    before = gw.snapshot()
    r = gw.call("POST", "/v1/auth/login", {"token": tok})
    c.eq((r.status, r.json and r.json.get("error")), (410, "link_expired"),
         "the same link again: 410")
    c.check("Set-Cookie" not in r.headers, "a used link sets no cookie")
    same(before, gw.snapshot(), "a used link writes nothing")

    # two logins racing with one link: exactly one wins
    sign_in(gw, "ben@example.com", org)
    btok = wait_token(gw, "ben@example.com")
    results = []
    barrier = threading.Barrier(4)

    def race():
        barrier.wait()
        results.append(gw.call("POST", "/v1/auth/login", {"token": btok}).status)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.eq(sorted(results), [200, 410, 410, 410], "four racing logins with one link: one wins")
    c.eq(gw.rows("SELECT count(*) FROM sessions WHERE user_id = ?", ben["id"]), [(1,)],
         "one session for the racing link")

    # ---- the cookie at work ----
    CK = {"Cookie": ana_cookie}
    r = gw.call("GET", "/v1/auth/session", headers=CK)
    c.eq((r.status, r.json and r.json["user"]["id"], r.json and r.json["csrf_token"]),
         (200, ana["id"], ana_csrf), "GET /v1/auth/session with the cookie")
    c.eq(gw.call("GET", "/v1/auth/session").status, 401, "no cookie: 401")
    c.eq(gw.call("GET", "/v1/auth/session", token=ana["token"]).status, 401,
         "a bearer token is not a session: 401")
    c.eq(gw.call("GET", OP + "/users/%d" % ana["id"], headers=CK).status, 200,
         "the cookie reads Ana's own user")
    c.eq(gw.call("GET", OP + "/users", headers=CK).status, 403,
         "the cookie has Ana's roles: the user list is for admins (403)")
    c.eq(gw.call("GET", "/v1/orgs/%d/users" % other, headers=CK).status, 404,
         "another organisation: 404")
    c.eq(gw.call("GET", OP + "/requests?status=new").status, 401, "no cookie, no token: 401")

    # the public intake works with a cookie and no CSRF token (it needs no sign-in)
    req = gw.call("POST", OP + "/requests", {"customer": {"name": "Carla", "email":
                                                          "carla@example.com"},
                                             "skills": ["yoga"]}, headers=CK)
    c.eq(req.status, 201, "the public intake with a cookie and no CSRF token")
    rid = req.json["id"]
    c.eq(gw.call("GET", OP + "/requests?status=new", headers=CK).status, 200,
         "the cookie lists requests")

    claim = OP + "/requests/%d/claim" % rid
    # the intake's emails go out in the background: let the outbox settle first, so that the
    # snapshot sees only what the refused calls below could write
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.rows(
            "SELECT 1 FROM outbox WHERE status IN ('pending', 'leased')"):
        time.sleep(0.05)
    before = gw.snapshot()
    r = gw.call("POST", claim, headers=CK)
    c.eq((r.status, r.json), (403, {"error": "forbidden", "message":
                                    "missing or wrong CSRF token"}),
         "a cookie POST without X-CSRF-Token: 403")
    # one character changed (a token that begins with "x" gets a "y": the token is random)
    wrong = ("y" if ana_csrf[0] == "x" else "x") + ana_csrf[1:]
    r = gw.call("POST", claim, headers=dict(CK, **{"X-CSRF-Token": wrong}))
    c.eq(r.status, 403, "a wrong CSRF token: 403")
    r = gw.call("POST", claim, headers=dict(CK, **{"X-CSRF-Token": ana_csrf[:-1]}))
    c.eq(r.status, 403, "a CSRF token one character short: 403")
    r = gw.call("POST", claim, headers=dict(CK, **{"X-CSRF-Token": ana_csrf,
                                                  "Origin": "https://evil.example"}))
    c.eq((r.status, r.json and r.json["error"]), (403, "forbidden"),
         "the right CSRF token from another origin: 403")
    r = gw.call("PATCH", OP + "/users/%d" % ana["id"], {"name": "Mallory"}, headers=CK)
    c.eq(r.status, 403, "a cookie PATCH without the CSRF token: 403")
    same(before, gw.snapshot(), "refused cookie changes wrote nothing")
    r = gw.call("POST", claim, headers=dict(CK, **{"X-CSRF-Token": ana_csrf,
                                                  "Origin": gw.url}))
    c.eq((r.status, r.json and r.json.get("status")), (200, "claimed"),
         "the cookie with the CSRF token (and our origin) claims")

    # bearer calls need no CSRF token, with or without a cookie beside them
    req2 = gw.ok("POST", OP + "/requests", {"customer": {"name": "Dora", "email":
                                                         "dora@example.com"},
                                            "skills": ["yoga"]})
    r = gw.call("POST", OP + "/requests/%d/claim" % req2["id"], token=ben["token"],
                headers={"Cookie": ana_cookie, "Origin": "https://evil.example"})
    c.eq((r.status, r.json and r.json.get("trainer_id")), (200, ben["id"]),
         "a bearer claim needs no CSRF token; the token wins over a cookie")
    r = gw.call("POST", OP + "/requests/%d/cancel" % req2["id"], {"reason": "test"},
                token=ben["token"], headers={"Cookie": "ordinatus_session=" + "B" * 43})
    c.eq(r.status, 200, "a bearer call with a stale cookie beside it")

    # ---- no cross-origin reads ----
    EVIL = {"Origin": "https://evil.example"}
    for method, path, hdrs in (("GET", "/v1/auth/session", dict(CK, **EVIL)),
                               ("GET", OP + "/requests", dict(CK, **EVIL)),
                               ("OPTIONS", "/v1/auth/session",
                                dict(EVIL, **{"Access-Control-Request-Method": "POST"})),
                               ("POST", "/v1/auth/sign-in", EVIL),
                               ("GET", "/healthz", EVIL)):
        r = gw.call(method, path, headers=hdrs)
        c.check(not any(k.lower().startswith("access-control-") for k in r.headers),
                "%s %s from a foreign Origin: no Access-Control-* header (%d)"
                % (method, path, r.status))

    # ---- sign-in limit per address ----
    for i in range(4):  # Ana has used one of her five
        c.eq(sign_in(gw, "ana@example.com", org).status, 202, "sign-in %d of Ana" % (i + 2))
    wait_token(gw, "ana@example.com", 5)
    before = gw.snapshot()
    r = sign_in(gw, "ANA@example.com", org)
    c.eq((r.status, r.json and r.json.get("error")), (429, "rate_limited"),
         "the sixth sign-in of one address at once: 429")
    c.check(r.headers.get("Retry-After", "").isdigit() and int(r.headers["Retry-After"]) >= 1,
            "429 has Retry-After: %r" % r.headers.get("Retry-After"))
    r = sign_in(gw, "ana@example.com", other)
    c.eq(r.status, 429, "the limit is per address, whatever the organisation")
    same(before, gw.snapshot(), "a limited sign-in writes nothing")
    for i in range(5):
        sign_in(gw, "ghost@example.com", org)
    c.eq(sign_in(gw, "ghost@example.com", org).status, 429,
         "an unknown address is limited the same way")
    c.eq(sign_in(gw, "ben@example.com", org).status, 202, "another address is not limited")
    wait_token(gw, "ben@example.com", 2)

    # ---- bad bodies: 400 naming the field, nothing written ----
    before = gw.snapshot()
    for body, field in (({"org": org}, "email"), ({"email": "ana@example.com"}, "org"),
                        ({"email": "not-an-address", "org": org}, "email"),
                        ({"email": "ana@example.com", "org": "1"}, "org"),
                        ({"email": "ana@example.com", "org": 0}, "org"),
                        ({"email": "ana@example.com", "org": 1.5}, "org"),
                        ({"email": ["ana@example.com"], "org": org}, "email"),
                        ({"email": "ana@example.com", "org": org, "remember": True},
                         "remember")):
        r = gw.call("POST", "/v1/auth/sign-in", body)
        c.eq((r.status, r.json and r.json.get("error"), r.json and r.json.get("field")),
             (400, "invalid_field", field), "sign-in %r" % body)
    for body, field in (({}, "token"), ({"token": 5}, "token"), ({"token": ""}, "token"),
                        ({"token": tok, "org": org}, "org")):
        r = gw.call("POST", "/v1/auth/login", body)
        c.eq((r.status, r.json and r.json.get("error"), r.json and r.json.get("field")),
             (400, "invalid_field", field), "login %r" % body)
    r = gw.call("POST", "/v1/auth/sign-in", raw=b"{not json")
    c.eq((r.status, r.json and r.json.get("error")), (400, "invalid_json"), "sign-in: bad JSON")
    r = gw.call("POST", "/v1/auth/sign-in", raw=b"email=ana@example.com&org=1",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    c.eq(r.status, 415, "a form post to the sign-in (another site's page): 415")
    same(before, gw.snapshot(), "bad bodies wrote nothing")

    # ---- sign-out ----
    r = gw.call("POST", "/v1/auth/sign-out", headers=CK)
    c.eq(r.status, 403, "sign-out with the cookie needs the CSRF token")
    r = gw.call("POST", "/v1/auth/sign-out", headers=dict(CK, **{"X-CSRF-Token": ana_csrf}))
    c.eq((r.status, r.json), (200, {}), "sign-out")
    ck = cookie_of(r)
    c.check(ck is not None and ck[0] == "ordinatus_session=" and ck[1].get("max-age") == "0",
            "sign-out clears the cookie (Max-Age=0)")
    c.eq(gw.call("GET", "/v1/auth/session", headers=CK).status, 401, "after sign-out: 401")
    c.eq(gw.call("GET", OP + "/requests", headers=CK).status, 401,
         "after sign-out the cookie reads nothing")
    c.eq(gw.rows("SELECT count(*) FROM sessions WHERE user_id = ?", ana["id"]), [(0,)],
         "sign-out deleted the session")
    r = gw.call("POST", "/v1/auth/sign-out")
    c.eq(r.status, 200, "sign-out without a session: 200 all the same")

    # ---- deactivation ends the sessions; a link sent before it no longer works ----
    sign_in(gw, "t3@example.com", org)
    sign_in(gw, "t3@example.com", org)
    t3a = wait_token(gw, "t3@example.com", 2)
    t3b = wait_token(gw, "t3@example.com", 3)
    r, t3_cookie = login(gw, t3a)
    c.eq(gw.call("GET", OP + "/requests", headers={"Cookie": t3_cookie}).status, 200,
         "t3 reads requests with the cookie")
    gw.ok("PATCH", OP + "/users/%d" % timers[3], {"active": False}, admin["token"])
    c.eq(gw.call("GET", "/v1/auth/session", headers={"Cookie": t3_cookie}).status, 401,
         "a deactivated user's cookie: 401")
    c.eq(gw.call("GET", OP + "/requests", headers={"Cookie": t3_cookie}).status, 401,
         "a deactivated user's cookie reads nothing")
    c.eq(gw.rows("SELECT count(*) FROM sessions WHERE user_id = ?", timers[3]), [(0,)],
         "deactivation deleted the sessions")
    c.check(login(gw, t3b)[0].status in (404, 410), "a link sent before deactivation is dead")
    gw.ok("PATCH", OP + "/users/%d" % timers[3], {"active": True}, admin["token"])
    c.check(login(gw, t3b)[0].status in (404, 410), "and stays dead after reactivation")
    # ---- 15 minutes of the test clock ----
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T10:00:00Z"})
    sign_in(gw, "t0@example.com", org)
    sign_in(gw, "t1@example.com", org)
    t0tok = wait_token(gw, "t0@example.com", 2)
    t1tok = wait_token(gw, "t1@example.com", 2)
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T10:14:59Z"})
    c.eq(login(gw, t0tok)[0].status, 200, "the link works 14:59 after it was sent")
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T10:15:00Z"})
    r = gw.call("POST", "/v1/auth/login", {"token": t1tok})
    c.eq((r.status, r.json and r.json.get("error")), (410, "link_expired"),
         "15:00 after it was sent the link has expired: 410")

    # the session ends 12 hours after the login
    sign_in(gw, "t2@example.com", org)
    r, t2_cookie = login(gw, wait_token(gw, "t2@example.com", 2))
    c.eq(r.status, 200, "t2 signs in at 10:15")
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T22:14:59Z"})
    c.eq(gw.call("GET", "/v1/auth/session", headers={"Cookie": t2_cookie}).status, 200,
         "the session is live 11:59:59 later")
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T22:15:00Z"})
    r = gw.call("GET", "/v1/auth/session", headers={"Cookie": t2_cookie})
    c.eq(r.status, 401, "12 hours after the login the session has ended: 401")
    ck = cookie_of(r)
    c.check(ck is not None and ck[1].get("max-age") == "0",
            "the answer clears the stale cookie (Max-Age=0)")


    # ---- a sent sign_in email keeps no working link in the outbox after the next tick ----
    gw.ok("POST", "/v1/test/tick")
    payloads = [p for (p,) in gw.rows("SELECT payload FROM outbox WHERE kind = 'sign_in'"
                                      " AND status = 'sent'")]
    c.check(len(payloads) >= 10, "sent sign_in rows (%d)" % len(payloads))
    c.eq([p for p in payloads if "/login/redacted" not in p], [],
         "every sent sign_in payload has its link redacted")
    c.eq([t for t in (tok, otok, btok, t0tok, t1tok) if any(t in p for p in payloads)], [],
         "no link token is left in the outbox")
finally:
    log = gw.read_log()
    gw.stop()
    gw.cleanup()

leaked = [t for t in (tok, otok, btok, t0tok, t1tok, ana_csrf) if t and t in log]
leaked += [ck for ck in (ana_cookie, t2_cookie) if ck and ck.split("=", 1)[1] in log]
c.eq(leaked, [], "no link token, session cookie or CSRF token in the log")

# ---- an https public URL: the cookie is Secure, the origin is that URL's ----
gw = Gateway(extra_args=["--public-url", "https://book.example.com"])
gw.public = "https://book.example.com"
gw.start()
try:
    org = gw.org()["id"]
    u = gw.user(org, "ana@example.com", ["trainer"])
    sign_in(gw, "ana@example.com", org)
    tok = wait_token(gw, "ana@example.com")
    c.check(tok is not None, "the link is https://book.example.com/login/{token}")
    r, cookie = login(gw, tok)
    c.eq(r.status, 200, "login (https public URL)")
    c.check(cookie_of(r)[1].get("secure") is True, "the cookie is Secure with an https URL")
    csrf = r.json["csrf_token"]
    feed = "/v1/orgs/%d/users/%d/feed" % (org, u["id"])
    r = gw.call("POST", feed, headers={"Cookie": cookie, "X-CSRF-Token": csrf,
                                       "Origin": gw.url})
    c.eq(r.status, 403, "the listen address is not the public origin: 403")
    r = gw.call("POST", feed, headers={"Cookie": cookie, "X-CSRF-Token": csrf,
                                       "Origin": "https://book.example.com"})
    c.eq(r.status, 200, "the public URL's origin with the CSRF token")
    r = gw.call("POST", "/v1/auth/sign-out", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    c.check(cookie_of(r)[1].get("secure") is True, "the clearing cookie is Secure too")
finally:
    gw.stop()
    gw.cleanup()

c.done()
