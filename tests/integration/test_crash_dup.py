"""Crash test, duplicates bounded: intake makes TRAINERS x REQUESTS new_request emails and the
REQUESTS customers' request_received (300 by default) for a real SMTP server
(tests/helpers/smtp_server.py on 127.0.0.1); the organisation's SMTP settings allow WORKERS
connections, and the gateway is killed with SIGKILL KILLS times while it sends, and restarted
each time. In the end every email
has arrived, and the ones that arrived twice are at most one per connection per kill (the
reply that was in flight: the sent journal records every other), each with its original's
Message-ID. Counts and the time taken are printed.

usage: test_crash_dup.py [--trainers N] [--requests N] [--workers N] [--kills N]
(bench/crash.sh runs the large case: 2,000 emails, 8 connections, 5 kills)"""
import argparse
import email
import email.policy
import glob
import os
import random
import re
import signal
import time

from gwtest import Checks, Gateway, SmtpSink

ap = argparse.ArgumentParser()
ap.add_argument("--trainers", type=int, default=59)
ap.add_argument("--requests", type=int, default=5)
ap.add_argument("--workers", type=int, default=4)
ap.add_argument("--kills", type=int, default=2)
a = ap.parse_args()
TOTAL = a.trainers * a.requests + a.requests

HERE = os.path.dirname(os.path.abspath(__file__))
c = Checks("crash_dup")
sink = SmtpSink()
sink_dir, port = sink.dir, sink.port
gw = Gateway()
rnd = random.Random(12)
t_start = time.monotonic()


def arrived():
    return len(glob.glob(os.path.join(sink_dir, "[0-9]*.eml")))


def settled_arrivals():
    """arrived() once it has stood still for 0.2 s: the server may still be saving a message
    whose end of data came in before the kill (it saves, then answers 250)"""
    n, since = arrived(), time.monotonic()
    while time.monotonic() - since < 0.2:
        time.sleep(0.02)
        m = arrived()
        if m != n:
            n, since = m, time.monotonic()
    return n


def sent_rows():
    return gw.rows("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]


try:
    gw.start()
    org = gw.org("Crash Co", "UTC")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])
    A = gw.user(org["id"], "admin@crash.test", ["org_admin"])["token"]
    for i in range(a.trainers):
        gw.user(org["id"], "t%03d@crash.test" % i, ["trainer"], ["run"], token=A)
    gw.ok("PUT", O + "/providers/smtp", {"host": "127.0.0.1", "port": port, "security": "none",
                                         "from_address": "bookings@crash.test",
                                         "max_connections": a.workers}, A)
    for i in range(a.requests):
        r = gw.ok("POST", O + "/requests", {"customer": {"name": "C%d" % i,
                                                         "email": "c%d@example.test" % i},
                                            "skills": ["run"]})
        c.eq(r["matched_trainers"], a.trainers, "request %d matches every trainer" % i)
    kills = []
    for k in range(a.kills):
        base = arrived()
        target = base + rnd.randint(TOTAL // (4 * a.kills), TOTAL // (2 * a.kills))
        deadline = time.monotonic() + 20
        while arrived() < target and time.monotonic() < deadline:
            time.sleep(0.002)
        if arrived() >= TOTAL - a.workers:
            break
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
        gw.proc = None
        leased = gw.rows("SELECT count(*) FROM outbox WHERE status = 'leased'")[0][0]
        kills.append((settled_arrivals(), sent_rows(), leased))
        gw.start()  # replays the dead process's journals, then gives its leases back
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (sent_rows() < TOTAL or arrived() < TOTAL):
        time.sleep(0.05)
    c.eq(sent_rows(), TOTAL, "every row is sent in the end")
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE status <> 'sent'")[0][0], 0,
         "no row left pending, leased or dead")
    c.eq(len(kills), a.kills, "killed %d times while sending" % a.kills)
    c.check(any(lz for _, _, lz in kills), "a kill left leased rows behind: %r" % kills)
    replayed = gw.rows("SELECT count(*) FROM delivery_attempts WHERE detail LIKE"
                       " 'recorded at restart%'")[0][0]
    c.check(replayed > 0, "rows sent before a kill were recorded from the journal (%d)" %
            replayed)

    by_email, total = {}, 0
    # in arrival order: the server numbers the messages it saves
    paths = glob.glob(os.path.join(sink_dir, "[0-9]*.eml"))
    for path in sorted(paths, key=lambda p: int(os.path.basename(p)[:-4])):
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        total += 1
        req = re.search(r"/requests/(\d+)", m.get_body(("plain",)).get_content())
        key = (m["To"].addresses[0].addr_spec, req.group(1) if req else "?")
        by_email.setdefault(key, []).append((total, str(m["Message-ID"])))
    ndup = sum(len(v) - 1 for v in by_email.values())
    # each duplicate belongs to the first kill by which its previous copy had arrived: that
    # copy's result was not recorded, so the next process sent it again
    per_kill = [0] * len(kills)
    for copies in by_email.values():
        for (prev, _), _ in zip(copies, copies[1:]):
            k = next((i for i, (n, _, _) in enumerate(kills) if prev <= n), None)
            if k is not None:
                per_kill[k] += 1
    c.eq(len(by_email), TOTAL, "every email arrived")
    c.check(all(len({mid for _, mid in v}) == 1 for v in by_email.values()),
            "every duplicate carries its original's Message-ID")
    c.eq(total, TOTAL + ndup, "arrivals = emails + duplicates")
    c.check(ndup <= a.workers * len(kills),
            "duplicates %d <= connections x kills = %d" % (ndup, a.workers * len(kills)))
    c.eq(sum(per_kill), ndup, "every duplicate follows a kill")
    c.check(max(per_kill, default=0) <= a.workers,
            "at most one duplicate per connection per kill: %r (connections %d)" %
            (per_kill, a.workers))
    for i, (n, s, lz) in enumerate(kills):
        print("  kill %d: %d arrived, %d rows recorded sent, %d rows left leased, %d sent again"
              % (i + 1, n, s, lz, per_kill[i]))
    print("  crash_dup: %d emails, %d connections, %d kills, %d arrivals, %d duplicates "
          "(bound %d), %d rows recorded from journals, %.1f s" %
          (TOTAL, a.workers, len(kills), total, ndup, a.workers * len(kills), replayed,
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
