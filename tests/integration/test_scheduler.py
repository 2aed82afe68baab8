"""Scheduler: reminders at the right ticks and never twice, no retroactive reminders,
reschedule and cancel, each completion policy, hold release, two concurrent `ordinatus tick`
processes, and a daemon that was down."""
import calendar
import datetime
import re
import subprocess
import threading
import time

from gwtest import BIN, Checks, Gateway

c = Checks("scheduler")
gw = Gateway(test_clock=True)
gw.start()
ALL_WEEK = [{"day": d, "start": "00:00", "end": "24:00"}
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


def clock(t):
    gw.ok("PUT", "/v1/test/clock", {"now": t})


def tick(t):
    clock(t)
    return gw.ok("POST", "/v1/test/tick")


class Org:
    def __init__(self, name, settings=None):
        self.org = gw.org(name, "UTC")
        self.base = "/v1/orgs/%d" % self.org["id"]
        gw.intake_limits(self.org["id"])  # files many requests from one address
        self.admin = gw.user(self.org["id"], "admin@%s.test" % name, ["org_admin"])["token"]
        self.trainer = gw.user(self.org["id"], "coach@%s.test" % name, ["trainer"], ["run"],
                               token=self.admin)
        gw.ok("PUT", self.base + "/users/%d/availability" % self.trainer["id"],
              {"weekly": ALL_WEEK}, self.trainer["token"])
        self.st = gw.ok("POST", self.base + "/session-types",
                        {"name": "Run", "skills": ["run"], "lengths": [60], "price_cents": 100,
                         "currency": "EUR", "step_minutes": 30}, self.admin)
        if settings:
            gw.ok("PATCH", self.base + "/settings", settings, self.admin)
        self.n = 0

    def booking(self, start, pay=True, confirm=True, pick_type=True):
        self.n += 1
        email = "cust%d@%s" % (self.n, self.base.replace("/", "_"))
        email = "cust%d.%d@example.test" % (self.org["id"], self.n)
        req = gw.ok("POST", self.base + "/requests", {"customer": {"name": "C", "email": email},
                                                      "skills": ["run"]})
        T = self.trainer["token"]
        gw.ok("POST", self.base + "/requests/%d/claim" % req["id"], token=T)
        if pick_type:
            gw.ok("PATCH", self.base + "/requests/%d" % req["id"],
                  {"session_type_id": self.st["id"]}, T)
        gw.ok("POST", self.base + "/requests/%d/scheduling-link" % req["id"], token=T)
        tok = None
        for _ in range(200):
            for m in gw.maildir():
                if str(m["X-Ordinatus-Kind"]) == "scheduling_link" and email in str(m["To"]):
                    tok = re.search(r"/s/([A-Za-z0-9_-]+)",
                                    m.get_body(("plain",)).get_content()).group(1)
            if tok:
                break
            time.sleep(0.05)
        b = gw.ok("POST", "/v1/schedule/%s/booking" % tok, {"start": start, "length_minutes": 60})
        if pay:
            gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "r%d" % self.n})
        if confirm:
            gw.ok("POST", self.base + "/bookings/%d/confirm-payment" % b["booking_id"], token=T)
        return b["booking_id"]

    def get(self, bid):
        return gw.ok("GET", self.base + "/bookings/%d" % bid, token=self.admin)


def reminder_rows(bid):
    return gw.rows("SELECT dedupe_key, status FROM outbox WHERE booking_id=? AND kind='reminder'"
                   " ORDER BY id", bid)


try:
    clock("2026-12-01T09:00:00Z")
    a = Org("remind", {"reminder_hours": "24, 1"})
    b1 = a.booking("2026-12-10T10:00:00Z")

    # ---- "24, 1": two reminders at the right ticks, then nothing ----
    c.eq(tick("2026-12-09T09:30:00Z")["reminders"], 0, "30 min before the window: nothing")
    c.eq(tick("2026-12-09T09:50:00Z")["reminders"], 1, "the 24 h reminder")
    c.eq(tick("2026-12-09T09:55:00Z")["reminders"], 0, "the same window again: nothing doubled")
    c.eq(tick("2026-12-09T12:00:00Z")["reminders"], 0, "between reminders: nothing")
    c.eq(tick("2026-12-10T08:55:00Z")["reminders"], 1, "the 1 h reminder")
    c.eq(tick("2026-12-10T09:05:00Z")["reminders"], 0, "a third tick sends nothing")
    c.eq([k for k, _ in reminder_rows(b1)],
         ["reminder:%d:1440:0" % b1, "reminder:%d:60:0" % b1], "dedupe keys of both")
    time.sleep(0.5)
    rem = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "reminder"]
    c.eq(len(rem), 2, "two reminder emails arrived")
    c.check(all("cust" in str(m["To"]) for m in rem), "reminders go to the customer only")

    # ---- booked 2 h ahead with "24, 1": only the 1 h reminder ----
    clock("2026-12-11T08:00:00Z")
    b2 = a.booking("2026-12-11T10:00:00Z")
    c.eq(tick("2026-12-11T08:55:00Z")["reminders"], 1, "the 1 h reminder of a late booking")
    c.eq([k for k, _ in reminder_rows(b2)], ["reminder:%d:60:0" % b2],
         "no retroactive 24 h reminder")

    # ---- reschedule: fresh reminders for the new time only; cancel: none ----
    clock("2026-12-12T08:00:00Z")
    b3 = a.booking("2026-12-14T10:00:00Z")
    c.eq(tick("2026-12-13T09:50:00Z")["reminders"], 1, "24 h reminder before the reschedule")
    gw.ok("POST", a.base + "/bookings/%d/reschedule" % b3, {"start": "2026-12-15T10:00:00Z"},
          a.admin)
    c.eq(tick("2026-12-14T08:55:00Z")["reminders"], 0, "no reminder for the old time")
    c.eq(tick("2026-12-14T09:50:00Z")["reminders"], 1, "24 h reminder for the new time")
    c.check(reminder_rows(b3)[-1][0] == "reminder:%d:1440:1" % b3, "keyed with sequence 1")
    # a pending reminder (due in the future) is skipped when the booking is cancelled
    clock("2026-12-14T09:51:00Z")
    b4 = a.booking("2026-12-15T12:00:00Z")
    gw.ok("PATCH", a.base + "/settings", {"reminder_hours": "1"}, a.admin)
    c.eq(tick("2026-12-15T10:55:00Z")["reminders"], 1, "the 1 h reminder of b4 (b3's was 09:00)")
    gw.ok("PATCH", a.base + "/settings", {"reminder_hours": "24, 1"}, a.admin)
    gw.ok("POST", a.base + "/bookings/%d/cancel" % b4, {}, a.admin)
    c.eq(tick("2026-12-15T11:00:00Z")["reminders"], 0, "a cancelled booking gets none")
    # empty reminder_hours sends none
    gw.ok("PATCH", a.base + "/settings", {"reminder_hours": ""}, a.admin)
    clock("2026-12-16T08:00:00Z")
    b5 = a.booking("2026-12-18T10:00:00Z")
    c.eq(tick("2026-12-17T09:50:00Z")["reminders"], 0, "reminder_hours [] sends none")
    c.eq(reminder_rows(b5), [], "no reminder row")

    # ---- completion policies ----
    clock("2026-12-01T09:00:00Z")
    must = Org("must")  # trainer_must_close
    m1 = must.booking("2026-12-02T10:00:00Z")
    rac = Org("rac", {"completion_policy": "reminder_then_auto_close",
                      "close_reminder_after_minutes": 60, "auto_close_after_minutes": 180})
    r1 = rac.booking("2026-12-02T10:00:00Z")
    r2 = rac.booking("2026-12-02T12:00:00Z")
    ac = Org("ac", {"completion_policy": "auto_close", "auto_close_after_minutes": 30,
                    "auto_close_action": "cancel"})
    a1 = ac.booking("2026-12-02T10:00:00Z")
    res = tick("2026-12-02T11:59:00Z")  # r1 ended 11:00: reminder at 12:00, not yet
    c.eq(res["close_reminders"], 0, "close reminder not before end + 60 min")
    c.eq(res["auto_cancelled"], 1, "auto_close cancels 30 min after the end")
    c.eq(ac.get(a1)["status"], "cancelled", "auto-closed with auto_close_action cancel")
    res = tick("2026-12-02T12:00:00Z")
    c.eq(res["close_reminders"], 1, "close reminder at end + 60 min")
    # let it go out before the clock passes its deadline (the auto-close time)
    cr = gw.wait_mail(len(gw.maildir()) + 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [m for m in gw.maildir()
                                          if str(m["X-Ordinatus-Kind"]) == "close_reminder"]:
        time.sleep(0.05)
    c.eq(tick("2026-12-02T12:30:00Z")["close_reminders"], 0, "close reminder once")
    gw.ok("POST", rac.base + "/bookings/%d/no-show" % r2, {"customer": True}, rac.admin)
    res = tick("2026-12-02T14:00:00Z")
    c.eq(res["auto_completed"], 1, "auto-complete at end + 180 min")
    got = rac.get(r1)
    c.eq((got["status"], got["completed_by"]), ("completed", "system"), "completed_by system")
    c.eq(rac.get(r2)["status"], "no_show", "a no-show is never auto-closed")
    c.eq(must.get(m1)["status"], "confirmed", "trainer_must_close: nothing automatic")
    aw = gw.ok("GET", must.base + "/bookings?awaiting_completion=true", token=must.admin)
    c.eq([x["id"] for x in aw], [m1], "listed as awaiting completion")
    time.sleep(0.5)
    cr = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "close_reminder"]
    c.check(len(cr) == 1 and "coach@rac.test" in str(cr[0]["To"]),
            "close reminder to the trainer: %r" % ([str(m["To"]) for m in cr],))
    sv = gw.rows("SELECT count(*) FROM outbox WHERE booking_id=? AND kind='survey'", r1)[0][0]
    c.eq(sv, 1, "auto-complete sends the survey as usual")

    # ---- an unpaid hold is released when its link expires ----
    clock("2026-12-03T09:00:00Z")
    h = Org("hold")
    # the organisation's only session type is taken when the trainer chose none
    hb = h.booking("2026-12-09T10:00:00Z", pay=False, confirm=False, pick_type=False)
    c.eq(h.get(hb)["length_minutes"], 60, "the only session type was used for the link")
    c.eq(tick("2026-12-06T08:59:00Z")["holds_released"], 0, "hold kept until the link expires")
    c.eq(tick("2026-12-06T09:00:00Z")["holds_released"], 1, "hold released at expiry")
    c.eq(h.get(hb)["status"], "cancelled", "released hold is cancelled")
    c.eq(gw.rows("SELECT count(*) FROM bookings WHERE id=? AND status='cancelled'", hb)[0][0], 1,
         "slot free")

    # ---- two `ordinatus tick` processes at once, beside the serving daemon ----
    clock("2026-12-20T08:00:00Z")
    gw.ok("PATCH", a.base + "/settings", {"reminder_hours": "24, 1"}, a.admin)
    cc = [a.booking("2026-12-21T%02d:00:00Z" % (10 + i)) for i in range(5)]
    outs = []

    def run_tick():
        p = subprocess.run([BIN, "tick", "--data", gw.data, "--at", "2026-12-20T10:00:00Z"],
                           capture_output=True, text=True, env=gw.env)
        outs.append(p)

    th = [threading.Thread(target=run_tick) for _ in range(2)]
    [t.start() for t in th]
    [t.join() for t in th]
    c.check(all(p.returncode == 0 for p in outs), "both ticks ran: %r" % [p.stderr for p in outs])
    import json
    total = sum(json.loads(p.stdout)["reminders"] for p in outs if p.returncode == 0)
    c.eq(total, 1, "two concurrent ticks enqueue the one due reminder once")
    c.eq(tick("2026-12-20T10:00:00Z")["reminders"], 0, "and the daemon's own tick adds nothing")
    rows = gw.rows("SELECT count(*) FROM outbox WHERE kind='reminder' AND booking_id IN (%s)"
                   % ",".join(str(x) for x in cc))[0][0]
    c.eq(rows, 1, "one reminder row")
    # the CLI tick's effects carry its --at instant, not the wall clock of the process that ran
    # it: the row is due at that instant, so the daemon, whose clock is now there, sends it
    at = calendar.timegm((2026, 12, 20, 10, 0, 0))
    c.eq(gw.rows("SELECT created_at, next_attempt_at FROM outbox WHERE kind='reminder'"
                 " AND booking_id IN (%s)" % ",".join(str(x) for x in cc)), [(at, at)],
         "the CLI tick's row is stamped and due at --at")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.rows(
            "SELECT status FROM outbox WHERE kind='reminder' AND booking_id IN (%s)"
            % ",".join(str(x) for x in cc)) != [("sent",)]:
        time.sleep(0.05)
    sent = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == "reminder"
            and m["Date"].datetime == datetime.datetime(2026, 12, 20, 10, 0,
                                                        tzinfo=datetime.timezone.utc)]
    c.eq(len(sent), 1, "the CLI tick's reminder is sent, dated at --at")

    # ---- the daemon was down: missed reminder windows are not sent, auto-close catches up ----
    clock("2026-12-22T08:00:00Z")
    d = Org("down", {"reminder_hours": "1", "completion_policy": "auto_close",
                     "auto_close_after_minutes": 60})
    d1 = d.booking("2026-12-22T10:00:00Z")
    gw.stop()
    gw.start()
    res = tick("2026-12-22T12:30:00Z")  # the 1 h window (09:00) and the close time passed
    c.eq(res["reminders"], 0, "no retroactive reminder after a downtime")
    c.eq(res["auto_completed"], 1, "auto-close catches up")
    c.eq(d.get(d1)["status"], "completed", "closed after the downtime")
finally:
    gw.stop()
    gw.cleanup()
c.done()
