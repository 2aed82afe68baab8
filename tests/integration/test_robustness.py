"""Robustness: every route of the API gets malformed input (broken JSON, wrong types, huge and
odd values, unknown fields, bad ids and tokens); each answer is a 4xx with the documented error
body, never a 5xx, and the gateway stays healthy and unchanged."""
import random

from gwtest import Checks, Gateway

c = Checks("robustness")
# a thousand requests from one address, the link routes among them: a limit of their own so that
# every route is exercised past 429 (the limits themselves: test_abuse.py)
gw = Gateway(test_clock=True, extra_args=["--token-route-limit", "100000"])
gw.start()
rnd = random.Random(20261123)

ROUTES = [
    ("POST", "/v1/orgs"), ("GET", "/v1/orgs/{org}"),
    ("POST", "/v1/orgs/{org}/users"), ("GET", "/v1/orgs/{org}/users"),
    ("GET", "/v1/orgs/{org}/users/{user}"), ("PATCH", "/v1/orgs/{org}/users/{user}"),
    ("PUT", "/v1/orgs/{org}/users/{user}/availability"),
    ("POST", "/v1/orgs/{org}/users/{user}/feed"),
    ("PUT", "/v1/orgs/{org}/users/{user}/calendar"),
    ("DELETE", "/v1/orgs/{org}/users/{user}/calendar"),
    ("GET", "/v1/orgs/{org}/users/{user}/calendar/connect"),
    ("GET", "/v1/orgs/{org}/users/{user}/calendar/connect?provider=caldav%00"),
    ("GET", "/v1/orgs/{org}/users/{user}/calendar/connect?provider=google"),
    ("GET", "/oauth/callback"), ("GET", "/oauth/callback?code={tok}&state={tok}"),
    ("GET", "/oauth/callback?error=access_denied&error_description=%0D%0Ax&state=%FF"),
    ("GET", "/oauth/callback?state=" + "s" * 3000 + "&code="),
    ("GET", "/v1/orgs/{org}/calendar-connections"),
    ("GET", "/v1/orgs/{org}/settings"), ("PATCH", "/v1/orgs/{org}/settings"),
    ("POST", "/v1/orgs/{org}/session-types"),
    ("POST", "/v1/orgs/{org}/requests"), ("GET", "/v1/orgs/{org}/requests"),
    ("GET", "/v1/orgs/{org}/requests/{req}"), ("PATCH", "/v1/orgs/{org}/requests/{req}"),
    ("POST", "/v1/orgs/{org}/requests/{req}/claim"),
    ("POST", "/v1/orgs/{org}/requests/{req}/scheduling-link"),
    ("POST", "/v1/orgs/{org}/requests/{req}/cancel"),
    ("GET", "/v1/manage/{tok}"), ("POST", "/v1/manage/{tok}/cancel"),
    ("POST", "/v1/manage/{tok}/reschedule"),
    ("GET", "/v1/schedule/{tok}"), ("POST", "/v1/schedule/{tok}/booking"),
    ("POST", "/v1/schedule/{tok}/payment"),
    ("GET", "/v1/orgs/{org}/bookings"), ("GET", "/v1/orgs/{org}/bookings/{bk}"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/confirm-payment"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/complete"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/undo-complete"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/no-show"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/cancel"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/reschedule"),
    ("POST", "/v1/orgs/{org}/bookings/{bk}/notes"), ("GET", "/v1/orgs/{org}/bookings/{bk}/effects"),
    ("GET", "/v1/orgs/{org}/customers/{email}/bookings"), ("POST", "/v1/orgs/{org}/checkin"),
    ("GET", "/v1/orgs/{org}/reports/payouts"),
    ("GET", "/v1/survey/{tok}"), ("POST", "/v1/survey/{tok}"),
    ("GET", "/v1/orgs/{org}/outbox"), ("POST", "/v1/orgs/{org}/outbox/{ob}/retry"),
    ("PUT", "/v1/orgs/{org}/providers/smtp"), ("PUT", "/v1/orgs/{org}/providers/google"),
    ("GET", "/v1/orgs/{org}/providers"), ("DELETE", "/v1/orgs/{org}/providers/zoho"),
    ("PUT", "/v1/test/clock"), ("GET", "/v1/feeds/{tok}.ics"),
    ("POST", "/v1/test/busy-refresh"),
]

ODD_VALUES = [None, True, -1, 0, 2 ** 63, -2 ** 63 - 1, 1.5, "", " ", "x" * 5000, "\u0000",
              "a\r\nBcc: x@y.z", "\ud7ff\ue000", "2026-13-45T99:99:99Z", [], [None], {}, {"a": {}},
              "<script>", "../../etc/passwd", "%00", "9" * 40]
FIELDS = ["name", "timezone", "email", "roles", "skills", "notify_on_confirm", "active",
          "weekly", "blackouts", "reminder_hours", "checkin", "tick_minutes", "lengths",
          "price_cents", "currency", "customer", "session_type_id", "answers", "start",
          "length_minutes", "reference", "note", "reason", "customer_email", "confirm", "body",
          "rating", "comment", "host", "port", "security", "password", "dkim", "client_id",
          "now", "trainer", "provider", "calendar_id", "refresh_token", "bogus"]
RAW = [b"{", b"[]", b"null", b"\"x\"", b"{\"a\":1,\"a\":2}", b"\xff\xfe{}", b"{}" * 3,
       b"{\"customer\": {\"name\": \"x\", \"email\": \"a@b.cd\"}} trailing"]
IDS = ["0", "-1", "abc", "99999999999999999999", "1.5", "%2e%2e", "1;DROP%20TABLE%20users"]


def path_of(tmpl, ids):
    return (tmpl.replace("{org}", ids["org"]).replace("{user}", ids["user"])
            .replace("{req}", ids["req"]).replace("{bk}", ids["bk"]).replace("{ob}", ids["ob"])
            .replace("{tok}", ids["tok"]).replace("{email}", ids["email"]))


try:
    org = gw.org("Robust", "UTC")
    admin = gw.user(org["id"], "admin@robust.test", ["org_admin", "trainer"], ["yoga"])
    good = {"org": str(org["id"]), "user": str(admin["id"]), "req": "1", "bk": "1", "ob": "1",
            "tok": "x" * 43, "email": "a@b.cd"}
    tokens = [None, admin["token"], gw.admin_token, "ord_" + "A" * 43, "x" * 5000]
    before = gw.snapshot()
    fivexx = []
    count = 0
    for method, tmpl in ROUTES:
        for trial in range(24):
            ids = dict(good)
            if trial % 6 == 5:
                k = rnd.choice(list(ids))
                ids[k] = rnd.choice(IDS)
            tok = rnd.choice(tokens)
            if trial % 4 == 0:
                raw, body = rnd.choice(RAW), None
            else:
                raw = None
                body = {rnd.choice(FIELDS): rnd.choice(ODD_VALUES)
                        for _ in range(rnd.randint(1, 4))}
            r = gw.call(method, path_of(tmpl, ids), body, tok, raw=raw)
            count += 1
            if r.status >= 500:
                fivexx.append((method, path_of(tmpl, ids), body or raw, r.status, r.raw[:200]))
            elif r.status >= 400:
                c.check(bool(r.json and r.json.get("error") and r.json.get("message")),
                        "error body of %s %s: %r" % (method, tmpl, r.raw[:200]))
    c.eq(fivexx, [], "no 5xx among %d malformed requests" % count)
    c.eq(gw.call("GET", "/healthz").status, 200, "still healthy")
    after = gw.snapshot()
    # a valid-looking PATCH of the admin's own fields may have been accepted: compare the rest
    changed = [t for t in before if t not in ("users", "orgs", "provider_configs", "meta")
               and before[t] != after.get(t)]
    c.eq(changed, [], "malformed input wrote no requests, bookings or deliveries")
finally:
    gw.stop()
    gw.cleanup()
c.done()
