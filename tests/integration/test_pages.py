"""The pages and their assets as HTTP answers: every page route (GET and HEAD) answers its file
of web/ with the Content-Security-Policy, nosniff, no-referrer and no-store; assets carry their
type, a public five-minute cache and an ETag that a revalidation turns into 304; an unknown or
unsafe asset name is the JSON 404; other methods are 405; the token pages share the token
routes' per-address limit; serve --web DIR serves a folder instead, and a page it lacks is the
stand-in of the shared layout."""
import os
import re
import subprocess
import tempfile

from gwtest import BIN, Checks, Gateway

c = Checks("pages")
TOP = os.path.join(os.path.dirname(__file__), "../..")
WEB = os.path.join(TOP, "web")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PAGES = [("/", "index.html"), ("/login", "login.html"), ("/login/tok123", "login.html"),
         ("/requests/7", "request.html"), ("/s/tok123", "schedule.html"),
         ("/survey/tok123", "survey.html"), ("/b/tok123", "manage.html"),
         ("/dashboard", "dashboard.html"), ("/calendar", "calendar.html"),
         ("/admin", "admin.html"), ("/kiosk", "kiosk.html")]


def read(name):
    with open(os.path.join(WEB, name), encoding="utf-8") as f:
        return f.read()


def secured(r, what):
    h = {k.lower(): v for k, v in r.headers.items()}
    c.eq(h.get("content-security-policy"), CSP, what + ": CSP")
    c.eq(h.get("x-content-type-options"), "nosniff", what + ": nosniff")
    c.eq(h.get("referrer-policy"), "no-referrer", what + ": no-referrer")


with Gateway(extra_args=["--token-route-limit", "1000"]) as gw:
    for path, name in PAGES:
        r = gw.call("GET", path)
        c.eq((r.status, r.headers.get("Content-Type"), r.headers.get("Cache-Control")),
             (200, "text/html; charset=utf-8", "no-store"), path + ": an HTML page, not cached")
        secured(r, path)
        if os.path.exists(os.path.join(WEB, name)):
            c.eq(r.raw, read(name), path + ": serves web/" + name)
        else:
            c.check("<h1>" in r.raw and "/static/style.css" in r.raw,
                    path + ": the stand-in of the layout until web/" + name + " exists")
        head = gw.call("HEAD", path)
        c.eq((head.status, head.raw, head.headers.get("Content-Security-Policy")),
             (200, "", CSP), path + ": HEAD answers the headers alone")
        r = gw.call("POST", path, {})
        c.eq((r.status, r.json and r.json.get("error"), r.headers.get("Allow")),
             (405, "method_not_allowed", "GET, HEAD"), path + ": POST is 405 with Allow")

    assets = sorted(os.listdir(os.path.join(WEB, "static")))
    c.check("style.css" in assets and "common.js" in assets, "the shared assets exist")
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".svg": "image/svg+xml"}
    for name in assets:
        r = gw.call("GET", "/static/" + name)
        ext = os.path.splitext(name)[1]
        c.eq((r.status, r.headers.get("Content-Type"), r.headers.get("Cache-Control")),
             (200, types.get(ext), "public, max-age=300"), name + ": type and cache")
        c.eq(r.raw, read("static/" + name), name + ": the file's bytes")
        secured(r, name)
        etag = r.headers.get("ETag")
        c.check(etag and re.fullmatch(r'"[0-9a-f]{16}"', etag), name + ": a strong ETag")
        r2 = gw.call("GET", "/static/" + name, headers={"If-None-Match": etag})
        c.eq((r2.status, r2.raw, r2.headers.get("ETag")), (304, "", etag),
             name + ": If-None-Match with it is 304, no body")
        r3 = gw.call("GET", "/static/" + name, headers={"If-None-Match": "W/" + etag})
        c.eq(r3.status, 304, name + ": a weak comparison matches too")
        r4 = gw.call("GET", "/static/" + name, headers={"If-None-Match": '"0000000000000000"'})
        c.eq(r4.status, 200, name + ": another ETag gets the file")
    for bad in ("/static/nope.css", "/static/.hidden", "/static/..%2F..%2Fordinatus.db",
                "/static/a%20b.css", "/static/index.html", "/static/"):
        r = gw.call("GET", bad)
        c.eq((r.status, r.headers.get("Content-Type"), r.json and r.json.get("error")),
             (404, "application/json", "not_found"), bad + ": the JSON 404")
    for bad in ("/nope", "/s/", "/s/a/b", "/requests/x", "/dashboard/x"):
        c.eq(gw.call("GET", bad).status, 404, bad + ": no such page")
    m = gw.call("GET", "/metrics").raw
    c.check('route="page_schedule",status="2xx"' in m and 'route="static_asset",status="3xx"' in m,
            "the pages are counted in /metrics per route")

# the token pages share the token routes' limit per address; the others do not
with Gateway(extra_args=["--token-route-limit", "3"]) as gw:
    got = [gw.call("GET", "/s/tok%d" % i).status for i in range(3)]
    r = gw.call("GET", "/survey/tok")
    c.eq((got, r.status, r.json and r.json.get("error")), ([200, 200, 200], 429, "rate_limited"),
         "the fourth token page in a minute is 429")
    c.check(r.headers.get("Retry-After", "").isdigit(), "with Retry-After")
    c.eq([gw.call("GET", p).status for p in ("/b/x", "/login/x")], [429, 429],
         "the booking and sign-in links too")
    c.eq([gw.call("GET", p).status for p in ("/", "/login", "/dashboard", "/static/style.css")],
         [200, 200, 200, 200], "pages without a token are not limited")

# serve --web DIR: the folder's files, read on each request; a page missing is the stand-in
web = tempfile.mkdtemp(prefix="ordinatus-web-")
os.makedirs(os.path.join(web, "static"))
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<!doctype html><title>one</title>")
with open(os.path.join(web, "static", "logo.svg"), "w") as f:
    f.write('<svg xmlns="http://www.w3.org/2000/svg"/>')
with Gateway(extra_args=["--web", web]) as gw:
    c.eq(gw.call("GET", "/").raw, "<!doctype html><title>one</title>", "--web: the folder's page")
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>two</title>")
    c.eq(gw.call("GET", "/").raw, "<!doctype html><title>two</title>", "--web: read anew")
    r = gw.call("GET", "/static/logo.svg")
    c.eq((r.status, r.headers.get("Content-Type")), (200, "image/svg+xml"), "--web: an SVG")
    r = gw.call("GET", "/calendar")
    c.eq(r.status, 200, "--web: a missing page is not an error")
    c.check("<title>Calendar - Ordinatus</title>" in r.raw and "/static/style.css" in r.raw
            and "<script" not in r.raw, "--web: the stand-in has the layout and no script")
    c.eq(gw.call("GET", "/static/style.css").status, 404, "--web: only the folder's assets")
gone = Gateway()
try:
    out = subprocess.run([BIN, "serve", "--data", gone.data, "--listen",
                          "127.0.0.1:%d" % gone.port, "--web", os.path.join(web, "missing")],
                         capture_output=True, text=True, timeout=30, env=gone.env)
    c.eq(out.returncode, 2, "--web of a folder that is not there: exit 2")
    c.check("--web" in out.stderr, "with a message naming --web: %r" % out.stderr)
finally:
    gone.cleanup()
c.done()
