"""A fan-out larger than one chunk (tests/helpers/smtp_server.py on 127.0.0.1): an intake
matching 2,500 trainers is answered once the new_request rows of its first trainers (at most
1,000, as many as 40 ms allow and at least 100) and the record of the rest are committed; the
gateway enqueues the rest in the background (gateway/lifecycle/lc_fanout.c).
  - every matching trainer gets exactly one email, with their own name (a trainer without one
    among the later trainers gets "Hello,"), and the outbox holds one row per trainer;
  - kill -9 right after the answer: after a restart the rest is enqueued, still one row per
    trainer, nothing lost;
  - a claim while the rest is still to come: no row of that request is left to go out.
The 2,500 trainers are inserted into the users table while the gateway is stopped (making them
through the API is not what is tested)."""
import email
import email.policy
import json
import os
import re
import secrets
import time

from gwtest import Checks, Gateway, SmtpSink

N = 2500
NAMELESS = 2000  # the index of the trainer without a name: past the first chunk

c = Checks("fanout")
sink = SmtpSink()
gw = Gateway()
seen = {}  # file name -> recipient


def received():
    """{recipient: count} of every message the sink saved so far"""
    for f in os.listdir(sink.dir):
        if f in seen or not f.endswith(".json"):
            continue
        try:
            with open(os.path.join(sink.dir, f)) as fh:
                seen[f] = json.load(fh)["rcpt_tos"][0]
        except (OSError, ValueError):
            continue  # being written
    got = {}
    for to in seen.values():
        got[to] = got.get(to, 0) + 1
    return got


def wait(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def rows(org, req):
    return gw.rows("SELECT count(*), count(DISTINCT dedupe_key) FROM outbox"
                   " WHERE org_id = ? AND request_id = ? AND kind = 'new_request'", org, req)[0]


def left():
    return gw.rows("SELECT count(*) FROM outbox_fanouts")[0][0]


def intake(org, name):
    t0 = time.monotonic()
    r = gw.ok("POST", "/v1/orgs/%d/requests" % org,
              {"customer": {"name": name, "email": "%s@example.test" % name.lower()},
               "skills": ["yoga"]})
    return r, time.monotonic() - t0


try:
    gw.start()
    a = gw.org("Big Fan-out Training", "UTC")["id"]
    gw.intake_limits(a)
    A = gw.user(a, "admin@big.test", ["org_admin"])["token"]
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % a,
          {"host": "127.0.0.1", "port": sink.port, "security": "none",
           "from_address": "desk@big.test"}, A)
    first = gw.user(a, "first@big.test", ["trainer"], ["yoga"], token=A)
    gw.stop()
    now = int(time.time())
    with gw.db() as db:
        db.executemany(
            "INSERT INTO users(org_id, email, name, roles, skills, timezone, token_hash,"
            " created_at) VALUES(?, ?, ?, 4, '[\"yoga\"]', 'UTC', ?, ?)",
            ((a, "yogi%05d@big.test" % i, "" if i == NAMELESS else "Yogi %05d" % i,
              secrets.token_hex(32), now) for i in range(N - 1)))
    gw.start()
    trainers = {"first@big.test"} | {"yogi%05d@big.test" % i for i in range(N - 1)}

    # 1. the whole fan-out goes out, one email per trainer
    r, secs = intake(a, "Yara")
    c.eq(r["matched_trainers"], N, "the intake counts every matching trainer")
    m = re.search(r"^ordinatus_fanouts_pending (\d+)$", gw.call("GET", "/metrics").raw, re.M)
    c.check(m and int(m.group(1)) <= 1, "/metrics counts the fan-out still to be enqueued"
            " (or none, once done): %r" % (m and m.group(0)))
    c.check(wait(lambda: left() == 0 and rows(a, r["id"])[0] == N, 20),
            "the rest is enqueued in the background: %r rows" % (rows(a, r["id"]),))
    c.eq(rows(a, r["id"]), (N, N), "one new_request row per trainer")
    c.check("\nordinatus_fanouts_pending 0\n" in gw.call("GET", "/metrics").raw,
            "/metrics: no fan-out left to enqueue")
    c.check(wait(lambda: sum(t.endswith("@big.test") for t in received()) >= N, 60),
            "every trainer's email arrives")
    got = {t: n for t, n in received().items() if t.endswith("@big.test")}
    c.check(set(got) == trainers, "the emails went to the matching trainers: missing %s,"
            " not a trainer %s" % (sorted(trainers - set(got))[:5], sorted(set(got) - trainers)[:5]))
    c.check(all(n == 1 for n in got.values()),
            "no trainer got two: %r" % {t: n for t, n in got.items() if n != 1})
    hello = {}
    for f, to in seen.items():
        if to in ("yogi00000@big.test", "yogi%05d@big.test" % NAMELESS, "yogi02400@big.test"):
            with open(os.path.join(sink.dir, f[:-5] + ".eml"), "rb") as fh:
                m = email.message_from_binary_file(fh, policy=email.policy.default)
            hello[to] = (str(m["To"]), m.get_body(("plain",)).get_content().splitlines()[0])
    c.eq(hello.get("yogi00000@big.test"), ("Yogi 00000 <yogi00000@big.test>", "Hello Yogi 00000,"),
         "a trainer of the first chunk is greeted by name")
    c.eq(hello.get("yogi02400@big.test"), ("Yogi 02400 <yogi02400@big.test>", "Hello Yogi 02400,"),
         "a trainer of a later chunk is greeted by name")
    c.eq(hello.get("yogi%05d@big.test" % NAMELESS), ("yogi%05d@big.test" % NAMELESS, "Hello,"),
         "a later trainer without a name gets 'Hello,'")

    # 2. kill -9 right after the answer: the rest comes after the restart
    r2, _ = intake(a, "Kim")
    gw.kill()
    interrupted = left()
    before = rows(a, r2["id"])[0]
    gw.start()
    c.check(wait(lambda: left() == 0 and rows(a, r2["id"])[0] == N, 20),
            "after the restart the rest is enqueued: %r rows" % (rows(a, r2["id"]),))
    c.eq(rows(a, r2["id"]), (N, N), "still one row per trainer after the kill")
    def trainer_mails():
        return sum(n for t, n in received().items() if t.endswith("@big.test"))
    c.check(wait(lambda: trainer_mails() >= 2 * N, 60), "every trainer's second email arrives")
    dups = trainer_mails() - 2 * N
    c.check(0 <= dups <= 8, "at most one duplicate per connection after the kill: %d" % dups)
    print("  kill -9 after the answer: %d rows of %d enqueued, %d fan-out left; %d duplicates"
          % (before, N, interrupted, dups))

    # 3. claimed while the rest is still to come: nothing of it is left to go out
    r3, secs3 = intake(a, "Lou")
    gw.ok("POST", "/v1/orgs/%d/requests/%d/claim" % (a, r3["id"]), token=first["token"])
    c.check(wait(lambda: left() == 0, 20), "the fan-out record is dropped")
    n3 = rows(a, r3["id"])[0]

    def status(s):
        return gw.rows("SELECT count(*) FROM outbox WHERE request_id = ? AND kind = 'new_request'"
                       " AND status = ?", r3["id"], s)[0][0]
    # rows leased when the claim came were on their way: they finish; nothing else goes
    c.check(wait(lambda: status("leased") == 0, 20), "the rows in flight finish")
    c.eq(status("pending"), 0, "after the claim no new_request row of the request is left to go out")
    c.check(100 <= n3 <= N, "the intake's own rows are there (%d)" % n3)
    print("  intake of %d trainers answered in %.0f ms; claimed with %d rows enqueued"
          % (N, secs * 1000, n3))
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
