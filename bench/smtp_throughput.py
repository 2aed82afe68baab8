#!/usr/bin/python3
"""smtp_throughput.py - messages per second into Postfix's smtp-sink on loopback, three ways, in
one run and against the same sink, with the same number of connections and the same message
(a real "New request available" email as the gateway builds it, text and HTML, about 8.5 KB):

  smtp-source   Postfix's own load generator (-d: connections reused, ESMTP pipelining)
  libcurl       bare libcurl, one reused connection per thread (bench/smtp_bench.c curl)
  provider      the gateway's SMTP provider alone, one context per thread: JSON payload in,
                MIME built, libcurl out (bench/smtp_bench.c provider)
  message       the same provider sending the message as rendered at enqueue, as the outbox
                does: no JSON, no MIME (bench/smtp_bench.c message)
  outbox        the gateway: N rows already in the outbox, `ordinatus serve --workers CONNS`,
                from the first lease to the last row recorded sent (lease, send, finish:
                the whole engine, SQLite included)

Prints each rate with the CPU time per message of the sending process (the gateway's from
/proc; smtp_bench's from its rusage), the ratio outbox / libcurl (target 0.9) and the others;
each the median of --runs runs (libcurl's of twice as many: it runs before and after each
outbox run). The ratio outbox / libcurl twice: of the two medians, and the median of each
outbox run against the mean of the libcurl runs either side of it (on a shared machine whose
speed drifts between runs, the pairs are what compares like with like). Beside them, the store's part alone (smtp_bench cycle on a copy
of the filled database: the same leases and records, nothing sent), against the outbox's CPU
per message beyond bare libcurl's. Then the latency case: bench/delay_proxy.c in front of the
sink holds every reply --delay-ms (5) late, and the outbox sends --delay-messages with 8 and 32
connections: throughput against the bound connections / (4 round trips x delay), target 0.9.
Then DKIM: the outbox runs again with the organisation's SMTP settings signing every message
(a 2048-bit RSA key made for the run), beside the bare cost of one RSA-2048 signature
(`openssl speed rsa2048`, one core): the ratio with/without DKIM and DKIM's CPU per message.
usage:
  smtp_throughput.py [--messages N] [--conns C] [--runs R] [--delay-ms D]
                     [--delay-conns 8,32] [--delay-messages N] [--no-dkim]
Only 127.0.0.1 is used; every process it starts is stopped by its pid; its temp folder is
removed. Run through bench/smtp_throughput.sh (it installs postfix and builds what is needed).
"""
import argparse
import json
import os
import resource
import statistics
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from benchlib import call, free_port, stop, wait_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
BENCH = os.path.join(ROOT, "build", "bench", "smtp_bench")


def cpu_secs(pid):
    """user + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_source(port, conns, n, size):
    t0 = time.perf_counter()
    subprocess.run(["/usr/sbin/smtp-source", "-d", "-s", str(conns), "-m", str(n), "-l",
                    str(size), "-f", "bookings@bench.test", "-t", "trainer@bench.test",
                    "127.0.0.1:%d" % port], check=True, stdout=subprocess.DEVNULL)
    return n / (time.perf_counter() - t0)


def run_curl(port, conns, n, mode="curl"):
    """(messages per second, CPU seconds per message of the sending process)"""
    c0 = children_cpu()
    out = subprocess.run([BENCH, mode, str(port), str(conns), str(n)], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[1]) / float(out[2]), (children_cpu() - c0) / n


def dkim_key(tmp):
    """A 2048-bit RSA key for the DKIM runs (openssl genpkey), as PEM text."""
    path = os.path.join(tmp, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", path], check=True, capture_output=True)
    with open(path) as f:
        return f.read()


def rsa_signs_per_sec():
    """The bare baseline of DKIM's cost: RSA-2048 signatures per second of one core
    (openssl speed), the one expensive step of signing a message."""
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        # "rsa 2048 bits 0.000712s 0.000021s   1404.5  47619.0"
        if line.startswith("rsa 2048 bits"):
            return float(line.split()[5])
    raise RuntimeError("openssl speed gave no rsa2048 line")


def outbox_run():
    """what the last run_outbox saw besides its rate (busy: the share of the burst that its
    connections spent in a send, from delivery_attempts' started_ms and finished_ms)"""


outbox_run.busy = 0.0


def run_outbox(tmp, sink_port, conns, n, dkim_pem=None, keep_db=None):
    """One run: a fresh data folder, n rows in the outbox, then the gateway sends them (DKIM
    signed when dkim_pem is given). keep_db: a path to copy the filled database to first (for
    run_cycle)."""
    data = os.path.join(tmp, "data-%d" % time.monotonic_ns())
    token = json.loads(subprocess.run([BIN, "init", "--data", data], check=True,
                                      capture_output=True, text=True).stdout)[
        "platform_admin_token"]
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "serve.log"), "ab")
    # the sink listens on loopback, which the outbound guard refuses unless allowed
    args = [BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port, "--workers",
            str(min(conns, 16)), "--allow-outbound", "127.0.0.0/8"]  # the pool: max_connections
    gw = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        wait_port(port)
        org = call(url, "POST", "/v1/orgs", {"name": "Bench Training", "timezone": "UTC"},
                   token)
        cfg = {"host": "127.0.0.1", "port": sink_port, "security": "none",
               "from_address": "bookings@bench.test", "from_name": "Bench Training",
               "max_connections": conns}
        if dkim_pem:
            cfg["dkim"] = {"domain": "bench.test", "selector": "s1",
                           "private_key_pem": dkim_pem}
        call(url, "PUT", "/v1/orgs/%d/providers/smtp" % org["id"], cfg, token)
    finally:
        stop(gw)
    subprocess.run([BENCH, "fill", os.path.join(data, "ordinatus.db"), str(org["id"]), str(n)],
                   check=True)
    if keep_db:
        shutil.copyfile(os.path.join(data, "ordinatus.db"), keep_db)
    db = sqlite3.connect(os.path.join(data, "ordinatus.db"), timeout=30)
    gw = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        first = None
        cpu0 = cpu_secs(gw.pid)
        deadline = time.time() + 120
        # The watch asks only whether a row exists (one probe of a partial index, outbox_due
        # for pending rows, outbox_lease for leased ones; an attempt row once one was
        # recorded): a count(*) over 20,000 index entries, or a scan past the sent rows, every
        # few milliseconds took a good part of a core on a 2-core machine, away from the
        # gateway it measures (the baselines have no watch).
        while time.time() < deadline:
            if first is None:
                if db.execute("SELECT EXISTS(SELECT 1 FROM outbox WHERE status = 'leased')"
                              " OR EXISTS(SELECT 1 FROM delivery_attempts)").fetchone()[0]:
                    first = time.perf_counter()
                time.sleep(0.001)
                continue
            left = db.execute("SELECT EXISTS(SELECT 1 FROM outbox WHERE status = 'pending')"
                              " OR EXISTS(SELECT 1 FROM outbox WHERE status = 'leased')"
                              ).fetchone()[0]
            now = time.perf_counter()
            if not left:
                break
            time.sleep(0.005)
        else:
            sent = db.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
            raise RuntimeError("the outbox did not drain: %d of %d sent" % (sent, n))
        cpu = cpu_secs(gw.pid) - cpu0
        bad = db.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'").fetchone()[0]
        if bad:
            raise RuntimeError("%d rows not sent" % bad)
        # how much of the burst each connection spent sending (the attempts' own times): what
        # the engine leaves idle between messages, at the start and in the tail
        lo, hi, busy = db.execute("SELECT min(started_ms), max(finished_ms),"
                                  " sum(finished_ms - started_ms) FROM delivery_attempts"
                                  ).fetchone()
        outbox_run.busy = busy / (conns * (hi - lo)) if hi and hi > lo else 0.0
        return n / (now - first), cpu / n
    finally:
        db.close()
        stop(gw)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def run_cycle(db_path, batch=32, frame_writes=False):
    """The store's part alone on a copy of a filled database: lease batch rows, record them
    sent, lease the next, until none is left (smtp_bench cycle: nothing is sent). CPU seconds
    per row. frame_writes: with SQLite writing each WAL frame in two calls, as it does itself
    (store/store_wal.c gathers a commit's frames into a few)."""
    work = db_path + ".run"
    shutil.copyfile(db_path, work)
    c0 = children_cpu()
    out = subprocess.run([BENCH, "cycle", work, str(batch)] +
                         (["frame-writes"] if frame_writes else []), check=True,
                         capture_output=True, text=True).stdout.split()
    cpu = (children_cpu() - c0) / int(out[1])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(work + suffix):
            os.remove(work + suffix)
    return cpu


def round_trip_ms(port, n=100):
    """the far side's round trip as one idle client sees it: n NOOPs, one at a time (the
    client's own wake-up included)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line or line[3:4] != b"-":
                return line

    try:
        reply()
        s.sendall(b"EHLO bench.test\r\n")
        reply()
        t0 = time.perf_counter()
        for _ in range(n):
            s.sendall(b"NOOP\r\n")
            reply()
        ms = (time.perf_counter() - t0) * 1000.0 / n
        s.sendall(b"QUIT\r\n")
        reply()
        return ms
    finally:
        f.close()
        s.close()


def start_proxy(upstream, delay_ms):
    p = subprocess.Popen([os.path.join(ROOT, "build", "bench", "delay_proxy"),
                          str(upstream), str(delay_ms)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    return p, int(p.stdout.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay-ms", type=float, default=5.0,
                    help="the latency case: every reply this late (0: skip it)")
    ap.add_argument("--delay-conns", default="8,32")
    ap.add_argument("--delay-messages", type=int, default=4000)
    ap.add_argument("--no-dkim", dest="dkim", action="store_false",
                    help="skip the DKIM-signed runs")
    a = ap.parse_args()
    size = int(subprocess.run([BENCH, "size"], check=True, capture_output=True,
                              text=True).stdout)
    tmp = tempfile.mkdtemp(prefix="ordinatus-smtp-bench-")
    sink_port = free_port()
    sink_args = ["/usr/sbin/smtp-sink"]
    if os.geteuid() == 0:
        sink_args += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
    sink = subprocess.Popen(sink_args + ["127.0.0.1:%d" % sink_port, "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = None
    try:
        wait_port(sink_port)
        src, crl, prv, msg, obx, pair = [], [], [], [], [], []
        filled = os.path.join(tmp, "filled.db")  # the first run's, for run_cycle
        for i in range(a.runs):
            src.append(run_source(sink_port, a.conns, a.messages, size))
            crl.append(run_curl(sink_port, a.conns, a.messages))
            prv.append(run_curl(sink_port, a.conns, a.messages, "provider"))
            msg.append(run_curl(sink_port, a.conns, a.messages, "message"))
            obx.append(run_outbox(tmp, sink_port, a.conns, a.messages,
                                  keep_db=filled if i == 0 else None))
            # bare libcurl again right after: each outbox run against the mean of the libcurl
            # runs on either side of it, so that a slow patch of the shared machine falls on
            # both sides of one ratio (the medians below can come from different patches)
            after = run_curl(sink_port, a.conns, a.messages)
            pair.append(obx[-1][0] / ((crl[-1][0] + after[0]) / 2))
            crl.append(after)
        med = statistics.median
        s = med(src)
        c, cc = med(x[0] for x in crl), med(x[1] for x in crl)
        p, pc = med(x[0] for x in prv), med(x[1] for x in prv)
        g, gc = med(x[0] for x in msg), med(x[1] for x in msg)
        o, oc = med(x[0] for x in obx), med(x[1] for x in obx)
        print("smtp_throughput: %d messages of %d bytes, %d connections, median of %d runs "
              "(a shared 2-core machine: runs vary)" % (a.messages, size, a.conns, a.runs))
        print("  smtp-source (pipelining)  %8.0f msg/s   runs: %s" %
              (s, " ".join("%.0f" % x for x in src)))
        print("  bare libcurl              %8.0f msg/s   %5.1f us CPU/msg   runs: %s" %
              (c, cc * 1e6, " ".join("%.0f" % x[0] for x in crl)))
        print("  SMTP provider alone       %8.0f msg/s   %5.1f us CPU/msg   runs: %s" %
              (p, pc * 1e6, " ".join("%.0f" % x[0] for x in prv)))
        print("  provider, message as enqueued %4.0f msg/s %5.1f us CPU/msg   runs: %s" %
              (g, gc * 1e6, " ".join("%.0f" % x[0] for x in msg)))
        print("  outbox -> smtp-sink       %8.0f msg/s   %5.1f us CPU/msg   runs: %s" %
              (o, oc * 1e6, " ".join("%.0f" % x[0] for x in obx)))
        print("  ratio outbox/libcurl      %8.2f   (target 0.9; of the medians)" % (o / c))
        print("  ratio outbox/libcurl      %8.2f   (target 0.9; the median of each run against "
              "the libcurl runs either side of it: %s)" %
              (med(pair), " ".join("%.2f" % x for x in pair)))
        print("  ratio outbox/smtp-source  %8.2f" % (o / s))
        print("  ratio libcurl/smtp-source %8.2f   (the ceiling without SMTP pipelining)" %
              (c / s))
        print("  ratio outbox/provider     %8.2f   (the provider building each message from "
              "JSON, as before schema 14)" % (o / p))
        print("  ratio outbox/message      %8.2f   (the engine alone: lease, finish, journal, "
              "threads)" % (o / g))
        print("  CPU per message outbox/libcurl %5.2f, message/libcurl %5.2f" %
              (oc / cc, gc / cc))
        # where the outbox's CPU beyond bare libcurl's goes: the store's part measured alone
        # (the same rows, one connection, no send), the median of as many runs
        cyc, fw = [], []
        for _ in range(a.runs):  # alternated, so that both see the same machine
            cyc.append(run_cycle(filled))
            fw.append(run_cycle(filled, frame_writes=True))
        cyc, fw = med(cyc), med(fw)
        print("  store alone (lease 32, record sent, next lease; no send) %5.1f us CPU/row: "
              "%.0f%% of the outbox's %.1f us CPU/msg beyond libcurl's" %
              (cyc * 1e6, 100 * cyc / (oc - cc) if oc > cc else 0, (oc - cc) * 1e6))
        print("  store alone with SQLite's own WAL writes (two a frame) %5.1f us CPU/row: "
              "coalesced / own %.2f" % (fw * 1e6, cyc / fw))
        if a.dkim:
            pem = dkim_key(tmp)
            dk = [run_outbox(tmp, sink_port, a.conns, a.messages, pem) for _ in range(a.runs)]
            d, dc = med(x[0] for x in dk), med(x[1] for x in dk)
            rsa = rsa_signs_per_sec()
            print("dkim: the same outbox run with every message DKIM-signed (rsa-sha256, 2048 "
                  "bits, relaxed/relaxed), beside openssl speed's bare RSA-2048 signing")
            print("  outbox + DKIM -> smtp-sink %7.0f msg/s   %5.1f us CPU/msg   runs: %s" %
                  (d, dc * 1e6, " ".join("%.0f" % x[0] for x in dk)))
            print("  bare RSA-2048 signing      %7.0f signs/s %5.1f us each (one core)" %
                  (rsa, 1e6 / rsa))
            print("  ratio with/without DKIM    %8.2f   DKIM's CPU per message %5.1f us, "
                  "%.2f x a bare signature" % (d / o, (dc - oc) * 1e6, (dc - oc) * rsa))
            # the target: signed throughput >= 0.7 of what openssl speed signs on the
            # cores used; the cores the gateway kept busy (msg/s x CPU per message), and the
            # machine's
            busy = d * dc
            ncpu = os.cpu_count() or 1
            print("  signed / bare signing on the %.2f cores the gateway kept busy %5.2f "
                  "(target 0.7); on the machine's %d cores %5.2f" %
                  (busy, d / (rsa * busy), ncpu, d / (rsa * ncpu)))
        if a.delay_ms > 0:
            proxy, pport = start_proxy(sink_port, a.delay_ms)
            print("latency: every command answered %.0f ms after it came in "
                  "(bench/delay_proxy.c in front of smtp-sink), %d messages; one idle client's "
                  "round trip measured %.2f ms" % (a.delay_ms, a.delay_messages,
                                                   round_trip_ms(pport)))
            for conns in (int(x) for x in a.delay_conns.split(",")):
                bound = conns / (4 * a.delay_ms / 1000.0)
                runs, busy = [], []
                for _ in range(a.runs):
                    runs.append(run_outbox(tmp, pport, conns, a.delay_messages)[0])
                    busy.append(outbox_run.busy)
                cr = run_curl(pport, conns, a.delay_messages)[0]
                print("  %2d connections: outbox %7.0f msg/s (runs %s), bare libcurl %7.0f "
                      "msg/s, bound conns/(4 x delay) %6.0f: ratio outbox/bound %.2f "
                      "(target 0.9), libcurl/bound %.2f, outbox/libcurl %.2f; connections "
                      "busy %.3f of the burst" %
                      (conns, med(runs), " ".join("%.0f" % x for x in runs), cr, bound,
                       med(runs) / bound, cr / bound, med(runs) / cr, med(busy)))
    finally:
        stop(proxy)
        stop(sink)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
