"""gwtest - helpers for integration tests that run the real ordinatus binary.

Each test starts its own gateway on 127.0.0.1 on a free port with a fresh data folder, talks to
it over HTTP, reads the emails it writes (Python's mailbox and email packages: a real mail
parser), and stops it by its process id.
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

BIN = os.environ.get("ORDINATUS_BIN", os.path.join(os.path.dirname(__file__), "../../build/ordinatus"))

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
        self.dir = tempfile.mkdtemp(prefix="ordinatus-test-")
        self.data = os.path.join(self.dir, "data")
        out = subprocess.run([BIN, "init", "--data", self.data], capture_output=True, text=True,
                             check=True)
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
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
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
        return sqlite3.connect(os.path.join(self.data, "ordinatus.db"), timeout=10)

    def rows(self, sql, *args):
        with self.db() as c:
            return c.execute(sql, args).fetchall()

    def settle(self, timeout=10):
        """Wait until no outbox row is pending or leased (the maildir delivers each at once):
        emails enqueued by earlier steps go out in the background, and a snapshot taken before
        they did would see their status change under a refused request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.rows(
                "SELECT 1 FROM outbox WHERE status IN ('pending', 'leased') LIMIT 1"):
            time.sleep(0.05)

    def snapshot(self):
        """Every row of every table: to prove a refused request changed nothing. The one
        column a scheduler tick changes in the background whenever it runs, what an outbox
        row's payload still holds (its link tokens redacted once sent), is left out: a tick
        is not a request, and without the test clock it runs when the machine gets to it."""
        snap = {}
        with self.db() as c:
            for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                cur = c.execute("SELECT * FROM %s" % t)
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
                if t == "outbox":
                    keep = [i for i, n in enumerate(names) if n not in ("payload",
                                                                       "payload_state")]
                    rows = [tuple(r[i] for i in keep) for r in rows]
                snap[t] = rows
        return snap


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
