"""/metrics on a large outbox: the rows by status, kind and class (ordinatus_outbox_rows) come
from a count of every outbox row, and /metrics needs no token, so the gateway keeps the last
counts and counts again only once 50 times as long as that count took has gone by
(gateway/delivery/dispatch_metrics.c). With 200,000 rows in the outbox (inserted while the
gateway is stopped: sending them is not what is tested):
  - the first /metrics counts them all, and says the counts are 0 s old;
  - a row written just after is not in the next answer's counts yet, while the depth
    (ordinatus_outbox_pending, read afresh at every request) already has it;
  - concurrent requests all get an answer, with the same counts;
  - the counts catch up by themselves (within a minute here), and
    ordinatus_outbox_rows_age_seconds never says more than that.
The counting time is printed."""
import re
import threading
import time

from gwtest import Checks, Gateway

ROWS = 200000
c = Checks("metrics")
gw = Gateway()
LINE = re.compile(r'^ordinatus_outbox_rows\{status="([a-z]+)",kind="([a-z_]+)",'
                  r'class="([a-z]+)"\} (\d+)$')


def metrics():
    """(the counts {(status, kind, class): n}, the other gauges {name: value}, seconds taken)"""
    t0 = time.monotonic()
    r = gw.call("GET", "/metrics")
    took = time.monotonic() - t0
    c.eq(r.status, 200, "GET /metrics")
    counts, gauges = {}, {}
    for line in r.raw.splitlines():
        m = LINE.match(line)
        if m:
            counts[m.group(1, 2, 3)] = int(m.group(4))
        elif line.startswith("ordinatus_outbox_") and " " in line and "{" not in line:
            name, value = line.split(" ", 1)
            gauges[name] = int(value)
    return counts, gauges, took


def insert(sql_sqlite, sql_pg):
    with gw.db() as db:
        db.execute(sql_pg if gw.backend == "postgresql" else sql_sqlite)
        db.commit()


try:
    gw.start()
    org = gw.org("Large History Training", "UTC")["id"]
    gw.stop()
    now = int(time.time())
    cols = ("INSERT INTO outbox(org_id, kind, provider_class, provider, dedupe_key, payload,"
            " status, attempts, next_attempt_at, created_at, sent_at, payload_state) ")
    vals = ("%d, 'new_request', 'email', 'smtp', 'history:' || {i}, '{{\"pruned\": true}}',"
            " 'sent', 1, %d, %d, %d, 'pruned'" % (org, now, now, now))
    insert("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
           % ROWS + cols + "SELECT " + vals.format(i="i") + " FROM n",
           cols + "SELECT " + vals.format(i="i") + " FROM generate_series(1, %d) AS i" % ROWS)
    gw.start()

    counts, gauges, t_first = metrics()
    print("  first /metrics over %d rows: %.0f ms" % (ROWS, t_first * 1000))
    c.eq(counts.get(("sent", "new_request", "email")), ROWS, "the first answer counts every row")
    c.eq(gauges.get("ordinatus_outbox_rows_age_seconds"), 0, "... and says it just counted")
    pending0 = gauges.get("ordinatus_outbox_pending")

    # a dead survey and a pending reminder due next year, written just after the count
    one = ("%d, '%s', 'email', NULL, '%s', '{}', '%s', 0, %d, %d, NULL, 'pruned'")
    for kind, status, due in (("survey", "dead", now), ("reminder", "pending",
                                                         now + 365 * 86400)):
        v = one % (org, kind, "late:" + kind, status, due, now)
        insert(cols + "VALUES(" + v + ")", cols + "VALUES(" + v + ")")
    t0 = time.monotonic()
    counts, gauges, _ = metrics()
    c.check(("dead", "survey", "email") not in counts,
            "the next answer serves the kept counts: no dead survey yet")
    c.eq(gauges.get("ordinatus_outbox_pending"), (pending0 or 0) + 1,
         "... while the depth is read afresh and has the new pending row")

    # concurrent requests: every one answered, all with the same counts
    answers = []

    def one_request():
        answers.append(metrics()[0].get(("sent", "new_request", "email")))

    threads = [threading.Thread(target=one_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.eq(answers, [ROWS] * 8, "8 concurrent requests, each with the kept counts")

    # the counts catch up by themselves, and the age never says more than they are
    caught, ages = None, []
    while time.monotonic() - t0 < 60:
        counts, gauges, _ = metrics()
        ages.append((time.monotonic() - t0, gauges.get("ordinatus_outbox_rows_age_seconds")))
        if counts.get(("dead", "survey", "email")) == 1:
            caught = time.monotonic() - t0
            break
        time.sleep(0.25)
    print("  the new rows were counted %.1f s after they were written" % (caught or -1))
    c.check(caught is not None, "the counts catch up within a minute")
    c.eq(counts.get(("pending", "reminder", "email")), 1, "... with the pending reminder")
    c.eq(counts.get(("sent", "new_request", "email")), ROWS, "... and the history unchanged")
    c.check(all(a is not None and a <= s + 1 for s, a in ages),
            "the age of the counts served is never more than they are: %s" % ages[-3:])
finally:
    try:
        gw.stop(expect_code=None)
    except Exception:
        pass
    gw.cleanup()

c.done()
