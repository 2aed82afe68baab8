"""An organisation's SMTP server down while its mail is queued, against real servers on
127.0.0.1: a server in maintenance (a listener started here that greets every connection with
"421 4.3.2 Service not available" and closes it, counting the connections) for organisation A,
tests/helpers/smtp_server.py for organisation B. The test clock stands still unless the test
moves it.

  - A's fan-out (400 trainers: 400 new_request emails and the customer's request_received) does
    not hammer the server: a few connections, at most one a worker; every other row waits
    untried with the server's words ("not tried: the server failed moments ago (421 ...)"),
    no row is counted an attempt (the failure is the server's, not a message's; the tries made
    are in the attempts table as "deferred"), and the log says the server is down and for how
    long (5 s);
  - B's mail goes out meanwhile;
  - before the hold ends nothing is tried; after it one probe round is, finds the server still
    down, and the next hold is twice as long (10 s); the rows no worker had leased are held by
    one update of A's queue (the log's dispatch_server_down_queue), not leased one batch after
    another only to be deferred;
  - once the server is back (smtp_server.py on the same port) and the hold ended, every one
    of A's 401 emails arrives once, with its own Message-ID, the log says the server is up, and
    each row counts the one attempt that sent it;
  - down again for longer than the whole retry schedule: a row that old is counted when the
    server fails, as before, so that it goes dead in the end instead of waiting for ever;
  - the admin saves new SMTP settings (another server): every email still waiting goes out to
    it at once, the clock unmoved, hold and retry schedule notwithstanding;
  - organisation C's settings hold a mistyped password (the server answers 535): its emails
    wait, none dead-lettered, none counted, with "authentication refused"; each try being a
    failed login, which a mail service counts towards locking the account, settings just
    saved are tried by one worker first (one refused login, not one a connection), the hold is
    a minute (not 5 s), nothing is tried before its end, and after it one login is tried (one
    worker probes, not every one), and the next hold is two minutes; the right password saved,
    all of them arrive at once.
Servers are stopped by their pid (smtp_server.py) or closed by the test (the listener)."""
import email
import email.policy
import json
import os
import re
import socket
import threading
import time

from gwtest import Checks, Gateway, SmtpSink

TRAINERS = 400  # more rows than the workers lease at once (workers x dispatch_started's batch)
WORKERS = 8  # serve's email workers (dispatch_started says so): at most one try each in flight

c = Checks("outage")
gw = Gateway(test_clock=True, extra_args=("--allow-plain-auth",))  # AUTH over "none" (C)
now = {"t": 1796112000}  # 2026-12-01T08:00:00Z


def clock_plus(secs):
    now["t"] += secs
    gw.ok("PUT", "/v1/test/clock",
          {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now["t"]))})


class Maintenance:
    """A server that greets with 421 and closes: RFC 5321 4.2.3's "Service not available,
    closing transmission channel", as a relay under maintenance answers."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by stop()
            with self.lock:
                self.connections += 1
            try:
                conn.sendall(b"421 4.3.2 Service not available, try again later\r\n")
            except OSError:
                pass
            conn.close()

    def count(self):
        with self.lock:
            return self.connections

    def stop(self):
        """the port free again: shutdown wakes the accept (a close alone would leave the socket
        listening under the blocked call)"""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


def rows_of(org):
    return gw.rows("SELECT id, status, attempts, coalesce(last_error, '') FROM outbox"
                   " WHERE org_id = ? AND provider_class = 'email' ORDER BY id", org)


def wait_for(pred, timeout=15, step=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def sink_messages(sink):
    """{Message-ID: count} and the recipients of what the sink saved"""
    ids, rcpts = {}, []
    for f in sorted(os.listdir(sink.dir)):
        # the sink writes NNNN.eml, then NNNN.json: a message is there once both are
        if not f.endswith(".eml") or not os.path.exists(os.path.join(sink.dir, f[:-4] + ".json")):
            continue
        with open(os.path.join(sink.dir, f), "rb") as fh:
            m = email.message_from_binary_file(fh, policy=email.policy.default)
        ids[m["Message-ID"]] = ids.get(m["Message-ID"], 0) + 1
        with open(os.path.join(sink.dir, f[:-4] + ".json")) as fh:
            rcpts += json.load(fh)["rcpt_tos"]
    return ids, rcpts


down = Maintenance()
other = SmtpSink()
back = None
try:
    gw.start()
    clock_plus(0)
    a = gw.org("Maintenance Training", "UTC")["id"]
    b = gw.org("Working Studio", "UTC")["id"]
    gw.intake_limits(a)
    A = gw.user(a, "admin@a.test", ["org_admin"])["token"]
    B = gw.user(b, "admin@b.test", ["org_admin"])["token"]
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % a,
          {"host": "127.0.0.1", "port": down.port, "security": "none",
           "from_address": "desk@a.test"}, A)
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % b,
          {"host": "127.0.0.1", "port": other.port, "security": "none",
           "from_address": "desk@b.test"}, B)
    for i in range(TRAINERS):
        gw.user(a, "coach%02d@a.test" % i, ["trainer"], ["rowing"], token=A)
    gw.user(b, "runner@b.test", ["trainer"], ["running"], token=B)

    # ---- A's fan-out meets the server in maintenance ----
    r = gw.ok("POST", "/v1/orgs/%d/requests" % a,
              {"customer": {"name": "Ada", "email": "ada@example.test"}, "skills": ["rowing"]})
    c.eq(r["matched_trainers"], TRAINERS, "the intake matches every trainer")
    rows = wait_for(lambda: (lambda x: len(x) == TRAINERS + 1 and all(y[3] for y in x) and x)(
        rows_of(a)))
    c.check(rows, "every row of A waits with words: %r" % (rows_of(a)[:3],))
    rows = rows or []
    held = [x for x in rows if x[3].startswith("not tried: the server failed moments ago (")]
    tried = [x for x in rows if x not in held]
    first_conns = down.count()
    print("  outage: %d connections to the server in maintenance, %d rows tried, %d held back"
          % (first_conns, len(tried), len(held)))
    c.check(all(x[1] == "pending" for x in rows), "every row of A is pending")
    c.check(1 <= len(tried) <= WORKERS, "a few rows were tried, at most one a worker (%d)"
            % len(tried))
    c.check(1 <= first_conns <= WORKERS, "a few connections, not one a row (%d)" % first_conns)
    c.check(all(x[3].startswith("421 4.3.2") for x in tried),
            "a tried row has the server's 421: %r" % (tried[:1],))
    c.check(len(held) >= TRAINERS + 1 - WORKERS and all("421 4.3.2" in x[3] for x in held),
            "the other rows wait untried, with the server's words: %r" % (held[:1],))
    c.check(all(x[2] == 0 for x in rows), "the server's failure costs no row an attempt")
    tries = gw.rows("SELECT d.outbox_id, d.attempt, d.outcome, d.detail FROM delivery_attempts d"
                    " JOIN outbox o ON o.id = d.outbox_id WHERE o.org_id = ?", a)
    c.check(sorted(t[0] for t in tries) == sorted(x[0] for x in tried) and
            all(t[1] == 0 and t[2] == "deferred" and t[3].startswith("421 4.3.2")
                for t in tries),
            "each try is in the attempts table, uncounted (number 0, deferred, the 421): %r"
            % (tries[:2],))
    log = gw.read_log()
    c.check(re.search(r'"event":"dispatch_server_down"[^\n]*"hold_secs":5', log) or
            re.search(r'"hold_secs":5[^\n]*"event":"dispatch_server_down"', log),
            "the log says A's server is down, held 5 s")

    # ---- B's mail goes out meanwhile ----
    gw.ok("POST", "/v1/orgs/%d/requests" % b,
          {"customer": {"name": "Bo", "email": "bo@example.test"}, "skills": ["running"]})
    got = wait_for(lambda: (lambda ids, rc: len(ids) >= 2 and rc)(*sink_messages(other)))
    c.check(got and sorted(got) == ["bo@example.test", "runner@b.test"],
            "B's two emails arrive while A's server is down: %r" % (got,))

    # ---- the hold: nothing before its end, one probe round after it, a longer hold ----
    clock_plus(4)
    time.sleep(1.0)
    c.eq(down.count(), first_conns, "before the hold ends no row of A is tried")
    clock_plus(2)
    c.check(wait_for(lambda: down.count() > first_conns), "after the hold a probe is made")
    c.check(wait_for(lambda: '"hold_secs":10' in gw.read_log()),
            "the probe finds the server still down: the next hold is 10 s")
    time.sleep(0.5)
    probes = down.count() - first_conns
    c.check(1 <= probes <= WORKERS, "one probe round, not one try a row (%d)" % probes)
    # the rows no worker had leased were held by one update of the organisation's queue, not
    # leased and deferred a batch at a time
    log = gw.read_log()
    queued = [int(m) for m in re.findall(  # since the probe's hold began
        r'"event":"dispatch_server_down_queue"[^\n]*"org_id":%d[^\n]*"rows":(\d+)' % a,
        log[log.index('"hold_secs":10'):])]
    started = re.search(r'[^\n]*"event":"dispatch_started"[^\n]*', log)
    workers = int(re.search(r'"email_workers":(\d+)', started.group(0)).group(1))
    batch = int(re.search(r'"batch":(\d+)', started.group(0)).group(1))
    print("  held by the queue's update: %r rows (%d workers lease %d rows at most)"
          % (queued, workers, workers * batch))
    c.check(workers * batch < TRAINERS + 1, "more rows than the workers lease at once")
    c.check(len(queued) >= 1 and max(queued) >= TRAINERS + 1 - workers * batch,
            "the probe's hold keeps the rest of A's queue waiting in one go (%r rows)"
            % (queued,))

    # ---- the server is back on its port: everything arrives once ----
    port = down.port
    down.stop()
    back = SmtpSink("--port", str(port))
    c.eq(back.port, port, "the server is back on its port")
    clock_plus(11)
    got = wait_for(lambda: (lambda ids, rc: len(rc) >= TRAINERS + 1 and (ids, rc))(
        *sink_messages(back)), timeout=20)
    ids, rcpts = got or ({}, [])
    c.eq(len(rcpts), TRAINERS + 1, "every one of A's emails arrives")
    c.eq(sorted(set(rcpts)), sorted(["ada@example.test"] +
                                    ["coach%02d@a.test" % i for i in range(TRAINERS)]),
         "to each recipient")
    c.check(ids and all(n == 1 for n in ids.values()) and len(ids) == TRAINERS + 1,
            "each once, with its own Message-ID")
    c.check(wait_for(lambda: all(x[1] == "sent" for x in rows_of(a))), "A's rows are sent")
    c.eq(gw.rows("SELECT sum(attempts) FROM outbox WHERE org_id = ?", a)[0][0], TRAINERS + 1,
         "one attempt a row, the one that went out")
    c.check("dispatch_server_up" in gw.read_log(), "the log says A's server is up")

    # ---- a server that stays down longer than the whole retry schedule ----
    back.stop()
    back = None
    down = Maintenance(port)
    gw.ok("POST", "/v1/orgs/%d/requests" % a,
          {"customer": {"name": "Late", "email": "late@example.test"}, "skills": ["rowing"]})
    late = wait_for(lambda: (lambda x: len(x) == TRAINERS + 1 and all(y[3] for y in x) and x)(
        [x for x in rows_of(a) if x[1] != "sent"]))
    c.check(late and all(x[2] == 0 for x in late), "down again: the new rows wait uncounted")
    clock_plus(30 * 3600)  # past the schedule's span (about 27.6 h) and any hold
    counted = wait_for(lambda: [x for x in rows_of(a) if x[1] != "sent" and x[2] >= 1])
    c.check(counted and all(x[3].startswith("421 4.3.2") for x in counted),
            "a row older than the retry schedule is counted when its server fails, as before"
            " (so it goes dead in the end): %r" % (counted[:1],))

    # ---- new settings: what waits goes at once to the new server, clock unmoved ----
    fresh = SmtpSink()
    waiting = len([x for x in rows_of(a) if x[1] != "sent"])
    t0 = time.monotonic()
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % a,
          {"host": "127.0.0.1", "port": fresh.port, "security": "none",
           "from_address": "desk@a.test"}, A)
    got = wait_for(lambda: (lambda ids, rc: len(rc) >= waiting and rc)(*sink_messages(fresh)),
                   timeout=10)
    print("  new settings: %d waiting emails arrived %.2f s after the PUT"
          % (len(got or []), time.monotonic() - t0))
    c.check(got and len(got) == waiting and "late@example.test" in got,
            "after new SMTP settings every waiting email goes to the new server at once"
            " (%d of %d), though the hold and the retry schedule had them wait"
            % (len(got or []), waiting))
    c.check(wait_for(lambda: all(x[1] == "sent" for x in rows_of(a))), "A's rows are sent")
    fresh.stop()

    # ---- a mistyped password: C's emails wait (none dead) until the settings are right ----
    relay = SmtpSink("--auth", "mailer:right-pass")
    cc = gw.org("Typo Training", "UTC")["id"]
    C = gw.user(cc, "admin@c.test", ["org_admin"])["token"]
    smtp_c = {"host": "127.0.0.1", "port": relay.port, "security": "none",
              "username": "mailer", "password": "wrong-pass", "from_address": "desk@c.test"}
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % cc, smtp_c, C)
    for i in range(10):
        gw.user(cc, "swim%02d@c.test" % i, ["trainer"], ["swimming"], token=C)
    gw.ok("POST", "/v1/orgs/%d/requests" % cc,
          {"customer": {"name": "Cy", "email": "cy@example.test"}, "skills": ["swimming"]})
    rows = wait_for(lambda: (lambda x: len(x) == 11 and all(y[3] for y in x) and x)(
        rows_of(cc)))
    c.check(rows and all(x[1] == "pending" and x[2] == 0 and "authentication refused" in x[3]
                         for x in rows),
            "credentials refused: every email waits, none dead, none counted, with the reason:"
            " %r" % ((rows or rows_of(cc))[:2],))
    def refused_logins():
        try:
            with open(os.path.join(relay.dir, "auth-failures")) as fh:
                return int(fh.read())
        except FileNotFoundError:
            return 0

    def c_hold(secs, streak):
        return re.search(r'[^\n]*"event":"dispatch_server_down"[^\n]*"hold_secs":%d,'
                         r'"holds_in_a_row":%d,"level":"warn","org_id":%d\b' % (secs, streak, cc),
                         gw.read_log())

    c.check(wait_for(lambda: c_hold(60, 1)),
            "refused settings: the log holds C's mail for a minute, not 5 s")
    first = refused_logins()
    c.eq(first, 1, "the settings just saved: one worker tries them first, one refused login")
    clock_plus(59)
    time.sleep(2.5)  # more than a worker's idle wait (IDLE_MAX_MS)
    c.eq(refused_logins(), first, "nothing tried before the hold's end (59 s later)")
    clock_plus(2)
    c.check(wait_for(lambda: refused_logins() > first and c_hold(120, 2)),
            "after the hold: a probe, refused again, and the next hold is 2 minutes")
    time.sleep(2.5)
    c.eq(refused_logins(), 2, "... one login tried in that round, not one a worker")
    # ---- a restart during the hold: the new process knows nothing of it, and the rows'
    # recorded failure has it try the settings with one worker first all the same ----
    gw.stop()
    mark = len(gw.read_log())
    gw.start()
    clock_plus(121)  # past the 2-minute hold (the rows wait for its end)
    c.check(wait_for(lambda: refused_logins() > 2 and
                     '"event":"dispatch_server_down"' in gw.read_log()[mark:]),
            "after a restart: a probe, refused, and a hold")
    time.sleep(2.5)
    c.eq(refused_logins(), 3, "... one login tried after the restart, not one a worker")
    smtp_c["password"] = "right-pass"
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % cc, smtp_c, C)
    got = wait_for(lambda: (lambda ids, rc: len(rc) >= 11 and rc)(*sink_messages(relay)),
                   timeout=10)
    c.check(got and len(got) == 11 and "cy@example.test" in got,
            "the right password: all 11 emails arrive at once (%d)" % len(got or []))
    c.check(wait_for(lambda: all(x[1] == "sent" for x in rows_of(cc))), "C's rows are sent")
    with open(os.path.join(relay.dir, "0001.json")) as fh:
        c.eq(json.load(fh)["auth_login"], "mailer", "... logged in as the settings say")
    relay.stop()
finally:
    gw.stop(expect_code=None)
    gw.cleanup()
    down.stop()
    other.stop()
    if back:
        back.stop()
c.done()
