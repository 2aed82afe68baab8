#!/usr/bin/python3
"""pg_bench.py - run by bench/pg.sh: delivery and API throughput of one gateway on SQLite, one on
PostgreSQL and two gateways on one PostgreSQL database, in one run, each against the same sink
and the same load; the ratios are against the SQLite gateway of the same run.

Each configuration in turn (the others' gateways stopped): a fresh data folder per gateway (the
first initialised, on PostgreSQL the second holding a copy of its master.key), an organisation
whose SMTP server is Postfix's smtp-sink on loopback (max_connections 8 per gateway) with N
trainers of the skill "yoga" inserted straight into its users table while the gateways are
stopped (as bench/fanout_bench.py does: making them through the API is not what is measured).
  delivery  R public intakes asking for "yoga", one after another, each fanning out to the N
            trainers (N new_request emails and the customer's request_received), timed from the
            intake's answer (its rows committed) to the last of them recorded sent: emails per
            second; the intake's own answer time beside it; the CPU per email of the gateways
            (from /proc) and, on PostgreSQL, of the database server's processes, over the same
            span (the CPU clock ticks at 100 Hz: a few thousand emails are needed)
  api       wrk on an authenticated read (GET a user with a bearer token, as bench/http.sh), 64
            connections; two gateways: one wrk at each, 32 connections apiece, rates added
PostgreSQL is a cluster of this run (tests/helpers/pgcluster.py: 127.0.0.1 on a free port, fsync
off as for the tests; commits stay synchronous), stopped by its pid at the end; SQLite is the
gateway's own (WAL, synchronous=NORMAL). Every process started here is stopped by its pid; the
temporary folder is removed.

usage: pg_bench.py [--trainers N] [--runs R] [--seconds S]
"""
import argparse
import glob
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from benchlib import free_port, stop  # noqa: E402
import benchlib  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
import pgcluster  # noqa: E402
import psycopg2  # noqa: E402

CONNS = 8  # each gateway's SMTP connections (the settings' default max_connections)


def call(url, method, path, body=None, token=None):
    return benchlib.call(url, method, path, body, token, timeout=60)


def wait_http(url, proc):
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError("the gateway exited %d" % proc.returncode)
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no answer from " + url)


def cpu_secs(pid):
    """user + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15); 0 for a
    process that has ended"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster):
    """CPU seconds of the database server: the postmaster and its children (the backends)"""
    total = cpu_secs(postmaster)
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == postmaster:
            total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wrk(url, header, conns, threads, seconds):
    """Start wrk; wrk_result() reads its rate, p99 (ms) and non-2xx count."""
    return subprocess.Popen(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
                             "--latency", "-H", header, url], stdout=subprocess.PIPE, text=True)


def wrk_result(p):
    out = p.communicate()[0]
    if p.returncode != 0:
        raise RuntimeError("wrk exited %d: %s" % (p.returncode, out))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0


class Config:
    """One configuration: its gateways (their data folders, ports, processes) and its store."""

    def __init__(self, name, tmp, sink_port, trainers, db_url=None, gateways=1):
        self.name = name
        self.db_url = db_url
        self.dirs = [os.path.join(tmp, "%s-%d" % (name.replace(" ", "-"), i))
                     for i in range(gateways)]
        self.ports = [free_port() for _ in range(gateways)]
        self.urls = ["http://127.0.0.1:%d" % p for p in self.ports]
        self.procs = []
        data = os.path.join(self.dirs[0], "data")
        os.makedirs(self.dirs[0])
        args = [BIN, "init", "--data", data] + (["--db", db_url] if db_url else [])
        admin = json.loads(subprocess.run(args, capture_output=True, text=True,
                                          check=True).stdout)["platform_admin_token"]
        for d in self.dirs[1:]:
            os.makedirs(os.path.join(d, "data"), mode=0o700)
            key = os.path.join(d, "data", "master.key")
            shutil.copyfile(os.path.join(data, "master.key"), key)
            os.chmod(key, 0o600)
        self.start(1)
        u = self.urls[0]
        self.org = call(u, "POST", "/v1/orgs", {"name": "Bench Training", "timezone": "UTC"},
                        admin)["id"]
        call(u, "PATCH", "/v1/orgs/%d/settings" % self.org,
             {"intake_per_address_per_minute": 1000, "intake_per_org_per_minute": 10000}, admin)
        call(u, "PUT", "/v1/orgs/%d/providers/smtp" % self.org,
             {"host": "127.0.0.1", "port": sink_port, "security": "none",
              "from_address": "bookings@bench.test", "from_name": "Bench Training",
              "max_connections": CONNS}, admin)
        self.reader = call(u, "POST", "/v1/orgs/%d/users" % self.org,
                           {"email": "tia@bench.test", "name": "Tia Reader", "roles": ["trainer"],
                            "skills": ["pilates"]}, admin)
        self.stop()
        now = int(time.time())
        rows = [(self.org, "trainer%05d@fanout.test" % i, "Trainer %05d" % i,
                 secrets.token_hex(32), now) for i in range(trainers)]
        ins = ("INSERT INTO users(org_id, email, name, roles, skills, timezone, token_hash,"
               " created_at) VALUES(%s, %s, %s, 4, '[\"yoga\"]', 'Europe/Berlin', %s, %s)")
        with self.db() as db:
            if db_url:
                db.cursor().executemany(ins, rows)
            else:
                db.executemany(ins.replace("%s", "?"), rows)
        self.start(gateways)

    def db(self):
        if self.db_url:
            return psycopg2.connect(self.db_url)
        return sqlite3.connect(os.path.join(self.dirs[0], "data", "ordinatus.db"), timeout=30)

    def start(self, n):
        for i in range(n):
            d = self.dirs[i]
            args = [BIN, "serve", "--data", os.path.join(d, "data"), "--listen",
                    "127.0.0.1:%d" % self.ports[i], "--allow-outbound", "127.0.0.0/8",
                    # wrk's connections all come from 127.0.0.1: room above the default (64)
                    "--max-connections-per-address", "256"]
            if self.db_url:
                args += ["--db", self.db_url]
            log = open(os.path.join(d, "serve.log"), "ab")
            p = subprocess.Popen(args, stdout=log, stderr=log)
            log.close()
            self.procs.append(p)
            wait_http(self.urls[i] + "/healthz", p)

    def stop(self):
        for p in self.procs:
            stop(p)
        self.procs = []

    def deliver(self, runs, trainers, postmaster):
        """[(emails/s, intake s, gateway CPU s/email, server CPU s/email)], one per run"""
        out = []
        conn = self.db()
        if self.db_url:
            conn.autocommit = True
        cur = conn.cursor()
        try:
            for r in range(runs):
                body = {"customer": {"name": "Cleo %d" % r,
                                     "email": "cleo%d.%d@example.test" % (r, time.time_ns())},
                        "skills": ["yoga"]}
                t0 = time.perf_counter()
                res = call(self.urls[0], "POST", "/v1/orgs/%d/requests" % self.org, body)
                t_answer = time.perf_counter()
                # from here on the rows are committed: what follows is the delivery's
                g0 = sum(cpu_secs(p.pid) for p in self.procs)
                s0 = server_cpu(postmaster) if self.db_url else 0.0
                if res["matched_trainers"] != trainers:
                    raise RuntimeError("the intake matched %d trainers, not %d" %
                                       (res["matched_trainers"], trainers))
                deadline = time.monotonic() + 300
                while True:
                    cur.execute("SELECT (SELECT count(*) FROM outbox WHERE status ="
                                " 'pending') + (SELECT count(*) FROM outbox"
                                " WHERE status = 'leased')")
                    left = cur.fetchone()[0]
                    if not self.db_url:
                        conn.commit()  # a fresh snapshot for the next read
                    if left == 0:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("%s: %d rows still to send" % (self.name, left))
                    time.sleep(0.005)
                t1 = time.perf_counter()
                cur.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'")
                bad = cur.fetchone()[0]
                if not self.db_url:
                    conn.commit()
                if bad:
                    raise RuntimeError("%s: %d rows not sent" % (self.name, bad))
                n = trainers + 1
                gcpu = sum(cpu_secs(p.pid) for p in self.procs) - g0
                scpu = server_cpu(postmaster) - s0 if self.db_url else 0.0
                out.append((n / (t1 - t_answer), t_answer - t0, gcpu / n, scpu / n))
        finally:
            conn.close()
        return out

    def api(self, seconds):
        """(requests/s, p99 ms, non-2xx) of the authenticated read, over every gateway"""
        path = "/v1/orgs/%d/users/%d" % (self.org, self.reader["id"])
        header = "Authorization: Bearer " + self.reader["token"]
        n = len(self.urls)
        ps = [wrk(u + path, header, 64 // n, 2 // n or 1, seconds) for u in self.urls]
        res = [wrk_result(p) for p in ps]
        return sum(r[0] for r in res), max(r[1] for r in res), sum(r[2] for r in res)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainers", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="each wrk run")
    a = ap.parse_args()
    load = os.getloadavg()[0]  # a shared machine: what else ran when this started
    tmp = tempfile.mkdtemp(prefix="ordinatus-pgbench-")
    sink = cluster = None
    configs = []
    try:
        sink_port = free_port()
        sink_args = ["/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            sink_args += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        sink = subprocess.Popen(sink_args + ["127.0.0.1:%d" % sink_port, "1024"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # a folder of its own: under root pgcluster hands it to the postgres user
        cluster = pgcluster.Cluster(tempfile.mkdtemp(prefix="ordinatus-pgbench-pg-"))
        cluster.start()
        postmaster = cluster.pid()
        one = cluster.create_database("bench_one")
        two = cluster.create_database("bench_two")
        results = []
        for name, url, n in (("sqlite, 1 gateway", None, 1), ("postgresql, 1 gateway", one, 1),
                             ("postgresql, 2 gateways", two, 2)):
            cfg = Config(name, tmp, sink_port, a.trainers, url, n)
            configs.append(cfg)
            d = cfg.deliver(a.runs, a.trainers, postmaster)
            api = cfg.api(a.seconds)
            cfg.stop()
            results.append((name, d, api))
        med = statistics.median
        cores = os.cpu_count()
        print("pg: one gateway on SQLite, one on PostgreSQL 15, two on one PostgreSQL database, "
              "in one run on %d cores (load average %.1f at the start)" % (cores, load))
        print("  (PostgreSQL: a cluster of this run on 127.0.0.1, fsync off as the tests' "
              "cluster; SQLite: WAL, synchronous=NORMAL, as the gateway opens it)")
        print("delivery: one intake fanning out to %d trainers (%d emails) into smtp-sink, %d "
              "SMTP connections per gateway, median of %d runs" % (a.trainers, a.trainers + 1,
                                                                   CONNS, a.runs))
        base = med(x[0] for x in results[0][1])
        for name, d, _ in results:
            rate = med(x[0] for x in d)
            scpu = med(x[3] for x in d)
            print("  %-23s %7.0f emails/s   intake %5.0f ms   CPU/email: gateways %5.0f us%s"
                  "   ratio %.2f   runs: %s" %
                  (name, rate, med(x[1] for x in d) * 1000, med(x[2] for x in d) * 1e6,
                   ", server %5.0f us" % (scpu * 1e6) if scpu else " " * 18, rate / base,
                   " ".join("%.0f" % x[0] for x in d)))
        print("api: wrk, an authenticated read (GET a user with a bearer token), 64 connections "
              "in all (two gateways: 32 at each), %d s" % a.seconds)
        base = results[0][2][0]
        for name, _, (rate, p99, bad) in results:
            print("  %-23s %7.0f req/s   p99 %6.2f ms   ratio %.2f%s" %
                  (name, rate, p99, rate / base, "   (%d non-2xx)" % bad if bad else ""))
        pg1, pg2 = results[1], results[2]
        print("two gateways / one, on PostgreSQL: delivery %.2f, api %.2f" %
              (med(x[0] for x in pg2[1]) / med(x[0] for x in pg1[1]), pg2[2][0] / pg1[2][0]))
        print("note: on %d cores the gateways, PostgreSQL, smtp-sink and wrk all share the same "
              "CPUs: the second gateway shows the cost of sharing one database, not the scaling "
              "that a second machine would give." % cores)
        return 0 if all(api[2] == 0 for _, _, api in results) else 1
    finally:
        for cfg in configs:
            cfg.stop()
        stop(sink)
        if cluster is not None:
            cluster.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
