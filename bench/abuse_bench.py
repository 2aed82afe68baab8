#!/usr/bin/python3
"""abuse_bench.py - run by bench/abuse.sh: the gateway under two kinds of abuse, each against a
baseline measured in the same run, figures printed (no pass/fail beyond the printed targets).

1. Slow clients: /healthz latency (fresh connection per request, p50/p99) alone, then while
   1,000 connections trickle their headers a byte a second from 40 loopback addresses
   (127.0.0.2..127.0.0.41, 25 each: under the per-address limit). The gateway shuts a trickler
   down at its header bound (10 s) and the bench opens a new one, so 1,000 stay open throughout.
   Target: /healthz p99 under 100 ms with the trickle.
2. Big schedule views: a session type with a 5-minute grid, ten lengths and 24-hour days (about
   40,000 free slots in 14 days, capped at 2,000 per view); the gateway's RSS before, after 32
   parallel viewers (20 views each) and after 5 s of rest.

Raises RLIMIT_NOFILE for itself (1,000 sockets); the gateway raises its own. Servers listen on
127.0.0.1 free ports and are stopped by their pids.
"""
import json
import mailbox
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from benchlib import free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
TRICKLERS = int(os.environ.get("ABUSE_TRICKLERS", "1000"))
SOURCES = 40
PROBES = 300


class Gw:
    def __init__(self, *extra):
        self.tmp = tempfile.mkdtemp(prefix="ordinatus-abuse-")
        self.data = os.path.join(self.tmp, "data")
        out = subprocess.run([BIN, "init", "--data", self.data], capture_output=True, text=True,
                             check=True).stdout
        self.admin = json.loads(out)["platform_admin_token"]
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.tmp, "serve.log"), "w")
        self.proc = subprocess.Popen([BIN, "serve", "--data", self.data, "--listen",
                                      "127.0.0.1:%d" % self.port, "--log-level", "warn"]
                                     + list(extra), stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the gateway did not start")

    def call(self, method, path, body=None, token=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, method=method, data=data)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def healthz_ms(port):
    """One GET /healthz on a fresh connection: milliseconds to the full answer."""
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
    return (time.perf_counter() - t0) * 1000.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def probe(port, n):
    out = []
    for _ in range(n):
        out.append(healthz_ms(port))
        time.sleep(0.02)
    return out


class Trickle:
    """TRICKLERS connections sending a header byte a second; reopened when the gateway closes
    one, so that the count stays up."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.stop_flag = False
        self.reopened = 0
        self.failed = 0
        self.lifetimes = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self, i):
        s = socket.socket()
        s.bind(("127.0.0.%d" % (2 + i % SOURCES), 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.socks[s] = [i, time.monotonic(), 0]
        self.sel.register(s, selectors.EVENT_READ)

    def run(self):
        for i in range(TRICKLERS):
            self.open_one(i)
        nxt = time.monotonic()
        while not self.stop_flag:
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    got = s.recv(4096)
                except OSError:
                    got = b""
                if not got:
                    i, born, _ = self.socks.pop(s)
                    self.sel.unregister(s)
                    s.close()
                    self.lifetimes.append(time.monotonic() - born)
                    self.reopened += 1
                    self.open_one(i)
            if time.monotonic() >= nxt:
                nxt += 1.0
                for s, st in list(self.socks.items()):
                    msg = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " if st[2] == 0 else b"a"
                    try:
                        s.send(msg)
                        st[2] += 1
                    except (BlockingIOError, OSError):
                        self.failed += 1
        for s in list(self.socks):
            s.close()

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag = True
        self.thread.join()


def bench_trickle():
    gw = Gw()
    try:
        base = probe(gw.port, PROBES)
        tr = Trickle(gw.port)
        tr.start()
        time.sleep(3)  # all connected and sending
        under = probe(gw.port, PROBES)
        time.sleep(max(0, 13 - 3 - PROBES * 0.025))
        under += probe(gw.port, 100)  # across the first round of shutdowns at 10 s
        open_now = len(tr.socks)
        tr.stop()
        alive = gw.proc.poll() is None
    finally:
        gw.stop()
    b50, b99 = statistics.median(base), pct(base, 99)
    u50, u99 = statistics.median(under), pct(under, 99)
    print("slow clients: %d trickling connections (a header byte a second, %d addresses)"
          % (TRICKLERS, SOURCES))
    print("  /healthz alone:          p50 %.2f ms  p99 %.2f ms  (%d requests)"
          % (b50, b99, len(base)))
    print("  /healthz with trickle:   p50 %.2f ms  p99 %.2f ms  (%d requests)"
          % (u50, u99, len(under)))
    print("  ratio with/alone:        p50 %.2fx    p99 %.2fx" % (u50 / b50, u99 / b99))
    if tr.lifetimes:
        print("  tricklers shut down by the gateway: %d, after %.1f..%.1f s (bound 10 s)"
              % (len(tr.lifetimes), min(tr.lifetimes), max(tr.lifetimes)))
    print("  open at the end: %d; gateway alive: %s; target p99 < 100 ms: %s"
          % (open_now, alive, "met" if u99 < 100 else "MISSED"))


def bench_views():
    gw = Gw("--trust-proxy", "127.0.0.0/8")
    try:
        org = gw.call("POST", "/v1/orgs", {"name": "Views", "timezone": "UTC"}, gw.admin)
        O = "/v1/orgs/%d" % org["id"]
        adm = gw.call("POST", O + "/users", {"email": "a@v.test", "name": "A",
                                             "roles": ["org_admin"]}, gw.admin)["token"]
        tr = gw.call("POST", O + "/users", {"email": "t@v.test", "name": "T", "roles": ["trainer"],
                                            "skills": ["yoga"]}, adm)
        week = [{"day": d, "start": "00:00", "end": "24:00"}
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
        gw.call("PUT", O + "/users/%d/availability" % tr["id"], {"weekly": week}, tr["token"])
        st = gw.call("POST", O + "/session-types",
                     {"name": "Any", "skills": ["yoga"], "step_minutes": 5,
                      "lengths": [15, 20, 30, 45, 60, 75, 90, 105, 120, 180], "price_cents": 1,
                      "currency": "EUR"}, adm)
        req = gw.call("POST", O + "/requests", {"customer": {"name": "V", "email": "v@v.test"},
                                                "skills": ["yoga"]})
        gw.call("POST", O + "/requests/%d/claim" % req["id"], token=tr["token"])
        gw.call("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]},
                tr["token"])
        gw.call("POST", O + "/requests/%d/scheduling-link" % req["id"], token=tr["token"])
        tok = None
        for _ in range(200):
            md = os.path.join(gw.data, "maildir")
            if os.path.isdir(os.path.join(md, "cur")):
                for m in mailbox.Maildir(md, create=False):
                    if m["X-Ordinatus-Kind"] == "scheduling_link":
                        tok = re.search(rb"/s/([A-Za-z0-9_-]+)", m.as_bytes()).group(1).decode()
            if tok:
                break
            time.sleep(0.05)
        first = urllib.request.urlopen(gw.url + "/v1/schedule/" + tok, timeout=60).read()
        view = json.loads(first)
        time.sleep(0.5)
        before = gw.rss_kb()
        errors = []

        def viewer(n):
            for _ in range(20):
                try:
                    gw.call("GET", "/v1/schedule/" + tok,
                            headers={"X-Forwarded-For": "198.51.100.%d" % (n + 1)})
                except Exception as e:  # a failed view is reported, not hidden
                    errors.append(repr(e))

        t0 = time.monotonic()
        ts = [threading.Thread(target=viewer, args=(n,)) for n in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        secs = time.monotonic() - t0
        after = gw.rss_kb()
        time.sleep(5)
        rest = gw.rss_kb()
    finally:
        gw.stop()
    print("schedule views: one view %d slots (truncated: %s), %d bytes; 32 viewers x 20 views "
          "in %.1f s, %d errors" % (len(view["slots"]), view.get("truncated"), len(first), secs,
                                     len(errors)))
    print("  RSS before %d KB, after %d KB, after 5 s rest %d KB" % (before, after, rest))
    print("  ratio after/before %.2fx, rest/before %.2fx" % (after / before, rest / before))


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, TRICKLERS + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    which = sys.argv[1:] or ["trickle", "views"]
    if "trickle" in which:
        bench_trickle()
    if "views" in which:
        bench_views()
