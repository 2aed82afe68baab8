"""Intake notices, the cancel of a request, and the customer's own booking page, end to end
with the test clock.

Intake: the customer's request_received email (one per request); a request no trainer matches
emails every active org admin (unmatched_request) with the customer, the skills and the link.
Request cancel: the org admin and the claiming trainer may, another trainer may not (403), a
booked request cannot (409), the scheduling link then answers 410 and unsent new_request rows
expire. The manage link: taken from the confirmation email, read, moved to another slot
(sequence 1, an updated invite, the old reminder skipped), cancelled (METHOD:CANCEL), a
reminder carries it too, and past customer_change_cutoff_hours (to the second) a cancel is 409
naming the trainer. Bad bodies are 400 naming the field and write nothing.
"""
import calendar
import re
import socket
import time

import icalendar

from gwtest import Checks, Gateway

c = Checks("manage")
gw = Gateway(test_clock=True)
gw.start()
NOW = [0]


def set_clock(t):
    gw.ok("PUT", "/v1/test/clock", {"now": t})
    NOW[0] = calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))


def mails(kind, to=None):
    return [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == kind
            and (to is None or to in str(m["To"]))]


def wait_kind(kind, n, to=None):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = mails(kind, to)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return mails(kind, to)


def text(m):
    return m.get_body(("plain",)).get_content()


def ics_of(m):
    for part in m.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


def manage_token(m):
    found = re.search(re.escape(gw.url) + r"/b/([A-Za-z0-9_-]+)", text(m))
    return found.group(1) if found else None


def settle(org):
    """Wait until org's due rows are all handled: what is left does not change on its own."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = gw.rows("SELECT count(*) FROM outbox WHERE org_id=? AND (status='leased' OR"
                       " (status='pending' AND next_attempt_at <= ?))", org, NOW[0])[0][0]
        if busy == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the outbox of org %d did not settle" % org)


def refused(what, method, path, body, status, error, field, org, token=None):
    """A bad call: the status, error code and field named, and nothing written."""
    settle(org)
    before = gw.snapshot()
    r = gw.call(method, path, body, token)
    c.eq((r.status, r.json and r.json.get("error"), r.json and r.json.get("field")),
         (status, error, field), what + ": %r" % r)
    c.check(gw.snapshot() == before, what + ": nothing written")
    return r


try:
    set_clock("2026-11-30T08:00:00Z")  # a Monday
    org = gw.org("Berlin Yoga", "Europe/Berlin")
    OID = org["id"]
    gw.intake_limits(OID)  # files many requests from one address
    O = "/v1/orgs/%d" % OID
    admin = gw.user(OID, "admin@by.test", ["org_admin"], name="Ada Admin")
    A = admin["token"]
    admin2 = gw.user(OID, "owner@by.test", ["org_admin", "trainer"], ["boxing"],
                     name="Olga Owner", token=A)
    gone = gw.user(OID, "gone@by.test", ["org_admin"], name="Gus Gone", token=A)
    gw.ok("PATCH", O + "/users/%d" % gone["id"], {"active": False}, A)
    t1 = gw.user(OID, "tia@by.test", ["trainer"], ["yoga"], name="Tia Trainer", token=A)
    t2 = gw.user(OID, "tom@by.test", ["trainer"], ["yoga"], name="Tom Trainer", token=A)
    T1, T2 = t1["token"], t2["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60, 90], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % t1["id"], {"weekly": week}, T1)
    c.eq(gw.ok("GET", O + "/settings", token=A).get("customer_change_cutoff_hours"), 24,
         "settings list customer_change_cutoff_hours, 24 by default")

    # ---- intake: request_received to the customer, once per request ----
    rq = gw.ok("POST", O + "/requests", {"customer": {"name": "Rhea Received",
                                                      "email": "rhea@example.test"},
                                         "skills": ["yoga"]})
    c.eq(rq["matched_trainers"], 2, "two trainers match yoga")
    got = wait_kind("request_received", 1, "rhea@example.test")
    c.eq(len(got), 1, "one request_received email to the customer")
    if got:
        m = got[0]
        c.eq(str(m["X-Ordinatus-Kind"]), "request_received", "X-Ordinatus-Kind header")
        c.eq(m["To"].addresses[0].addr_spec, "rhea@example.test", "to the customer")
        c.check("a trainer will contact you" in text(m).lower(),
                "it says a trainer will contact them: %r" % text(m)[:200])
        c.check("Berlin Yoga" in str(m["Subject"]), "the subject names the organisation")
    c.eq(gw.rows("SELECT dedupe_key, request_id FROM outbox WHERE kind='request_received'"),
         [("request_received:%d" % rq["id"], rq["id"])], "its dedupe key")
    c.eq(len(wait_kind("new_request", 2)), 2, "the trainers' new_request emails as before")
    c.eq(mails("unmatched_request"), [], "no unmatched_request while a trainer matches")

    # ---- intake no trainer matches: every active org admin is told ----
    un = gw.ok("POST", O + "/requests", {"customer": {"name": "Una Unmatched",
                                                      "email": "una@example.test"},
                                         "skills": ["chess", "go"]})
    c.eq(un["matched_trainers"], 0, "nobody teaches chess")
    um = wait_kind("unmatched_request", 2)
    c.eq(sorted(m["To"].addresses[0].addr_spec for m in um),
         ["admin@by.test", "owner@by.test"], "both active admins, not the deactivated one")
    for m in um:
        body = text(m)
        c.check("Una Unmatched" in body and "una@example.test" in body,
                "unmatched_request names the customer")
        c.check("chess, go" in body, "unmatched_request names the skills asked")
        c.check("%s/requests/%d" % (gw.url, un["id"]) in body,
                "unmatched_request links {public_url}/requests/{id}")
    c.eq(sorted(k for (k,) in gw.rows("SELECT dedupe_key FROM outbox WHERE"
                                      " kind='unmatched_request'")),
         sorted("unmatched_request:%d:%d" % (un["id"], u["id"]) for u in (admin, admin2)),
         "unmatched_request dedupe keys per admin")
    c.eq(len(wait_kind("request_received", 1, "una@example.test")), 1,
         "the unmatched customer gets request_received too")

    # ---- request cancel ----
    # new: the org admin cancels, with a reason
    x = gw.ok("POST", O + "/requests/%d/cancel" % rq["id"], {"reason": "duplicate\nrequest"}, A)
    c.eq((x["status"], x["cancel_reason"], x["cancelled_at"]),
         ("cancelled", "duplicate\nrequest", "2026-11-30T08:00:00Z"), "admin cancels a new one")
    c.eq(gw.call("POST", O + "/requests/%d/cancel" % rq["id"], None, A).status, 409,
         "a cancelled request cannot be cancelled again")
    c.eq(gw.call("POST", O + "/requests/%d/claim" % rq["id"], token=T1).status, 409,
         "nor claimed")
    # claimed: another trainer 403, the claimer cancels without a body
    rb = gw.ok("POST", O + "/requests", {"customer": {"name": "Bo", "email": "bo@example.test"},
                                         "skills": ["yoga"]})
    gw.ok("POST", O + "/requests/%d/claim" % rb["id"], token=T1)
    r = gw.call("POST", O + "/requests/%d/cancel" % rb["id"], {}, T2)
    c.eq((r.status, r.json and r.json["error"]), (403, "forbidden"), "another trainer: 403")
    x = gw.ok("POST", O + "/requests/%d/cancel" % rb["id"], token=T1)
    c.eq((x["status"], x["cancel_reason"]), ("cancelled", None), "the claimer cancels")
    # scheduling: the link stops working
    rs = gw.ok("POST", O + "/requests", {"customer": {"name": "Sy", "email": "sy@example.test"},
                                         "skills": ["yoga"]})
    gw.ok("POST", O + "/requests/%d/claim" % rs["id"], token=T1)
    gw.ok("PATCH", O + "/requests/%d" % rs["id"], {"session_type_id": st["id"]}, T1)
    gw.ok("POST", O + "/requests/%d/scheduling-link" % rs["id"], token=T1)
    m = wait_kind("scheduling_link", 1, "sy@example.test")[-1]
    stok = re.search(r"/s/([A-Za-z0-9_-]+)", text(m)).group(1)
    c.eq(gw.call("GET", "/v1/schedule/" + stok).status, 200, "the link works before")
    gw.ok("POST", O + "/requests/%d/cancel" % rs["id"], {"reason": "moved away"}, T1)
    r = gw.call("GET", "/v1/schedule/" + stok)
    c.eq((r.status, r.json and r.json["error"]), (410, "link_expired"),
         "the cancelled request's link is 410 link_expired")
    r = gw.call("POST", "/v1/schedule/%s/booking" % stok,
                {"start": "2026-12-01T08:00:00Z", "length_minutes": 60})
    c.eq(r.status, 410, "booking through it is 410")
    c.eq(gw.ok("GET", O + "/requests/%d" % rs["id"], token=A)["status"], "cancelled",
         "the admin sees it cancelled")
    c.eq(gw.call("POST", O + "/requests/999/cancel", None, A).status, 404, "unknown request")
    # bad bodies
    rn = gw.ok("POST", O + "/requests", {"customer": {"name": "Nat", "email": "nat@example.test"},
                                         "skills": ["yoga"]})
    refused("reason over 1000 bytes", "POST", O + "/requests/%d/cancel" % rn["id"],
            {"reason": "x" * 1001}, 400, "invalid_field", "reason", OID, A)
    refused("reason with a control character", "POST", O + "/requests/%d/cancel" % rn["id"],
            {"reason": "bell\u0007"}, 400, "invalid_field", "reason", OID, T1)
    refused("reason not text", "POST", O + "/requests/%d/cancel" % rn["id"], {"reason": 5},
            400, "invalid_field", "reason", OID, A)
    refused("an unknown field", "POST", O + "/requests/%d/cancel" % rn["id"],
            {"why": "no"}, 400, "invalid_field", "why", OID, A)
    c.eq(gw.call("POST", O + "/requests/%d/cancel" % rn["id"], {"reason": "x" * 1000},
                 A).status, 200, "1000 bytes is fine")

    # unsent new_request rows expire: an organisation whose mail server is down keeps them
    # pending (tried, the connection refused: the row waits with the error, held back while
    # the server is down, and the test clock does not move)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    orgb = gw.org("Down Mail", "UTC")
    OB = "/v1/orgs/%d" % orgb["id"]
    gw.intake_limits(orgb["id"])
    ab = gw.user(orgb["id"], "admin@down.test", ["org_admin"])
    gw.user(orgb["id"], "tb@down.test", ["trainer"], ["yoga"], token=ab["token"])
    gw.ok("PUT", OB + "/providers/smtp", {"host": "127.0.0.1", "port": dead_port,
                                          "security": "none",
                                          "from_address": "noreply@down.test"}, ab["token"])
    rd = gw.ok("POST", OB + "/requests", {"customer": {"name": "Dee", "email": "dee@x.test"},
                                          "skills": ["yoga"]})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.rows(
            "SELECT status, CASE WHEN last_error LIKE '%connect%' THEN 1 ELSE 0 END FROM outbox"
            " WHERE kind='new_request' AND request_id=?", rd["id"]) != [("pending", 1)]:
        time.sleep(0.05)
    c.eq(gw.rows("SELECT status, CASE WHEN last_error LIKE '%connect%' THEN 1 ELSE 0 END"
                 " FROM outbox WHERE kind='new_request' AND request_id=?", rd["id"]),
         [("pending", 1)], "the new_request row waits, with the connection error")
    gw.ok("POST", OB + "/requests/%d/cancel" % rd["id"], token=ab["token"])
    c.eq(gw.rows("SELECT status FROM outbox WHERE kind='new_request' AND request_id=?",
                 rd["id"]), [("expired",)], "the unsent new_request row expired with the cancel")

    # ---- a booking and its manage link ----
    def book(name, mail, start, length=60):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": name, "email": mail},
                                              "skills": ["yoga"]})
        gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T1)
        gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T1)
        gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
        msg = wait_kind("scheduling_link", 1, mail)[-1]
        tok = re.search(r"/s/([A-Za-z0-9_-]+)", text(msg)).group(1)
        b = gw.ok("POST", "/v1/schedule/%s/booking" % tok,
                  {"start": start, "length_minutes": length})
        gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay-" + name})
        return req, b["booking_id"]

    mreq, mid = book("Mia Manage", "mia@example.test", "2026-12-02T09:00:00Z")
    c.eq(gw.call("POST", O + "/requests/%d/cancel" % mreq["id"], None, A).status, 409,
         "a booked request cannot be cancelled: 409")
    _, other = book("Ola Other", "ola@example.test", "2026-12-02T12:00:00Z")  # pending, holds
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % mid, token=T1)
    conf = wait_kind("confirmation", 1, "mia@example.test")
    c.eq(len(conf), 1, "the confirmation")
    mtok = manage_token(conf[0]) if conf else None
    c.check(mtok is not None, "the confirmation carries {public_url}/b/{token}")
    tc = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "trainer_confirmation"]
    c.check(all("/b/" not in text(m) for m in tc), "the trainer never gets the customer's link")
    c.eq(gw.rows("SELECT count(*) FROM manage_tokens WHERE booking_id=?", mid)[0][0], 1,
         "one manage token stored")
    c.check(mtok is not None and gw.rows("SELECT count(*) FROM manage_tokens WHERE token_hash"
                                         " = ?", mtok) == [(0,)], "stored as a hash only")

    v = gw.ok("GET", "/v1/manage/%s" % mtok)
    c.eq((v["booking_id"], v["status"], v["start"], v["end"], v["length_minutes"]),
         (mid, "confirmed", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z", 60),
         "the customer's view")
    c.eq((v["trainer"], v["session_type"]), ({"name": "Tia Trainer"}, {"name": "Private yoga"}),
         "trainer and session type by name")
    c.eq((v["can_cancel"], v["can_reschedule"], v["change_cutoff_at"]),
         (True, True, "2026-12-01T09:00:00Z"), "changes possible until start - 24 h")
    starts = {s["start"] for s in v["slots"]}
    c.check(all(calendar.timegm(time.strptime(s["end"], "%Y-%m-%dT%H:%M:%SZ")) -
                calendar.timegm(time.strptime(s["start"], "%Y-%m-%dT%H:%M:%SZ")) == 3600
                for s in v["slots"]), "slots of the booking's length only")
    c.check("2026-12-02T09:30:00Z" in starts, "its own time does not block a move")
    c.check("2026-12-02T12:00:00Z" not in starts and "2026-12-02T11:30:00Z" not in starts,
            "another customer's hold blocks its time")
    c.check("2026-12-05T09:00:00Z" not in starts and "2026-12-01T15:00:00Z" in starts,
            "the trainer's hours, as the schedule view has them")
    c.check(starts and min(starts) >= "2026-12-01T08:00:00Z" and
            "2026-11-30T15:00:00Z" not in starts,
            "no slot inside the 24 h change cutoff from now (a move there could not be "
            "changed again): earliest %s" % (min(starts) if starts else None))
    c.check(all(s < "2026-12-14T08:00:01Z" for s in starts), "the next 14 days")
    r = gw.call("GET", "/v1/manage/" + "A" * 43)
    c.eq((r.status, r.json and r.json["error"]), (404, "not_found"), "an unknown token: 404")
    c.eq(gw.call("GET", "/v1/manage/short").status, 404, "a malformed token: 404")

    # bad bodies: 400 naming the field, nothing written
    MP = "/v1/manage/%s" % mtok
    refused("reschedule without start", "POST", MP + "/reschedule", {}, 400, "invalid_field",
            "start", OID)
    refused("start not a time", "POST", MP + "/reschedule", {"start": "tomorrow"}, 400,
            "invalid_field", "start", OID)
    refused("an unknown field", "POST", MP + "/reschedule",
            {"start": "2026-12-02T14:00:00Z", "length_minutes": 90}, 400, "invalid_field",
            "length_minutes", OID)
    refused("off the grid", "POST", MP + "/reschedule", {"start": "2026-12-02T14:15:00Z"}, 400,
            "invalid_field", "start", OID)
    refused("outside the trainer's hours", "POST", MP + "/reschedule",
            {"start": "2026-12-05T10:00:00Z"}, 400, "invalid_field", "start", OID)
    refused("in the past", "POST", MP + "/reschedule", {"start": "2026-11-30T07:00:00Z"}, 400,
            "invalid_field", "start", OID)
    refused("inside the change cutoff from now", "POST", MP + "/reschedule",
            {"start": "2026-11-30T15:00:00Z"}, 400, "invalid_field", "start", OID)
    refused("a taken slot", "POST", MP + "/reschedule", {"start": "2026-12-02T12:00:00Z"}, 409,
            "slot_taken", "start", OID)
    refused("a cancel reason over 1000 bytes", "POST", MP + "/cancel", {"reason": "x" * 1001},
            400, "invalid_field", "reason", OID)
    refused("a cancel reason with a control character", "POST", MP + "/cancel",
            {"reason": "esc\u001b[31m"}, 400, "invalid_field", "reason", OID)
    refused("a cancel with an unknown field", "POST", MP + "/cancel", {"note": "x"}, 400,
            "invalid_field", "note", OID)
    refused("cancel of an unknown token", "POST", "/v1/manage/%s/cancel" % ("B" * 43), {}, 404,
            "not_found", None, OID)

    # a day ahead, the reminder is queued, carrying a manage link of its own
    set_clock("2026-12-01T08:50:00Z")
    gw.ok("POST", "/v1/test/tick")
    rem = gw.rows("SELECT status, payload, dedupe_key FROM outbox WHERE kind='reminder' AND"
                  " booking_id=?", mid)
    c.eq([(s, k) for s, _, k in rem], [("pending", "reminder:%d:1440:0" % mid)],
         "the 24 h reminder is queued for 09:00")
    rtok = re.search(r"/b/([A-Za-z0-9_-]+)", rem[0][1]) if rem else None
    c.check(rtok is not None and gw.call("GET", "/v1/manage/" + rtok.group(1)).status == 200,
            "the reminder's own manage link works")

    # the customer moves it: same booking, sequence 1, updated invite, calendar update
    mv = gw.ok("POST", MP + "/reschedule", {"start": "2026-12-02T14:00:00Z"})
    c.eq((mv["booking_id"], mv["start"], mv["end"], mv["sequence"], mv["status"]),
         (mid, "2026-12-02T14:00:00Z", "2026-12-02T15:00:00Z", 1, "confirmed"),
         "moved: the same booking, sequence 1")
    c.eq(mv["change_cutoff_at"], "2026-12-01T14:00:00Z", "the cutoff follows the start")
    bk = gw.ok("GET", O + "/bookings/%d" % mid, token=T1)
    c.eq((bk["start"], bk["sequence"]), ("2026-12-02T14:00:00Z", 1), "the trainer sees the move")
    c.eq(gw.rows("SELECT status FROM outbox WHERE dedupe_key=?", "reminder:%d:1440:0" % mid),
         [("skipped",)], "the old reminder is skipped")
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE dedupe_key=?", "calendar:%d:1" % mid),
         [(1,)], "a calendar update row")
    c.check('"action":"update"' in (gw.rows("SELECT payload FROM outbox WHERE dedupe_key=?",
                                            "calendar:%d:1" % mid) or [("",)])[0][0],
            "the calendar row updates the event")
    confs = wait_kind("confirmation", 2, "mia@example.test")
    c.eq(len(confs), 2, "a new confirmation after the move")
    seqs = sorted(int(ics_of(m).walk("VEVENT")[0]["SEQUENCE"]) for m in confs if ics_of(m))
    c.eq(seqs, [0, 1], "the new invite has SEQUENCE 1")
    new_conf = [m for m in confs if int(ics_of(m).walk("VEVENT")[0]["SEQUENCE"]) == 1]
    c.check(new_conf and "15:00" in text(new_conf[0]), "it shows the new time in Berlin")
    c.eq(gw.ok("GET", MP)["start"], "2026-12-02T14:00:00Z", "the first link still works")
    ntok = manage_token(new_conf[0]) if new_conf else None
    c.eq(ntok and gw.ok("GET", "/v1/manage/" + ntok)["booking_id"], mid,
         "the new confirmation's link names the same booking")
    gw.ok("POST", "/v1/test/tick")
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE kind='reminder' AND booking_id=? AND"
                 " status='pending'", mid), [(0,)], "no reminder yet for the new time")

    # the customer cancels: the trainer's cancel, effects and all
    settle(OID)
    cx = gw.ok("POST", MP + "/cancel", {"reason": "I am ill"})
    c.eq((cx["status"], cx["can_cancel"], cx["can_reschedule"], cx["slots"]),
         ("cancelled", False, False, []), "cancelled by the customer")
    bk = gw.ok("GET", O + "/bookings/%d" % mid, token=A)
    c.eq((bk["status"], bk["cancel_reason"], bk["sequence"]), ("cancelled", "I am ill", 2),
         "the booking is cancelled with the reason")
    cm = wait_kind("cancellation", 1, "mia@example.test")
    c.eq(len(cm), 1, "the cancellation email")
    cal = ics_of(cm[0]) if cm else None
    c.check(cal is not None and str(cal["METHOD"]) == "CANCEL", "with METHOD:CANCEL")
    c.check(cm and "I am ill" in text(cm[0]), "with the reason")
    c.check('"action":"delete"' in (gw.rows("SELECT payload FROM outbox WHERE dedupe_key=?",
                                            "calendar:%d:2" % mid) or [("",)])[0][0],
            "a calendar delete row")
    v = gw.ok("GET", MP)
    c.eq((v["status"], v["can_cancel"], v["can_reschedule"], v["slots"]),
         ("cancelled", False, False, []), "the link still reads, cancelled")
    r = gw.call("POST", MP + "/cancel", {})
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"), "cancel twice: 409")
    r = gw.call("POST", MP + "/reschedule", {"start": "2026-12-02T14:00:00Z"})
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "a cancelled booking cannot move")

    # ---- a second booking, past the cutoff ----
    _, nid = book("Nora Late", "nora@example.test", "2026-12-04T10:00:00Z")
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % nid, token=T1)
    ncf = wait_kind("confirmation", 1, "nora@example.test")
    nt = manage_token(ncf[0]) if ncf else "none"
    NP = "/v1/manage/%s" % nt
    c.check(ncf and "until" in text(ncf[0]) and "11:00" in text(ncf[0]),
            "the confirmation says until when changes are possible")
    set_clock("2026-12-03T09:59:59Z")
    v = gw.ok("GET", NP)
    c.eq((v["can_cancel"], v["can_reschedule"], v["change_cutoff_at"], len(v["slots"]) > 0),
         (True, True, "2026-12-03T10:00:00Z", True), "one second before the cutoff: open")
    set_clock("2026-12-03T10:00:00Z")
    gw.ok("POST", "/v1/test/tick")  # the 24 h reminder is due now: it goes out
    nrem = wait_kind("reminder", 1, "nora@example.test")
    c.eq(len(nrem), 1, "the reminder email")
    rt = manage_token(nrem[0]) if nrem else None
    c.check(rt is not None and rt != nt, "the reminder carries a manage link of its own")
    c.eq(rt and gw.ok("GET", "/v1/manage/" + rt)["booking_id"], nid, "for the same booking")
    v = gw.ok("GET", NP)
    c.eq((v["can_cancel"], v["can_reschedule"], v["slots"]), (False, False, []),
         "exactly at the cutoff: closed")
    r = gw.call("POST", NP + "/cancel", {})
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "cancel exactly at the cutoff: 409")
    set_clock("2026-12-03T10:00:01Z")
    settle(OID)
    before = gw.snapshot()
    r = gw.call("POST", NP + "/cancel", {"reason": "too late"})
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "cancel past the cutoff: 409")
    c.check(r.json and "Tia Trainer" in r.json["message"],
            "the refusal names whom to contact: %r" % (r.json and r.json.get("message")))
    r = gw.call("POST", NP + "/reschedule", {"start": "2026-12-07T10:00:00Z"})
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"), "move past the cutoff")
    c.check(gw.snapshot() == before, "refused changes write nothing")
    c.eq(gw.ok("GET", O + "/bookings/%d" % nid, token=A)["status"], "confirmed",
         "the booking stays confirmed")
    c.eq(gw.ok("POST", O + "/bookings/%d/cancel" % nid, {"reason": "asked by phone"},
               T1)["status"], "cancelled", "the trainer still can")

    # ---- cutoff 0: no customer changes at all ----
    set_clock("2026-12-03T10:00:00Z")
    _, zid = book("Zed Zero", "zed@example.test", "2026-12-10T10:00:00Z")
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % zid, token=T1)
    zt = manage_token(wait_kind("confirmation", 1, "zed@example.test")[0])
    refused("cutoff hours over 720", "PATCH", O + "/settings",
            {"customer_change_cutoff_hours": 721}, 400, "invalid_field",
            "customer_change_cutoff_hours", OID, A)
    refused("a negative cutoff", "PATCH", O + "/settings",
            {"customer_change_cutoff_hours": -1, "tick_minutes": 5}, 400, "invalid_field",
            "customer_change_cutoff_hours", OID, A)
    gw.ok("PATCH", O + "/settings", {"customer_change_cutoff_hours": 0}, A)
    v = gw.ok("GET", "/v1/manage/%s" % zt)
    c.eq((v["can_cancel"], v["can_reschedule"], v["change_cutoff_at"], v["slots"]),
         (False, False, None, []), "cutoff 0: nothing can change a week ahead")
    r = gw.call("POST", "/v1/manage/%s/cancel" % zt, {})
    c.check(r.status == 409 and r.json["error"] == "invalid_state" and
            "Tia Trainer" in r.json["message"], "cutoff 0: 409 naming the trainer: %r" % r)
finally:
    gw.stop()
    gw.cleanup()
c.done()
