"""Abuse bounds as a client meets them: intake over its per-address and per-organisation limits
(429 rate_limited with Retry-After, nothing written, no email), other addresses unaffected,
X-Forwarded-For believed only from --trust-proxy, token-route guessing limited, non-JSON bodies
refused with 415, over-long request targets and header blocks answered with the JSON error body,
a client trickling its headers closed within the documented 10 s, the per-address connection
limit, and the schedule view capped at 2000 slots with truncated/next_from."""
import json
import re
import socket
import time

from gwtest import Checks, Gateway

c = Checks("abuse")
VIEW_MAX = 2000        # LC_VIEW_SLOTS_MAX, README "Limits"
HEADER_SECS = 10       # serve's default --header-timeout


def counts(gw):
    """What an intake writes: requests, outbox rows, delivered messages."""
    return (gw.rows("SELECT count(*) FROM requests")[0][0],
            gw.rows("SELECT count(*) FROM outbox")[0][0], len(gw.maildir()))


def settle(gw, want_mail, timeout=10):
    """Wait until want_mail messages are delivered (nothing pending is left to arrive later)."""
    gw.wait_mail(want_mail, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not gw.rows("SELECT count(*) FROM outbox WHERE status IN ('pending', 'leased')")[0][0]:
            return
        time.sleep(0.05)


def intake(gw, org, addr=None, email="cust@example.test", ctype=None, raw=None):
    headers = {"X-Forwarded-For": addr} if addr else {}
    body = {"customer": {"name": "Cust", "email": email}, "skills": ["yoga"]}
    if ctype is not None or raw is not None:
        data = raw if raw is not None else json.dumps(body).encode()
        return raw_request(gw, "POST", "/v1/orgs/%d/requests" % org, data,
                           dict(headers, **({"Content-Type": ctype} if ctype else {})))
    return gw.call("POST", "/v1/orgs/%d/requests" % org, body, headers=headers)


def raw_request(gw, method, path, data=b"", headers=None, source=None):
    """One request on a fresh socket, exactly as given; (status, headers dict, body bytes)."""
    s = socket.socket()
    if source:
        s.bind((source, 0))
    s.settimeout(15)
    s.connect(("127.0.0.1", gw.port))
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    if data:
        head += "Content-Length: %d\r\n" % len(data)
    s.sendall(head.encode() + b"\r\n" + (data or b""))
    buf = b""
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            buf += got
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    if not buf:
        return None
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def is_json_error(body, code):
    try:
        j = json.loads(body)
    except ValueError:
        return False
    return j.get("error") == code and bool(j.get("message"))


def first_429(send, n):
    """Send up to n requests; (index of the first 429 or None, seconds taken, statuses)."""
    t0 = time.monotonic()
    codes = []
    for i in range(n):
        codes.append(send(i).status)
        if codes[-1] == 429:
            return i, time.monotonic() - t0, codes
    return None, time.monotonic() - t0, codes


def setup(gw):
    org = gw.org("Abuse Yoga", "UTC")
    admin = gw.user(org["id"], "admin@abuse.test", ["org_admin"])
    trainer = gw.user(org["id"], "tia@abuse.test", ["trainer"], ["yoga"], token=admin["token"])
    return org["id"], admin["token"], trainer


# ---- behind a trusted proxy: per-address and per-organisation intake limits ----
gw = Gateway(extra_args=["--trust-proxy", "127.0.0.0/8"])
gw.start()
try:
    org, A, trainer = setup(gw)
    S = "/v1/orgs/%d/settings" % org
    st = gw.ok("GET", S, token=A)
    c.eq((st.get("intake_per_address_per_minute"), st.get("intake_per_org_per_minute")), (5, 60),
         "GET settings lists the intake limits with their defaults")
    for bad in ({"intake_per_address_per_minute": 0}, {"intake_per_address_per_minute": 1001},
                {"intake_per_org_per_minute": "60"}, {"intake_per_org_per_minute": 10001}):
        r = gw.call("PATCH", S, bad, A)
        c.check(r.status == 400 and r.json.get("field") == list(bad)[0],
                "PATCH %r refused naming the field: %r" % (bad, r))

    got = [intake(gw, org, "203.0.113.7").status for _ in range(5)]
    c.eq(got, [201] * 5, "five intakes from one address within a minute are taken")
    settle(gw, 10)
    before = counts(gw)
    c.eq(before, (5, 10, 10), "five requests: a new_request and a request_received email each")
    r = intake(gw, org, "203.0.113.7")
    c.eq(r.status, 429, "the sixth from that address is refused")
    c.check(r.json and r.json.get("error") == "rate_limited" and r.json.get("message"),
            "with the JSON error body: %r" % r)
    ra = r.headers.get("Retry-After", "")
    c.check(ra.isdigit() and 1 <= int(ra) <= 60, "and Retry-After in whole seconds: %r" % ra)
    time.sleep(0.5)
    c.eq(counts(gw), before, "the refused intake wrote no request, outbox row or email")
    c.eq(intake(gw, org, "203.0.113.8").status, 201, "another address is unaffected")
    c.eq(intake(gw, org, "198.51.100.1, 203.0.113.7").status, 429,
         "the right-most untrusted address counts, not what the client wrote left of it")
    c.eq(intake(gw, org, "203.0.113.7, 127.0.0.9").status, 429,
         "trusted hops on the right are skipped")

    # the organisation's own limit, over many addresses
    gw.ok("PATCH", S, {"intake_per_org_per_minute": 8}, A)
    got = [intake(gw, org, "192.0.2.%d" % i).status for i in range(1, 13)]
    c.eq(got.count(201), 8, "with intake_per_org_per_minute 8, eight of twelve addresses get in")
    c.eq(got[8:], [429] * 4, "the rest are refused: %r" % got)
    gw.ok("PATCH", S, {"intake_per_org_per_minute": 10000}, A)

    # token routes: guessing is limited per address, not for everyone
    k, secs, codes = first_429(lambda i: gw.call("GET", "/v1/schedule/" + "g%042d" % i,
                                                 headers={"X-Forwarded-For": "203.0.113.50"}),
                               200)
    c.check(set(codes[:120]) in ({404}, {410}), "the first 120 guesses get the plain answer: %r"
            % sorted(set(codes[:120])))
    c.check(k is not None and 120 <= k <= 121 + 2 * secs,
            "then 429 (120 a minute, refilling 2 a second; %.1f s): first at %r" % (secs, k))
    r = gw.call("GET", "/v1/feeds/%s.ics" % ("f" * 43), headers={"X-Forwarded-For": "203.0.113.50"})
    c.check(r.status == 429 and r.headers.get("Retry-After", "").isdigit()
            and r.json.get("error") == "rate_limited", "the feed routes share the limit: %r" % r)
    r = gw.call("GET", "/v1/survey/" + "s" * 43, headers={"X-Forwarded-For": "203.0.113.50"})
    c.eq(r.status, 429, "and the survey routes")
    r = gw.call("GET", "/v1/manage/" + "m" * 43, headers={"X-Forwarded-For": "203.0.113.50"})
    c.eq(r.status, 429, "and the manage routes")
    r = gw.call("GET", "/v1/schedule/" + "x" * 43, headers={"X-Forwarded-For": "203.0.113.51"})
    c.check(r.status in (404, 410), "another address still gets its answer: %r" % r)

    # ---- 415: a body must be sent as application/json ----
    snap = gw.snapshot()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                  "text/json", ""):
        got = intake(gw, org, "203.0.113.90", ctype=ctype or None,
                     raw=None if ctype else json.dumps({"customer": {}}).encode())
        c.check(got and got[0] == 415 and is_json_error(got[2], "unsupported_media_type"),
                "JSON sent as %r: 415 unsupported_media_type, got %r" % (ctype, got))
    r = raw_request(gw, "PATCH", S, json.dumps({"tick_minutes": 5}).encode(),
                    {"Authorization": "Bearer " + A, "Content-Type": "text/plain"})
    c.check(r and r[0] == 415, "an admin's PATCH sent as text/plain is 415 too: %r" % (r,))
    after = gw.snapshot()
    c.eq(sorted(t for t in snap if snap[t] != after.get(t)), [], "415s wrote nothing")
    got = intake(gw, org, "203.0.113.91", ctype="Application/JSON; charset=utf-8")
    c.check(got and got[0] == 201, "application/json with a charset parameter is taken: %r"
            % (got,))
    r = raw_request(gw, "POST", "/v1/orgs/%d/requests/999/claim" % org, b"",
                    {"Authorization": "Bearer " + trainer["token"]})
    c.check(r and r[0] == 404, "a POST without a body needs no Content-Type: %r" % (r,))

    # ---- request heads over our limits: our JSON, never the library's HTML ----
    r = raw_request(gw, "GET", "/healthz?x=" + "a" * 20000)
    c.check(r and r[0] == 414 and r[1].get("content-type") == "application/json"
            and is_json_error(r[2], "uri_too_long"), "a 20 KB URI: JSON 414, got %r" % (r,))
    r = raw_request(gw, "GET", "/v1/schedule/" + "a" * 12000)
    c.check(r and r[0] == 414 and is_json_error(r[2], "uri_too_long"),
            "a 12 KB path: JSON 414, got %r" % (r,))
    r = raw_request(gw, "GET", "/healthz", headers={"X-Big": "b" * 20000})
    c.check(r and r[0] == 431 and r[1].get("content-type") == "application/json"
            and is_json_error(r[2], "headers_too_large"), "a 20 KB header: JSON 431, got %r" % (r,))
    r = raw_request(gw, "GET", "/healthz",
                    headers={"X-Many-%d" % i: "v" * 100 for i in range(200)})
    c.check(r and r[0] == 431 and is_json_error(r[2], "headers_too_large"),
            "200 header lines: JSON 431, got %r" % (r,))
    r = raw_request(gw, "POST", "/v1/orgs/%d/requests" % org, b"x" * 70000,
                    {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.92"})
    c.check(r and r[0] == 413 and is_json_error(r[2], "too_large"), "a 70 KB body: JSON 413")
    c.eq(gw.call("GET", "/healthz").status, 200, "still healthy")

    # ---- the schedule view is bounded ----
    T = trainer["token"]
    O = "/v1/orgs/%d" % org
    week = [{"day": d, "start": "00:00", "end": "24:00"}
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    gw.ok("PUT", O + "/users/%d/availability" % trainer["id"], {"weekly": week}, T)
    stype = gw.ok("POST", O + "/session-types",
                  {"name": "Any length", "skills": ["yoga"], "step_minutes": 5,
                   "lengths": [15, 20, 30, 45, 60, 75, 90, 105, 120, 180], "price_cents": 100,
                   "currency": "EUR"}, A)
    req = intake(gw, org, "203.0.113.93", email="viewer@example.test").json
    gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T)
    gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": stype["id"]}, T)
    gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T)
    tok = None
    deadline = time.monotonic() + 10
    while not tok and time.monotonic() < deadline:
        for m in gw.maildir():
            if str(m["X-Ordinatus-Kind"]) == "scheduling_link" and "viewer@" in str(m["To"]):
                tok = re.search(r"/s/([A-Za-z0-9_-]+)",
                                m.get_body(("plain",)).get_content()).group(1)
        time.sleep(0.05)
    view = gw.call("GET", "/v1/schedule/" + tok, headers={"X-Forwarded-For": "203.0.113.94"})
    c.eq(view.status, 200, "the view answers")
    slots = view.json["slots"]
    c.check(0 < len(slots) <= VIEW_MAX, "at most %d slots: %d" % (VIEW_MAX, len(slots)))
    c.eq(view.json.get("truncated"), True, "and it says truncated")
    c.check(len(view.raw) < 400000, "the answer stays small: %d bytes" % len(view.raw))
    nf = view.json.get("next_from")
    c.check(bool(nf) and nf > slots[-1]["start"], "next_from follows the last slot: %r" % nf)
    page2 = gw.call("GET", "/v1/schedule/%s?from=%s" % (tok, nf),
                    headers={"X-Forwarded-For": "203.0.113.94"})
    c.check(page2.status == 200 and page2.json["slots"][0]["start"] == nf
            and len(page2.json["slots"]) <= VIEW_MAX, "from= pages on from next_from")
    first = {(s["start"], s["length_minutes"]) for s in slots}
    c.check(page2.status == 200 and not first & {(s["start"], s["length_minutes"])
                                                 for s in page2.json["slots"]},
            "the pages do not overlap (a page ends where a start time's lengths end)")
    c.eq(gw.call("GET", "/v1/schedule/%s?from=soon" % tok).status, 400, "a bad from is 400")
finally:
    gw.stop()
    gw.cleanup()

# ---- no trusted proxy: X-Forwarded-For is the client's own word, and ignored ----
gw = Gateway(extra_args=["--token-route-limit", "20", "--max-connections-per-address", "5"])
gw.start()
try:
    org, A, trainer = setup(gw)
    got = [intake(gw, org, "203.0.113.%d" % i).status for i in range(1, 8)]
    c.eq(got, [201] * 5 + [429] * 2, "X-Forwarded-For changes nothing without --trust-proxy")
    k, secs, codes = first_429(lambda i: gw.call("GET", "/v1/survey/" + "s%042d" % i), 60)
    c.check(k is not None and 20 <= k <= 21 + secs / 3,
            "--token-route-limit 20: 429 after 20 guesses (%.1f s): %r" % (secs, codes))

    # ---- connections per address ----
    held = []
    for _ in range(50):  # five connections the gateway kept (a refused one is closed at once)
        if len(held) == 5:
            break
        s = socket.create_connection(("127.0.0.1", gw.port))
        time.sleep(0.1)
        s.setblocking(False)
        try:
            alive = s.recv(1) != b""
        except BlockingIOError:
            alive = True
        except OSError:
            alive = False
        if alive:
            held.append(s)
        else:
            s.close()
    c.eq(len(held), 5, "five idle connections from one address are kept")
    time.sleep(0.3)
    r = None
    try:
        r = raw_request(gw, "GET", "/healthz")
    except OSError:
        pass
    c.eq(r, None, "a sixth connection from the same address is refused")
    r = raw_request(gw, "GET", "/healthz", source="127.0.0.2")
    c.check(r and r[0] == 200, "another address connects: %r" % (r,))
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    r = None
    while not r and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            r = raw_request(gw, "GET", "/healthz")
        except OSError:
            pass
    c.check(r and r[0] == 200, "closing them frees the address again: %r" % (r,))

    # ---- a client trickling its headers a byte a second is closed within the bound ----
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(1.0)
    start = time.monotonic()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    closed_at = None
    while time.monotonic() - start < HEADER_SECS + 10:
        try:
            s.sendall(b"a")
            got = s.recv(4096)
            if not got:
                closed_at = time.monotonic() - start
                break
        except socket.timeout:
            continue
        except OSError:
            closed_at = time.monotonic() - start
            break
    s.close()
    c.check(closed_at is not None and HEADER_SECS - 1 <= closed_at <= HEADER_SECS + 3,
            "trickled headers closed after about %d s: %r" % (HEADER_SECS, closed_at))
    c.eq(gw.call("GET", "/healthz").status, 200, "still healthy")
finally:
    gw.stop()
    gw.cleanup()
c.done()
