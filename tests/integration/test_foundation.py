"""Foundation: init, intake and new_request emails, the claim race, bad input changes nothing,
schema versions, SIGTERM drain."""
import json
import os
import re
import subprocess
import threading

from gwtest import BIN, VERSION, Checks, Gateway

c = Checks("foundation")

# ---- init ----
gw = Gateway()
again = subprocess.run([BIN, "init", "--data", gw.data], capture_output=True, text=True,
                       env=gw.env)
c.eq(again.returncode, 1, "init on an initialised folder exits 1")
c.check("already initialised" in again.stderr, "init twice says why: %r" % again.stderr)
c.check("platform_admin_token" not in again.stdout, "init twice prints no new token")
c.eq(oct(os.stat(os.path.join(gw.data, "master.key")).st_mode & 0o777), "0o600", "key file mode")
c.eq(gw.rows("SELECT count(*) FROM users")[0][0], 1, "one platform admin after init")
c.check(all(os.path.isdir(os.path.join(gw.data, "maildir", d)) for d in ("tmp", "new", "cur")),
        "init makes the maildir")
if gw.backend == "postgresql":
    # the data folder keeps the key file and the maildir; the rows are in the database
    c.eq([f for f in os.listdir(gw.data) if f.startswith("ordinatus.db")], [],
         "on PostgreSQL, init makes no ordinatus.db")

gw.start()
try:
    org = gw.org()
    c.eq((org["name"], org["timezone"]), ("Acme Training", "Europe/Berlin"), "org created")
    gw.intake_limits(org["id"])  # files many requests from one address
    oid = org["id"]
    admin = gw.user(oid, "admin@acme.test", ["org_admin"])
    c.check(admin["token"].startswith("ord_"), "user token shown at creation")
    c.check(admin["token"] not in json.dumps(gw.rows("SELECT * FROM users")),
            "token stored only as a hash")
    t1 = gw.user(oid, "t1@acme.test", ["trainer"], ["yoga", "Pilates"], name="Tia One",
                 token=admin["token"])
    t2 = gw.user(oid, "t2@acme.test", ["trainer"], ["yoga", "pilates", "boxing"], name="Tom Two",
                 token=admin["token"])
    t3 = gw.user(oid, "t3@acme.test", ["trainer"], ["boxing"], name="Tess Three",
                 token=admin["token"])
    got = gw.call("GET", "/v1/orgs/%d/users/%d" % (oid, t1["id"]), token=t1["token"])
    c.eq(got.status, 200, "a trainer reads their own user")
    c.check("token" not in got.json, "the token is never shown again")
    c.eq(gw.call("GET", "/v1/orgs/%d/users/%d" % (oid, t2["id"]), token=t1["token"]).status, 403,
         "a trainer cannot read another user")
    st = gw.ok("POST", "/v1/orgs/%d/session-types" % oid,
               {"name": "Yoga private", "skills": ["yoga"], "lengths": [60, 90],
                "price_cents": 5000, "currency": "EUR"}, admin["token"])

    # ---- intake: exactly the two matching trainers get one email each, the customer one ----
    req = gw.ok("POST", "/v1/orgs/%d/requests" % oid,
                {"customer": {"name": "Cleo Müller", "email": "cleo@example.test",
                              "phone": "+49 30 1234"},
                 "skills": ["Pilates", "yoga"], "answers": {"goal": "posture <b>"}})
    c.eq((req["status"], req["matched_trainers"]), ("new", 2), "intake answer")
    msgs = gw.wait_mail(3)
    c.eq(len(msgs), 3, "three emails in the maildir")
    got = [m for m in msgs if str(m["X-Ordinatus-Kind"]) == "request_received"]
    c.eq([m["To"].addresses[0].addr_spec for m in got], ["cleo@example.test"],
         "the customer's request_received")
    c.eq(len({str(m["Message-ID"]) for m in msgs}), 3, "each delivery its own Message-ID")
    msgs = [m for m in msgs if str(m["X-Ordinatus-Kind"]) != "request_received"]
    c.eq(sorted(m["To"].addresses[0].addr_spec for m in msgs), ["t1@acme.test", "t2@acme.test"],
         "new_request emails go to the matching trainers only")
    link = "%s/requests/%d" % (gw.url, req["id"])
    for m in msgs:
        c.eq(str(m["Subject"]), "New request available", "subject")
        c.eq(str(m["X-Ordinatus-Kind"]), "new_request", "kind header")
        c.check(re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", str(m["Message-ID"])), "Message-ID form")
        c.check(m["Date"] is not None and m["Date"].datetime is not None, "Date parses")
        c.eq(m["From"].addresses[0].display_name, "Acme Training", "From is the organisation")
        c.eq(m.get_content_type(), "multipart/alternative", "text and HTML parts")
        text = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        c.check(link in text and link in html, "the email links to the request")
        c.check("Cleo Müller" in text, "customer name in the text")
    rows = gw.rows("SELECT dedupe_key, status FROM outbox ORDER BY id")
    c.eq(rows, [("new_request:%d:%d" % (req["id"], t1["id"]), "sent"),
                ("new_request:%d:%d" % (req["id"], t2["id"]), "sent"),
                ("request_received:%d" % req["id"], "sent")], "outbox rows")
    c.eq(gw.rows("SELECT count(*) FROM delivery_attempts WHERE outcome='sent'")[0][0], 3,
         "one attempt recorded per delivery")

    # a session type's skills stand in when the request names none
    req2 = gw.ok("POST", "/v1/orgs/%d/requests" % oid,
                 {"customer": {"name": "Dan", "email": "dan@example.test"},
                  "session_type_id": st["id"]})
    c.eq(req2["matched_trainers"], 2, "session type skills match")

    # ---- the trainer's view ----
    lst = gw.ok("GET", "/v1/orgs/%d/requests?status=new" % oid, token=t3["token"])
    c.eq(lst, [], "a trainer sees no request outside their skills")
    lst = gw.ok("GET", "/v1/orgs/%d/requests?status=new" % oid, token=t1["token"])
    c.eq(sorted(r["id"] for r in lst), sorted([req["id"], req2["id"]]), "matching trainer list")
    detail = gw.ok("GET", "/v1/orgs/%d/requests/%d" % (oid, req["id"]), token=t1["token"])
    c.eq(detail["answers"], {"goal": "posture <b>"}, "request detail has the answers")

    # ---- the claim race: 20 attempts by two trainers, exactly one wins ----
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def claim(tok):
        barrier.wait()
        r = gw.call("POST", "/v1/orgs/%d/requests/%d/claim" % (oid, req["id"]), token=tok)
        with lock:
            results.append((tok, r))

    threads = [threading.Thread(target=claim, args=((t1 if i % 2 else t2)["token"],))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status for _, r in results)
    c.eq(codes.count(200), 1, "exactly one claim wins")
    c.eq(codes.count(409), 19, "the other 19 get 409")
    winner = next(tok for tok, r in results if r.status == 200)
    lost = [r for tok, r in results if r.status == 409 and tok != winner]
    own = [r for tok, r in results if r.status == 409 and tok == winner]
    c.eq(len(lost), 10, "the other trainer's ten claims all lose")
    c.check(all(r.json == {"error": "already_claimed", "message":
                           "This request has already been claimed by another trainer."}
                for r in lost), "409 body of a lost claim is the documented one")
    c.check(all(r.json == {"error": "already_claimed", "message":
                           "You have already claimed this request; it is yours."}
                for r in own), "the winner's own repeats are 409 and told it is theirs: %r" %
            own[:1])
    winner = [r for _, r in results if r.status == 200][0].json
    c.eq(gw.rows("SELECT status, trainer_id FROM requests WHERE id=?", req["id"]),
         [("claimed", winner["trainer_id"])], "one trainer recorded")
    c.eq(gw.call("POST", "/v1/orgs/%d/requests/%d/claim" % (oid, req2["id"]),
                 token=admin["token"]).status, 403, "an org admin without trainer role: 403")
    both = gw.user(oid, "both@acme.test", ["org_admin", "trainer"], ["yoga"], token=admin["token"])
    c.eq(gw.call("POST", "/v1/orgs/%d/requests/%d/claim" % (oid, req2["id"]),
                 token=both["token"]).status, 200, "admin who is also a trainer claims")
    owner_tok = t1["token"] if winner["trainer_id"] == t1["id"] else t2["token"]
    other_tok = t2["token"] if owner_tok == t1["token"] else t1["token"]
    c.eq(gw.call("PATCH", "/v1/orgs/%d/requests/%d" % (oid, req["id"]),
                 {"session_type_id": st["id"]}, other_tok).status, 403,
         "only the claimer changes the session type")
    p = gw.call("PATCH", "/v1/orgs/%d/requests/%d" % (oid, req["id"]),
                {"session_type_id": st["id"]}, owner_tok)
    c.eq((p.status, p.json and p.json["session_type_id"]), (200, st["id"]),
         "claimer changes the session type")

    # ---- bad input: the documented error, and nothing changes ----
    other = gw.org("Other Org", "UTC")
    other_admin = gw.user(other["id"], "boss@other.test", ["org_admin"])
    gw.settle()
    before = gw.snapshot()
    base = "/v1/orgs/%d" % oid
    cases = [
        ("POST", base + "/requests", None, b'{"customer": ', None, 400, "invalid_json"),
        ("POST", base + "/requests", None, b'[1,2]', None, 400, "invalid_json"),
        ("POST", base + "/requests", {"customer": {"name": 5, "email": "x@y.zz"}}, None, None,
         400, "invalid_field"),
        ("POST", base + "/requests", {"customer": {"name": "X", "email": "not-an-email"}}, None,
         None, 400, "invalid_field"),
        ("POST", base + "/requests", {"customer": {"name": "X\r\nBcc: a@b.cd",
                                                   "email": "x@y.zz"}}, None, None, 400,
         "invalid_field"),
        ("POST", base + "/requests", {"customer": {"name": "X", "email": "x@y.zz"},
                                      "skills": "yoga"}, None, None, 400, "invalid_field"),
        ("POST", base + "/requests", None, b'{"a":"' + b"x" * (1024 * 1024) + b'"}', None, 413,
         "too_large"),
        ("POST", "/v1/orgs/999/requests", {"customer": {"name": "X", "email": "x@y.zz"}}, None,
         None, 404, "not_found"),
        ("POST", base + "/users", {"email": "new@acme.test", "name": "N", "roles": ["trainer"]},
         None, None, 401, "unauthorized"),
        ("POST", base + "/users", {"email": "new@acme.test", "name": "N", "roles": ["trainer"]},
         None, "bogus-token", 401, "unauthorized"),
        ("POST", base + "/users", {"email": "new@acme.test", "name": "N", "roles": ["trainer"]},
         None, t1["token"], 403, "forbidden"),
        ("POST", base + "/users", {"email": "new@acme.test", "name": "N", "roles": ["trainer"]},
         None, other_admin["token"], 404, "not_found"),
        ("GET", base + "/requests/%d" % req["id"], None, None, other_admin["token"], 404,
         "not_found"),
        ("POST", base + "/requests/%d/claim" % req2["id"], None, None, t3["token"], 403,
         "forbidden"),
        ("PATCH", base + "/settings", {"reminder_hours": "24, 1", "auto_close_after_minutes": 5},
         None, admin["token"], 400, "invalid_field"),
        ("PATCH", base + "/settings", {"completion_policy": "sometimes"}, None, admin["token"],
         400, "invalid_field"),
        ("POST", "/v1/orgs", {"name": "X", "timezone": "Mars/Olympus"}, None, gw.admin_token, 400,
         "invalid_field"),
        ("POST", base + "/users", {"email": "t1@acme.test", "name": "Dup", "roles": ["trainer"]},
         None, admin["token"], 409, "conflict"),
        ("POST", base + "/requests/%d/claim" % req["id"], None, None, owner_tok, 409,
         "already_claimed"),
        ("GET", base + "/requests/12345", None, None, admin["token"], 404, "not_found"),
        ("GET", base + "/requests?status=bogus", None, None, admin["token"], 400,
         "invalid_field"),
        ("GET", base + "/outbox?status=bogus", None, None, admin["token"], 400, "invalid_field"),
        ("GET", base + "/bookings?status=bogus", None, None, admin["token"], 400,
         "invalid_field"),
    ]
    for method, path, body, raw, tok, status, code in cases:
        r = gw.call(method, path, body, tok, raw=raw)
        c.eq(r.status, status, "%s %s %s status" % (method, path, (raw or b"")[:20] or body))
        c.check(r.json is not None and r.json.get("error") == code and r.json.get("message"),
                "%s %s error body %r" % (method, path, r.raw[:200]))
        if code == "invalid_field":
            c.check(bool(r.json.get("field")), "invalid_field names the field: %r" % r.json)
    c.check(gw.snapshot() == before, "refused requests changed no row")
    s = gw.ok("GET", base + "/settings", token=admin["token"])
    c.eq(s["reminder_hours"], [24], "a refused settings PATCH stored nothing")
    s = gw.ok("PATCH", base + "/settings", {"reminder_hours": "24, 1"}, admin["token"])
    c.eq(s["reminder_hours"], [24, 1], "reminder_hours from a string")

    # the other organisation sees nothing of this one
    c.eq(gw.call("GET", "/v1/orgs/%d/outbox" % oid, token=other_admin["token"]).status, 404,
         "another org's outbox is not found")
    m = gw.call("GET", "/metrics")
    c.check(m.status == 200 and "ordinatus_http_requests_total" in m.raw, "metrics served")
    c.eq(gw.call("GET", "/healthz").json, {"status": "ok", "version": VERSION}, "healthz")
finally:
    gw.stop()

# ---- a database newer than the binary is refused ----
with gw.db() as db:
    db.execute("INSERT INTO schema_migrations(version, applied_at) VALUES(999, 0)")
r = subprocess.run([BIN, "serve", "--data", gw.data, "--listen", "127.0.0.1:1"],
                   capture_output=True, text=True, timeout=20, env=gw.env)
c.check(r.returncode != 0 and "newer than this binary" in r.stderr,
        "a newer database is refused: %r" % r.stderr)
gw.cleanup()
c.done()
