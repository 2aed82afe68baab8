"""serve --config FILE as an operator uses it: the file's settings take effect, an option on the
command line wins over the file's (a repeatable one replaces the file's lines), and a bad line is
exit 2 naming FILE:LINE with nothing started or written. The shipped sample is a valid file."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from gwtest import BIN, Checks, Gateway, free_port

c = Checks("config")
SAMPLE = os.path.join(os.path.dirname(__file__), "../../contrib/ordinatus.conf.sample")


def listening(port):
    s = socket.socket()
    try:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def http(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def serve(gw, *args):
    """Start serve with args; wait for /healthz on the port it should listen on (the last
    listen of the file or the command line, which the caller knows); returns the process."""
    log = open(gw.log_path, "ab")
    return subprocess.Popen([BIN, "serve"] + list(args), stdout=log, stderr=log, env=gw.env)


def wait_up(proc, port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if listening(port) and http(port, "GET", "/healthz") == 200:
            return True
        time.sleep(0.05)
    return False


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def write(gw, name, text):
    path = os.path.join(gw.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def meta(gw, key):
    rows = gw.rows("SELECT value FROM meta WHERE key = ?", key)
    return rows[0][0] if rows else None


gw = Gateway()
try:
    p1, p2 = free_port(), free_port()
    conf = write(gw, "o.conf", "# test\ndata = %s\nlisten = 127.0.0.1:%d\n"
                 "public_url = http://file.example  # links in emails\nlog_level = warn\n"
                 "test_clock = true\n" % (gw.data, p1))

    # ---- the file alone: its listen, public URL, log level and flag take effect ----
    proc = serve(gw, "--config", conf)
    c.check(wait_up(proc, p1), "serve --config FILE listens where the file says")
    c.eq(meta(gw, "public_url"), "http://file.example", "public_url from the file")
    c.eq(http(p1, "PUT", "/v1/test/clock", {"now": "2026-12-01T09:00:00Z"}), 200,
         "test_clock = true in the file turns the test clock on")
    c.eq(stop(proc), 0, "SIGTERM drains and exits 0")
    log = gw.read_log()
    c.check('"http_request"' not in log, "log_level = warn from the file: no per-request lines")

    # ---- the command line wins: listen and public URL from it, the rest still from the file --
    open(gw.log_path, "w").close()
    proc = serve(gw, "--config", conf, "--listen", "127.0.0.1:%d" % p2,
                 "--public-url=http://cli.example")
    c.check(wait_up(proc, p2), "--listen on the command line wins over the file's")
    c.check(not listening(p1), "nothing listens on the file's port")
    c.eq(meta(gw, "public_url"), "http://cli.example", "--public-url wins over the file's")
    c.eq(http(p2, "GET", "/healthz"), 200, "healthz")
    c.eq(stop(proc), 0, "exits 0")
    c.check('"http_request"' not in gw.read_log(), "the file's log_level still applies")

    # ---- options before or after --config: the command line wins either way ----
    open(gw.log_path, "w").close()
    proc = serve(gw, "--log-level", "info", "--config", conf)
    c.check(wait_up(proc, p1), "starts")
    c.eq(stop(proc), 0, "exits 0")
    c.check('"http_request"' in gw.read_log(), "--log-level info given before --config wins")

    # ---- bad files: exit 2 naming FILE:LINE, nothing started, nothing written ----
    before = gw.snapshot()
    lock = os.path.join(gw.data, "serve.lock")
    lock_before = os.path.exists(lock) and os.stat(lock).st_mtime_ns
    p3 = free_port()
    for text, where, words in [
            ("data = %s\nlisten = 127.0.0.1:%d\nworker = 2\n", ":3:", "unknown key 'worker'"),
            ("data = %s\nlisten 127.0.0.1:%d\n", ":2:", "expected 'key = value'"),
            ("data = %s\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:1\n", ":3:", "set twice"),
            ("data = %s\nlisten = 127.0.0.1:%d\ntest_clock = sometimes\n", ":3:",
             "true or false"),
            ("data = %s\nlisten = 127.0.0.1:%d\n\nworkers = lots\n", ":4: workers",
             "--workers must be"),
            ("data = %s\nlisten = 127.0.0.1:%d\ntrust_proxy = 10.0.0.0/33\n", ":3: trust_proxy",
             "--trust-proxy"),
            ("data = %s\nlisten = 127.0.0.1:%d\nlog_level = loud\n", ":3: log_level",
             "--log-level"),
            ("data = %s\nlisten = 127.0.0.1:%d\npublic_url = ftp://x\n", ":3: public_url",
             "--public-url"),
            ("data = %s/missing\nlisten = 127.0.0.1:%d\n", ":1: data", "not initialised")]:
        bad = write(gw, "bad.conf", text % (gw.data, p3))
        r = subprocess.run([BIN, "serve", "--config", bad], capture_output=True, text=True,
                           timeout=20, env=gw.env)
        c.eq(r.returncode, 2, "exit 2 for %r" % words)
        c.check(bad + where in r.stderr and words in r.stderr,
                "the message names %s%s and says %r: %r" % ("bad.conf", where, words, r.stderr))
        c.check(not listening(p3), "nothing listens after %r" % words)
    r = subprocess.run([BIN, "serve", "--config", os.path.join(gw.dir, "none.conf")],
                       capture_output=True, text=True, timeout=20, env=gw.env)
    c.eq(r.returncode, 2, "a missing file is exit 2")
    c.check("none.conf" in r.stderr and "cannot read" in r.stderr, "and says so: %r" % r.stderr)
    c.eq(gw.snapshot(), before, "no bad file changed the database")
    c.eq(os.path.exists(lock) and os.stat(lock).st_mtime_ns, lock_before,
         "no bad file took the data folder's lock")

    # ---- a repeatable option on the command line replaces the file's lines for it ----
    bad = write(gw, "proxy.conf", "data = %s\nlisten = 127.0.0.1:%d\n"
                "trust_proxy = 10.0.0.0/33\n" % (gw.data, p3))
    proc = serve(gw, "--config", bad, "--trust-proxy", "10.0.0.0/8")
    c.check(wait_up(proc, p3), "--trust-proxy on the command line: the file's bad line is unused")
    c.eq(stop(proc), 0, "exits 0")

    # ---- the shipped sample is a valid file (its data and listen overridden here) ----
    proc = serve(gw, "--config", SAMPLE, "--data", gw.data, "--listen", "127.0.0.1:%d" % p3)
    c.check(wait_up(proc, p3), "the sample configuration starts a gateway")
    c.eq(stop(proc), 0, "exits 0")
finally:
    gw.cleanup()
c.done()
