#!/usr/bin/python3
"""http_bench.py - run by bench/http.sh: wrk against bare libmicrohttpd and against the
gateway's authenticated read, in one run; prints both rates, p99 latencies and the ratio."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from benchlib import free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
BARE = os.path.join(ROOT, "build", "bench", "http_bare")
DURATION = os.environ.get("HTTP_BENCH_SECONDS", "10")


def wait_http(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no answer from " + url)


def call(url, method, path, body, token):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode())
    # urllib's default for a body is form encoding, which the gateway refuses (415)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wrk(url, header=None):
    args = ["wrk", "-t2", "-c64", "-d" + DURATION + "s", "--latency"]
    if header:
        args += ["-H", header]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0


def session_cookie(url, data, org, email, token):
    """Sign in by email (the link read from DATA/maildir) and log in: the session cookie."""
    call(url, "POST", "/v1/auth/sign-in", {"email": email, "org": org}, token)
    new = os.path.join(data, "maildir", "new")
    for _ in range(200):
        for name in sorted(os.listdir(new)) if os.path.isdir(new) else []:
            with open(os.path.join(new, name)) as f:
                m = re.search(r"/login/([A-Za-z0-9_-]{43})", f.read())
            if m:
                req = urllib.request.Request(url + "/v1/auth/login", method="POST",
                                             data=json.dumps({"token": m.group(1)}).encode())
                req.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.headers["Set-Cookie"].split(";")[0]
        time.sleep(0.05)
    raise RuntimeError("no sign-in email")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def main():
    tmp = tempfile.mkdtemp(prefix="ordinatus-httpbench-")
    procs = []
    try:
        port = free_port()
        bare = subprocess.Popen([BARE, str(port)])
        procs.append(bare)
        wait_http("http://127.0.0.1:%d/" % port)
        b_rate, b_p99, _ = wrk("http://127.0.0.1:%d/v1/x" % port)
        stop(bare)

        data = os.path.join(tmp, "data")
        admin = json.loads(subprocess.run([BIN, "init", "--data", data], capture_output=True,
                                          text=True, check=True).stdout)["platform_admin_token"]
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        log = open(os.path.join(tmp, "serve.log"), "w")
        # wrk's 64 connections all come from 127.0.0.1: room above the per-address default (64)
        gw = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                               "--max-connections-per-address", "256"], stderr=log)
        procs.append(gw)
        wait_http(url + "/healthz")
        org = call(url, "POST", "/v1/orgs", {"name": "Bench", "timezone": "UTC"}, admin)
        user = call(url, "POST", "/v1/orgs/%d/users" % org["id"],
                    {"email": "tia@bench.test", "name": "Tia Trainer", "roles": ["trainer"],
                     "skills": ["yoga"]}, admin)
        g_rate, g_p99, bad = wrk("%s/v1/orgs/%d/users/%d" % (url, org["id"], user["id"]),
                                 "Authorization: Bearer " + user["token"])
        # the same read with the session cookie of an emailed sign-in link
        cookie = session_cookie(url, data, org["id"], "tia@bench.test", admin)
        c_rate, c_p99, c_bad = wrk("%s/v1/orgs/%d/users/%d" % (url, org["id"], user["id"]),
                                   "Cookie: " + cookie)
        stop(gw)
        print("http: wrk 2 threads x 64 connections, %s s each" % DURATION)
        print("  bare libmicrohttpd, static JSON   %9.0f req/s   p99 %6.2f ms" % (b_rate, b_p99))
        print("  gateway, authenticated read       %9.0f req/s   p99 %6.2f ms   (%d non-2xx)"
              % (g_rate, g_p99, bad))
        print("  gateway, read with session cookie %9.0f req/s   p99 %6.2f ms   (%d non-2xx)"
              % (c_rate, c_p99, c_bad))
        print("  ratio gateway/bare %.2f (target >= 0.5); p99 %.2f ms (target < 10 ms)"
              % (g_rate / b_rate, g_p99))
        print("  ratio cookie/bare %.2f, cookie/bearer %.2f" % (c_rate / b_rate, c_rate / g_rate))
        return 0 if bad == 0 and c_bad == 0 else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
