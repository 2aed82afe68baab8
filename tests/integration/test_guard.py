"""The outbound guard and data at rest: a tenant's provider settings cannot reach loopback
without the operator's --allow-outbound (the same answer for an open and a closed port, nothing
connects), ca_pem checked with OpenSSL, AUTH over "none" refused, the far side's words bounded
and kept from trainers, sent payloads without their link tokens, database files 0600, the
kiosk's narrow check-in answer, and an online backup under load restored into a new gateway.
On PostgreSQL there are no database files (the data folder must hold none), and the backup is
the operator's pg_dump, restored with pg_restore."""
import base64
import os
import re
import shutil
import socket
import socketserver
import stat
import subprocess
import tempfile
import threading
import time

from gwtest import BIN, Checks, Gateway, free_port

c = Checks("guard")
tmp = tempfile.mkdtemp(prefix="ordinatus-guard-")
REFUSED = "the address is not allowed for outbound connections"


class Listener:
    """A TCP listener that speaks nothing and records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            conn.sendall(b"-ERR redis-like banner: secret internal service\r\n")
            conn.close()


class MiniSMTP(socketserver.ThreadingTCPServer):
    """An SMTP server (RFC 5321 subset, AUTH PLAIN) that keeps messages and credentials, and
    answers RCPT TO of the addresses in `reject` with a long reply full of control bytes."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        self.port = self.server_address[1]
        self.messages = []
        self.auth = []
        self.reject = set()
        threading.Thread(target=self.serve_forever, daemon=True).start()


LONG_REPLY = ("550 5.1.1 mailbox unavailable \x1b[31m\x07 " + "blah " * 300).encode()


class SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line + b"\r\n")
        self.wfile.flush()

    def handle(self):
        srv = self.server
        self.reply(b"220 mini ESMTP")
        rcpt = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.strip().decode("ascii", "replace")
            up = cmd.upper()
            if up.startswith("EHLO") or up.startswith("HELO"):
                self.wfile.write(b"250-mini\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                self.wfile.flush()
            elif up.startswith("AUTH PLAIN"):
                parts = cmd.split()
                if len(parts) > 2:
                    b64 = parts[2]
                else:
                    self.reply(b"334 ")
                    b64 = self.rfile.readline().strip().decode()
                srv.auth.append(base64.b64decode(b64).split(b"\0"))
                self.reply(b"235 2.7.0 ok")
            elif up.startswith("MAIL FROM"):
                rcpt = []
                self.reply(b"250 ok")
            elif up.startswith("RCPT TO"):
                addr = cmd.split(":", 1)[1].strip().strip("<>")
                if addr in srv.reject:
                    self.reply(LONG_REPLY)
                else:
                    rcpt.append(addr)
                    self.reply(b"250 ok")
            elif up == "DATA":
                self.reply(b"354 go on")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l
                srv.messages.append((rcpt, data))
                self.reply(b"250 2.0.0 queued")
            elif up == "QUIT":
                self.reply(b"221 bye")
                return
            elif up in ("RSET", "NOOP"):
                self.reply(b"250 ok")
            else:
                self.reply(b"502 no")


def wait_for(pred, timeout=20, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, cwd=tmp)


sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
   "ca.pem", "-days", "36500", "-subj", "/CN=Guard Test CA")
with open(os.path.join(tmp, "ca.pem")) as f:
    CA_PEM = f.read()
with open(os.path.join(tmp, "ca.key")) as f:
    CA_KEY = f.read()

# ---- 1. no --allow-outbound: loopback is refused, open and closed ports alike ----
gw = Gateway(test_clock=True, allow_outbound=())
gw.start()
try:
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-11-30T08:00:00Z"})
    org = gw.org("Tenant Co", "UTC")
    O = "/v1/orgs/%d" % org["id"]
    A = gw.user(org["id"], "admin@tenant.test", ["org_admin"])["token"]
    gw.user(org["id"], "tia@tenant.test", ["trainer"], ["yoga"], token=A)
    listener = Listener()
    closed = free_port()
    errors = {}
    for name, port in (("closed", closed), ("open", listener.port)):
        gw.ok("PUT", O + "/providers/smtp", {"host": "127.0.0.1", "port": port,
                                             "security": "none",
                                             "from_address": "b@tenant.test"}, A)
        req = gw.ok("POST", O + "/requests", {"customer": {"name": "Cy %s" % name,
                                                           "email": "cy@example.test"},
                                              "skills": ["yoga"]})
        rows = wait_for(lambda: [r for r in gw.rows(
            "SELECT status, last_error FROM outbox WHERE request_id = ?", req["id"])
            if r[0] == "dead"] or None)
        c.check(rows, "%s port: the rows are dead: %r" % (name, gw.rows(
            "SELECT status, last_error FROM outbox WHERE request_id = ?", req["id"])))
        errors[name] = sorted(set(r[1] for r in rows or []))
    c.eq(errors["closed"], [REFUSED], "closed port: the refused message")
    c.eq(errors["open"], errors["closed"], "open port: the same message, not the banner")
    c.eq(listener.accepts, 0, "nothing connected to the listener")
    c.eq(gw.maildir(), [], "nothing went anywhere else")
    # a name that resolves to loopback is checked after DNS
    gw.ok("PUT", O + "/providers/smtp", {"host": "localhost", "port": listener.port,
                                         "security": "none", "from_address": "b@tenant.test"},
          A)
    req = gw.ok("POST", O + "/requests", {"customer": {"name": "Lo", "email": "lo@example.test"},
                                          "skills": ["yoga"]})
    rows = wait_for(lambda: [r for r in gw.rows(
        "SELECT status, last_error FROM outbox WHERE request_id = ?", req["id"])
        if r[0] == "dead"] or None)
    c.eq(sorted(set(r[1] for r in rows or [])), [REFUSED], "localhost: refused too")
    c.eq(listener.accepts, 0, "still nothing connected")
    # (the REST client's guard, for the calendar providers: tests/unit/test_rest.c test_guard)

    # ---- ca_pem: certificates only, bounded; nothing stored when refused ----
    before = gw.snapshot()
    big = (CA_PEM * (40000 // len(CA_PEM) + 1))
    for what, pem in (("garbage", "not a certificate at all"),
                      ("a private key", CA_KEY),
                      ("a key beside a certificate", CA_PEM + CA_KEY),
                      ("a broken certificate", CA_PEM.replace("M", "Q", 40)),
                      ("too large", big)):
        r = gw.call("PUT", O + "/providers/smtp", {"host": "mail.example.com",
                                                   "from_address": "b@tenant.test",
                                                   "ca_pem": pem}, A)
        c.check(r.status == 400 and r.json.get("field") == "ca_pem",
                "ca_pem %s: 400 naming ca_pem: %r" % (what, r))
    # ---- AUTH over "none": credentials in clear, refused ----
    r = gw.call("PUT", O + "/providers/smtp", {"host": "mail.example.com", "port": 25,
                                               "security": "none", "username": "u",
                                               "password": "p", "from_address": "b@tenant.test"},
                A)
    c.check(r.status == 400 and r.json.get("field") == "security" and
            "clear" in r.json.get("message", ""), "AUTH over none: 400 naming security: %r" % r)
    c.check(gw.snapshot() == before, "refused settings stored nothing")
    put = gw.ok("PUT", O + "/providers/smtp", {"host": "mail.example.com",
                                               "from_address": "b@tenant.test",
                                               "ca_pem": CA_PEM + CA_PEM}, A)
    c.eq(put["ca_pem"], CA_PEM + CA_PEM, "certificates are stored and shown")
    gw.stop()
finally:
    gw.cleanup()

# ---- serve options are checked before anything starts ----
probe = Gateway(allow_outbound=())
try:
    for bad in (["--allow-outbound", "127.0.0.1/33"], ["--allow-outbound", "localhost"],
                ["--allow-outbound", "10.0.0.0/8x"], ["--retention-days", "0"],
                ["--retention-days", "x"]):
        r = subprocess.run([BIN, "serve", "--data", probe.data, "--listen",
                            "127.0.0.1:%d" % probe.port] + bad, capture_output=True, text=True,
                           timeout=20, env=probe.env)
        c.check(r.returncode == 2 and bad[0] in r.stderr, "serve %s: exit 2 naming it (%d %r)"
                % (" ".join(bad), r.returncode, r.stderr))
finally:
    probe.cleanup()

# ---- 2. --allow-outbound 127.0.0.0/8 (and plain AUTH allowed): delivery works ----
smtp = MiniSMTP()
gw = Gateway(test_clock=True, extra_args=["--allow-plain-auth"])
gw.start()
try:
    def clock(t):
        gw.ok("PUT", "/v1/test/clock", {"now": t})

    clock("2026-11-30T08:00:00Z")  # a Monday
    org = gw.org("Allowed Co", "UTC")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])  # the backup test below files requests from three threads
    A = gw.user(org["id"], "admin@allowed.test", ["org_admin"])["token"]
    t1 = gw.user(org["id"], "tia@allowed.test", ["trainer"], ["yoga"], name="Tia Trainer",
                 notify_on_confirm=True, token=A)
    T1 = t1["token"]
    kiosk = gw.user(org["id"], "desk@allowed.test", ["kiosk"], token=A)["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % t1["id"], {"weekly": week}, T1)

    # the scheduling link through the maildir; its row loses the token at the next tick
    req = gw.ok("POST", O + "/requests", {"customer": {"name": "Cleo Customer",
                                                       "email": "cleo@example.test"},
                                          "skills": ["yoga"]})
    gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T1)
    gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
    link = wait_for(lambda: [m for m in gw.maildir()
                             if str(m["X-Ordinatus-Kind"]) == "scheduling_link"])
    tok = re.search(r"/s/([A-Za-z0-9_-]+)", link[0].get_body(("plain",)).get_content()).group(1)
    wait_for(lambda: gw.rows("SELECT 1 FROM outbox WHERE kind = 'scheduling_link' AND"
                             " status = 'sent'"))
    payload, state = gw.rows("SELECT payload, payload_state FROM outbox"
                             " WHERE kind = 'scheduling_link'")[0]
    c.check(tok not in payload and "/s/redacted" in payload and "Cleo" in payload,
            "recorded sent, the payload has no token, the rest is kept (no tick needed): %s"
            % payload[:200])
    c.eq(state, "redacted", "payload_state, as it was recorded sent")
    c.eq(list(gw.rows("SELECT count(m.outbox_id), max(o.rcpt) FROM outbox o LEFT JOIN"
                      " outbox_messages m ON m.outbox_id = o.id"
                      " WHERE o.kind = 'scheduling_link'")[0]),
         [0, "cleo@example.test"],
         "the message rendered at enqueue (it holds the token) is dropped once it is sent")
    gw.ok("POST", "/v1/test/tick")
    payload, state = gw.rows("SELECT payload, payload_state FROM outbox"
                             " WHERE kind = 'scheduling_link'")[0]
    c.check(tok not in payload and "/s/redacted" in payload and "Cleo" in payload,
            "after the tick too the payload has no token, the rest is kept: %s" % payload[:200])
    c.eq(state, "redacted", "payload_state")
    c.eq(gw.rows("SELECT count(*) FROM dedupe_keys WHERE key LIKE 'scheduling_link:%'")[0][0],
         1, "the dedupe key stays")
    c.eq(gw.call("GET", "/v1/schedule/" + tok).status, 200, "the emailed link still works")
    b = gw.ok("POST", "/v1/schedule/%s/booking" % tok, {"start": "2026-12-01T10:00:00Z",
                                                        "length_minutes": 60})
    bid = b["booking_id"]
    gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay_secret_42"})

    # SMTP on loopback, allowed by the operator; AUTH over none allowed by the operator too
    gw.ok("PUT", O + "/providers/smtp", {"host": "127.0.0.1", "port": smtp.port,
                                         "security": "none", "username": "mailer",
                                         "password": "s3cret-pw",
                                         "from_address": "b@allowed.test"}, A)
    smtp.reject.add("cleo@example.test")
    gw.ok("POST", O + "/bookings/%d/confirm-payment" % bid, token=T1)
    c.check(wait_for(lambda: any("tia@allowed.test" in r for r, _ in smtp.messages)),
            "allowed: the trainer's confirmation was delivered over SMTP")
    c.check(wait_for(lambda: [a for a in smtp.auth if a[1:] == [b"mailer", b"s3cret-pw"]]),
            "AUTH PLAIN with the stored (sealed) password")
    dead = wait_for(lambda: gw.rows("SELECT last_error FROM outbox WHERE kind = 'confirmation'"
                                    " AND status = 'dead'"))
    err = dead[0][0] if dead else ""
    c.check(err.startswith("550 5.1.1 mailbox unavailable"), "admins keep the far side's words")
    c.check(len(err.encode()) <= 300, "last_error bounded: %d bytes" % len(err.encode()))
    c.check(all(0x20 <= ord(ch) < 0x7f for ch in err), "last_error has no control characters")
    eff_a = {e["kind"]: e for e in gw.ok("GET", O + "/bookings/%d/effects" % bid, token=A)}
    eff_t = {e["kind"]: e for e in gw.ok("GET", O + "/bookings/%d/effects" % bid, token=T1)}
    c.eq(eff_a["confirmation"]["last_error"], err, "an admin sees the reply in the effects")
    c.check(eff_t["confirmation"]["status"] == "dead" and
            "550" not in (eff_t["confirmation"]["last_error"] or "") and
            "administrator" in (eff_t["confirmation"]["last_error"] or ""),
            "a trainer sees the outcome, not the reply: %r" % eff_t["confirmation"])

    # ---- the kiosk: first name, times, trainer's name, check-in state; nothing more ----
    clock("2026-12-01T09:45:00Z")
    ci = gw.ok("POST", O + "/checkin", {"customer_email": "cleo@example.test",
                                        "confirm": False}, kiosk)
    c.eq(ci["logged"], 0, "kiosk: listed, not logged")
    c.eq(ci["bookings"], [{"customer": {"first_name": "Cleo"}, "start": "2026-12-01T10:00:00Z",
                           "end": "2026-12-01T11:00:00Z", "trainer": {"name": "Tia Trainer"},
                           "checked_in": False, "checked_in_at": None}],
         "kiosk answer has exactly the allowed fields")
    c.check("pay_secret_42" not in str(ci) and "@" not in str(ci), "no reference, no e-mail")
    full = gw.ok("POST", O + "/checkin", {"customer_email": "cleo@example.test",
                                          "confirm": False}, A)
    c.eq(full["bookings"][0].get("payment_reference"), "pay_secret_42",
         "an admin keeps the full answer")

    # ---- retention: past --retention-days (default 30) the payloads go, the keys stay ----
    clock("2027-01-05T00:00:00Z")
    gw.ok("POST", "/v1/test/tick")
    got = dict(gw.rows("SELECT kind, payload_state FROM outbox WHERE kind IN"
                       " ('scheduling_link', 'confirmation')"))
    c.eq(got, {"scheduling_link": "pruned", "confirmation": "pruned"},
         "sent and dead payloads pruned after the retention")
    c.eq(gw.rows("SELECT payload FROM outbox WHERE kind = 'scheduling_link'")[0][0],
         '{"pruned": true}', "the pruned payload")
    c.eq(gw.rows("SELECT count(*) FROM dedupe_keys WHERE key LIKE 'scheduling_link:%'"
                 " OR key LIKE 'confirmation:%'")[0][0], 2, "their dedupe keys stay")
    c.eq(gw.rows("SELECT status FROM outbox WHERE kind = 'confirmation'")[0][0], "dead",
         "the row itself stays")
    # a dead row whose content the retention took is not sent again (it would go out with
    # its links removed): the retry is refused and says why
    dead_id = gw.rows("SELECT id FROM outbox WHERE kind = 'confirmation'")[0][0]
    r = gw.call("POST", O + "/outbox/%d/retry" % dead_id, token=A)
    c.eq((r.status, r.json and r.json["error"]), (409, "invalid_state"),
         "retry of a pruned dead row: 409 invalid_state")
    c.check("retention" in ((r.json or {}).get("message") or ""),
            "... saying the retention removed its content: %r" % (r.json,))
    c.eq(gw.rows("SELECT status FROM outbox WHERE id = ?", dead_id)[0][0], "dead",
         "... and the row stays dead")
    clock("2026-12-01T10:30:00Z")

    # ---- the database files are the owner's only (on PostgreSQL: there are none) ----
    if gw.backend == "sqlite":
        for f in ("ordinatus.db", "ordinatus.db-wal", "ordinatus.db-shm"):
            p = os.path.join(gw.data, f)
            c.check(os.path.exists(p) and stat.S_IMODE(os.stat(p).st_mode) == 0o600,
                    "%s is 0600" % f)
    else:
        c.eq([f for f in os.listdir(gw.data) if f.startswith("ordinatus.db")], [],
             "on PostgreSQL the data folder holds no database file")

    # ---- backup while the gateway serves and writes, then restore into a new gateway ----
    stop = threading.Event()
    written = [0]

    def writer():
        while not stop.is_set():
            r = gw.call("POST", O + "/requests", {"customer": {"name": "Load %d" % written[0],
                                                               "email": "load@example.test"},
                                                  "skills": ["pilates"]})
            if r.status == 201:
                written[0] += 1

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: written[0] >= 20)
    if gw.backend == "sqlite":
        # `ordinatus backup`: SQLite's online backup API into one file
        copy = os.path.join(tmp, "copy.db")
        r = subprocess.run([BIN, "backup", "--data", gw.data, "--to", copy],
                           capture_output=True, text=True, timeout=60, env=gw.env)
    else:
        # the operator's pg_dump: one consistent snapshot while the gateway writes
        copy = os.path.join(tmp, "copy.dump")
        r = gw.pg_dump(copy)
    during = written[0]
    wait_for(lambda: written[0] >= during + 10)
    stop.set()
    for t in threads:
        t.join()
    c.eq(r.returncode, 0, "backup under load exits 0: %s" % r.stderr)
    if gw.backend == "sqlite":
        c.check(os.path.exists(copy) and stat.S_IMODE(os.stat(copy).st_mode) == 0o600,
                "the copy is 0600")
        size = os.path.getsize(copy)
        r2 = subprocess.run([BIN, "backup", "--data", gw.data, "--to", copy],
                            capture_output=True, text=True, timeout=60, env=gw.env)
        c.check(r2.returncode == 1 and "overwrite" in r2.stderr and
                os.path.getsize(copy) == size,
                "a second backup to the same file is refused: %r" % r2.stderr)
    total = gw.rows("SELECT count(*) FROM requests")[0][0]
    key = os.path.join(gw.data, "master.key")
    admin_token = gw.admin_token
    gw.stop()

    # restore: a new folder with the copy as its database and the same master.key
    new = Gateway(test_clock=True, extra_args=["--allow-plain-auth"])
    try:
        if new.backend == "sqlite":
            os.remove(os.path.join(new.data, "ordinatus.db"))
            shutil.copyfile(copy, os.path.join(new.data, "ordinatus.db"))
        else:
            r = new.pg_restore(copy)
            c.eq(r.returncode, 0, "pg_restore of the copy exits 0: %s" % r.stderr)
        shutil.copyfile(key, os.path.join(new.data, "master.key"))
        os.chmod(os.path.join(new.data, "master.key"), 0o600)
        # the rows pending in the copy go out as soon as it starts, on one authenticated
        # connection: count the logins from here
        mark = len(smtp.auth)
        new.start()
        n = new.rows("SELECT count(*) FROM requests")[0][0]
        c.check(1 + 20 <= n <= total, "the copy holds a consistent state: %d of %d requests"
                % (n, total))
        if new.backend == "sqlite":
            c.eq(new.rows("PRAGMA integrity_check")[0][0], "ok",
                 "the restored database is sound")
        c.eq(new.ok("GET", "/v1/orgs/%d/bookings/%d" % (org["id"], bid), token=A)["status"],
             "confirmed", "the restored gateway answers with the old tokens")
        c.check(new.call("GET", "/healthz", token=admin_token).status == 200, "healthz")
        # the sealed SMTP password still opens: a new email goes out with it
        new.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T12:00:00Z"})
        smtp.reject.clear()
        new.ok("POST", "/v1/orgs/%d/requests" % org["id"],
               {"customer": {"name": "After Restore", "email": "after@example.test"},
                "skills": ["yoga"]})
        c.check(wait_for(lambda: [a for a in smtp.auth[mark:]
                                  if a[1:] == [b"mailer", b"s3cret-pw"]]),
                "after the restore the provider secret still opens")
        c.check(wait_for(lambda: any("after@example.test" in r for r, _ in smtp.messages)),
                "and the email is delivered")
        new.stop()
    finally:
        new.cleanup()
finally:
    gw.cleanup()
    smtp.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
