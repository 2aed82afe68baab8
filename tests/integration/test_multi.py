"""Several gateways on one PostgreSQL database (issue 13): three gateways, each with a data folder
of its own (the first one initialised, the others holding a copy of its master.key), share one
database and one SMTP sink (tests/helpers/smtp_server.py on 127.0.0.1). Shown, each as checks:

 1. delivery: one intake per 40 customers fanning out to 49 trainers (2,000 emails), with one
    gateway killed -9 twice while sending and restarted on its data folder each time: every
    outbox row ends sent, every Message-ID reaches the sink, and an email arrived twice only if
    its row was leased by the killed gateway at a kill (at most one in flight per connection
    per kill: the sent journal records the rest, as test_crash_dup.py shows for one gateway);
    a restart gives back the leases of the killed process and of no live one;
 2. the claim race: 20 trainers, spread over the three gateways, claim one request at the same
    moment (threads behind a barrier): one 200, nineteen 409 already_claimed, the request's
    trainer the winner (three rounds);
 3. PostgreSQL restarted under load: a client per gateway keeps calling a read route and the
    public intake; every answer, read or intake, is 2xx or 503 {"error": "unavailable", ...},
    none a 500, and no call meets a refused connection; after the restart everything waiting before
    it and every intake answered 201 is delivered (nothing lost), each gateway takes intakes
    again within seconds, and the URL's password is in no log;
 4. reminders: the gateways restarted with --test-clock, bookings made through all three, then
    the scheduler ticked on all three at once (POST /v1/test/tick on each and `ordinatus tick`
    on each data folder, together, three times per reminder point): every reminder row and
    email exactly once (dedupe keys; the ticks take turns under an advisory lock);
 5. a gateway killed for good: the live ones leave its leases alone while they run, and take
    its rows once they expired (the test clock moved past them), every email reaching the sink;
 6. wake-ups: each live gateway has a connection LISTENing on ordinatus_outbox, an intake's
    commit sends the NOTIFY (seen by a listener of the test's own), a read sends none.
(4 and 5 run on the test clock, after 3: a frozen clock would keep a lease lost in the restart
of 3 from ever expiring.)

The cluster: ORDINATUS_TEST_PG=HOST:PORT with ORDINATUS_TEST_PG_DIR (tests/run_integration.sh's,
restartable), or else one of its own (tests/helpers/pgcluster.py) in a temporary folder, stopped
by its pid at the end; either way in a database of its own, dropped at the end. Runs only with
ORDINATUS_TEST_DB=postgresql: on SQLite one process is the design, and the test says it skipped.
"""
import email
import email.policy
import glob
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from gwtest import BIN, Checks, Gateway, SmtpSink, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))

c = Checks("multi")
if (os.environ.get("ORDINATUS_TEST_DB") or "sqlite") != "postgresql":
    print("multi: skipped on sqlite (several gateways share a PostgreSQL database only)")
    c.check(True, "the skip is deliberate")
    c.done()

import pgcluster  # noqa: E402
import psycopg2  # noqa: E402

GATEWAYS = 3
TRAINERS = 49
REQUESTS = 40
TOTAL = TRAINERS * REQUESTS + REQUESTS  # 2,000: the new_request emails and the request_received
CONNS = 4  # the organisation's max_connections: email rows in flight per gateway
KILLS = 2
CLAIMERS = 20
CLAIM_ROUNDS = 3
BOOKINGS = 6
PASSWORD = "multi-pw-%08x" % random.SystemRandom().getrandbits(32)  # trust auth ignores it
ALL_WEEK = [{"day": d, "start": "00:00", "end": "24:00"}
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
HOST = socket.gethostname()
t_start = time.monotonic()


# ---- the database ----
def open_cluster():
    """(cluster, ours): the run's cluster when it can be restarted, else one of our own."""
    where = os.environ.get("ORDINATUS_TEST_PG")
    pgdir = os.environ.get("ORDINATUS_TEST_PG_DIR")
    if where and pgdir:
        host, port = where.rsplit(":", 1)
        return pgcluster.Cluster(pgdir, host, int(port)), False
    if where:
        print("  ORDINATUS_TEST_PG without ORDINATUS_TEST_PG_DIR cannot be restarted: "
              "a cluster of this test's own instead")
    cl = pgcluster.Cluster(tempfile.mkdtemp(prefix="ordinatus-multi-pg-"))
    cl.start()
    return cl, True


def sql(query, *args):
    """Rows of one query on a connection of its own (the test's threads share none)."""
    conn = psycopg2.connect(DSN)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


class PgGateway(Gateway):
    """A gateway on the shared database: the first one is initialised (schema, platform admin,
    master.key), every other one gets a data folder of its own holding a copy of that key."""

    def __init__(self, name, first=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="ordinatus-multi-%s-" % name)
        self.data = os.path.join(self.dir, "data")
        if first is None:
            out = subprocess.run([BIN, "init", "--data", self.data, "--db", URL],
                                 capture_output=True, text=True, check=True)
            self.admin_token = json.loads(out.stdout)["platform_admin_token"]
            self.init_output = out.stdout + out.stderr
        else:
            # init refuses a database that is initialised, before it writes a key file
            out = subprocess.run([BIN, "init", "--data", self.data, "--db", URL],
                                 capture_output=True, text=True)
            self.init_output = out.stdout + out.stderr
            self.refused_init = (out.returncode != 0 and
                                 "initialised already" in out.stderr and
                                 not os.path.exists(os.path.join(self.data, "master.key")))
            os.makedirs(self.data, mode=0o700, exist_ok=True)
            key = os.path.join(self.data, "master.key")
            shutil.copyfile(os.path.join(first.data, "master.key"), key)
            os.chmod(key, 0o600)
            self.admin_token = first.admin_token
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.test_clock = False
        self.extra_args = ["--db", URL, "--allow-outbound", "127.0.0.1/32"]
        self.proc = None
        # what gwtest.Gateway keeps besides: the store is this test's database, given with
        # --db (the database is dropped by the test, not by a gateway)
        self.backend = "postgresql"
        self.env = {k: v for k, v in os.environ.items() if k != "ORDINATUS_DB"}
        self.dbname = None
        self.dsn = URL
        self._pg = None
        self.log = None
        self.log_path = os.path.join(self.dir, "serve.log")

    def kill9(self):
        """SIGKILL by pid; the pid it had, for its lease owners ("host:pid:...")."""
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.log.close()
        return pid

    def restart(self, test_clock=False):
        self.stop()
        self.test_clock = test_clock
        self.start()

    def log_lines(self):
        out = []
        for line in self.read_log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"text": line})
        return out

    def causes(self, limit=8):
        """The log lines that name a cause or are errors: what a failure report quotes."""
        bad = [l for l in self.log_lines()
               if "cause" in l or l.get("level") == "error" or "text" in l]
        return ["%s: %s" % (self.name, json.dumps(l, sort_keys=True)) for l in bad[-limit:]]


def report(gws):
    for g in gws:
        for line in g.causes():
            print("    " + line)


def call(g, method, path, body=None, token=None, timeout=10):
    """One HTTP call: (status, json or None, transport error or None); never raises."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(g.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    except (OSError, ValueError) as e:
        return None, None, "%s: %s" % (type(e).__name__, e)
    try:
        return status, json.loads(raw) if raw else None, None
    except ValueError:
        return status, None, None


# ---- the sink ----
class SinkIndex:
    """The sink's messages, each file parsed once (the sink renames a whole file into place)."""

    def __init__(self, sink):
        self.dir = sink.dir
        self.seen = {}

    def count(self):
        return len(glob.glob(os.path.join(self.dir, "[0-9]*.eml")))

    def messages(self):
        for path in sorted(glob.glob(os.path.join(self.dir, "[0-9]*.eml"))):
            if path in self.seen:
                continue
            with open(path, "rb") as f:
                m = email.message_from_binary_file(f, policy=email.policy.default)
            self.seen[path] = {"mid": str(m["Message-ID"]), "kind": str(m["X-Ordinatus-Kind"]),
                               "to": m["To"].addresses[0].addr_spec,
                               "text": m.get_body(("plain",)).get_content()}
        return [self.seen[p] for p in sorted(self.seen)]


def row_message_ids(org):
    """{outbox id: Message-ID} of the organisation's email rows, read from their payloads (a
    fan-out row's payload holds the values of its body's placeholders, the Message-ID one)."""
    out = {}
    for oid, payload in sql("SELECT id, payload FROM outbox WHERE org_id = %s AND"
                            " provider_class = 'email'", org):
        p = json.loads(payload)
        mid = p.get("message_id") if isinstance(p, dict) else None
        if not mid:
            mids = [v for v in p.values() if isinstance(v, str) and v.startswith("<") and
                    v.endswith(">") and "@" in v]
            mid = mids[0] if len(mids) == 1 else None
        out[oid] = mid
    return out


def leased_by(pid):
    """Ids of the rows leased by the workers of process pid ("host:pid:class:index:start")."""
    return {i for i, owner in sql("SELECT id, lease_owner FROM outbox WHERE status = 'leased'")
            if owner and owner.split(":")[:2] == [HOST, str(pid)]}


def settle(where, *args, timeout=30):
    """Wait until no outbox row WHERE where is pending or leased; {status: rows} of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sql("SELECT 1 FROM outbox WHERE (%s) AND status IN"
                                              " ('pending', 'leased') LIMIT 1" % where, *args):
        time.sleep(0.1)
    return dict(sql("SELECT status, count(*) FROM outbox WHERE %s GROUP BY status" % where,
                    *args))


def sink_token(index, customer, deadline):
    """The scheduling-link token of the email to customer."""
    while time.monotonic() < deadline:
        for m in index.messages():
            if m["kind"] == "scheduling_link" and m["to"] == customer:
                return re.search(r"/s/([A-Za-z0-9_-]+)", m["text"]).group(1)
        time.sleep(0.05)
    raise AssertionError("no scheduling link reached " + customer)


cluster = ours = None
DBNAME = "multi_%d" % os.getpid()
smtp = sink = None
gws = []
try:
    cluster, ours = open_cluster()
    cluster.drop_database(DBNAME)
    cluster.create_database(DBNAME)
    DSN = cluster.dsn(DBNAME)
    URL = DSN.replace("ordinatus@", "ordinatus:%s@" % PASSWORD, 1)
    smtp = SmtpSink()
    sink = SinkIndex(smtp)
    first = PgGateway("g1")
    gws = [first] + [PgGateway("g%d" % (i + 1), first) for i in range(1, GATEWAYS)]
    c.check(all(g.refused_init for g in gws[1:]),
            "init refuses the initialised database and writes no key: %r" %
            [g.init_output for g in gws[1:]])
    for g in gws:
        g.start()
    g1, g2, g3 = gws
    org = g1.org("Multi Co", "UTC")
    oid = org["id"]
    O = "/v1/orgs/%d" % oid
    g1.intake_limits(oid)
    A = g1.user(oid, "admin@multi.test", ["org_admin"])["token"]
    g2.ok("PUT", O + "/providers/smtp", {"host": "127.0.0.1", "port": smtp.port,
                                         "security": "none", "from_address": "desk@multi.test",
                                         "max_connections": CONNS}, A)
    for i in range(TRAINERS):
        gws[i % GATEWAYS].user(oid, "t%03d@multi.test" % i, ["trainer"], ["run"], token=A)

    # ---- 1. 2,000 emails, one gateway killed -9 twice while sending ----
    t1 = time.monotonic()
    for i in range(REQUESTS):
        r = gws[i % GATEWAYS].ok("POST", O + "/requests",
                                 {"customer": {"name": "C%d" % i, "email": "c%d@example.test" % i},
                                  "skills": ["run"]})
        c.eq(r["matched_trainers"], TRAINERS, "request %d matches every trainer" % i)
    victim = g2
    rnd = random.Random(13)
    kills = []  # (arrived, rows sent, ids leased by the killed gateway)
    killed = []  # its pids
    for k in range(KILLS):
        target = sink.count() + rnd.randint(TOTAL // 8, TOTAL // 5)
        deadline = time.monotonic() + 30
        while sink.count() < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if sink.count() >= TOTAL - CONNS * GATEWAYS:
            break
        pid = victim.kill9()
        leased = leased_by(pid)
        sent = sql("SELECT count(*) FROM outbox WHERE org_id = %s AND status = 'sent'",
                   oid)[0][0]
        kills.append((sink.count(), sent, leased))
        victim.start()  # records its journal's sent rows, then gives its dead leases back
        killed.append(pid)
    done = settle("org_id = %s", oid, timeout=60)
    mids = row_message_ids(oid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len({m["mid"] for m in sink.messages()}) < TOTAL:
        time.sleep(0.05)
    msgs = sink.messages()
    c.eq(len(kills), KILLS, "the gateway was killed %d times while sending" % KILLS)
    c.check(all(lz for _, _, lz in kills), "each kill left rows leased by the killed gateway: "
            "%r" % [len(lz) for _, _, lz in kills])
    if not c.eq(done, {"sent": TOTAL}, "every outbox row ends sent"):
        report(gws)
    c.eq(len(mids), TOTAL, "the intake made %d email rows" % TOTAL)
    c.check(all(mids.values()) and len(set(mids.values())) == TOTAL,
            "each row has a Message-ID of its own")
    arrivals = {}
    for m in msgs:
        arrivals[m["mid"]] = arrivals.get(m["mid"], 0) + 1
    c.eq(set(arrivals), set(mids.values()), "the sink has every row's Message-ID, no other")
    by_mid = {mid: i for i, mid in mids.items()}
    dup_ids = {by_mid.get(mid): n - 1 for mid, n in arrivals.items() if n > 1}
    ndup = sum(dup_ids.values())
    in_flight = set().union(*[lz for _, _, lz in kills]) if kills else set()
    c.check(set(dup_ids) <= in_flight,
            "every duplicate's row was leased by the killed gateway at a kill: %r not" %
            sorted(set(dup_ids) - in_flight))
    c.check(ndup <= CONNS * len(kills), "duplicates %d <= the killed gateway's connections x"
            " kills = %d" % (ndup, CONNS * len(kills)))
    c.eq(len(msgs), TOTAL + ndup, "arrivals = emails + duplicates")
    # a start gives back the leases of dead processes only, never a live gateway's
    reclaimed = [l.get("owner", "") for l in victim.log_lines()
                 if l.get("event") == "dispatch_leases_reclaimed"]
    c.check(reclaimed and all(o.split(":")[:2] in [[HOST, str(p)] for p in killed]
                              for o in reclaimed),
            "the restarts gave back the killed process's leases and no other: %r" % reclaimed)
    senders = []
    for g in gws:
        senders.append(sum(1 for l in g.log_lines() if l.get("event") == "delivery" and
                           l.get("outcome") == "sent"))
    c.check(all(senders), "every gateway sent a share: %r" % senders)
    for i, (n, s, lz) in enumerate(kills):
        print("  kill %d: %d arrived, %d rows recorded sent, %d rows leased by the killed "
              "gateway" % (i + 1, n, s, len(lz)))
    print("  1. %d emails over %d gateways (sent per gateway's logs %r), %d kills, %d arrivals, "
          "%d duplicates (bound %d), %.1f s" % (TOTAL, GATEWAYS, senders, len(kills), len(msgs),
                                                ndup, CONNS * len(kills),
                                                time.monotonic() - t1))

    # ---- 2. 20 trainers on three gateways claim one request at once ----
    t2 = time.monotonic()
    claimers = [gws[i % GATEWAYS].user(oid, "swim%02d@multi.test" % i, ["trainer"], ["swim"],
                                       token=A) for i in range(CLAIMERS)]
    for rnd_no in range(CLAIM_ROUNDS):
        req = g3.ok("POST", O + "/requests",
                    {"customer": {"name": "S%d" % rnd_no,
                                  "email": "swimmer%d@example.test" % rnd_no},
                     "skills": ["swim"]})
        c.eq(req["matched_trainers"], CLAIMERS, "the request matches the %d trainers" % CLAIMERS)
        barrier = threading.Barrier(CLAIMERS)
        answers = [None] * CLAIMERS

        def claim(i, rid=req["id"]):
            barrier.wait()
            answers[i] = call(gws[i % GATEWAYS], "POST", O + "/requests/%d/claim" % rid,
                              token=claimers[i]["token"])

        th = [threading.Thread(target=claim, args=(i,)) for i in range(CLAIMERS)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        won = [i for i, (s, _, _) in enumerate(answers) if s == 200]
        lost = [i for i, (s, j, _) in enumerate(answers)
                if s == 409 and j and j.get("error") == "already_claimed"]
        c.eq(len(won), 1, "round %d: one claim wins" % rnd_no)
        if not c.eq(len(lost), CLAIMERS - 1, "round %d: nineteen 409 already_claimed" % rnd_no):
            print("    answers: %r" % [(s, (j or {}).get("error"), e) for s, j, e in answers])
            report(gws)
        got = g1.ok("GET", O + "/requests/%d" % req["id"], token=A)
        c.eq((got["status"], got.get("trainer_id")),
             ("claimed", claimers[won[0]]["id"] if won else None),
             "round %d: the request is the winner's" % rnd_no)
        c.check(len({i % GATEWAYS for i in range(CLAIMERS)}) == GATEWAYS,
                "the claims came through all three gateways")
    print("  2. %d rounds of %d simultaneous claims over %d gateways: one winner each, %.1f s" %
          (CLAIM_ROUNDS, CLAIMERS, GATEWAYS, time.monotonic() - t2))
    settle("org_id = %s", oid)

    # ---- 3. PostgreSQL restarted under load ----
    t4 = time.monotonic()
    for i in range(2):
        gws[i].user(oid, "yoga%d@multi.test" % i, ["trainer"], ["yoga"], token=A)
    probe = g1.ok("POST", O + "/requests", {"customer": {"name": "Probe",
                                                         "email": "probe@example.test"},
                                            "skills": ["yoga"]})
    stop_load = threading.Event()
    log = [[] for _ in gws]  # per gateway: (t, route, status, error body, transport error)
    accepted = [[] for _ in gws]  # intakes answered 201: (request id, customer)

    def load(k):
        g, n = gws[k], 0
        while not stop_load.is_set():
            t = time.monotonic()
            s, j, e = call(g, "GET", O + "/requests/%d" % probe["id"], token=A, timeout=15)
            log[k].append((t, "read", s, j, e))
            n += 1
            cust = "load%d.%d@example.test" % (k, n)
            t = time.monotonic()
            s, j, e = call(g, "POST", O + "/requests", {"customer": {"name": "L", "email": cust},
                                                "skills": ["yoga"]}, timeout=15)
            log[k].append((t, "write", s, j, e))
            if s == 201:
                accepted[k].append((j["id"], cust))
            time.sleep(0.1)  # ~10 intakes a second a gateway: under the intake limits

    th = [threading.Thread(target=load, args=(k,)) for k in range(GATEWAYS)]
    for t in th:
        t.start()
    time.sleep(2)
    waiting = [i for (i,) in sql("SELECT id FROM outbox WHERE org_id = %s AND status IN"
                                 " ('pending', 'leased')", oid)]
    down_at = time.monotonic()
    cluster.stop()
    time.sleep(1.5)  # the database stays down a moment, so that every gateway notices
    cluster.start(port=cluster.port)
    up_at = time.monotonic()
    # the load runs on until every gateway took an intake after the restart, or 20 s
    deadline = up_at + 20
    while time.monotonic() < deadline:
        if all(any(t >= up_at and r == "write" and s == 201 for t, r, s, _, _ in lg)
               for lg in log):
            break
        time.sleep(0.1)
    time.sleep(1)
    stop_load.set()
    for t in th:
        t.join()
    answers = [a for lg in log for a in lg]
    statuses = {}
    for _, r, s, _, e in answers:
        statuses[s if e is None else "error"] = statuses.get(s if e is None else "error", 0) + 1
    transport = [e for _, _, _, _, e in answers if e]
    odd = [(r, s, j) for _, r, s, j, e in answers
           if e is None and not (200 <= s < 300) and s != 503]
    bad503 = [j for _, _, s, j, _ in answers
              if s == 503 and not (isinstance(j, dict) and j.get("error") == "unavailable" and
                                   j.get("message"))]
    during = [a for a in answers if down_at <= a[0] <= up_at]
    c.check(len(during) >= GATEWAYS, "requests were made while the database was down (%d)" %
            len(during))
    c.check(not transport, "no connection refused or other transport error: %r" % transport[:5])
    if not c.check(not odd, "every answer, read or intake, is 2xx or 503, none 500: %d not, "
                   "%r" % (len(odd), odd[:3])):
        report(gws)
    c.check(not bad503, "every 503 has the error body {\"error\": \"unavailable\", ...}: %r" %
            bad503[:3])
    back = []
    for k, lg in enumerate(log):
        t_ok = [t for t, r, s, _, _ in lg if t >= up_at and r == "write" and s == 201]
        back.append(round(t_ok[0] - up_at, 1) if t_ok else None)
    c.check(all(b is not None and b <= 10 for b in back),
            "each gateway takes intakes again within 10 s of the restart: %r s" % back)
    ids = [rid for acc in accepted for rid, _ in acc]
    c.eq(sql("SELECT count(*) FROM requests WHERE id = ANY(%s)", ids)[0][0], len(ids),
         "every intake answered 201 is stored")
    c.eq(sql("SELECT count(*) FROM outbox WHERE request_id = ANY(%s)", ids)[0][0], 3 * len(ids),
         "with its three emails")
    done = settle("request_id = ANY(%s) OR id = ANY(%s)", ids, waiting, timeout=90)
    # the rows waiting at the stop may be some of the accepted intakes' own: count each once
    total = sql("SELECT count(*) FROM outbox WHERE request_id = ANY(%s) OR id = ANY(%s)",
                ids, waiting)[0][0]
    c.check(total >= 3 * len(ids) and total >= len(waiting),
            "the rows to deliver: every intake's three and every row waiting at the stop")
    if not c.eq(done, {"sent": total},
                "after the restart every row is sent, those waiting at the stop (%d) and the "
                "intakes' (nothing lost)" % len(waiting)):
        print("    not sent: %r" % sql("SELECT status, lease_owner, count(*) FROM outbox WHERE"
                                       " org_id = %s AND status <> 'sent' GROUP BY 1, 2", oid))
        report(gws)
    mine = set(waiting) | {i for (i,) in sql("SELECT id FROM outbox WHERE request_id = ANY(%s)",
                                             ids)}
    mids = {i: m for i, m in row_message_ids(oid).items() if i in mine}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not set(mids.values()) <= {m["mid"] for m in
                                                                       sink.messages()}:
        time.sleep(0.1)
    got = {m["mid"] for m in sink.messages()}
    c.check(set(mids.values()) <= got, "the sink has every email, before and after the restart "
            "(%d missing)" % len(set(mids.values()) - got))
    cust_ok = {m["to"] for m in sink.messages() if m["kind"] == "request_received"}
    c.check(all(cu in cust_ok for acc in accepted for _, cu in acc),
            "every accepted intake's customer got the request_received email")
    leaked = [g.name for g in gws if PASSWORD in g.read_log() or PASSWORD in g.init_output]
    c.check(not leaked, "the URL's password reaches no log: %r" % leaked)
    print("  3. restart under load: %d answers %r, %d while down (%.1f s), intakes again after "
          "%r s, %d intakes accepted and delivered, %.1f s" %
          (len(answers), statuses, len(during), up_at - down_at, back, len(ids),
           time.monotonic() - t4))

    # ---- 4. reminders with the scheduler ticking on all three gateways ----
    t3 = time.monotonic()
    for g in gws:
        g.restart(test_clock=True)

    def clock(t, on=gws):
        for g in on:
            g.ok("PUT", "/v1/test/clock", {"now": t})

    clock("2027-01-04T08:00:00Z")
    g1.ok("PATCH", O + "/settings", {"reminder_hours": "24, 1", "tick_minutes": 15}, A)
    st = g1.ok("POST", O + "/session-types",
               {"name": "Row", "skills": ["row"], "lengths": [60], "price_cents": 100,
                "currency": "EUR", "step_minutes": 30}, A)
    coaches = [gws[i % GATEWAYS].user(oid, "row%d@multi.test" % i, ["trainer"], ["row"],
                                      token=A) for i in range(BOOKINGS)]
    for co in coaches:
        g2.ok("PUT", O + "/users/%d/availability" % co["id"], {"weekly": ALL_WEEK},
              co["token"])
    bookings = []
    for i in range(BOOKINGS):
        ga, gb, gc = gws[i % 3], gws[(i + 1) % 3], gws[(i + 2) % 3]
        cust = "rower%d@example.test" % i
        req = ga.ok("POST", O + "/requests", {"customer": {"name": "R%d" % i, "email": cust},
                                              "skills": ["row"]})
        T = coaches[i]["token"]
        gb.ok("POST", O + "/requests/%d/claim" % req["id"], token=T)
        gc.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T)
        ga.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T)
        tok = sink_token(sink, cust, time.monotonic() + 15)
        b = gb.ok("POST", "/v1/schedule/%s/booking" % tok,
                  {"start": "2027-01-05T10:00:00Z", "length_minutes": 60})
        gc.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "row%d" % i})
        ga.ok("POST", O + "/bookings/%d/confirm-payment" % b["booking_id"], token=T)
        bookings.append((b["booking_id"], cust))

    def tick_everywhere(at):
        """Each gateway's POST /v1/test/tick and an `ordinatus tick --at` on each data folder,
        all released at once; what each enqueued, and the failures."""
        barrier = threading.Barrier(2 * GATEWAYS)
        res = [None] * (2 * GATEWAYS)

        def http_tick(k):
            barrier.wait()
            s, j, e = call(gws[k], "POST", "/v1/test/tick", {}, timeout=30)
            res[k] = (j or {}).get("reminders") if s == 200 else ("http", s, j, e)

        def cli_tick(k):
            barrier.wait()
            p = subprocess.run([BIN, "tick", "--data", gws[k].data, "--db", URL, "--at", at],
                               capture_output=True, text=True, timeout=60)
            try:
                res[GATEWAYS + k] = json.loads(p.stdout)["reminders"] if p.returncode == 0 \
                    else ("cli", p.returncode, p.stderr)
            except (ValueError, KeyError):
                res[GATEWAYS + k] = ("cli", p.returncode, p.stdout + p.stderr)
            if PASSWORD in p.stdout + p.stderr:
                res[GATEWAYS + k] = ("cli printed the password",)

        th = [threading.Thread(target=http_tick, args=(k,)) for k in range(GATEWAYS)]
        th += [threading.Thread(target=cli_tick, args=(k,)) for k in range(GATEWAYS)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        return res

    points = [("2027-01-04T10:00:00Z", 1440), ("2027-01-05T09:00:00Z", 60)]
    for at, off in points:
        clock(at)
        results = [tick_everywhere(at) for _ in range(3)]
        flat = [r for rs in results for r in rs]
        failed = [r for r in flat if not isinstance(r, int)]
        if not c.check(not failed, "every tick at %s succeeded: %r" % (at, failed[:3])):
            report(gws)
        c.eq(sum(r for r in flat if isinstance(r, int)), BOOKINGS,
             "%d ticks at %s (%d at once, three times) enqueue each of the %d reminders once" %
             (len(flat), at, 2 * GATEWAYS, BOOKINGS))
        keys = sql("SELECT dedupe_key FROM outbox WHERE org_id = %s AND kind = 'reminder' AND"
                   " dedupe_key LIKE %s", oid, "reminder:%%:%d:%%" % off)
        c.eq(sorted(k for (k,) in keys),
             sorted("reminder:%d:%d:0" % (bid, off) for bid, _ in bookings),
             "one reminder row per booking for the %d min point" % off)
        c.eq(settle("org_id = %s AND kind = 'reminder' AND dedupe_key LIKE %s", oid,
                    "reminder:%%:%d:%%" % off), {"sent": BOOKINGS},
             "the reminders of %s are sent" % at)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(1 for m in sink.messages()
                                              if m["kind"] == "reminder") < 2 * BOOKINGS:
        time.sleep(0.05)
    time.sleep(0.5)  # a doubled email would arrive about now
    rem = [m for m in sink.messages() if m["kind"] == "reminder"]
    c.eq(len(rem), 2 * BOOKINGS, "every reminder email arrived exactly once")
    c.eq(sorted(m["to"] for m in rem), sorted(cu for _, cu in bookings for _ in points),
         "two reminders to each customer")
    c.eq(len({m["mid"] for m in rem}), 2 * BOOKINGS, "each with a Message-ID of its own")
    print("  4. %d bookings, 2 reminder points, %d concurrent ticks each: %d reminders, %.1f s" %
          (BOOKINGS, 6 * GATEWAYS, len(rem), time.monotonic() - t3))

    # ---- 5. a gateway that died for good: its leases wait for their expiry, then move ----
    t5 = time.monotonic()
    base = sink.count()
    first_row = sql("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
    for i in range(10):
        gws[i % GATEWAYS].ok("POST", O + "/requests",
                             {"customer": {"name": "D%d" % i, "email": "d%d@example.test" % i},
                              "skills": ["run"]})
    deadline = time.monotonic() + 20
    while sink.count() < base + 100 and time.monotonic() < deadline:
        time.sleep(0.005)
    dead = g3
    pid = dead.kill9()
    held = leased_by(pid)
    c.check(held, "the gateway killed for good held leases (%d)" % len(held))
    time.sleep(3)  # the live gateways poll at least every 2 s
    c.eq(leased_by(pid), held, "the live gateways leave its leases alone while they run")
    live = [g for g in gws if g is not dead]
    clock("2027-01-05T09:02:01Z", live)  # past the 120 s lease
    done = settle("id > %s", first_row, timeout=30)
    c.eq(done, {"sent": 10 * (TRAINERS + 1)}, "after the expiry the others sent its rows")
    mids = {i: m for i, m in row_message_ids(oid).items() if i > first_row}
    wanted = set(mids.values())
    arrivals = {}
    for m in sink.messages():
        if m["mid"] in wanted:
            arrivals[m["mid"]] = arrivals.get(m["mid"], 0) + 1
    by_mid = {mid: i for i, mid in mids.items()}
    dups = {by_mid[mid] for mid, n in arrivals.items() if n > 1}
    c.eq(set(arrivals), wanted, "every one of them reached the sink")
    c.check(dups <= held, "a duplicate only of a row it held: %r not" % sorted(dups - held))
    print("  5. a gateway killed for good with %d leases: kept 3 s, taken over after the expiry"
          ", %d duplicates (rows it had sent without recording), %.1f s" %
          (len(held), len(dups), time.monotonic() - t5))

    # ---- 6. an enqueue tells every gateway: NOTIFY at its commit, each gateway LISTENs ----
    listening = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                    " AND query = 'LISTEN ordinatus_outbox'", DBNAME)[0][0]
    c.eq(listening, len(live), "each live gateway has a connection listening on "
                               "ordinatus_outbox")
    lconn = psycopg2.connect(DSN)
    lconn.autocommit = True
    try:
        with lconn.cursor() as cur:
            cur.execute("LISTEN ordinatus_outbox")
        t6 = time.monotonic()
        live[0].ok("POST", O + "/requests", {"customer": {"name": "N", "email":
                                                          "n@example.test"}, "skills": ["run"]})
        got = None
        while got is None and time.monotonic() < t6 + 5:
            if select.select([lconn], [], [], 0.2)[0]:
                lconn.poll()
                if lconn.notifies:
                    got = time.monotonic() - t6
        c.check(got is not None, "the intake's commit sent NOTIFY ordinatus_outbox")
        # and a read-only call sends none
        lconn.notifies.clear()
        live[1].ok("GET", O + "/requests?status=new", token=A)
        time.sleep(0.5)
        lconn.poll()
        c.eq(len(lconn.notifies), 0, "a read sends no NOTIFY")
    finally:
        lconn.close()
    print("  6. %d gateways listening; an intake's NOTIFY after %.3f s" %
          (listening, got if got is not None else -1))
    for g in gws:
        g.stop()
except Exception:
    import traceback
    traceback.print_exc()
    c.check(False, "exception")
    report(gws)
finally:
    for g in gws:
        try:
            g.stop(expect_code=None)
        except Exception:
            pass
        g.cleanup()
    if smtp is not None:
        smtp.stop()
    if cluster is not None:
        try:
            cluster.drop_database(DBNAME)
        except Exception as e:
            print("  could not drop %s: %s" % (DBNAME, e))
        if ours:
            cluster.remove()
print("  multi: %.1f s in all" % (time.monotonic() - t_start))
c.done()
