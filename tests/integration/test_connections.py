"""max_connections of the SMTP settings against a real SMTP server
(tests/helpers/smtp_server.py on 127.0.0.1, which records each message's client port): an
organisation allowing 3 connections has its 240 emails sent over at most 3 connections, each
reused for many messages, while another organisation's server gets its own; out-of-range or
non-integer values are refused with 400 invalid_field and change nothing."""
import glob
import json
import os
import time

from gwtest import Checks, Gateway, SmtpSink

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINERS = 60
REQUESTS = 4

c = Checks("connections")
servers = [SmtpSink(), SmtpSink()]
sinks = [(s, s.dir) for s in servers]
ports = [s.port for s in servers]
gw = Gateway()


def client_ports(d):
    out = []
    for f in glob.glob(os.path.join(d, "[0-9]*.json")):
        with open(f) as fh:
            out.append(json.load(fh)["peer_port"])
    return out


try:
    gw.start()
    a = gw.org("Three Lanes", "UTC")["id"]
    b = gw.org("Other Studio", "UTC")["id"]
    gw.intake_limits(a)
    A = gw.user(a, "admin@lanes.test", ["org_admin"])["token"]
    B = gw.user(b, "admin@other.test", ["org_admin"])["token"]
    smtp = {"host": "127.0.0.1", "port": ports[0], "security": "none",
            "from_address": "desk@lanes.test", "max_connections": 3}
    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % a, smtp, A)
    # the config column is JSON text: read it here (json_extract is SQLite's alone)
    c.eq([json.loads(cfg).get("max_connections") for (cfg,) in gw.rows(
        "SELECT config FROM provider_configs WHERE org_id = ? AND name = 'smtp'", a)], [3],
        "the setting is stored")

    # bad values: 400 invalid_field naming it, nothing changed
    before = gw.snapshot()
    for bad in (0, 65, -1, "8", 2.5, True):
        r = gw.call("PUT", "/v1/orgs/%d/providers/smtp" % a, dict(smtp, max_connections=bad), A)
        c.eq((r.status, r.json.get("error"), r.json.get("field")),
             (400, "invalid_field", "max_connections"), "max_connections %r refused" % (bad,))
    c.check(gw.snapshot() == before, "refused settings change nothing")

    gw.ok("PUT", "/v1/orgs/%d/providers/smtp" % b,
          {"host": "127.0.0.1", "port": ports[1], "security": "none",
           "from_address": "desk@other.test"}, B)
    for i in range(TRAINERS):
        gw.user(a, "t%02d@lanes.test" % i, ["trainer"], ["run"], token=A)
    gw.user(b, "solo@other.test", ["trainer"], ["run"], token=B)
    for i in range(REQUESTS):
        gw.ok("POST", "/v1/orgs/%d/requests" % a,
              {"customer": {"name": "C%d" % i, "email": "c%d@example.test" % i},
               "skills": ["run"]})
    gw.ok("POST", "/v1/orgs/%d/requests" % b,
          {"customer": {"name": "D", "email": "d@example.test"}, "skills": ["run"]})
    total_a = TRAINERS * REQUESTS + REQUESTS
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(client_ports(sinks[0][1])) < total_a or
                                           len(client_ports(sinks[1][1])) < 2):
        time.sleep(0.05)
    pa, pb = client_ports(sinks[0][1]), client_ports(sinks[1][1])
    c.eq(len(pa), total_a, "every email of the first organisation arrived")
    c.eq(len(pb), 2, "the other organisation's emails arrived at its own server")
    # the pool has 8 email workers (the default max_connections of the other organisation):
    # only 3 of them take this organisation's rows, each over its one reused connection
    c.check(2 <= len(set(pa)) <= 3,
            "%d messages over %d connections (max_connections 3)" % (len(pa), len(set(pa))))
    c.check(min(pa.count(p) for p in set(pa)) > 1, "each connection carried many messages")
    print("  %d messages over %d connections, %s per connection" %
          (len(pa), len(set(pa)), sorted(pa.count(p) for p in set(pa))))
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
c.done()
