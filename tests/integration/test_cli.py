"""The command line as a new user meets it: one gateway per port and per data folder, every
argument checked before anything is written or started, --version, the log (one JSON line per
request and per delivery, never a raw path, --log-level), and the HTTP answers around the routes
(405 with Allow, HEAD)."""
import json
import os
import signal
import socket
import subprocess
import time

from gwtest import BIN, VERSION, Checks, Gateway, free_port

c = Checks("cli")


def run(*args, timeout=20, on=None):
    """ordinatus ARGS, with the environment of gateway `on` (its store) when given."""
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout,
                          env=on.env if on else None)


def log_lines(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"unparsed": line})
    return out


# ---- --version ----
v = run("--version")
c.eq((v.returncode, v.stdout.strip()), (0, "ordinatus " + VERSION), "ordinatus --version")

gw = Gateway()
try:
    # ---- bad arguments: exit 2, a message naming what is wanted, nothing written or started ----
    before = gw.snapshot()
    for args, words in [
            (["--listen", "8082"], "--listen must be HOST:PORT"),
            (["--listen", "127.0.0.1:99999"], "--listen port must be 0..65535"),
            (["--workers", "0"], "--workers must be a whole number from 1 to 16"),
            (["--workers", "99"], "--workers must be a whole number from 1 to 16"),
            (["--workers", "abc"], "--workers must be a whole number from 1 to 16"),
            (["--log-level", "loud"], "--log-level must be one of debug, info, warn, error"),
            (["--public-url", "ftp://book.example.com"], "--public-url must be an http://"),
            (["--public-url", "https://"], "--public-url must be an http://"),
            (["--public-url", "https://a.example/x y"], "--public-url must be an http://"),
            (["--trust-proxy", "10.0.0.0/33"], "not an IPv4 range such as 10.0.0.0/8"),
            (["--trust-proxy", "10.0.0.1/8"], "has host bits set"),
            (["--trust-proxy", "proxy.example"], "not an IPv4 range"),
            (["--trust-proxy", "127.0.0.0/8", "--trust-proxy", "::1"], "not an IPv4 range"),
            (["--token-route-limit", "0"], "--token-route-limit must be a whole number"),
            (["--max-connections-per-address", "x"],
             "--max-connections-per-address must be a whole number"),
            (["--header-timeout", "301"], "--header-timeout must be a whole number")]:
        port = free_port()
        r = run("serve", "--data", gw.data, "--listen", "127.0.0.1:%d" % port, *args, on=gw)
        c.eq(r.returncode, 2, "serve %s exits 2" % " ".join(args))
        c.check(words in r.stderr, "serve %s says %r: %r" % (" ".join(args), words, r.stderr))
        c.check("dispatch_started" not in r.stderr and "serving" not in r.stderr,
                "serve %s starts nothing: %r" % (" ".join(args), r.stderr))
    c.eq(gw.snapshot(), before, "bad serve arguments wrote nothing to the database")
    c.eq(gw.rows("SELECT value FROM meta WHERE key='public_url'"), [],
         "no public_url stored by a refused serve")
    c.check(not os.path.exists(os.path.join(gw.data, "serve.lock")) or
            open(os.path.join(gw.data, "serve.lock")).read() == "",
            "a refused serve took no lock")

    # ---- outbox list --status: the same check as the API ----
    r = run("outbox", "--data", gw.data, "list", "--status", "bogus", on=gw)
    c.eq(r.returncode, 2, "outbox list --status bogus exits 2")
    c.check("--status must be one of pending, leased, sent, dead, skipped, expired" in r.stderr,
            "and names the statuses: %r" % r.stderr)
    c.eq(r.stdout, "", "and prints no list")

    # ---- one gateway per port and per data folder ----
    gw.extra_args = ["--log-level", "info"]
    gw.start()
    org = gw.org()
    admin = gw.user(org["id"], "admin@cli.test", ["org_admin"])
    other = Gateway()
    try:
        r = run("serve", "--data", other.data, "--listen", "127.0.0.1:%d" % gw.port, on=other)
        c.eq(r.returncode, 1, "a second serve on a busy port exits 1")
        c.check("127.0.0.1:%d is in use" % gw.port in r.stderr, "and says so: %r" % r.stderr)
        c.check("serving" not in r.stderr and "dispatch_started" not in r.stderr,
                "and started nothing: %r" % r.stderr)
        codes = [gw.call("GET", "/v1/orgs/%d/users" % org["id"], token=admin["token"]).status
                 for _ in range(20)]
        c.eq(codes, [200] * 20, "the first gateway answers every call alone")
        c.eq(other.rows("SELECT value FROM meta WHERE key='public_url'"), [],
             "the refused gateway wrote nothing to its own database")

        r = run("serve", "--data", gw.data, "--listen", "127.0.0.1:%d" % free_port(), on=gw)
        c.eq(r.returncode, 1, "a second serve on a served data folder exits 1")
        c.check("is served by another gateway (pid %d)" % gw.proc.pid in r.stderr,
                "and names the pid that holds it: %r" % r.stderr)
        c.eq(gw.rows("SELECT value FROM meta WHERE key='public_url'"), [(gw.url,)],
             "public_url is still the live gateway's")

        # tick and outbox beside the live gateway stay allowed
        t = run("tick", "--data", gw.data, on=gw)
        c.eq(t.returncode, 0, "tick beside a serving gateway: %r" % t.stderr)
        o = run("outbox", "--data", gw.data, "list", on=gw)
        c.check(o.returncode == 0 and isinstance(json.loads(o.stdout), list),
                "outbox list beside a serving gateway: %r" % o.stderr)
    finally:
        other.cleanup()

    # ---- HTTP around the routes ----
    r = gw.call("DELETE", "/healthz")
    c.eq((r.status, r.json and r.json["error"]), (405, "method_not_allowed"),
         "wrong method: 405 method_not_allowed")
    c.eq(r.headers.get("Allow"), "GET, HEAD", "with an Allow header")
    r = gw.call("PUT", "/v1/orgs/%d/users" % org["id"], {}, admin["token"])
    c.eq((r.status, r.headers.get("Allow")), (405, "POST, GET, HEAD"),
         "Allow lists every method of the path")
    c.eq(gw.call("GET", "/v1/no/such/path").json["error"], "not_found", "unknown path: 404")
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("HEAD", "/healthz")
    h = conn.getresponse()
    body = h.read()
    c.eq((h.status, body, h.getheader("Content-Type")), (200, b"", "application/json"),
         "HEAD on a GET route: the GET's status and headers, no body")
    c.eq(h.getheader("Content-Length"), str(len(gw.call("GET", "/healthz").raw)),
         "HEAD's Content-Length is the GET body's")
    conn.request("HEAD", "/v1/orgs/%d/users" % org["id"],
                 headers={"Authorization": "Bearer " + admin["token"]})
    h = conn.getresponse()
    c.eq((h.status, h.read()), (200, b""), "HEAD on an authenticated GET route")
    conn.close()
    c.eq(gw.call("GET", "/healthz").json, {"status": "ok", "version": VERSION},
         "/healthz has the version")
    c.check('ordinatus_build_info{version="%s"} 1' % VERSION in gw.call("GET", "/metrics").raw,
            "/metrics has the build-info gauge")

    # ---- the log: a line per request (route pattern, never the path) and per delivery ----
    st = gw.ok("POST", "/v1/orgs/%d/session-types" % org["id"],
               {"name": "Yoga", "skills": ["yoga"], "lengths": [60], "price_cents": 100,
                "currency": "EUR"}, admin["token"])
    gw.user(org["id"], "t@cli.test", ["trainer"], ["yoga"], token=admin["token"])
    gw.ok("POST", "/v1/orgs/%d/requests" % org["id"],
          {"customer": {"name": "Cy", "email": "cy@example.test"}, "skills": ["yoga"]})
    gw.wait_mail(1)
    secret = "tok_" + "x" * 40
    gw.call("GET", "/v1/schedule/" + secret)
    gw.call("GET", "/v1/survey/" + secret)
    time.sleep(0.3)
    text = gw.read_log()
    lines = log_lines(text)
    c.check(all("unparsed" not in l for l in lines), "every log line is JSON: %r" %
            [l for l in lines if "unparsed" in l][:2])
    reqs = [l for l in lines if l.get("event") == "http_request"]
    c.check(any(l.get("route") == "/v1/schedule/{s}" and l.get("status") == 410 and
                l.get("method") == "GET" and isinstance(l.get("ms"), int) for l in reqs),
            "a request line names the route pattern, status and duration: %r" % reqs[-3:])
    c.check(any(l.get("route") == "/v1/orgs/{id}/requests" and l.get("status") == 201
                for l in reqs), "the intake has its line")
    c.check(secret not in text, "no raw path (with its token) reaches the log")
    dl = [l for l in lines if l.get("event") == "delivery"]
    c.check(any(l.get("kind") == "new_request" and l.get("outcome") == "sent" and
                l.get("provider") == "maildir" and l.get("attempt") == 1 and "outbox_id" in l
                and isinstance(l.get("ms"), int) for l in dl),
            "a delivery line: id, kind, provider, outcome, attempt, duration: %r" % dl)
    gw.stop()

    # a killed gateway's lock goes with it: the folder can be served again at once
    gw.extra_args = ["--log-level", "warn"]
    gw.start()
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    gw.proc = None
    gw.log.close()
    size = os.path.getsize(gw.log_path)
    gw.start()
    c.eq(gw.call("GET", "/healthz").status, 200, "after kill -9 the folder serves again")
    gw.call("GET", "/v1/orgs/%d/users" % org["id"], token=admin["token"])
    time.sleep(0.2)
    quiet = log_lines(gw.read_log()[size:])
    c.check(not any(l.get("event") in ("http_request", "serving") for l in quiet),
            "--log-level warn drops the info lines: %r" % quiet[:3])
finally:
    gw.cleanup()

c.done()
