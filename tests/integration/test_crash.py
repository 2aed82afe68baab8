"""Crash test: intake makes 2,040 emails (50 trainers x 40 requests, and each of the 40
customers' request_received) to a real SMTP server
(tests/helpers/smtp_server.py on 127.0.0.1); the gateway is killed with SIGKILL a few times
while it sends and restarted each time. In the end every email has arrived, and any email that
arrived more than once (delivery is at-least-once) carries the same Message-ID every time. The
counts are printed. A restarted gateway gives the dead process's leases back at once (it does not
wait for them to expire)."""
import email
import email.policy
import glob
import os
import random
import re
import signal
import time

from gwtest import Checks, Gateway, SmtpSink

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINERS = 50
REQUESTS = 40
TOTAL = TRAINERS * REQUESTS + REQUESTS  # the new_request emails and the request_received ones
KILLS = 4

c = Checks("crash")
sink = SmtpSink()
sink_dir, port = sink.dir, sink.port
gw = Gateway()
rnd = random.Random(4)
t_start = time.monotonic()


def arrived():
    return len(glob.glob(os.path.join(sink_dir, "[0-9]*.eml")))


def sent_rows():
    return gw.rows("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]


try:
    gw.start()
    org = gw.org("Crash Co", "UTC")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])  # files many requests from one address
    A = gw.user(org["id"], "admin@crash.test", ["org_admin"])["token"]
    for i in range(TRAINERS):
        gw.user(org["id"], "t%02d@crash.test" % i, ["trainer"], ["run"], token=A)
    gw.ok("PUT", O + "/providers/smtp", {"host": "127.0.0.1", "port": port, "security": "none",
                                         "from_address": "bookings@crash.test"}, A)
    for i in range(REQUESTS):
        r = gw.ok("POST", O + "/requests", {"customer": {"name": "C%d" % i,
                                                         "email": "c%d@example.test" % i},
                                            "skills": ["run"]})
        c.eq(r["matched_trainers"], TRAINERS, "request %d matches every trainer" % i)
    kills = []
    for k in range(KILLS):
        # kill while it sends: wait until some progress since the last restart, then SIGKILL
        base = arrived()
        deadline = time.monotonic() + 10
        target = base + rnd.randint(100, 300)
        while arrived() < target and arrived() < TOTAL - 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        if arrived() >= TOTAL - 50:
            break
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
        gw.proc = None
        leased = gw.rows("SELECT count(*) FROM outbox WHERE status = 'leased'")[0][0]
        kills.append((arrived(), sent_rows(), leased))
        gw.start()  # the new process gives the dead one's leases back at start
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and (sent_rows() < TOTAL or arrived() < TOTAL):
        time.sleep(0.05)
    c.eq(sent_rows(), TOTAL, "every row is sent in the end")
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE status <> 'sent'")[0][0], 0,
         "no row left pending, leased or dead")
    c.check(len(kills) >= 3, "killed %d times while sending" % len(kills))
    c.check(any(lz for _, _, lz in kills), "a kill left leased rows behind: %r" % kills)

    # one logical email = (recipient, request); each must have one Message-ID however often
    # it arrived (a request_received names no request, but each goes to a customer of its own)
    by_email = {}
    total = 0
    for path in sorted(glob.glob(os.path.join(sink_dir, "[0-9]*.eml"))):
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        total += 1
        req = re.search(r"/requests/(\d+)", m.get_body(("plain",)).get_content())
        key = (m["To"].addresses[0].addr_spec, req.group(1) if req else "?")
        by_email.setdefault(key, []).append(str(m["Message-ID"]))
    dups = {k: v for k, v in by_email.items() if len(v) > 1}
    ndup = sum(len(v) - 1 for v in by_email.values())
    c.eq(len(by_email), TOTAL, "every email arrived")
    c.check(all(len(set(v)) == 1 for v in by_email.values()),
            "every duplicate carries the same Message-ID")
    c.eq(len({mid for v in by_email.values() for mid in v}), TOTAL, "one Message-ID per email")
    c.eq(total, TOTAL + ndup, "arrivals = emails + duplicates")
    # the sent journal: only a reply in flight at the kill goes out twice, one per connection
    # (the settings' default max_connections: 8)
    c.check(ndup <= 8 * len(kills), "duplicates %d <= connections x kills = %d" %
            (ndup, 8 * len(kills)))
    for i, (a, s, lz) in enumerate(kills):
        print("  kill %d: %d arrived, %d rows recorded sent, %d rows left leased" % (i + 1, a, s,
                                                                                     lz))
    print("  crash: %d emails, %d kills, %d arrivals, %d duplicates in %d emails "
          "(each with one Message-ID), %.1f s" % (TOTAL, len(kills), total, ndup, len(dups),
                                                  time.monotonic() - t_start))
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
