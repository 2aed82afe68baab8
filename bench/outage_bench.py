#!/usr/bin/python3
"""outage_bench.py - what an organisation's SMTP server that is down costs the gateway while a
large queue waits for it, beside what sending the same queue costs, in one run.

  down    N email rows already in the outbox (bench/smtp_bench.c fill), the organisation's
          SMTP settings pointing at a loopback port nothing listens on (every connection
          refused), `ordinatus serve` for --secs seconds (the first hold is 5 s, the next 10 s,
          so the default 12 s sees a hold begin twice): its CPU, the attempts counted, the tries
          recorded (delivery_attempts), the warn lines, and the rows still pending with the
          server's words
  send    the same N rows into Postfix's smtp-sink (the baseline): the CPU of delivering the
          queue once

Prints both and the ratio down / send: the share of one delivery of the whole queue that the
outage took. Each the median of --runs runs.
usage: outage_bench.py [--messages N] [--secs S] [--runs R]
Only 127.0.0.1 is used; every process it starts is stopped by its pid; its temp folder is
removed. Run through bench/outage.sh (it installs postfix and builds what is needed)."""
import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, free_port, stop, wait_port  # noqa: E402
from smtp_throughput import BENCH, BIN, cpu_secs, run_outbox  # noqa: E402


def run_down(tmp, n, secs):
    """One outage: n rows queued for a server that refuses every connection, secs of serve"""
    data = os.path.join(tmp, "down-%d" % time.monotonic_ns())
    token = json.loads(subprocess.run([BIN, "init", "--data", data], check=True,
                                      capture_output=True, text=True).stdout)[
        "platform_admin_token"]
    port, closed = free_port(), free_port()  # nothing listens on closed
    url = "http://127.0.0.1:%d" % port
    logpath = os.path.join(tmp, "down.log")
    args = [BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port, "--workers", "8",
            "--allow-outbound", "127.0.0.0/8"]
    with open(logpath, "wb") as log:
        gw = subprocess.Popen(args, stdout=log, stderr=log)
        try:
            wait_port(port)
            org = call(url, "POST", "/v1/orgs", {"name": "Bench Training", "timezone": "UTC"},
                       token)
            call(url, "PUT", "/v1/orgs/%d/providers/smtp" % org["id"],
                 {"host": "127.0.0.1", "port": closed, "security": "none",
                  "from_address": "bookings@bench.test", "from_name": "Bench Training"},
                 token)
        finally:
            stop(gw)
    subprocess.run([BENCH, "fill", os.path.join(data, "ordinatus.db"), str(org["id"]), str(n)],
                   check=True)
    with open(logpath, "wb") as log:
        gw = subprocess.Popen(args, stdout=log, stderr=log)
        try:
            cpu0 = cpu_secs(gw.pid)
            time.sleep(secs)
            cpu = cpu_secs(gw.pid) - cpu0
        finally:
            stop(gw)
    db = sqlite3.connect(os.path.join(data, "ordinatus.db"), timeout=30)
    try:
        counted, = db.execute("SELECT coalesce(sum(attempts), 0) FROM outbox").fetchone()
        tries, = db.execute("SELECT count(*) FROM delivery_attempts").fetchone()
        waiting, = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending' AND"
                              " last_error IS NOT NULL").fetchone()
    finally:
        db.close()
    with open(logpath, encoding="utf-8", errors="replace") as f:
        warns = sum(1 for line in f if '"level":"warn"' in line)
    shutil.rmtree(data, ignore_errors=True)
    return {"cpu": cpu, "counted": counted, "tries": tries, "waiting": waiting, "warns": warns}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--secs", type=float, default=12.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ordinatus-outage-")
    sink = None
    try:
        sink_port = free_port()
        sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody",
                                 "127.0.0.1:%d" % sink_port, "1024"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(sink_port)
        downs, sends = [], []
        for _ in range(a.runs):
            downs.append(run_down(tmp, a.messages, a.secs))
            rate, cpu_msg = run_outbox(tmp, sink_port, 8, a.messages)
            sends.append(cpu_msg * a.messages)
        med = {k: statistics.median(d[k] for d in downs) for k in downs[0]}
        send = statistics.median(sends)
        print("outage_bench: %d emails queued, %g s of serve with every connection refused,"
              " median of %d runs" % (a.messages, a.secs, a.runs))
        print("  down: %.2f s CPU (runs: %s); attempts counted %d, tries recorded %d,"
              " warn lines %d, rows waiting with the server's words %d of %d"
              % (med["cpu"], " ".join("%.2f" % d["cpu"] for d in downs), med["counted"],
                 med["tries"], med["warns"], med["waiting"], a.messages))
        print("  send: %.2f s CPU to deliver the same rows into smtp-sink (runs: %s)"
              % (send, " ".join("%.2f" % s for s in sends)))
        print("  ratio down/send  %.3f   (the outage's CPU as a share of one delivery of the"
              " queue)" % (med["cpu"] / send if send else 0.0))
    finally:
        stop(sink)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
