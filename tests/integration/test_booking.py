"""The booking lifecycle end to end with the test clock: links (resend revokes), slots, book,
pay, confirm, complete (too early for the trainer), survey once, no-show, reschedule and
cancel, notes, check-in, payout report, undo, and a race for one slot."""
import json
import re
import subprocess
import time
import threading

import icalendar

from gwtest import BIN, Checks, Gateway

c = Checks("booking")
gw = Gateway(test_clock=True)
gw.start()


def set_clock(t):
    gw.ok("PUT", "/v1/test/clock", {"now": t})


def mails(kind, to=None):
    out = []
    for m in gw.maildir():
        if str(m["X-Ordinatus-Kind"]) == kind and (to is None or to in str(m["To"])):
            out.append(m)
    return out


def wait_kind(kind, n, to=None):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = mails(kind, to)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return mails(kind, to)


def ics_of(m):
    for part in m.walk():
        if part.get_content_type() == "text/calendar":
            return part, icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None, None


try:
    set_clock("2026-11-30T08:00:00Z")  # a Monday
    org = gw.org("Berlin Yoga", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])  # files many requests from one address
    admin = gw.user(org["id"], "admin@by.test", ["org_admin"])
    A = admin["token"]
    c.eq(admin["created_at"], "2026-11-30T08:00:00Z", "a user is created at the test clock's time")
    t1 = gw.user(org["id"], "tia@by.test", ["trainer"], ["yoga"], name="Tia Trainer",
                 timezone="Europe/Berlin", notify_on_confirm=True, token=A)
    t2 = gw.user(org["id"], "tom@by.test", ["trainer"], ["yoga"], name="Tom Trainer", token=A)
    kiosk = gw.user(org["id"], "desk@by.test", ["kiosk"], token=A)
    T1, T2 = t1["token"], t2["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60, 90], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    av = gw.call("PUT", O + "/users/%d/availability" % t1["id"],
                 {"weekly": week, "blackouts": [{"start": "2026-12-03T00:00:00Z",
                                                 "end": "2026-12-04T00:00:00Z"}]}, T1)
    c.eq(av.status, 200, "trainer sets availability")
    c.eq(gw.call("PUT", O + "/users/%d/availability" % t1["id"],
                 {"weekly": [{"day": "mon", "start": "17:00", "end": "09:00"}]}, T1).status, 400,
         "end before start refused")
    c.eq(gw.call("PUT", O + "/users/%d/availability" % t1["id"], {"weekly": week}, T2).status,
         403, "another trainer cannot set it")
    gw.ok("PUT", O + "/users/%d/availability" % t2["id"], {"weekly": week}, T2)

    def new_booking(name, email, start, length=60, trainer_tok=T1):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": name, "email": email},
                                              "skills": ["yoga"]})
        gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=trainer_tok)
        gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]},
              trainer_tok)
        gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=trainer_tok)
        m = wait_kind("scheduling_link", 1, email)[-1]
        tok = re.search(r"/s/([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content()).group(1)
        b = gw.call("POST", "/v1/schedule/%s/booking" % tok,
                    {"start": start, "length_minutes": length})
        return req, tok, b

    # ---- the first booking: claim, link, resend, slots, book, pay, confirm, complete ----
    req = gw.ok("POST", O + "/requests", {"customer": {"name": "Cleo Customer",
                                                       "email": "cleo@example.test"},
                                          "skills": ["yoga"]})
    c.eq(gw.call("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1).status, 403,
         "no link before the claim")
    gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T1)
    # with two session types that fit, the trainer must choose one first
    gw.ok("POST", O + "/session-types", {"name": "Group yoga", "skills": ["yoga"],
                                         "lengths": [60], "price_cents": 1500,
                                         "currency": "EUR"}, A)
    r = gw.call("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
    c.eq((r.status, r.json and r.json.get("error")), (409, "invalid_state"),
         "no link without a session type when several fit")
    gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T1)
    c.eq(gw.call("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T2).status, 403,
         "only the claimer sends the link")
    l1 = gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
    c.eq(l1["status"], "scheduling", "request is scheduling")
    c.eq(l1["link_expires_at"], "2026-12-03T08:00:00Z", "link expires after 72 h")
    wait_kind("scheduling_link", 1, "cleo@example.test")  # sent before it is replaced
    l2 = gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
    links = wait_kind("scheduling_link", 2, "cleo@example.test")
    c.eq(len(links), 2, "two scheduling link emails (send and resend)")
    toks = [re.search(r"/s/([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content()).group(1)
            for m in links]
    c.check(toks[0] != toks[1], "the resent link is new")
    old, tok = sorted(toks, key=lambda t: gw.call("GET", "/v1/schedule/" + t).status)[::-1]
    r = gw.call("GET", "/v1/schedule/" + old)
    c.eq((r.status, r.json and r.json["error"]), (410, "link_expired"), "old link is 410")
    view = gw.ok("GET", "/v1/schedule/" + tok)
    c.eq(view["trainer"], {"name": "Tia Trainer"}, "schedule shows the trainer")
    c.eq(view["session_type"]["lengths"], [60, 90], "schedule shows the lengths")
    starts = {(s["start"], s["length_minutes"]) for s in view["slots"]}
    c.check(("2026-11-30T08:00:00Z", 60) in starts, "09:00 Berlin today is a slot")
    c.check(("2026-12-01T15:00:00Z", 60) in starts, "16:00 Berlin is the last 60 min slot")
    c.check(("2026-12-01T15:00:00Z", 90) not in starts, "a 90 min slot does not pass 17:00")
    c.check(not any(s.startswith("2026-12-03") for s, _ in starts), "blackout day has no slot")
    c.check(not any(s.startswith("2026-12-05") for s, _ in starts), "Saturday has no slot")
    c.check(all(s >= "2026-11-30T08:00:00Z" for s, _ in starts), "no slot in the past")
    r = gw.call("POST", "/v1/schedule/%s/booking" % tok,
                {"start": "2026-12-01T08:15:00Z", "length_minutes": 60})
    c.eq(r.status, 400, "off-grid start refused")
    r = gw.call("POST", "/v1/schedule/%s/booking" % tok,
                {"start": "2026-12-01T08:00:00Z", "length_minutes": 45})
    c.eq(r.status, 400, "a length the session type lacks is refused")
    r = gw.call("POST", "/v1/schedule/%s/booking" % old,
                {"start": "2026-12-01T08:00:00Z", "length_minutes": 60})
    c.eq(r.status, 410, "booking on the old link is 410")
    b = gw.call("POST", "/v1/schedule/%s/booking" % tok,
                {"start": "2026-12-01T08:00:00Z", "length_minutes": 60})
    c.eq((b.status, b.json and b.json.get("status")), (201, "pending_payment"), "booked")
    bid = b.json["booking_id"]
    c.eq(gw.ok("GET", O + "/requests/%d" % req["id"], token=A)["status"], "booked",
         "request is booked")
    view = gw.ok("GET", "/v1/schedule/" + tok)
    c.eq(view["slots"], [], "a booked link offers no more slots")
    r = gw.call("POST", O + "/bookings/%d/confirm-payment" % bid, token=T1)
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"), "confirm before pay")
    p = gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay_123"})
    c.eq(p["booking_id"], bid, "payment recorded")
    c.eq(gw.call("POST", O + "/bookings/%d/confirm-payment" % bid, token=T2).status, 403,
         "another trainer cannot confirm")
    bk = gw.ok("POST", O + "/bookings/%d/confirm-payment" % bid, token=T1)
    c.eq((bk["status"], bk["sequence"]), ("confirmed", 0), "confirmed")
    conf = wait_kind("confirmation", 1, "cleo@example.test")
    c.eq(len(conf), 1, "one confirmation email")
    part, cal = ics_of(conf[0])
    c.check(part is not None and part.get_param("method") == "REQUEST",
            "confirmation carries text/calendar; method=REQUEST")
    if cal is not None:
        ev = cal.walk("VEVENT")[0]
        c.eq(str(cal["METHOD"]), "REQUEST", "METHOD")
        c.eq(int(ev["SEQUENCE"]), 0, "SEQUENCE 0")
        c.eq(ev["DTSTART"].dt.isoformat(), "2026-12-01T08:00:00+00:00", "DTSTART UTC")
        c.eq(ev["DTEND"].dt.isoformat(), "2026-12-01T09:00:00+00:00", "DTEND UTC")
        c.check("tia@by.test" in str(ev["ORGANIZER"]), "ORGANIZER is the trainer")
        c.check("cleo@example.test" in str(ev["ATTENDEE"]), "ATTENDEE is the customer")
        c.check(str(ev["UID"]) == bk["uid"], "UID is the booking's")
    c.check("09:00" in conf[0].get_body(("plain",)).get_content(),
            "the customer sees Berlin time")
    tc = wait_kind("trainer_confirmation", 1, "tia@by.test")
    c.eq(len(tc), 1, "the trainer who opted in is told")
    if tc:
        body = tc[0].get_body(("plain",)).get_content()
        c.check("Cleo Customer" in body and "cleo@example.test" in body,
                "trainer confirmation names the customer")
        c.check("09:00" in body and "Europe/Berlin" in body,
                "trainer confirmation in the trainer's zone")
        c.eq(ics_of(tc[0])[0], None, "no invite to the trainer (the organizer)")
    c.eq(str(conf[0]["Subject"]).startswith("Your session is confirmed"), True,
         "confirmation subject")
    c.eq(conf[0]["To"].addresses[0].addr_spec, "cleo@example.test", "confirmation to customer")
    eff = gw.ok("GET", O + "/bookings/%d/effects" % bid, token=T1)
    keys = {e["kind"] for e in eff}
    c.check({"confirmation", "trainer_confirmation", "calendar"} <= keys, "effects: %r" % keys)
    c.eq(gw.rows("SELECT count(*) FROM dedupe_keys WHERE key=?", "calendar:%d:0" % bid)[0][0], 1,
         "calendar row with its dedupe key")
    # a calendar row no provider could handle has one provider name everywhere: "none"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.rows(
            "SELECT status FROM outbox WHERE kind='calendar' AND booking_id=?", bid) != [
            ("skipped",)]:
        time.sleep(0.05)
    cal_eff = [e for e in gw.ok("GET", O + "/bookings/%d/effects" % bid, token=T1)
               if e["kind"] == "calendar"]
    c.eq([(e["status"], e["provider"], e["provider_class"]) for e in cal_eff],
         [("skipped", "none", "calendar")], "effects: the calendar row's provider")
    api_rows = [x for x in gw.ok("GET", O + "/outbox", token=A)
                if x["kind"] == "calendar" and x["booking_id"] == bid]
    c.eq([x["provider"] for x in api_rows], ["none"], "outbox list (API): the same provider")
    cli = subprocess.run([BIN, "outbox", "--data", gw.data, "list", "--status", "skipped"],
                         capture_output=True, text=True, env=gw.env)
    cli_rows = [x for x in json.loads(cli.stdout) if x["kind"] == "calendar"
                and x["booking_id"] == bid]
    c.eq([x["provider"] for x in cli_rows], ["none"], "outbox list (CLI): the same provider")
    c.check('ordinatus_effects_skipped_total{kind="calendar",provider="none"} 1' in
            gw.call("GET", "/metrics").raw, "metrics: the same provider")
    # a time in the wrong format says which format is wanted
    r = gw.call("POST", O + "/bookings/%d/reschedule" % bid, {"start": "2026-12-02 08:00"}, T1)
    c.check(r.status == 400 and r.json["field"] == "start" and "RFC 3339" in r.json["message"]
            and "2026-12-02T08:00:00Z" in r.json["message"],
            "a time without T and zone: the error names the format with an example: %r" % r)

    # notes are private to their author
    gw.ok("POST", O + "/bookings/%d/notes" % bid, {"body": "knee injury, go easy"}, T1)
    c.eq([n["body"] for n in gw.ok("GET", O + "/bookings/%d/notes" % bid, token=T1)],
         ["knee injury, go easy"], "the author reads the note")
    c.eq(gw.ok("GET", O + "/bookings/%d/notes" % bid, token=A), [], "others do not")

    r = gw.call("POST", O + "/bookings/%d/complete" % bid, token=T1)
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "trainer completes too early: 409")
    set_clock("2026-12-01T08:30:00Z")
    done = gw.ok("POST", O + "/bookings/%d/complete" % bid, {"note": "good"}, A)
    c.eq((done["status"], done["completed_by"]), ("completed", admin["id"]),
         "admin completes any time")
    c.eq(done["completed_at"], "2026-12-01T08:30:00Z", "completed_at")
    sv = wait_kind("survey", 1, "cleo@example.test")
    c.eq(len(sv), 1, "survey email")
    c.eq(sv[0]["To"].addresses[0].addr_spec if sv else None, "cleo@example.test",
         "survey to the customer")
    stok = re.search(r"/survey/([A-Za-z0-9_-]+)", sv[0].get_body(("plain",)).get_content())
    stok = stok.group(1) if stok else ""
    c.eq(gw.call("GET", "/v1/survey/" + stok).status, 200, "survey page")
    c.eq(gw.call("POST", "/v1/survey/" + stok, {"rating": 6}).status, 400, "rating 6 refused")
    c.eq(gw.call("POST", "/v1/survey/" + stok, {"rating": 5, "comment": "great"}).status, 200,
         "survey answered")
    r = gw.call("POST", "/v1/survey/" + stok, {"rating": 1})
    c.eq(r.status, 409, "survey answered once")
    c.eq(gw.call("POST", O + "/bookings/%d/complete" % bid, token=A).status, 409,
         "completing twice: 409")

    # ---- the second booking: no-show ----
    _, tok2, b2 = new_booking("Nina Noshow", "nina@example.test", "2026-12-02T09:00:00Z")
    c.eq(b2.status, 201, "second booking")
    b2 = b2.json["booking_id"]
    gw.ok("POST", "/v1/schedule/%s/payment" % tok2, {"reference": "pay_2"})
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % b2, token=A)
    r = gw.call("POST", O + "/bookings/%d/no-show" % b2, {"customer": True}, T1)
    c.eq(r.status, 409, "no-show before the start: 409")
    set_clock("2026-12-02T09:20:00Z")
    r = gw.call("POST", O + "/bookings/%d/no-show" % b2, {"customer": False, "trainer": True}, T1)
    c.eq(r.status, 403, "a trainer cannot mark a trainer no-show")
    ns = gw.ok("POST", O + "/bookings/%d/no-show" % b2, {"customer": True, "note": "no call"}, T1)
    c.eq((ns["status"], ns["customer_no_show"], ns["trainer_no_show"], ns["no_show_marked_by"]),
         ("no_show", True, False, t1["id"]), "no-show recorded with who")
    nm = wait_kind("no_show", 1, "nina@example.test")
    c.check(len(nm) == 1 and "No Refund" in nm[0].get_body(("plain",)).get_content(),
            "no-show email with the policy's words")

    # ---- the third booking: reschedule, then cancel ----
    _, tok3, b3 = new_booking("Rita Resched", "rita@example.test", "2026-12-04T10:00:00Z")
    b3 = b3.json["booking_id"]
    gw.ok("POST", "/v1/schedule/%s/payment" % tok3, {"reference": "pay_3"})
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % b3, token=T1)
    rs = gw.ok("POST", O + "/bookings/%d/reschedule" % b3, {"start": "2026-12-04T13:00:00Z"}, T1)
    c.eq((rs["start"], rs["end"], rs["sequence"]),
         ("2026-12-04T13:00:00Z", "2026-12-04T14:00:00Z", 1), "rescheduled, sequence 1")
    confs = wait_kind("confirmation", 2, "rita@example.test")
    c.eq(len(confs), 2, "an updated invite after the reschedule")
    seqs = sorted(int(ics_of(m)[1].walk("VEVENT")[0]["SEQUENCE"]) for m in confs)
    c.eq(seqs, [0, 1], "the updated invite has SEQUENCE 1")
    # the customer and the trainer are told it moved, and from when (Berlin: 11:00 -> 14:00)
    moved = [m for m in confs if int(ics_of(m)[1].walk("VEVENT")[0]["SEQUENCE"]) == 1]
    first = [m for m in confs if int(ics_of(m)[1].walk("VEVENT")[0]["SEQUENCE"]) == 0]
    c.check(bool(first) and str(first[0]["Subject"]).startswith("Your session is confirmed"),
            "the first confirmation says confirmed")
    if moved:
        text = moved[0].get_body(("plain",)).get_content()
        c.check(str(moved[0]["Subject"]).startswith("Your session has moved:"),
                "the updated confirmation says the session moved: %r" % str(moved[0]["Subject"]))
        c.check("moved from" in text and "11:00" in text and "14:00" in text,
                "it names the old and the new time in Berlin")
        c.check("is confirmed" not in text, "and does not read as a new confirmation")
    tm, deadline = [], time.monotonic() + 10
    while len(tm) < 2 and time.monotonic() < deadline:
        tm = [m for m in mails("trainer_confirmation", "tia@by.test")
              if "Rita Resched" in str(m["Subject"])]
        time.sleep(0.05)
    c.eq(sorted(str(m["Subject"]).split(":")[0] for m in tm), ["Booking moved", "New booking"],
         "the trainer got New booking, then Booking moved (not a second New booking)")
    for m in tm:
        if str(m["Subject"]).startswith("Booking moved"):
            text = m.get_body(("plain",)).get_content()
            c.check("moved from" in text and "has booked" not in text,
                    "the trainer's email says the session moved")
    r = gw.call("POST", O + "/bookings/%d/reschedule" % b3, {"start": "2026-12-01T08:00:00Z"}, T1)
    c.eq(r.status, 400, "rescheduling into the past refused")
    cx = gw.ok("POST", O + "/bookings/%d/cancel" % b3, {"reason": "trainer ill"}, T1)
    c.eq((cx["status"], cx["sequence"]), ("cancelled", 2), "cancelled, sequence 2")
    cm = wait_kind("cancellation", 1, "rita@example.test")
    c.eq(len(cm), 1, "cancellation email")
    if cm:
        text = cm[0].get_body(("plain",)).get_content()
        c.check("trainer ill" in text, "the cancellation gives the reason")
        c.check("14:00" in text, "the cancellation names the (rescheduled) time in Berlin")
    if cm:
        part, cal = ics_of(cm[0])
        c.check(cal is not None and str(cal["METHOD"]) == "CANCEL", "METHOD:CANCEL attached")
        if cal is not None:
            c.eq(int(cal.walk("VEVENT")[0]["SEQUENCE"]), 2, "CANCEL carries the new SEQUENCE")
    c.eq(gw.call("POST", O + "/bookings/%d/cancel" % b3, token=T1).status, 409,
         "cancel twice: 409")
    c.eq(gw.call("POST", O + "/bookings/%d/complete" % b3, token=A).status, 409,
         "complete a cancelled booking: 409")

    # ---- the freed slot can be booked again; two customers race for one slot ----
    rq_a = []
    for i in range(2):
        req_i = gw.ok("POST", O + "/requests", {"customer": {"name": "Racer %d" % i,
                                                             "email": "racer%d@example.test" % i},
                                                "skills": ["yoga"]})
        gw.ok("POST", O + "/requests/%d/claim" % req_i["id"], token=T1)
        gw.ok("PATCH", O + "/requests/%d" % req_i["id"], {"session_type_id": st["id"]}, T1)
        gw.ok("POST", O + "/requests/%d/scheduling-link" % req_i["id"], token=T1)
        m = wait_kind("scheduling_link", 1, "racer%d@example.test" % i)[-1]
        rq_a.append(re.search(r"/s/([A-Za-z0-9_-]+)",
                              m.get_body(("plain",)).get_content()).group(1))
    results = []
    barrier = threading.Barrier(8)

    def race(t):
        barrier.wait()
        results.append(gw.call("POST", "/v1/schedule/%s/booking" % t,
                               {"start": "2026-12-04T13:00:00Z", "length_minutes": 60}).status)

    ths = [threading.Thread(target=race, args=(rq_a[i % 2],)) for i in range(8)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    c.eq(results.count(201), 1, "exactly one booking of the raced slot: %r" % results)
    c.check(all(s == 409 for s in results if s != 201), "the others get 409")
    c.eq(gw.rows("SELECT count(*) FROM bookings WHERE trainer_id=? AND start_at=? AND status IN"
                 " ('pending_payment','confirmed')", t1["id"], 1796389200)[0][0], 1,
         "one hold in the store")

    # ---- check-in at the front desk ----
    _, tok4, b4 = new_booking("Kim Kiosk", "kim@example.test", "2026-12-07T09:00:00Z")
    b4 = b4.json["booking_id"]
    gw.ok("POST", "/v1/schedule/%s/payment" % tok4, {"reference": "pay_4"})
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % b4, token=T1)
    set_clock("2026-12-07T08:00:00Z")
    ci = gw.ok("POST", O + "/checkin", {"customer_email": "kim@example.test", "confirm": True},
               kiosk["token"])
    c.eq(ci["bookings"], [], "an hour early is outside the 30 min window")
    set_clock("2026-12-07T08:45:00Z")
    ci = gw.ok("POST", O + "/checkin", {"customer_email": "kim@example.test", "confirm": False},
               kiosk["token"])
    c.eq(([(b["start"], b["checked_in"]) for b in ci["bookings"]], ci["logged"]),
         ([("2026-12-07T09:00:00Z", False)], 0), "inside the window, not confirmed: listed only")
    ci = gw.ok("POST", O + "/checkin", {"customer_email": "kim@example.test", "confirm": True},
               kiosk["token"])
    c.eq((ci["logged"], ci["bookings"][0]["checked_in"]), (1, True), "confirmed: logged")
    c.eq(gw.ok("GET", O + "/bookings/%d" % b4, token=A)["status"], "completed",
         "the checked-in booking is completed")
    c.eq(gw.call("POST", O + "/checkin", {"customer_email": "kim@example.test"}, T1).status, 403,
         "a trainer is not the kiosk")

    # ---- history and the payout report ----
    hist = gw.ok("GET", O + "/customers/cleo@example.test/bookings", token=A)
    c.eq([h["id"] for h in hist], [bid], "customer history")
    rep = gw.ok("GET", O + "/reports/payouts?from=2026-11-01&to=2027-01-01", token=A)
    mine = [x for x in rep if x["trainer_id"] == t1["id"]]
    c.check(len(mine) == 1, "one row for the trainer: %r" % rep)
    if mine:
        c.eq((mine[0]["completed"], mine[0]["revenue_cents"], mine[0]["customer_no_shows"],
              mine[0]["trainer_no_shows"]), (2, 10000, 1, 0), "payout figures")
    c.eq(gw.call("POST", O + "/bookings/%d/undo-complete" % bid, token=A).status, 403,
         "undo not allowed by default")
    gw.ok("PATCH", O + "/settings", {"allow_undo_completion": True}, A)
    c.eq(gw.call("POST", O + "/bookings/%d/undo-complete" % bid, token=T1).status, 403,
         "undo is for org admins only")
    u = gw.ok("POST", O + "/bookings/%d/undo-complete" % bid, token=A)
    c.eq((u["status"], u["completed_at"]), ("confirmed", None), "undone")
    rep = gw.ok("GET", O + "/reports/payouts?from=2026-11-01&to=2027-01-01", token=A)
    mine = [x for x in rep if x["trainer_id"] == t1["id"]][0]
    c.eq((mine["completed"], mine["revenue_cents"]), (1, 5000), "undone booking leaves the report")
    aw = gw.ok("GET", O + "/bookings?awaiting_completion=true", token=T1)
    c.eq([x["id"] for x in aw], [bid], "awaiting completion lists the ended confirmed booking")
    c.eq(len(mails("survey", "cleo@example.test")), 1, "no second survey after undo")

    # ---- the trainer's iCalendar feed ----
    feed = gw.ok("POST", O + "/users/%d/feed" % t1["id"], token=T1)
    path = feed["url"][len(gw.url):]
    r = gw.call("GET", path)
    c.eq(r.status, 200, "feed served")
    cal = icalendar.Calendar.from_ical(r.raw)
    c.check(len(cal.walk("VEVENT")) >= 1, "feed has the trainer's sessions")
    feed2 = gw.ok("POST", O + "/users/%d/feed" % t1["id"], token=T1)
    c.eq(gw.call("GET", path).status, 404, "a new feed URL replaces the old one")
    c.eq(gw.call("GET", feed2["url"][len(gw.url):]).status, 200, "the new URL works")
finally:
    gw.stop()
    gw.cleanup()
c.done()
