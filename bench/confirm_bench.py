#!/usr/bin/python3
"""confirm_bench.py - run by bench/confirm.sh.

For each mode, a fresh gateway (test clock, maildir email) gets N bookings made through the
public flow (intake, claim, link, book, pay), then the trainer confirms them one after another:
  email     the organisation delivers manually and the trainer has no calendar: the confirm's
            effects are the two emails (the calendar row is skipped);
  calendar  the trainer's Google calendar is connected (tests/helpers/fake_google.py): one more
            effect per confirm, an event inserted through the fake;
  zoho      as calendar, and the organisation delivers by Zoho Assist
            (tests/helpers/fake_zoho.py, when this build has the provider).
Printed per mode: confirm-payment calls per second (the API: one transaction with its outbox
rows), and the seconds until every effect of those confirms was finished (sent or skipped),
as effects per second; then each mode as a ratio against the email-only one of the same run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("ORDINATUS_BIN", os.path.join(ROOT, "build", "ordinatus"))
from gwtest import Gateway  # noqa: E402

HELPERS = os.path.join(ROOT, "tests", "helpers")
CLIENT_ID = "1234-bench.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-bench"
RT = "1//bench-refresh-token"


def start_fake(name, args):
    path = os.path.join(HELPERS, name)
    if not os.path.exists(path):
        return None, None
    p = subprocess.Popen(["/usr/bin/python3", path] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    return p, "http://127.0.0.1:%d" % int(p.stdout.readline())


class Links:
    """Scheduling-link tokens from the maildir, reading each new file once."""

    def __init__(self, gw):
        self.dir = os.path.join(gw.data, "maildir", "new")
        self.seen = set()
        self.tokens = {}

    def wait(self, email, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
                if f in self.seen:
                    continue
                self.seen.add(f)
                with open(os.path.join(self.dir, f), "rb") as fh:
                    text = fh.read().decode("utf-8", "replace")
                if "X-Ordinatus-Kind: scheduling_link" not in text:
                    continue
                to = re.search(r"^To: .*?<?([^<>\s]+@[^<>\s]+)>?\s*$", text, re.M)
                tok = re.search(r"/s/([A-Za-z0-9_-]+)", text)
                if to and tok:
                    self.tokens[to.group(1).lower()] = tok.group(1)
            if email in self.tokens:
                return self.tokens.pop(email)
            time.sleep(0.01)
        raise RuntimeError("no scheduling link for " + email)


def run_mode(mode, n):
    fakes = []
    # N bookings from 127.0.0.1 on purpose: the token routes (120 a minute an address) too
    gw = Gateway(test_clock=True, extra_args=("--token-route-limit", "100000"))
    gw.start()
    try:
        gw.ok("PUT", "/v1/test/clock", {"now": "2026-11-30T00:00:00Z"})
        org = gw.org("Bench", "UTC")
        O = "/v1/orgs/%d" % org["id"]
        gw.intake_limits(org["id"])  # N intakes from 127.0.0.1 on purpose
        A = gw.user(org["id"], "admin@bench.test", ["org_admin"])["token"]
        tr = gw.user(org["id"], "t@bench.test", ["trainer"], ["yoga"], token=A)
        T = tr["token"]
        st = gw.ok("POST", O + "/session-types", {"name": "Yoga", "skills": ["yoga"],
                                                  "lengths": [60], "price_cents": 100,
                                                  "currency": "EUR"}, A)
        week = [{"day": d, "start": "00:00", "end": "24:00"}
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
        gw.ok("PUT", O + "/users/%d/availability" % tr["id"], {"weekly": week}, T)
        if mode in ("calendar", "zoho"):
            p, url = start_fake("fake_google.py", ["--client-id", CLIENT_ID, "--client-secret",
                                                   CLIENT_SECRET, "--refresh-token", RT])
            fakes.append(p)
            gw.ok("PUT", O + "/providers/google", {"client_id": CLIENT_ID,
                                                   "client_secret": CLIENT_SECRET,
                                                   "token_url": url + "/token",
                                                   "api_base": url + "/calendar/v3"}, A)
            gw.ok("PUT", O + "/users/%d/calendar" % tr["id"],
                  {"provider": "google", "refresh_token": RT}, T)
        if mode == "zoho":
            p, url = start_fake("fake_zoho.py", ["--client-id", "zoho-bench", "--client-secret",
                                                 "zoho-secret", "--refresh-token", "zoho-rt"])
            if p is None:
                return None
            fakes.append(p)
            gw.ok("PUT", O + "/providers/zoho", {"client_id": "zoho-bench",
                                                 "client_secret": "zoho-secret",
                                                 "refresh_token": "zoho-rt",
                                                 "accounts_url": url, "api_base": url}, A)
            gw.ok("PATCH", O + "/settings", {"delivery_method": "zoho_assist"}, A)
        links = Links(gw)
        bookings = []
        for i in range(n):
            email = "c%d@bench.test" % i
            req = gw.ok("POST", O + "/requests", {"customer": {"name": "C%d" % i, "email": email},
                                                  "skills": ["yoga"]})
            gw.ok("POST", O + "/requests/%d/claim" % req["id"], token=T)
            gw.ok("PATCH", O + "/requests/%d" % req["id"], {"session_type_id": st["id"]}, T)
            gw.ok("POST", O + "/requests/%d/scheduling-link" % req["id"], token=T)
            tok = links.wait(email)
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1796083200 + 3600 * i))
            b = gw.ok("POST", "/v1/schedule/%s/booking" % tok, {"start": start,
                                                               "length_minutes": 60})
            gw.ok("POST", "/v1/schedule/%s/payment" % tok, {"reference": "p%d" % i})
            bookings.append(b["booking_id"])
        first = min(bookings)
        # everything before the confirms has gone out
        while gw.rows("SELECT (SELECT count(*) FROM outbox WHERE status = 'pending')"
                      " + (SELECT count(*) FROM outbox WHERE status = 'leased')")[0][0]:
            time.sleep(0.01)
        t0 = time.monotonic()
        for bid in bookings:
            gw.ok("POST", O + "/bookings/%d/confirm-payment" % bid, token=T)
        t_api = time.monotonic() - t0
        q = ("SELECT count(*), sum(status IN ('pending', 'leased', 'held')) FROM outbox"
             " WHERE booking_id >= ?")
        while True:
            total, open_ = gw.rows(q, first)[0]
            if not open_:
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError("effects still open after 600 s")
            time.sleep(0.005)
        t_all = time.monotonic() - t0
        kinds = dict(gw.rows("SELECT kind || ':' || status, count(*) FROM outbox"
                             " WHERE booking_id >= ? GROUP BY kind, status", first))
        return {"confirms_per_s": n / t_api, "effects": total, "effects_per_s": total / t_all,
                "drain_s": t_all, "kinds": kinds}
    finally:
        gw.stop()
        gw.cleanup()
        for p in fakes:
            p.terminate()
            p.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bookings", type=int, default=150)
    args = ap.parse_args()
    res = {}
    for mode in ("email", "calendar", "zoho"):
        r = run_mode(mode, args.bookings)
        if r is None:
            print("%-9s (no Zoho Assist fake in this build: skipped)" % mode)
            continue
        res[mode] = r
        print("%-9s %7.0f confirms/s   %5d effects in %6.2f s = %7.0f effects/s   %s" %
              (mode, r["confirms_per_s"], r["effects"], r["drain_s"], r["effects_per_s"],
               json.dumps(r["kinds"], sort_keys=True)))
    base = res["email"]
    for mode, r in res.items():
        if mode != "email":
            print("ratio %s/email: confirms %.2f, seconds until every effect was finished %.2f"
                  % (mode, r["confirms_per_s"] / base["confirms_per_s"],
                     r["drain_s"] / base["drain_s"]))


if __name__ == "__main__":
    main()
