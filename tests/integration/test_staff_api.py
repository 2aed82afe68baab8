"""What the staff pages read beyond the contract: the "actions" each request and booking
answer carries (what the caller may do now, by the guards the calls apply and the gateway's
clock), and the free times a booking can move to (GET .../bookings/{id}/slots), which refuses,
as the reschedule does, a booking that can no longer move."""
import time

from gwtest import Checks, Gateway

c = Checks("staff_api")
gw = Gateway(test_clock=True)
gw.start()


def set_clock(t):
    gw.ok("PUT", "/v1/test/clock", {"now": t})


try:
    set_clock("2026-11-30T08:00:00Z")  # a Monday
    org = gw.org("Berlin Yoga", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])
    A = gw.user(org["id"], "admin@by.test", ["org_admin"])["token"]
    t1 = gw.user(org["id"], "tia@by.test", ["trainer"], ["yoga"], token=A)
    t2 = gw.user(org["id"], "tom@by.test", ["trainer"], ["yoga"], token=A)
    T1, T2 = t1["token"], t2["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "09:00", "end": "12:00"} for d in ("mon", "tue", "wed")]
    gw.ok("PUT", O + "/users/%d/availability" % t1["id"], {"weekly": week}, T1)

    o = gw.ok("GET", O, token=T1)
    c.eq((o["delivery_method"], o["calendar_providers"]), ("manual", []),
         "a trainer reads the delivery method; no calendar provider is configured")
    gw.ok("PUT", O + "/providers/google", {"client_id": "cid", "client_secret": "sec"}, A)
    o = gw.ok("GET", O, token=T1)
    c.eq(o["calendar_providers"], ["google"], "a configured Google is one a trainer can connect")
    c.check("client_secret" not in str(o) and "cid" not in str(o), "and none of its settings")

    # ---- requests ----
    req = gw.ok("POST", O + "/requests", {"customer": {"name": "Nina New", "email": "n@x.test"},
                                          "skills": ["yoga"]})
    R = O + "/requests/%d" % req["id"]
    c.eq(gw.ok("GET", R, token=T1)["actions"], ["claim"], "a matching trainer may claim a new one")
    c.eq(gw.ok("GET", R, token=A)["actions"], ["cancel"], "an admin (no trainer role) may cancel")
    listed = [x for x in gw.ok("GET", O + "/requests?status=new", token=T2) if x["id"] == req["id"]]
    c.eq(listed and listed[0]["actions"], ["claim"], "the list carries the actions too")
    gw.ok("POST", R + "/claim", token=T1)
    c.eq(gw.ok("GET", R, token=T1)["actions"], ["session-type", "scheduling-link", "cancel"],
         "the claiming trainer may set the type, send the link, cancel")
    c.eq(gw.call("GET", R, token=T2).status, 403, "another trainer no longer sees it")
    gw.ok("POST", R + "/scheduling-link", token=T1)
    c.eq(gw.ok("GET", R, token=T1)["actions"], ["scheduling-link", "cancel"],
         "while scheduling: resend and cancel, no session type change")

    # ---- bookings ----
    b1 = gw.book(O, T1, st["id"], ["yoga"], "Cara", "cara@x.test", "2026-12-01T10:00:00Z")
    b2 = gw.book(O, T1, st["id"], ["yoga"], "Dan", "dan@x.test", "2026-12-01T09:00:00Z")
    B1 = O + "/bookings/%d" % b1
    week = gw.ok("GET", O + "/bookings?from=2026-12-01T09:30:00Z&to=2026-12-08T00:00:00Z",
                 token=A)
    c.eq([x["id"] for x in week], [b1], "from and to bound the start: [from, to)")
    r = gw.call("GET", O + "/bookings?from=monday", token=A)
    c.eq((r.status, r.json and r.json.get("field")), (400, "from"), "a bad from is 400 by name")
    c.eq(gw.ok("GET", B1, token=T1)["actions"], ["cancel", "reschedule"],
         "before the start the trainer may cancel or move")
    c.eq(gw.ok("GET", B1, token=A)["actions"], ["complete", "no-show", "cancel", "reschedule"],
         "an admin may complete or record a no-show any time")
    c.eq(gw.call("GET", B1, token=T2).status, 403, "another trainer's booking is 403")

    sl = gw.call("GET", B1 + "/slots", token=T1)
    c.eq(sl.status, 200, "the trainer reads the free times of their booking")
    starts = [s["start"] for s in sl.json["slots"]]
    c.check("2026-12-01T10:00:00Z" in starts, "its own time counts free")
    c.check("2026-12-01T09:00:00Z" not in starts and "2026-12-01T08:30:00Z" not in starts,
            "another held booking's time is not offered: %r" % starts[:12])
    c.check("2026-11-30T08:00:00Z" in starts and all(s >= "2026-11-30T08:00:00Z" for s in starts),
            "from now on, by the gateway's clock")
    c.eq(sl.json["length_minutes"], 60, "the booking's length")
    c.eq(gw.call("GET", B1 + "/slots", token=T2).status, 403, "another trainer: 403")
    c.eq(gw.call("GET", O + "/bookings/999/slots", token=A).status, 404, "unknown booking: 404")
    moved = gw.call("POST", B1 + "/reschedule", {"start": "2026-12-02T09:30:00Z"}, T1)
    c.eq(moved.status, 200, "an offered time is taken by the reschedule")
    c.check("2026-12-02T09:30:00Z" in starts, "the time moved to was one of those offered")
    sl = gw.ok("GET", B1 + "/slots", token=A)
    c.check("2026-12-01T10:00:00Z" in [s["start"] for s in sl["slots"]],
            "after the move the old time is free again")

    set_clock("2026-12-02T10:45:00Z")  # after b1's end (10:30)
    mine = {x["id"]: x["actions"] for x in gw.ok("GET", O + "/bookings", token=T1)}
    c.eq(mine.get(b1), ["complete", "no-show", "cancel", "reschedule"],
         "after the end the trainer may complete it")
    gw.ok("POST", B1 + "/complete", token=T1)
    c.eq(gw.ok("GET", B1, token=T1)["actions"], [], "a completed booking: nothing for a trainer")
    # the completion's survey email goes out in the background: let the outbox settle first,
    # so the snapshot sees only what the refusals below could change
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.rows(
            "SELECT 1 FROM outbox WHERE status IN ('pending', 'leased')"):
        time.sleep(0.05)
    before = gw.snapshot()
    r = gw.call("GET", B1 + "/slots", token=T1)
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "a completed booking has no times to move to")
    r = gw.call("POST", B1 + "/reschedule", {"start": "2026-12-08T09:00:00Z"}, A)
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "and the reschedule refuses it, for an admin too")
    c.eq(gw.snapshot(), before, "the refusals changed nothing")

    gw.ok("POST", O + "/bookings/%d/cancel" % b2, {"reason": "ill"}, T1)
    r = gw.call("GET", O + "/bookings/%d/slots" % b2, token=T1)
    c.eq(r.status, 409, "a cancelled booking has no times to move to")
    r = gw.call("POST", O + "/bookings/%d/reschedule" % b2, {"start": "2026-12-08T09:00:00Z"}, T1)
    c.eq(r.status, 409, "and cannot be moved")
    hist = gw.ok("GET", O + "/customers/cara@x.test/bookings", token=A)
    c.eq([x["actions"] for x in hist], [[]], "the customer's history carries actions "
         "(undo needs allow_undo_completion)")
    gw.ok("PATCH", O + "/settings", {"allow_undo_completion": True}, A)
    c.eq(gw.ok("GET", B1, token=A)["actions"], ["undo-complete"], "with undo allowed: Undo")

    # ---- the admin's test email ----
    before = len([m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "test_email"])
    r = gw.call("POST", O + "/providers/smtp/test", {}, A)
    c.eq((r.status, r.json and r.json.get("to")), (202, "admin@by.test"),
         "an admin's test email is accepted for their own address")
    r2 = gw.call("POST", O + "/providers/smtp/test", None, A)
    c.eq(r2.status, 202, "and a second one (each click is its own email)")
    c.eq(gw.call("POST", O + "/providers/smtp/test", {}, T1).status, 403, "a trainer: 403")
    c.eq(gw.call("POST", O + "/providers/smtp/test", {}, gw.admin_token).status, 403,
         "the platform admin (no address of the organisation): 403")
    c.eq(gw.call("POST", O + "/providers/smtp/test", {"to": "x@y.test"}, A).status, 400,
         "it takes no fields (no address of one's choosing)")
    got = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "test_email"]
        if len(got) >= before + 2:
            break
        time.sleep(0.05)
    c.eq(len(got), before + 2, "two test emails were delivered (maildir: no SMTP server set)")
    c.check(got and "admin@by.test" in str(got[-1]["To"]) and
            str(got[-1]["Subject"]) == "Test email from Berlin Yoga", "to the admin, subject")
    rows = gw.rows("SELECT kind, status FROM outbox WHERE kind = 'test_email'")
    c.eq(sorted(rows), [("test_email", "sent")] * 2, "through the outbox, sent")
    raw = gw.call("GET", "/metrics").raw
    c.check('ordinatus_effects_sent_total{kind="test_email",provider="maildir"} 2' in raw,
            "/metrics counts them as test_email, not other")
finally:
    gw.stop()
c.done()
