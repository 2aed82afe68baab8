#!/usr/bin/python3
"""soak_bench.py - run by bench/soak.sh: mixed API traffic for SOAK_SECONDS (600) at half the
peak measured first in the same run (PEAK_SECONDS, 60, closed loop), with deliveries flowing to
the maildir; the gateway's RSS sampled every 10 s; errors counted. Prints the series and the
verdicts (0 errors, every delivery made, RSS flat: the mean of the last third within a few per
cent of the first third, after a minute of warm-up).

The traffic is people's work, one customer's story at a time (a "cycle"): the public intake,
the trainer's claim, session type and scheduling link, the customer's schedule view, booking
and payment (the link's token read from the email delivered to the maildir, as the customer's
mail carries it), the trainer's confirm, then reads (the trainer's booking list, the
booking, the request, its deliveries, the admin's outbox) and, for every other booking, the
trainer's cancellation (it frees the slot). Each worker process has its own trainers and
skills, so no two workers race for one slot: an error is an error. 14 to 15 requests and 3 to
4 emails a cycle.

The load generator is Python on the same 2 cores as the gateway: the peak is the pair's, and
it is what "half the measured peak" is half of.
"""
import email
import email.policy
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from benchlib import free_port, stop  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
PEAK_SECONDS = float(os.environ.get("PEAK_SECONDS", "60"))
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "8"))
TRAINERS_PER_WORKER = 2
SAMPLE_SECONDS = 10
WARMUP_SECONDS = 60


class Client:
    """One keep-alive HTTP/1.1 connection, from source (a 127.0.0.x address) when given: each
    worker is its own client address, as customers are, so that the per-address intake limit
    (at most 1,000 a minute) holds for each as it would in life."""

    def __init__(self, port, source=None):
        self.port = port
        self.source = (source, 0) if source else None
        self.conn = None

    def call(self, method, path, body=None, token=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                                       source_address=self.source)
            try:
                self.conn.request(method, path, data, headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                # the server may close an idle keep-alive connection: one reconnect, no more
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return 0, None


def setup(port, admin_token):
    """The organisation, WORKERS x TRAINERS_PER_WORKER trainers (one skill per worker,
    available around the clock), a 15-minute session type per worker. Returns the plan."""
    cl = Client(port)

    def ok(method, path, body=None, token=admin_token, want=(200, 201)):
        st, out = cl.call(method, path, body, token)
        if st not in want:
            raise RuntimeError("%s %s -> %d %r" % (method, path, st, out))
        return out

    org = ok("POST", "/v1/orgs", {"name": "Soak Training", "timezone": "UTC"})["id"]
    base = "/v1/orgs/%d" % org
    ok("PATCH", base + "/settings", {"intake_per_address_per_minute": 1000,
                                     "intake_per_org_per_minute": 10000,
                                     "survey_enabled": False})
    admin = ok("POST", base + "/users", {"email": "admin@soak.example", "name": "Admin",
                                         "roles": ["org_admin"]})
    plan = {"org": org, "base": base, "admin": admin["token"], "workers": []}
    for w in range(WORKERS):
        skill = "skill%d" % w
        st = ok("POST", base + "/session-types",
                {"name": "Session %d" % w, "skills": [skill], "lengths": [15],
                 "price_cents": 1000, "currency": "EUR", "step_minutes": 15},
                token=admin["token"])
        trainers = []
        for t in range(TRAINERS_PER_WORKER):
            u = ok("POST", base + "/users",
                   {"email": "t%d.%d@soak.example" % (w, t), "name": "Trainer %d.%d" % (w, t),
                    "roles": ["trainer"], "skills": [skill], "timezone": "UTC"},
                   token=admin["token"])
            ok("PUT", base + "/users/%d/availability" % u["id"],
               {"weekly": [{"day": d, "start": "00:00", "end": "23:59"}
                           for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]},
               token=u["token"])
            trainers.append({"id": u["id"], "token": u["token"]})
        plan["workers"].append({"skill": skill, "session_type": st["id"], "trainers": trainers})
    return plan


MAIL_SEEN = set()  # this worker process's: maildir files already read
MAIL_LINKS = {}  # customer address -> token of the newest scheduling link read


def link_token(maildir, email_to):
    """The scheduling link's token from the scheduling_link email delivered to email_to, read
    from the maildir as the customer's mail client would (the outbox row's payload is redacted
    in the transaction that records it sent). Each file is read once per worker process."""
    new = os.path.join(maildir, "new")
    for _ in range(300):
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            names = []
        for name in names:
            if name in MAIL_SEEN:
                continue
            MAIL_SEEN.add(name)
            try:
                with open(os.path.join(new, name), "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                continue
            if b"X-Ordinatus-Kind: scheduling_link" not in raw:
                continue
            m = email.message_from_bytes(raw, policy=email.policy.default)
            to = m["To"].addresses[0].addr_spec if m["To"] and m["To"].addresses else ""
            body = m.get_body(("plain",))
            found = re.search(r"/s/([A-Za-z0-9_-]{20,})", body.get_content() if body else "")
            if to and found:
                MAIL_LINKS[to] = found.group(1)
        if email_to in MAIL_LINKS:
            return MAIL_LINKS.pop(email_to)
        time.sleep(0.01)
    return None


def worker(idx, port, plan, dbpath, phase_end, rate, results):
    """Cycles until phase_end (time.time()); rate cycles/s for this worker (0: flat out).
    Puts {cycles, requests, errors, first_errors, lat} into results."""
    random.seed(idx * 7919 + int(rate * 1000))
    cl = Client(port, "127.0.0.%d" % (2 + idx))
    me = plan["workers"][idx]
    base = plan["base"]
    stats = {"cycles": 0, "requests": 0, "errors": 0, "first_errors": [], "lat": []}
    n = 0

    def step(what, method, path, body=None, token=None, want=(200, 201)):
        t0 = time.perf_counter()
        try:
            st, out = cl.call(method, path, body, token)
        except Exception as e:  # an error, whatever it is
            st, out = -1, str(e)
        dt = (time.perf_counter() - t0) * 1000.0
        stats["requests"] += 1
        if len(stats["lat"]) < 200000:
            stats["lat"].append(dt)
        if st not in want:
            stats["errors"] += 1
            if len(stats["first_errors"]) < 5:
                stats["first_errors"].append("%s: %s %s -> %s %r" % (what, method, path, st,
                                                                     str(out)[:200]))
            return None
        return out if out is not None else {}

    next_at = time.time()
    while time.time() < phase_end:
        if rate > 0:
            now = time.time()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += 1.0 / rate
        n += 1
        tr = me["trainers"][n % len(me["trainers"])]
        email = "c%d.%d.%d@customers.example" % (idx, os.getpid(), n)
        req = step("intake", "POST", base + "/requests",
                   {"customer": {"name": "Customer %d" % n, "email": email},
                    "skills": [me["skill"]]})
        if not req:
            continue
        rid = req["id"]
        if not step("claim", "POST", base + "/requests/%d/claim" % rid, token=tr["token"]):
            continue
        if not step("session type", "PATCH", base + "/requests/%d" % rid,
                    {"session_type_id": me["session_type"]}, tr["token"]):
            continue
        if not step("link", "POST", base + "/requests/%d/scheduling-link" % rid,
                    token=tr["token"]):
            continue
        tok = link_token(os.path.join(os.path.dirname(dbpath), "maildir"), email)
        if not tok:
            stats["errors"] += 1
            stats["first_errors"].append("no scheduling link token for request %d" % rid)
            continue
        view = step("schedule view", "GET", "/v1/schedule/" + tok)
        if not view or not view.get("slots"):
            continue
        slot = random.choice(view["slots"][:40])
        b = step("booking", "POST", "/v1/schedule/%s/booking" % tok,
                 {"start": slot["start"], "length_minutes": 15})
        if not b:
            continue
        bid = b["booking_id"]
        if not step("payment", "POST", "/v1/schedule/%s/payment" % tok,
                    {"reference": "pay-%d" % n}):
            continue
        if not step("confirm", "POST", base + "/bookings/%d/confirm-payment" % bid,
                    token=tr["token"]):
            continue
        step("list", "GET", base + "/bookings?trainer_id=%d&status=confirmed" % tr["id"],
             token=tr["token"])
        step("booking", "GET", base + "/bookings/%d" % bid, token=tr["token"])
        step("request", "GET", base + "/requests/%d" % rid, token=tr["token"])
        step("effects", "GET", base + "/bookings/%d/effects" % bid, token=tr["token"])
        step("outbox", "GET", base + "/outbox?status=dead", token=plan["admin"])
        if n % 2 == 0:
            step("cancel", "POST", base + "/bookings/%d/cancel" % bid, {"reason": "soak"},
                 tr["token"])
        stats["cycles"] += 1
    results.put(stats)


def run_phase(port, plan, dbpath, seconds, rate_per_worker):
    results = multiprocessing.Queue()
    end = time.time() + seconds
    procs = [multiprocessing.Process(target=worker, args=(i, port, plan, dbpath, end,
                                                          rate_per_worker, results))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    return procs, results, end


def collect(procs, results):
    out = [results.get() for _ in procs]
    for p in procs:
        p.join()
    total = {"cycles": 0, "requests": 0, "errors": 0, "first_errors": [], "lat": []}
    for s in out:
        for k in ("cycles", "requests", "errors"):
            total[k] += s[k]
        total["first_errors"] += s["first_errors"]
        total["lat"] += s["lat"]
    return total


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else 0.0


def rss_parts(pid):
    """VmRSS and its parts from /proc/PID/status, in kB: RssAnon (the heap and the stacks),
    RssFile (file pages mapped: the program, its libraries and the database's mapped pages)
    and RssShmem (shared memory: SQLite's -shm index)"""
    got = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                got[key] = int(line.split()[1])
    return got


def main():
    tmp = tempfile.mkdtemp(prefix="ordinatus-soak-")
    data = os.path.join(tmp, "data")
    out = subprocess.run([BIN, "init", "--data", data], capture_output=True, text=True,
                         check=True)
    admin_token = json.loads(out.stdout)["platform_admin_token"]
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "wb")
    gw = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                           "--log-level", "warn", "--token-route-limit", "1000000"],
                          stderr=log)
    dbpath = os.path.join(data, "ordinatus.db")
    try:
        for _ in range(200):
            try:
                Client(port).call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        plan = setup(port, admin_token)
        cpus = os.cpu_count()
        load = os.getloadavg()
        print("soak: %d workers, %d cores, load average before %.2f %.2f %.2f"
              % (WORKERS, cpus, *load), flush=True)

        # ---- the peak: closed loop, flat out ----
        procs, results, _ = run_phase(port, plan, dbpath, PEAK_SECONDS, 0)
        peak = collect(procs, results)
        peak_cycles = peak["cycles"] / PEAK_SECONDS
        peak_rps = peak["requests"] / PEAK_SECONDS
        print("peak: %.1f cycles/s, %.0f requests/s over %.0f s (p50 %.1f ms, p99 %.1f ms),"
              " %d errors" % (peak_cycles, peak_rps, PEAK_SECONDS, pct(peak["lat"], 50),
                              pct(peak["lat"], 99), peak["errors"]), flush=True)
        for e in peak["first_errors"][:5]:
            print("  error: " + e)

        # ---- the soak: half the peak, RSS every 10 s ----
        rate = peak_cycles / 2.0
        print("soak: %.1f cycles/s (half the peak) for %.0f s" % (rate, SOAK_SECONDS),
              flush=True)
        procs, results, end = run_phase(port, plan, dbpath, SOAK_SECONDS, rate / WORKERS)
        series, wals, anon, files = [], [], [], []
        t0 = time.time()
        while time.time() < end:
            time.sleep(SAMPLE_SECONDS)
            parts = rss_parts(gw.pid)
            series.append((round(time.time() - t0), parts.get("VmRSS", 0)))
            anon.append(parts.get("RssAnon", 0))
            files.append(parts.get("RssFile", 0) + parts.get("RssShmem", 0))
            try:
                wal = os.path.getsize(dbpath + "-wal") // 1024
            except OSError:
                wal = 0
            wals.append(wal)
            print("  t=%4ds rss=%6d kB (anon %6d, file+shmem %6d)  wal=%7d kB"
                  % (series[-1] + (anon[-1], files[-1], wal)), flush=True)
        soak = collect(procs, results)

        # ---- deliveries: wait for the backlog to drain, then count ----
        db = sqlite3.connect(dbpath, timeout=30)
        deadline = time.time() + 120
        while time.time() < deadline:
            (pending,) = db.execute("SELECT COUNT(*) FROM outbox WHERE status IN"
                                    " ('pending', 'leased') AND next_attempt_at <= ?",
                                    (int(time.time()),)).fetchone()
            if pending == 0:
                break
            time.sleep(1)
        counts = dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        mails = len(os.listdir(os.path.join(data, "maildir", "new")))

        print("soak: %d cycles, %d requests (%.0f/s, p50 %.1f ms, p99 %.1f ms), %d errors"
              % (soak["cycles"], soak["requests"], soak["requests"] / SOAK_SECONDS,
                 pct(soak["lat"], 50), pct(soak["lat"], 99), soak["errors"]))
        for e in soak["first_errors"][:5]:
            print("  error: " + e)
        print("deliveries: %s; %d messages in the maildir" % (json.dumps(counts), mails))
        rss = [kb for t, kb in series if t > WARMUP_SECONDS] or [kb for _, kb in series] or [0]
        third = max(1, len(rss) // 3)
        first, last = rss[:third], rss[-third:]
        growth = (sum(last) / len(last)) / max(1, sum(first) / len(first)) - 1.0
        print("rss (kB, every %d s): %s" % (SAMPLE_SECONDS, " ".join(str(kb) for _, kb in series)))
        print("wal file (kB, every %d s): %s" % (SAMPLE_SECONDS, " ".join(str(w) for w in wals)))
        print("rss after %d s of warm-up: first third mean %d kB, last third mean %d kB: %+.1f%%"
              % (WARMUP_SECONDS, sum(first) / len(first), sum(last) / len(last), growth * 100))
        bad = peak["errors"] + soak["errors"]
        # pending rows due later (reminders of future sessions) are not a backlog
        (undelivered,) = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'dead' OR"
                                    " (status IN ('pending', 'leased') AND"
                                    " next_attempt_at <= ?)", (int(time.time()),)).fetchone()
        ok = bad == 0 and undelivered == 0 and abs(growth) <= 0.05
        print("soak: %s (errors %d, undelivered %d, rss %+.1f%%; flat means within 5%%)"
              % ("PASS" if ok else "FAIL", bad, undelivered, growth * 100))
        print("load average after %.2f %.2f %.2f" % os.getloadavg())
        return 0 if ok else 1
    finally:
        stop(gw, timeout=40)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
