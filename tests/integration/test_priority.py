"""Delivery order against a real SMTP server (tests/helpers/smtp_server.py on 127.0.0.1): an
organisation's intake matching 10,000 trainers queues 10,000 new_request emails (bulk); while
they go out,
  - another organisation's new_request email arrives within a second and a half, long before
    the first organisation's backlog is gone (organisations take turns in every lease);
  - a scheduling link of the first organisation (urgent) sent behind its own 10,000 rows
    arrives within one second of the API's answer (urgent rows are leased first, and a batch
    of bulk rows gives way when new rows come in);
  - so does a reminder: the customer books and pays through that link, the trainer confirms,
    and when the test clock reaches the reminder's time the scheduler's tick enqueues it
    behind what is left of the fan-out; it arrives within one second of the tick's request.
The 10,000 trainers are inserted into the users table while the gateway is stopped (making
them through the API is not what is tested). The timings are printed."""
import email
import email.policy
import json
import os
import re
import secrets
import time

from gwtest import Checks, Gateway, SmtpSink

HERE = os.path.dirname(os.path.abspath(__file__))
FANOUT = 10000

c = Checks("priority")
sink = SmtpSink()
sink_dir, port = sink.dir, sink.port
gw = Gateway(test_clock=True)  # the reminder's time is reached by moving the clock
NOW, START = "2026-12-07T08:00:00Z", "2026-12-08T10:00:00Z"  # the reminder: 24 h before START
REMIND_AT = "2026-12-07T10:00:00Z"
seen = {}  # file name -> (kind, to, text)
WATCHED = {"runner@small.test", "cora@example.test"}


def arrivals():
    """Every message the sink saved so far: [(kind, to, text)], reading each file once. The
    recipient comes from the server's NNNN.json beside the message; only the messages of the
    few recipients the test watches are parsed (10,000 parses would take longer than the
    sends)."""
    for f in os.listdir(sink_dir):
        if f in seen or not f.endswith(".json"):
            continue
        with open(os.path.join(sink_dir, f)) as fh:
            to = json.load(fh)["rcpt_tos"][0]
        kind, text = "?", ""
        if to in WATCHED:
            with open(os.path.join(sink_dir, f[:-5] + ".eml"), "rb") as fh:
                m = email.message_from_binary_file(fh, policy=email.policy.default)
            kind, text = str(m["X-Ordinatus-Kind"]), m.get_body(("plain",)).get_content()
        seen[f] = (kind, to, text)
    return list(seen.values())


def wait_for(pred, timeout):
    """Seconds until pred(arrivals()) held, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(arrivals()):
            return time.monotonic() - t0
        time.sleep(0.005)
    return None


def pending(org, req):
    """the fan-out's emails not yet sent: its rows still queued, and the trainers whose rows
    the background fan-out has yet to enqueue (gateway/lifecycle/lc_fanout.c)"""
    return FANOUT - gw.rows("SELECT count(*) FROM outbox WHERE org_id = ? AND request_id = ?"
                            " AND kind = 'new_request' AND status = 'sent'", org, req)[0][0]


try:
    gw.start()
    smtp = {"host": "127.0.0.1", "port": port, "security": "none"}
    a = gw.org("Big Fan-out Training", "UTC")["id"]
    b = gw.org("Small Studio", "UTC")["id"]
    gw.intake_limits(a)
    A = gw.user(a, "admin@big.test", ["org_admin"])["token"]
    B = gw.user(b, "admin@small.test", ["org_admin"])["token"]
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % a, dict(smtp, from_address="desk@big.test"), A)
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % b, dict(smtp, from_address="desk@small.test"),
          B)
    chess = gw.user(a, "chess@big.test", ["trainer"], ["chess"], token=A)
    gw.ok("PUT", "/v1/orgs/%d/users/%d/availability" % (a, chess["id"]),
          {"weekly": [{"day": d, "start": "00:00", "end": "24:00"}
                      for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]},
          chess["token"])
    gw.ok("PATCH", "/v1/orgs/%d/settings" % a, {"reminder_hours": "24"}, A)
    gw.user(b, "runner@small.test", ["trainer"], ["run"], token=B)
    st = gw.ok("POST", "/v1/orgs/%d/session-types" % a,
               {"name": "Chess lesson", "skills": ["chess"], "lengths": [60],
                "price_cents": 3000, "currency": "EUR"}, A)
    gw.stop()
    now = int(time.time())
    with gw.db() as db:
        db.executemany(
            "INSERT INTO users(org_id, email, name, roles, skills, timezone, token_hash,"
            " created_at) VALUES(?, ?, ?, 4, '[\"yoga\"]', 'UTC', ?, ?)",
            ((a, "yogi%05d@big.test" % i, "Yogi %05d" % i, secrets.token_hex(32), now)
             for i in range(FANOUT)))
    gw.start()
    gw.ok("PUT", "/v1/test/clock", {"now": NOW})

    # the fan-out: 10,000 bulk rows of organisation a
    t0 = time.monotonic()
    r = gw.ok("POST", "/v1/orgs/%d/requests" % a,
              {"customer": {"name": "Yara", "email": "yara@example.test"}, "skills": ["yoga"]})
    t_intake = time.monotonic() - t0
    fan = r["id"]
    c.eq(r["matched_trainers"], FANOUT, "the intake matches every yoga trainer")
    c.check(wait_for(lambda got: sum(t.startswith("yogi") for _, t, _ in got) >= 100, 20)
            is not None, "the fan-out is going out")

    # another organisation's bulk email does not wait for the fan-out
    r = gw.ok("POST", "/v1/orgs/%d/requests" % b,
              {"customer": {"name": "Rob", "email": "rob@example.test"}, "skills": ["run"]})
    t_other = wait_for(lambda got: ("new_request", "runner@small.test") in
                       [(k, t) for k, t, _ in got], 10)
    left_other = pending(a, fan)
    c.check(t_other is not None and t_other < 1.5,
            "the other organisation's new_request arrives at once: %r s" % t_other)
    c.check(left_other > FANOUT // 2,
            "... while most of the fan-out still waits (%d rows)" % left_other)

    # an urgent email of the same organisation, enqueued behind its 10,000 rows
    req = gw.ok("POST", "/v1/orgs/%d/requests" % a,
                {"customer": {"name": "Cora", "email": "cora@example.test"},
                 "skills": ["chess"]})
    T = chess["token"]
    gw.ok("POST", "/v1/orgs/%d/requests/%d/claim" % (a, req["id"]), token=T)
    gw.ok("PATCH", "/v1/orgs/%d/requests/%d" % (a, req["id"]), {"session_type_id": st["id"]}, T)
    t0 = time.monotonic()
    gw.ok("POST", "/v1/orgs/%d/requests/%d/scheduling-link" % (a, req["id"]), token=T)
    t_link = wait_for(lambda got: ("scheduling_link", "cora@example.test") in
                      [(k, t) for k, t, _ in got], 10)
    left_link = pending(a, fan)
    c.check(t_link is not None and t_link < 1.0,
            "the scheduling link arrives within a second: %r s" % t_link)
    c.check(left_link > FANOUT // 4,
            "... with the fan-out still queued ahead of it (%d rows)" % left_link)
    link = [body for k, t, body in arrivals() if k == "scheduling_link"][0]
    c.check(re.search(r"/s/[A-Za-z0-9_-]+", link) is not None, "the link email carries its link")

    # a reminder of the same organisation, enqueued behind what is left of its fan-out
    tok = re.search(r"/s/([A-Za-z0-9_-]+)", link).group(1)
    bk = gw.ok("POST", "/v1/schedule/%s/booking" % tok, {"start": START, "length_minutes": 60})
    gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay-cora"})
    gw.ok("POST", "/v1/orgs/%d/bookings/%d/confirm-payment" % (a, bk["booking_id"]), token=T)
    gw.ok("PUT", "/v1/test/clock", {"now": REMIND_AT})
    t0 = time.monotonic()
    tick = gw.ok("POST", "/v1/test/tick")
    t_tick = time.monotonic() - t0
    c.check(tick.get("reminders") == 1, "the tick enqueues the reminder: %r" % tick)
    t_remind = wait_for(lambda got: ("reminder", "cora@example.test") in
                        [(k, t) for k, t, _ in got], 10)
    left_remind = pending(a, fan)
    c.check(t_remind is not None and t_tick + t_remind < 1.0,
            "the reminder arrives within a second of the tick that enqueued it: %r s" %
            (t_remind and t_tick + t_remind))
    c.check(left_remind > 0,
            "... with the fan-out still queued ahead of it (%d rows)" % left_remind)
    print("  fan-out intake of %d trainers answered in %.0f ms" % (FANOUT, t_intake * 1000))
    print("  other organisation's new_request: %.3f s (%d of the fan-out still queued)" %
          (t_other or -1, left_other))
    print("  scheduling link behind the fan-out: %.3f s (%d still queued)" %
          (t_link or -1, left_link))
    print("  reminder behind the fan-out: %.3f s from the tick that enqueued it (the tick's own"
          " answer %.3f s; %d still queued)" % (t_tick + (t_remind or -1), t_tick, left_remind))
except Exception:
    import traceback
    traceback.print_exc()
    c.check(False, "exception")
finally:
    try:
        gw.stop(expect_code=None)
    except Exception:
        pass
    gw.cleanup()
    sink.stop()
c.done()
