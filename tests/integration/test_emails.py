"""How the emails look, as a mail client gets them: a booking made the way people make one (the
public intake, claim, scheduling link, booking, payment, confirm) on the test clock, then the
maildir's messages parsed with Python's email and html.parser modules.

Every message's HTML part: the organisation's name heads it (its & escaped, shown as typed),
exactly one button whose link is the one the text part gives for the same action (new_request:
the request page; scheduling_link: /s/; confirmation and reminder: the manage link /b/;
trainer_confirmation: the dashboard); nothing loaded from outside (no src=, no <link>, no
@import or url()); the customer's name with markup shown as typed, never as markup; the
dark-mode block. The confirmation's and the reminder's Add to Google Calendar and Add to
Outlook links decode to the booking's start and end in UTC (as GET /bookings/{id} answers them)
and its title, the customer's name with & and + intact. The gateway is stopped by its pid.
"""
import html.parser
import re
import time
import urllib.parse

from gwtest import Checks, Gateway

c = Checks("emails")
gw = Gateway(test_clock=True)
gw.start()

ORG = "Acme & Sons Training"
CUSTOMER = "Ann & Bob+Co <x>"


class Parts(html.parser.HTMLParser):
    """The parts of an HTML part a reader sees: the header's text, the buttons, every link, every
    resource attribute, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.head, self.in_head, self.buttons, self.links, self.srcs = "", False, [], [], []
        self.tags, self.text, self.in_style = [], [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        classes = (a.get("class") or "").split()
        if "tpl-head" in classes:
            self.in_head = True
        if tag == "a":
            self.links.append(a.get("href"))
            if "tpl-button" in classes:
                self.buttons.append(a.get("href"))
        if "src" in a or "srcset" in a or "background" in a:
            self.srcs.append((tag, a))
        if tag == "style":
            self.in_style = True

    def handle_endtag(self, tag):
        if tag == "td":
            self.in_head = False
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_head:
            self.head += data
        if not self.in_style:
            self.text.append(data)


def parse(m):
    raw = m.get_body(("html",)).get_content()
    p = Parts()
    p.feed(raw)
    return raw, p, m.get_body(("plain",)).get_content()


def mail(kind, to):
    msgs = [m for m in gw.maildir() if str(m["X-Ordinatus-Kind"]) == kind and to in str(m["To"])]
    return msgs[-1] if msgs else None


def wait_kind(kind, to):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        m = mail(kind, to)
        if m is not None:
            return m
        time.sleep(0.05)
    return None


def check_layout(kind, m, action_re):
    """The layout's promises for one message; the button's link, which the text part has too."""
    if not c.check(m is not None, "%s: the email arrived" % kind):
        return None, None, None
    raw, p, text = parse(m)
    c.eq(p.head.strip(), ORG, "%s: the organisation's name heads the email" % kind)
    c.eq(len(p.buttons), 1, "%s: exactly one button" % kind)
    want = re.search(action_re, text)
    c.check(want is not None, "%s: the text part has the action link" % kind)
    c.check(want is not None and p.buttons[:1] == [want.group(0)],
            "%s: the button's link is the text part's: %r" % (kind, p.buttons))
    c.eq(p.srcs, [], "%s: no element loads a resource" % kind)
    c.check("link" not in p.tags and "img" not in p.tags and "script" not in p.tags,
            "%s: no <link>, <img> or <script>" % kind)
    c.check("@import" not in raw and "url(" not in raw, "%s: no @import or url()" % kind)
    c.check("@media (prefers-color-scheme: dark)" in raw and
            '<meta name="color-scheme" content="light dark">' in raw,
            "%s: the dark-mode block and its meta tag" % kind)
    c.check("Acme &amp; Sons Training" in raw, "%s: the organisation's & escaped" % kind)
    return raw, p, text


def query(url):
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}


def compact(iso):
    return iso.replace("-", "").replace(":", "")


def check_calendar_links(kind, p, text, booking):
    g = [u for u in p.links if u and u.startswith("https://calendar.google.com/calendar/render?")]
    o = [u for u in p.links if u and
         u.startswith("https://outlook.live.com/calendar/0/deeplink/compose?")]
    if not c.check(len(g) == 1 and len(o) == 1, "%s: one Google and one Outlook link" % kind):
        return
    c.check(g[0] in text and o[0] in text, "%s: the text part has both links" % kind)
    gq, oq = query(g[0]), query(o[0])
    c.eq(gq.get("action"), "TEMPLATE", "%s: Google action" % kind)
    c.eq(gq.get("dates"), "%s/%s" % (compact(booking["start"]), compact(booking["end"])),
         "%s: Google dates are the booking's, in UTC" % kind)
    c.eq(gq.get("text"), "Private yoga with Tia Trainer", "%s: Google title" % kind)
    c.check(CUSTOMER in gq.get("details", ""), "%s: Google details name the customer as typed: %r"
            % (kind, gq.get("details")))
    c.eq((oq.get("path"), oq.get("rru")), ("/calendar/action/compose", "addevent"),
         "%s: Outlook path and rru" % kind)
    c.eq((oq.get("startdt"), oq.get("enddt")), (booking["start"], booking["end"]),
         "%s: Outlook start and end are the booking's, in UTC" % kind)
    c.eq(oq.get("subject"), "Private yoga with Tia Trainer", "%s: Outlook title" % kind)
    c.check(CUSTOMER in oq.get("body", ""), "%s: Outlook body names the customer" % kind)
    c.check("/b/" not in urllib.parse.unquote(g[0] + o[0]),
            "%s: the manage link is not handed to a calendar" % kind)


try:
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-11-30T08:00:00Z"})
    org = gw.org(ORG, "Europe/Berlin")
    O = "/v1/orgs/%d" % org["id"]
    admin = gw.user(org["id"], "admin@acme.test", ["org_admin"])
    A = admin["token"]
    tia = gw.user(org["id"], "tia@acme.test", ["trainer"], ["yoga"], name="Tia Trainer",
                  timezone="Europe/Berlin", notify_on_confirm=True, token=A)
    T = tia["token"]
    st = gw.ok("POST", O + "/session-types", {"name": "Private yoga", "skills": ["yoga"],
                                              "lengths": [60], "price_cents": 5000,
                                              "currency": "EUR"}, A)
    week = [{"day": d, "start": "08:00", "end": "18:00"} for d in ("mon", "tue", "wed", "thu",
                                                                    "fri")]
    gw.ok("PUT", O + "/users/%d/availability" % tia["id"], {"weekly": week}, T)
    # a request nobody claims: its new_request email is sent (a claimed one's may expire unsent)
    dee = gw.ok("POST", O + "/requests", {"customer": {"name": "Dee", "email": "dee@example.test"},
                                          "skills": ["yoga"]})
    check_layout("new_request", wait_kind("new_request", "tia@acme.test"),
                 r"https?://\S+/requests/%d\b" % dee["id"])

    bid = gw.book(O, T, st["id"], ["yoga"], CUSTOMER, "ann@example.test", "2026-12-02T09:00:00Z")
    booking = gw.ok("GET", O + "/bookings/%d" % bid, token=T)
    raw, p, text = check_layout("scheduling_link", wait_kind("scheduling_link", "ann@"),
                                r"https?://\S+/s/[A-Za-z0-9_-]+")
    if p:
        c.check(CUSTOMER in "".join(p.text) and "<x>" not in raw,
                "scheduling_link: the customer's name shown as typed, escaped in the markup")
    raw, p, text = check_layout("confirmation", wait_kind("confirmation", "ann@"),
                                r"https?://\S+/b/[A-Za-z0-9_-]+")
    if p:
        check_calendar_links("confirmation", p, text, booking)
        c.check("Wednesday 2 December 2026, 10:00 to 11:00 (Europe/Berlin)" in "".join(p.text),
                "confirmation: the time in the organisation's zone")
        c.check("50.00 EUR" in "".join(p.text), "confirmation: the price")
        c.check(CUSTOMER not in raw, "confirmation: the customer's name never raw in the markup")
    check_layout("trainer_confirmation", wait_kind("trainer_confirmation", "tia@acme.test"),
                 r"https?://\S+/dashboard")

    # a day ahead, the reminder (queued by the tick for 24 h before the start): the manage link
    # its button, the calendar links beside it
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T08:50:00Z"})
    gw.ok("POST", "/v1/test/tick")
    gw.ok("PUT", "/v1/test/clock", {"now": "2026-12-01T09:00:00Z"})  # its send time: 24 h before
    raw, p, text = check_layout("reminder", wait_kind("reminder", "ann@"),
                                r"https?://\S+/b/[A-Za-z0-9_-]+")
    if p:
        check_calendar_links("reminder", p, text, booking)
finally:
    gw.stop()
    gw.cleanup()
c.done()
