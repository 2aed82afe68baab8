"""Delivery engine and SMTP against a real SMTP server (tests/helpers/smtp_server.py, Debian's
python3-aiosmtpd) on 127.0.0.1: STARTTLS with a test CA made here by the openssl CLI, AUTH, and
DKIM with an RSA-2048 key made here.

Every email kind the lifecycle produces arrives, parses with Python's email package and
DKIM-verifies (Debian's python3-dkim, the key record served from the test, no DNS). A server
that answers 451 to the first tries gets the mail later, each try with the same Message-ID; 550
dead-letters with the reply text, visible in the dead list, and the admin retries it (API and
CLI); a server down for a while, then up: everything arrives; idle workers react to new rows at
once; SIGTERM drains and leaves no row leased; no secret in the database or in the API;
/metrics shows the delivery counters. Servers are stopped by their pid.
"""
import calendar
import email
import email.policy
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import dkim

from gwtest import BIN, Checks, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "helpers", "smtp_server.py")
REPLY_451 = "451 4.3.0 Test server: try again later"
REPLY_550 = "550 5.1.1 Test server: mailbox unavailable"
SMTP_USER = "relay-user"
SMTP_PASS = "Pw-7f3c9e1a-never-in-the-db"
ALL_KINDS = {"new_request", "request_received", "scheduling_link", "confirmation",
             "trainer_confirmation", "reminder", "close_reminder", "survey", "no_show",
             "cancellation"}

c = Checks("delivery")
tmp = tempfile.mkdtemp(prefix="ordinatus-delivery-")
servers = []


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, cwd=tmp)


# Validity of the test certificates: they are checked (by the gateway's libcurl) against the
# machine's real date, not the test clock, so they must outlive any date this run can see.
CERT_DAYS = "36500"


def make_pki():
    """A test CA, a server certificate for 127.0.0.1 signed by it, and a DKIM key pair."""
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
       "ca.pem", "-days", CERT_DAYS, "-subj", "/CN=Ordinatus Test CA", "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out",
       "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(tmp, "srv.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "srv.pem", "-days", CERT_DAYS, "-extfile", "srv.ext")
    sh("openssl", "genrsa", "-out", "dkim.pem", "2048")
    sh("openssl", "rsa", "-in", "dkim.pem", "-pubout", "-out", "dkim.pub")


class Sink:
    """One smtp_server.py process: STARTTLS with the test certificate and AUTH."""

    def __init__(self, name, *extra, port=0):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.extra = list(extra)
        self.port = port
        self.proc = None
        servers.append(self)

    def start(self):
        args = ["/usr/bin/python3", SERVER, "--dir", self.dir, "--starttls",
                os.path.join(tmp, "srv.pem"), os.path.join(tmp, "srv.key"), "--auth",
                "%s:%s" % (SMTP_USER, SMTP_PASS), "--port", str(self.port)] + self.extra
        with open(self.dir + ".log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        self.port = int(self.proc.stdout.readline())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    def files(self, pattern="[0-9][0-9][0-9][0-9].eml"):
        return sorted(glob.glob(os.path.join(self.dir, pattern)))

    def messages(self, pattern="[0-9][0-9][0-9][0-9].eml"):
        """[(raw bytes, parsed message, envelope meta)] in arrival order. A file is parsed
        once (the server writes each by rename, whole): re-parsing hundreds of messages at
        every poll made the test's own wait the larger part of what it timed."""
        out = []
        cache = self.__dict__.setdefault("_parsed", {})
        for path in self.files(pattern):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            key = (path, st.st_mtime_ns, st.st_size)
            if key not in cache:
                with open(path, "rb") as f:
                    raw = f.read()
                if not os.path.exists(path[:-4] + ".json"):
                    # the envelope comes a moment after the message: not cached yet
                    out.append((raw, email.message_from_bytes(raw, policy=email.policy.default),
                                {}))
                    continue
                with open(path[:-4] + ".json") as f:
                    meta = json.load(f)
                cache[key] = (raw, email.message_from_bytes(raw, policy=email.policy.default),
                              meta)
            out.append(cache[key])
        return out

    def wait(self, n, pattern="[0-9][0-9][0-9][0-9].eml", timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.files(pattern)) < n:
            time.sleep(0.02)
        return len(self.files(pattern))


def kind(m):
    return str(m["X-Ordinatus-Kind"])


def dkim_ok(raw):
    with open(os.path.join(tmp, "dkim.pub"), "rb") as f:
        pem = f.read()
    body = b"".join(line.strip() for line in pem.splitlines()
                    if line.strip() and not line.startswith(b"-----"))
    record = b"v=DKIM1; k=rsa; p=" + body

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        return record if name.rstrip(".").lower() == "ord2026._domainkey.acme.test" else None

    return dkim.verify(raw, dnsfunc=dnsfunc, minkey=1024)


def wait_for(pred, timeout=15, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


make_pki()
with open(os.path.join(tmp, "dkim.pem")) as f:
    DKIM_KEY = f.read()
with open(os.path.join(tmp, "ca.pem")) as f:
    CA_PEM = f.read()
# the middle of the key: what must never be found in the database file
KEY_BODY = [l for l in DKIM_KEY.splitlines() if l and not l.startswith("-----")][5]

s1 = Sink("main").start()
gw = Gateway(test_clock=True)
gw.start()


CLOCKS = set()  # every instant the test clock was set to (epoch seconds)


def clock(t):
    gw.ok("PUT", "/v1/test/clock", {"now": t})
    CLOCKS.add(calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")))


def clock_plus(secs):
    cur = calendar.timegm(time.strptime(state["now"], "%Y-%m-%dT%H:%M:%SZ"))
    state["now"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cur + secs))
    clock(state["now"])


state = {"now": "2026-11-30T08:00:00Z"}


def smtp_settings(sink, **over):
    body = {"host": "127.0.0.1", "port": sink.port, "security": "starttls",
            "username": SMTP_USER, "password": SMTP_PASS, "from_address": "bookings@acme.test",
            "from_name": "Acme Bookings", "ca_pem": CA_PEM,
            "dkim": {"domain": "acme.test", "selector": "ord2026", "private_key_pem": DKIM_KEY}}
    body.update(over)
    return body


def outbox_row(oid):
    r = gw.rows("SELECT status, attempts, coalesce(last_error, ''), dedupe_key FROM outbox"
                " WHERE id = ?", oid)
    return r[0] if r else None


try:
    clock(state["now"])  # a Monday
    org = gw.org("Acme Training", "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    gw.intake_limits(org["id"])  # files many requests from one address
    A = gw.user(org["id"], "admin@acme.test", ["org_admin"])["token"]
    t1 = gw.user(org["id"], "tia@acme.test", ["trainer"], ["yoga"], name="Tia Trainer",
                 notify_on_confirm=True, token=A)
    T1 = t1["token"]
    solo = gw.user(org["id"], "sam@acme.test", ["trainer"], ["pilates"], name="Sam Solo",
                   token=A)
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % t1["id"], {"weekly": week}, T1)
    gw.ok("PATCH", O + "/settings", {"reminder_hours": [24], "completion_policy":
                                     "reminder_then_auto_close",
                                     "close_reminder_after_minutes": 60}, A)

    # ---- provider settings: validated, secrets sealed, never shown ----
    before = gw.snapshot()
    bad = [
        ({"host": "mail server", "from_address": "b@acme.test"}, "host"),
        ({"host": "127.0.0.1", "from_address": "not-an-email"}, "from_address"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "port": 70000}, "port"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "security": "ssl"}, "security"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "ca_pem": "/nonexistent.pem"},
         "ca_pem"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "ca_file": "/etc/hostname"},
         "ca_file"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "username": "u"}, "password"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "from_name": "X\r\nBcc: a@b.cd"},
         "from_name"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "dkim": {
            "domain": "acme.test", "selector": "s", "private_key_pem": "-----BEGIN junk"}},
         "dkim.private_key_pem"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "dkim": {
            "domain": "acme.test", "private_key_pem": DKIM_KEY}}, "dkim.selector"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "password": {"set": True},
          "username": "u"}, "password"),
        ({"host": "127.0.0.1", "from_address": "b@acme.test", "tls": True}, "tls"),
    ]
    for body, field in bad:
        r = gw.call("PUT", O + "/providers/smtp", body, A)
        c.check(r.status == 400 and r.json and r.json.get("field") == field,
                "bad smtp settings name %s: %r" % (field, r))
    for name, body, field in [
        ("google", {"client_id": "x", "client_secret": "y",
                    "token_url": "http://oauth.example.com/token"}, "token_url"),
        ("google", {"client_id": "x"}, "client_secret"),
        ("outlook", {"client_id": "x", "client_secret": "y", "tenant": "a/b"}, "tenant"),
        ("zoho", {"client_id": "x", "client_secret": "y"}, "refresh_token"),
        ("zoho", {"client_id": "x", "client_secret": "y", "refresh_token": "z",
                  "api_base": "https://user:pw@assist.zoho.com/api/v2"}, "api_base"),
    ]:
        r = gw.call("PUT", O + "/providers/" + name, body, A)
        c.check(r.status == 400 and r.json and r.json.get("field") == field,
                "bad %s settings name %s: %r" % (name, field, r))
    c.eq(gw.call("PUT", O + "/providers/fax", {"a": 1}, A).status, 404, "unknown provider: 404")
    c.eq(gw.call("PUT", O + "/providers/smtp", smtp_settings(s1), T1).status, 403,
         "a trainer cannot set providers")
    c.check(gw.snapshot() == before, "refused provider settings stored nothing")

    put = gw.ok("PUT", O + "/providers/smtp", smtp_settings(s1), A)
    c.eq(put["password"], {"set": True}, "PUT answers the password as set")
    c.eq(put["dkim"]["private_key_pem"], {"set": True}, "PUT answers the key as set")
    c.eq(put["dkim"]["dns_record"]["name"], "ord2026._domainkey.acme.test",
         "the DKIM DNS record to publish")
    g = gw.ok("PUT", O + "/providers/google", {"client_id": "gid", "client_secret": "g-secret-1"},
              A)
    c.eq((g["token_url"], g["api_base"]), ("https://oauth2.googleapis.com/token",
                                           "https://www.googleapis.com/calendar/v3"),
         "Google defaults")
    ms = gw.ok("PUT", O + "/providers/outlook", {"tenant": "contoso.onmicrosoft.com",
                                                 "client_id": "mid", "client_secret": "m-sec"},
               A)
    c.eq((ms["token_url"], ms["api_base"]),
         ("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
          "https://graph.microsoft.com/v1.0"), "Microsoft defaults hold the tenant")
    z = gw.ok("PUT", O + "/providers/zoho", {"client_id": "zid", "client_secret": "z-sec",
                                             "refresh_token": "z-refresh-1"}, A)
    c.eq((z["accounts_url"], z["api_base"]), ("https://accounts.zoho.com",
                                              "https://assist.zoho.com/api/v2"), "Zoho defaults")
    lst = gw.call("GET", O + "/providers", token=A)
    c.eq(lst.status, 200, "GET providers")
    c.eq(lst.json["email"], "smtp", "email goes through SMTP")
    for secret in (SMTP_PASS, KEY_BODY, "g-secret-1", "m-sec", "z-sec", "z-refresh-1", "sealed:"):
        c.check(secret not in lst.raw, "GET providers never shows %r" % secret[:12])
    c.eq(lst.json["zoho"]["refresh_token"], {"set": True}, "secrets come back as set: true")
    gw.ok("DELETE", O + "/providers/google", token=A)
    c.eq(gw.ok("GET", O + "/providers", token=A)["google"], None, "DELETE: back to the default")
    # a GET, edited and PUT back, keeps the secrets it shows as {"set": true}
    cur = gw.ok("GET", O + "/providers", token=A)["smtp"]
    cur["dkim"] = {"domain": "acme.test", "selector": "ord2026",
                   "private_key_pem": {"set": True}}
    gw.ok("PUT", O + "/providers/smtp", cur, A)

    # ---- every email kind, through STARTTLS + AUTH, DKIM-signed ----
    def sink_mail(sink, k=None, to=None):
        return [(raw, m, meta) for raw, m, meta in sink.messages()
                if (k is None or kind(m) == k) and (to is None or to in str(m["To"]))]

    def wait_mail(sink, k, to=None, n=1, timeout=15):
        return wait_for(lambda: len(sink_mail(sink, k, to)) >= n and sink_mail(sink, k, to),
                        timeout) or []

    def new_booking(name, addr, start):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": name, "email": addr},
                                              "skills": ["yoga"]})
        gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T1)
        gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T1)
        gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T1)
        got = wait_mail(s1, "scheduling_link", addr)
        tok = re.search(r"/s/([A-Za-z0-9_-]+)",
                        got[-1][1].get_body(("plain",)).get_content()).group(1)
        b = gw.ok("POST", "/v1/schedule/%s/booking" % tok, {"start": start,
                                                             "length_minutes": 60})
        gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "pay-" + name})
        gw.ok("POST", O + "/bookings/%d/confirm-payment" % b["booking_id"], token=T1)
        return b["booking_id"]

    # (a new_request email of a request claimed at once may expire unsent: this one stays open)
    gw.ok("POST", O + "/requests", {"customer": {"name": "Olga Open", "email": "o@example.test"},
                                    "skills": ["pilates"]})
    b1 = new_booking("Cleo Müller", "cleo@example.test", "2026-12-01T09:00:00Z")
    b2 = new_booking("Nina Noshow", "nina@example.test", "2026-12-01T11:00:00Z")
    b3 = new_booking("Rita Cancel", "rita@example.test", "2026-12-02T09:00:00Z")
    gw.ok("POST", O + "/bookings/%d/cancel" % b3, {"reason": "trainer ill"}, T1)
    state["now"] = "2026-11-30T09:00:00Z"  # 24 h before b1: its reminder is due
    clock(state["now"])
    tick = gw.call("POST", "/v1/test/tick")
    c.eq(tick.status, 200, "test tick")
    c.check(wait_mail(s1, "reminder", "cleo@example.test"), "reminder email")
    state["now"] = "2026-12-01T12:05:00Z"  # b1 ended 10:00, b2 12:00: close reminders due
    clock(state["now"])
    gw.ok("POST", O + "/bookings/%d/no-show" % b2, {"customer": True}, A)
    gw.ok("POST", "/v1/test/tick")
    c.check(wait_mail(s1, "close_reminder", "tia@acme.test"), "close reminder email")
    gw.ok("POST", O + "/bookings/%d/complete" % b1, {"note": "good"}, A)
    for k in ALL_KINDS:
        wait_mail(s1, k)
    msgs = s1.messages()
    kinds = {kind(m) for _, m, _ in msgs}
    c.eq(kinds, ALL_KINDS, "every email kind arrived")
    bad_dkim = [kind(m) for raw, m, _ in msgs if not dkim_ok(raw)]
    c.eq(bad_dkim, [], "every message DKIM-verifies")
    # the signature's t= is the send time on the gateway's clock (the test clock stands still
    # at the instants this test sets), not the machine's
    stamps = [int(dict(tag.split("=", 1) for tag in
                       re.sub(r"\s+", "", str(m["DKIM-Signature"])).split(";") if tag)["t"])
              for _, m, _ in msgs]
    c.check(stamps and all(t in CLOCKS for t in stamps),
            "every DKIM t= is a test clock instant: %r not in %r" %
            (sorted(set(stamps) - CLOCKS), sorted(CLOCKS)))
    c.check(all(meta.get("tls") and meta.get("auth_login") == SMTP_USER for _, _, meta in msgs),
            "every message went over STARTTLS with AUTH")
    c.check(all(m["From"].addresses[0].addr_spec == "bookings@acme.test" and
                m["From"].addresses[0].display_name == "Acme Bookings" for _, m, _ in msgs),
            "From is the configured sender")
    c.check(all(re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", str(m["Message-ID"])) and
                m["Date"].datetime is not None for _, m, _ in msgs), "Message-ID and Date")
    c.check(all(m.get_body(("plain",)) is not None and m.get_body(("html",)) is not None
                for _, m, _ in msgs), "text and HTML parts")
    ics = [m for _, m, _ in msgs if kind(m) in ("confirmation", "cancellation")]
    c.check(ics and all(any(p.get_content_type() == "text/calendar" for p in m.walk())
                        for m in ics), "confirmation and cancellation carry text/calendar")
    c.check(all(kind(m) != "reminder" or "tia@acme.test" not in str(m["To"])
                for _, m, _ in msgs), "reminders go to customers only")
    c.eq(len({str(m["Message-ID"]) for _, m, _ in msgs}), len(msgs),
         "no message arrived twice")
    att = gw.rows("SELECT count(*) FROM delivery_attempts a JOIN outbox o ON o.id = a.outbox_id"
                  " WHERE o.status = 'sent' AND o.provider = 'smtp' AND a.outcome = 'sent'")[0][0]
    c.eq(att, gw.rows("SELECT count(*) FROM outbox WHERE status='sent' AND provider='smtp'")[0][0],
         "one attempt recorded per sent row")

    # ---- /metrics ----
    # the counters move when a batch is recorded, a moment after the server has the message;
    # then they agree with the rows (what the lifecycle skipped or expired never reached them)
    def sent_counters(raw):
        return {mm.group(1): int(mm.group(2)) for mm in re.finditer(
            r'^ordinatus_effects_sent_total\{kind="(\w+)",provider="smtp"\} (\d+)$', raw, re.M)}

    def sent_rows():
        return dict(gw.rows("SELECT kind, count(*) FROM outbox WHERE status = 'sent'"
                            " AND provider = 'smtp' GROUP BY kind"))

    m = wait_for(lambda: (lambda x: sent_counters(x.raw) == sent_rows() and x)(
        gw.call("GET", "/metrics")), timeout=10) or gw.call("GET", "/metrics")
    c.eq(sent_counters(m.raw), sent_rows(), "sent counters by kind agree with the rows")
    for line in ['ordinatus_effects_sent_total{kind="survey",provider="smtp"} 1',
                 'ordinatus_effects_enqueued_total{kind="new_request",class="email"} 4',
                 "# TYPE ordinatus_delivery_attempt_seconds histogram",
                 'ordinatus_delivery_attempt_seconds_bucket{provider="smtp",le="+Inf"}',
                 "ordinatus_outbox_pending ", "ordinatus_outbox_oldest_due_age_seconds ",
                 "# TYPE ordinatus_effects_dead_total counter",
                 "ordinatus_http_requests_total{"]:
        c.check(line in m.raw, "metrics has %s: %s" % (line, [x for x in m.raw.splitlines()
                                                           if line.split("{")[0] in x][:8]))
    buckets = [int(v) for v in re.findall(r'^ordinatus_delivery_attempt_seconds_bucket\{'
                                          r'provider="smtp",le="[^"]+"\} (\d+)$', m.raw, re.M)]
    cnt = re.search(r'^ordinatus_delivery_attempt_seconds_count\{provider="smtp"\} (\d+)$',
                    m.raw, re.M)
    c.check(len(buckets) > 2 and buckets == sorted(buckets) and cnt and
            int(cnt.group(1)) == buckets[-1], "histogram buckets are cumulative, +Inf = _count")
    # text format (prometheus.io exposition formats): each sample belongs to a family whose
    # TYPE came first, and a family is declared once
    typed, lint = set(), []
    for ln in m.raw.splitlines():
        if ln.startswith("# TYPE "):
            name = ln.split()[2]
            if name in typed:
                lint.append("declared twice: " + name)
            typed.add(name)
        elif ln and not ln.startswith("#"):
            name = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", ln).group(1)
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in typed and fam not in typed:
                lint.append("no TYPE before: " + ln)
            if not re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]+="[^"]*"(,[a-zA-Z_]+="[^"]*")*'
                            r'\})? [0-9.e+-]+$', ln):
                lint.append("bad sample: " + ln)
    c.eq(lint, [], "metrics parse as Prometheus text")

    # ---- an idle worker reacts to a new row at once (no polling delay) ----
    lat = []
    for i in range(3):
        n0 = len(sink_mail(s1, "new_request", "sam@acme.test"))
        t0 = time.monotonic()
        gw.ok("POST", O + "/requests", {"customer": {"name": "W%d" % i,
                                                     "email": "w%d@example.test" % i},
                                        "skills": ["pilates"]})
        wait_mail(s1, "new_request", "sam@acme.test", n0 + 1)
        lat.append(time.monotonic() - t0)
        time.sleep(0.3)
    print("  wake-up: intake to arrival %s s" % ", ".join("%.3f" % x for x in lat))
    c.check(sorted(lat)[1] < 0.5, "new rows go out at once: %s s" % ["%.3f" % x for x in lat])

    # ---- 451 for the first two tries: delivered later, the same Message-ID each try ----
    # (the intake makes two emails, the trainer's new_request and the customer's
    # request_received: the server refuses the first four messages, each email twice)
    s2 = Sink("greylist", "--fail-first", "4", "--save-rejected").start()
    gw.ok("PUT", O + "/providers/smtp", smtp_settings(s2), A)
    req = gw.ok("POST", O + "/requests", {"customer": {"name": "Gus", "email": "g@example.test"},
                                          "skills": ["pilates"]})
    oid = gw.rows("SELECT id FROM outbox WHERE dedupe_key = ?",
                  "new_request:%d:%d" % (req["id"], solo["id"]))[0][0]
    c.eq(s2.wait(2, "rejected-*.eml"), 2, "first tries answered 451")
    row = wait_for(lambda: outbox_row(oid)[1] == 1 and outbox_row(oid))
    c.check(row and row[0] == "pending" and REPLY_451 in row[2],
            "after a 451 the row waits with the reply text: %r" % (row,))
    time.sleep(0.3)
    c.eq(s2.wait(3, "rejected-*.eml", timeout=0.1), 2, "no second try before the backoff")
    clock_plus(10)  # past the 5 s step of the schedule
    c.eq(s2.wait(4, "rejected-*.eml"), 4, "second tries after 5 s")
    wait_for(lambda: outbox_row(oid)[1] == 2)
    clock_plus(400)  # past the 5 min step
    c.eq(s2.wait(2), 2, "third tries delivered")
    got = [x for x in s2.messages("rejected-*.eml") + s2.messages()
           if x[1]["To"].addresses[0].addr_spec == "sam@acme.test"]
    mids = [str(m["Message-ID"]) for _, m, _ in got]
    c.check(len(mids) == 3 and len(set(mids)) == 1, "the same Message-ID on every try: %r" % mids)
    row = wait_for(lambda: outbox_row(oid)[0] == "sent" and outbox_row(oid))
    c.eq(row and row[:2], ("sent", 3), "sent after three attempts")
    c.eq([r[0] for r in gw.rows("SELECT outcome FROM delivery_attempts WHERE outbox_id = ?"
                                " ORDER BY attempt", oid)], ["failed", "failed", "sent"],
         "every attempt recorded")
    c.check(all(dkim_ok(raw) for raw, _, _ in got), "each try was signed")

    # ---- 550: dead letter with the reply text; the admin retries (API and CLI) ----
    s3 = Sink("reject", "--reject").start()
    gw.ok("PUT", O + "/providers/smtp", smtp_settings(s3), A)
    dead_ids = []
    for i in range(2):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": "D%d" % i,
                                                           "email": "d%d@example.test" % i},
                                              "skills": ["pilates"]})
        dead_ids.append(gw.rows("SELECT id FROM outbox WHERE dedupe_key = ?",
                                "new_request:%d:%d" % (req["id"], solo["id"]))[0][0])
    wait_for(lambda: all(outbox_row(i)[0] == "dead" for i in dead_ids))
    dead = gw.ok("GET", O + "/outbox?status=dead", token=A)
    listed = {d["id"]: d for d in dead}
    c.check(all(i in listed for i in dead_ids), "550: dead, in the dead list")
    c.check(all(REPLY_550 in (listed.get(i) or {}).get("last_error", "") for i in dead_ids),
            "the dead row carries the server's reply: %r" % [listed.get(i) for i in dead_ids])
    c.eq([outbox_row(i)[1] for i in dead_ids], [1, 1], "a 5xx is not retried")
    c.eq(gw.call("POST", O + "/outbox/%d/retry" % oid, token=A).status, 409,
         "a sent row cannot be retried")
    c.eq(gw.call("POST", O + "/outbox/%d/retry" % dead_ids[0], token=T1).status, 403,
         "a trainer cannot retry")
    gw.ok("PUT", O + "/providers/smtp", smtp_settings(s1), A)  # the admin fixes the cause
    n0 = len(s1.files())
    r = gw.ok("POST", O + "/outbox/%d/retry" % dead_ids[0], token=A)
    c.eq(r["status"], "pending", "API retry answers pending")
    c.eq(s1.wait(n0 + 1), n0 + 1, "the retried row arrives")
    c.eq(wait_for(lambda: outbox_row(dead_ids[0])[0] == "sent" and "sent"), "sent",
         "API retry: sent")
    cli = subprocess.run([BIN, "outbox", "--data", gw.data, "retry", str(dead_ids[1])],
                         capture_output=True, text=True, env=gw.env)
    c.eq((cli.returncode, json.loads(cli.stdout or "{}").get("status")), (0, "pending"),
         "CLI retry")
    c.eq(s1.wait(n0 + 2, timeout=10), n0 + 2, "the CLI-retried row arrives (picked up by the "
                                               "running gateway)")
    cli = subprocess.run([BIN, "outbox", "--data", gw.data, "retry", str(oid)],
                         capture_output=True, text=True, env=gw.env)
    c.check(cli.returncode == 1 and "not dead" in cli.stderr, "CLI retry of a sent row: %r" %
            cli.stderr)
    cli = subprocess.run([BIN, "outbox", "--data", gw.data, "list", "--status", "dead"],
                         capture_output=True, text=True, env=gw.env)
    c.check(cli.returncode == 0 and not [d for d in json.loads(cli.stdout)
                                         if d["id"] in dead_ids], "CLI list: no longer dead")

    # ---- the server down for a while, then up: everything arrives ----
    port = s1.port
    s1.stop()
    ids = []
    for i in range(3):
        req = gw.ok("POST", O + "/requests", {"customer": {"name": "Q%d" % i,
                                                           "email": "q%d@example.test" % i},
                                              "skills": ["pilates"]})
        ids.append(gw.rows("SELECT id FROM outbox WHERE dedupe_key = ?",
                           "new_request:%d:%d" % (req["id"], solo["id"]))[0][0])
    # each row waits with the connection error: the first tries found the server down, the
    # other rows were held back untried for a few seconds; neither costs a row an attempt
    rows = wait_for(lambda: all(outbox_row(i)[2] for i in ids) and
                    [outbox_row(i) for i in ids])
    c.check(rows and all(r[0] == "pending" and "connect" in r[2].lower() for r in rows),
            "server down: rows wait, with the connection error: %r" % (rows,))
    c.check(rows and all(r[1] == 0 for r in rows),
            "server down: no attempt counted against a row: %r" % (rows,))
    c.check("dispatch_server_down" in gw.read_log(), "server down: the log says so")
    s1 = Sink("main-again", port=port).start()  # a new folder: it numbers files from 1
    c.eq(s1.port, port, "the server is back on its port")
    n0 = 0
    clock_plus(10)
    # three requests: three new_request emails and three request_received
    c.eq(s1.wait(n0 + 6), n0 + 6, "after the outage every message arrives")
    c.check(wait_for(lambda: all(outbox_row(i)[0] == "sent" for i in ids)), "rows sent")

    # ---- SIGTERM drains: in-flight sends finish, nothing stays leased, nothing is lost ----
    coaches = [gw.user(org["id"], "coach%d@acme.test" % i, ["trainer"], ["boxing"], token=A)
               for i in range(20)]
    drain_from = gw.rows("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
    n0 = len(s1.files())
    for i in range(10):
        gw.ok("POST", O + "/requests", {"customer": {"name": "B%d" % i,
                                                     "email": "b%d@example.test" % i},
                                        "skills": ["boxing"]})
    gw.stop()  # SIGTERM: asserts exit 0
    c.eq(gw.rows("SELECT count(*) FROM outbox WHERE status = 'leased'")[0][0], 0,
         "after SIGTERM no row is leased")
    sent, pending = [gw.rows("SELECT count(*) FROM outbox WHERE id > ? AND status = ?",
                             drain_from, s)[0][0] for s in ("sent", "pending")]
    # 10 requests x 20 coaches, and each customer's request_received
    print("  drain: at SIGTERM %d of 210 rows were sent, %d pending" % (sent, pending))
    c.eq(sent + pending, 210, "every drained row is sent or pending (%d sent, %d pending)" %
         (sent, pending))
    c.eq(len(s1.files()) - n0, sent, "what is marked sent has arrived")
    gw.start()
    clock(state["now"])
    c.eq(s1.wait(n0 + 210, timeout=30), n0 + 210, "after the restart the rest arrives")
    drained = [m for _, m, _ in s1.messages()[n0:]]
    c.eq(len({str(m["Message-ID"]) for m in drained}), 210, "no duplicate after a clean drain")

    # ---- no secret at rest (the database files, or every value of the PostgreSQL tables) ----
    gw.stop()
    blob = gw.at_rest()
    for secret in (SMTP_PASS, KEY_BODY, "z-refresh-1", "m-sec"):
        c.check(secret.encode() not in blob, "the store holds no plain %r" % secret[:12])
    log = gw.read_log()
    c.check(SMTP_PASS not in log and KEY_BODY not in log, "the log holds no secret")
    c.check(b"sealed:" in blob, "the secrets are stored sealed")
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
    for s in servers:
        s.stop()
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
