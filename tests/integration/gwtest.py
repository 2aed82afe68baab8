"""gwtest - helpers for integration tests that run the real ordinatus binary.

Each test starts its own gateway on 127.0.0.1 on a free port with a fresh data folder, talks to
it over HTTP, reads the emails it writes (Python's mailbox and email packages: a real mail
parser), and stops it by its process id.

The store is SQLite (DATA/ordinatus.db) unless ORDINATUS_TEST_DB=postgresql: then each Gateway
gets a fresh database of its own in the cluster at ORDINATUS_TEST_PG (HOST:PORT, started by
tests/run_integration.sh; when unset, the first Gateway starts a private cluster for this test
script, stopped at its exit), named gw_<pid>_<n>, handed to `ordinatus init` and `serve` (and to
every command run with gw.env) as ORDINATUS_DB=postgresql://ordinatus@HOST:PORT/NAME, and
dropped by cleanup(). rows(), db(), snapshot() and settle() then read it with psycopg2 (the
tests' `?` placeholders become `%s`), and gw.backend says which store a test runs on.
"""
import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import pgcluster  # noqa: E402

BIN = os.environ.get("ORDINATUS_BIN", os.path.join(os.path.dirname(__file__), "../../build/ordinatus"))

# "sqlite" (the default) or "postgresql"
BACKEND = os.environ.get("ORDINATUS_TEST_DB") or "sqlite"
if BACKEND not in ("sqlite", "postgresql"):
    sys.exit("ORDINATUS_TEST_DB must be sqlite or postgresql, not %r" % BACKEND)

# the version this tree builds (common/version.h), which --version, /healthz and /metrics show
with open(os.path.join(os.path.dirname(__file__), "../../common/version.h")) as _f:
    VERSION = next(l.split('"')[1] for l in _f if l.startswith("#define ORDINATUS_VERSION"))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- PostgreSQL ----
_cluster = None
_db_count = 0


def pg_cluster():
    """The cluster of this run: run_integration.sh's (ORDINATUS_TEST_PG=HOST:PORT, and
    ORDINATUS_TEST_PG_DIR for restart()), or a private one started here on first use and
    stopped when the test script exits."""
    global _cluster
    if _cluster is not None:
        return _cluster
    where = os.environ.get("ORDINATUS_TEST_PG")
    if where:
        host, port = where.rsplit(":", 1)
        cl = pgcluster.Cluster(os.environ.get("ORDINATUS_TEST_PG_DIR"), host, int(port))
    else:
        import atexit
        cl = pgcluster.Cluster(tempfile.mkdtemp(prefix="ordinatus-pg-"))
        cl.start()
        atexit.register(cl.remove)
    _cluster = cl
    return cl


def pg_sql(sql):
    """A query written for sqlite3 (`?` placeholders) as psycopg2 wants it: `?` outside quotes
    becomes %s, and every % is doubled (psycopg2 formats the whole text, quotes included)."""
    out = []
    quote = None
    for i, ch in enumerate(sql):
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            if sql[i + 1:i + 2].isdigit():
                raise ValueError("numbered parameter ?N in %r: write plain ? in order" % sql)
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def _pg_value(v):
    # bytea comes back as a memoryview; sqlite3 gives bytes for a BLOB
    return bytes(v) if isinstance(v, memoryview) else v


def _pg_rows(rows):
    return [tuple(_pg_value(v) for v in r) for r in rows]


class _PgCursor:
    def __init__(self, cur):
        self.cur = cur

    def fetchall(self):
        return _pg_rows(self.cur.fetchall())

    def fetchone(self):
        r = self.cur.fetchone()
        return None if r is None else _pg_rows([r])[0]

    @property
    def rowcount(self):
        return self.cur.rowcount

    @property
    def description(self):
        return self.cur.description


class PgConnection:
    """What the tests use of a sqlite3 connection, on psycopg2: execute() and executemany()
    with `?` placeholders, commit(), rollback(), close(); `with` commits (or rolls back on an
    exception) and, unlike sqlite3, also closes: no test reuses one after its block."""

    def __init__(self, dsn):
        import psycopg2
        self.conn = psycopg2.connect(dsn)

    def execute(self, sql, args=()):
        cur = self.conn.cursor()
        cur.execute(pg_sql(sql), tuple(args))
        return _PgCursor(cur)

    def executemany(self, sql, seq):
        import psycopg2.extras
        cur = self.conn.cursor()
        psycopg2.extras.execute_batch(cur, pg_sql(sql), [tuple(a) for a in seq], page_size=500)
        return _PgCursor(cur)

    def commit(self):
        self.conn.commit()

    def rollback(self):
        self.conn.rollback()

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def _sort_key(row):
    # rows of any table in a fixed order: None first, then by type and value (a SQLite column
    # may mix types, and None does not compare with anything)
    return tuple((0, "", 0) if v is None else (1, type(v).__name__, v) for v in row)


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.raw[:300])


class Gateway:
    """One gateway process with its own data folder."""

    # The test servers (SMTP sinks, fake Google, REST servers) listen on 127.0.0.1, which the
    # outbound guard refuses unless the operator allows it: every gateway of the tests allows
    # loopback, except one made with allow_outbound=() to show the guard at work.
    def __init__(self, test_clock=False, extra_args=(), allow_outbound=("127.0.0.0/8",)):
        global _db_count
        self.backend = BACKEND
        self.dir = tempfile.mkdtemp(prefix="ordinatus-test-")
        self.data = os.path.join(self.dir, "data")
        # the environment of every ordinatus command on this gateway's store: pass env=gw.env
        # to a subprocess that runs BIN with --data gw.data
        self.env = {k: v for k, v in os.environ.items() if k != "ORDINATUS_DB"}
        self.dbname = None
        self.dsn = None
        self._pg = None
        if self.backend == "postgresql":
            _db_count += 1
            self.dbname = "gw_%d_%d" % (os.getpid(), _db_count)
            self.dsn = pg_cluster().create_database(self.dbname)
            self.env["ORDINATUS_DB"] = self.dsn
        out = subprocess.run([BIN, "init", "--data", self.data], capture_output=True, text=True,
                             check=True, env=self.env)
        self.admin_token = json.loads(out.stdout)["platform_admin_token"]
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.test_clock = test_clock
        self.extra_args = list(extra_args)
        for cidr in allow_outbound:
            self.extra_args += ["--allow-outbound", cidr]
        self.proc = None
        self.log_path = os.path.join(self.dir, "serve.log")

    def start(self):
        args = [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port]
        if self.test_clock:
            args.append("--test-clock")
        args += self.extra_args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited: " + self.read_log())
            try:
                if self.call("GET", "/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not start: " + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, expect_code=0):
        """SIGTERM by pid; the gateway drains and exits 0."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            if expect_code is not None and code != expect_code:
                raise AssertionError("gateway exited %d: %s" % (code, self.read_log()[-2000:]))
        self.proc = None
        self.log.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dbname:
            self._pg_close()
            pg_cluster().drop_database(self.dbname)
            self.dbname = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.stop()
        finally:
            self.cleanup()

    # ---- HTTP ----
    def call(self, method, path, body=None, token=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return Response(r.status, r.read().decode(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read().decode(), dict(e.headers))

    def ok(self, method, path, body=None, token=None, status=(200, 201)):
        r = self.call(method, path, body, token)
        if isinstance(status, int):
            status = (status,)
        if r.status not in status:
            raise AssertionError("%s %s -> %r" % (method, path, r))
        return r.json

    # ---- set-up shortcuts ----
    def org(self, name="Acme Training", timezone="Europe/Berlin"):
        return self.ok("POST", "/v1/orgs", {"name": name, "timezone": timezone}, self.admin_token)

    def intake_limits(self, org, per_address=1000, per_org=10000):
        """Raise an organisation's public intake limits (defaults 5 and 60 a minute): for tests
        that file many requests from 127.0.0.1 on purpose. Every other limit stays on."""
        return self.ok("PATCH", "/v1/orgs/%d/settings" % org,
                       {"intake_per_address_per_minute": per_address,
                        "intake_per_org_per_minute": per_org}, self.admin_token)

    def book(self, org_path, trainer_token, session_type_id, skills, name, email, start,
             length=60):
        """A confirmed booking made the way people make one: the public intake, the trainer's
        claim, session type and scheduling link, the customer's booking (with the token read
        from the scheduling-link email) and payment, the trainer's confirm. The booking's id."""
        req = self.ok("POST", org_path + "/requests",
                      {"customer": {"name": name, "email": email}, "skills": list(skills)})
        self.ok("POST", org_path + "/requests/%d/claim" % req["id"], token=trainer_token)
        self.ok("PATCH", org_path + "/requests/%d" % req["id"],
                {"session_type_id": session_type_id}, trainer_token)
        self.ok("POST", org_path + "/requests/%d/scheduling-link" % req["id"],
                token=trainer_token)
        tok = None
        deadline = time.monotonic() + 10
        while tok is None and time.monotonic() < deadline:
            for m in self.maildir():
                if str(m["X-Ordinatus-Kind"]) == "scheduling_link" and email in str(m["To"]):
                    tok = re.search(r"/s/([A-Za-z0-9_-]+)",
                                    m.get_body(("plain",)).get_content()).group(1)
            time.sleep(0.05)
        if tok is None:
            raise AssertionError("no scheduling link reached " + email)
        b = self.ok("POST", "/v1/schedule/%s/booking" % tok,
                    {"start": start, "length_minutes": length})
        self.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay-" + email})
        self.ok("POST", org_path + "/bookings/%d/confirm-payment" % b["booking_id"],
                token=trainer_token)
        return b["booking_id"]

    def user(self, org, email, roles, skills=(), token=None, **extra):
        body = {"email": email, "name": extra.pop("name", email.split("@")[0].title()),
                "roles": list(roles), "skills": list(skills)}
        body.update(extra)
        return self.ok("POST", "/v1/orgs/%d/users" % org, body, token or self.admin_token)

    # ---- what it wrote ----
    def maildir(self):
        """Every message delivered to DATA/maildir, parsed with the standard email parser."""
        path = os.path.join(self.data, "maildir")
        # the provider makes tmp/, new/ and cur/ on its first delivery: until all three exist
        # there is nothing to read (and Python's Maildir wants them all)
        if not all(os.path.isdir(os.path.join(path, d)) for d in ("tmp", "new", "cur")):
            return []
        md = mailbox.Maildir(path, factory=None, create=False)
        msgs = []
        for key in sorted(md.keys()):
            with md.get_file(key) as f:
                msgs.append(email.message_from_binary_file(f, policy=email.policy.default))
        return msgs

    def wait_mail(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.maildir()
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        return self.maildir()

    def db(self):
        """A connection to the gateway's store: sqlite3's, or a PgConnection with the same
        execute/commit/close (the caller closes it)."""
        if self.backend == "postgresql":
            return PgConnection(self.dsn)
        return sqlite3.connect(os.path.join(self.data, "ordinatus.db"), timeout=10)

    def _pg_conn(self):
        # one autocommit connection per gateway for rows() and snapshot(): each statement
        # sees what is committed, as a fresh sqlite3 connection does
        if self._pg is None or self._pg.closed:
            import psycopg2
            self._pg = psycopg2.connect(self.dsn)
            self._pg.autocommit = True
        return self._pg

    def _pg_close(self):
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def _pg_query(self, fn):
        # a database restarted under a test breaks the cached connection: connect again once
        import psycopg2
        try:
            return fn(self._pg_conn())
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            self._pg_close()
            return fn(self._pg_conn())

    def rows(self, sql, *args):
        if self.backend == "postgresql":
            def run(conn):
                with conn.cursor() as cur:
                    cur.execute(pg_sql(sql), args)
                    return _pg_rows(cur.fetchall()) if cur.description else []
            return self._pg_query(run)
        with self.db() as c:
            return c.execute(sql, args).fetchall()

    def settle(self, timeout=10):
        """Wait until no outbox row is pending or leased (the maildir delivers each at once):
        emails enqueued by earlier steps go out in the background, and a snapshot taken before
        they did would see their status change under a refused request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.rows(
                "SELECT EXISTS(SELECT 1 FROM outbox WHERE status = 'pending')"
                " OR EXISTS(SELECT 1 FROM outbox WHERE status = 'leased')")[0][0]:
            time.sleep(0.05)

    def snapshot(self):
        """Every row of every table: to prove a refused request changed nothing. The one
        column a scheduler tick changes in the background whenever it runs, what an outbox
        row's payload still holds (its link tokens redacted once sent), is left out: a tick
        is not a request, and without the test clock it runs when the machine gets to it.
        Rows are sorted (first column first), so that the order a backend happens to return
        them in (PostgreSQL's moves an updated row) is no difference; on PostgreSQL the
        tables are read in one repeatable-read transaction."""
        if self.backend == "postgresql":
            def run(conn):
                with conn.cursor() as cur:
                    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try:
                        cur.execute("SELECT table_name FROM information_schema.tables"
                                    " WHERE table_schema = 'public'"
                                    " AND table_type = 'BASE TABLE'")
                        out = {}
                        for (t,) in cur.fetchall():
                            cur.execute('SELECT * FROM "%s"' % t.replace('"', '""'))
                            out[t] = ([d[0] for d in cur.description],
                                      _pg_rows(cur.fetchall()))
                    finally:
                        cur.execute("COMMIT")
                    return out
            tables = self._pg_query(run)
        else:
            tables = {}
            with self.db() as c:
                for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                    cur = c.execute('SELECT * FROM "%s"' % t.replace('"', '""'))
                    tables[t] = ([d[0] for d in cur.description], cur.fetchall())
        snap = {}
        for t, (names, rows) in tables.items():
            if t == "outbox":
                keep = [i for i, n in enumerate(names) if n not in ("payload", "payload_state")]
                rows = [tuple(r[i] for i in keep) for r in rows]
            snap[t] = sorted(rows, key=_sort_key)
        return snap

    def at_rest(self):
        """The bytes the store keeps, to search for a secret that must not be there in the
        clear: the SQLite database files (with -wal and -shm), or on PostgreSQL every value of
        every table (text as UTF-8, bytea as its bytes: the cluster's own files may compress a
        long value, and a dump would show bytea in hex)."""
        if self.backend == "postgresql":
            def run(conn):
                out = []
                with conn.cursor() as cur:
                    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try:
                        cur.execute("SELECT table_name FROM information_schema.tables"
                                    " WHERE table_schema = 'public'"
                                    " AND table_type = 'BASE TABLE'")
                        for (t,) in cur.fetchall():
                            cur.execute('SELECT * FROM "%s"' % t.replace('"', '""'))
                            for r in _pg_rows(cur.fetchall()):
                                out += [v if isinstance(v, bytes) else str(v).encode()
                                        for v in r if v is not None]
                    finally:
                        cur.execute("COMMIT")
                return b"\n".join(out)
            return self._pg_query(run)
        blob = b""
        for suffix in ("", "-wal", "-shm"):
            path = os.path.join(self.data, "ordinatus.db" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    blob += f.read()
        return blob

    def pg_dump(self, path):
        """PostgreSQL only: a consistent copy of the gateway's database (pg_dump's custom
        format: one snapshot), taken while it serves, as an operator backs one up;
        pg_restore() loads it into another gateway's. Returns the CompletedProcess."""
        cl = pg_cluster()
        return subprocess.run([os.path.join(pgcluster.PGBIN, "pg_dump"), "-h", cl.host,
                               "-p", str(cl.port), "-U", pgcluster.ROLE, "-Fc", "--no-owner",
                               "-f", path, self.dbname], capture_output=True, text=True,
                              env=pgcluster.clean_env(), timeout=300)

    def pg_restore(self, path):
        """PostgreSQL only, with the gateway stopped: its database replaced by the dump.
        Returns pg_restore's CompletedProcess."""
        cl = pg_cluster()
        self._pg_close()
        cl.drop_database(self.dbname)
        cl.create_database(self.dbname)
        return subprocess.run([os.path.join(pgcluster.PGBIN, "pg_restore"), "-h", cl.host,
                               "-p", str(cl.port), "-U", pgcluster.ROLE, "--no-owner",
                               "--exit-on-error", "-d", self.dbname, path],
                              capture_output=True, text=True, env=pgcluster.clean_env(),
                              timeout=300)


class SmtpSink:
    """tests/helpers/smtp_server.py on a free 127.0.0.1 port, saving every message it accepts
    as a file in self.dir; stop() ends it by its pid and removes its folder."""

    SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers",
                          "smtp_server.py")

    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="ordinatus-sink-")
        self.dir = os.path.join(self.tmp, "sink")
        os.makedirs(self.dir)
        self._log = open(os.path.join(self.tmp, "sink.log"), "ab")
        self.proc = subprocess.Popen(["/usr/bin/python3", self.SERVER, "--dir", self.dir,
                                      *args], stdout=subprocess.PIPE, stderr=self._log)
        self.port = int(self.proc.stdout.readline())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Checks:
    """Counts checks; a test script ends with checks.done() which exits non-zero on failure."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("  FAIL: %s" % what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def done(self):
        print("%s: %d checks passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed or not self.passed else 0)
