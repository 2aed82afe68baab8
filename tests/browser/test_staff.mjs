// test_staff.mjs - the trainer's pages in Chromium: sign-in from the emailed link, the request
// page from the "New request available" email (a claim won, a second trainer's lost race and
// its message, the session type, Send then Resend Scheduling Link with the time it was sent),
// and the dashboard (New Requests, My Requests, My Upcoming Sessions; Confirm Payment, and Mark
// Complete only once the test clock has passed the end; notes; availability with a bad and a
// good save), Cancel Request with a reason, and the calendar connection. Every page through
// axe-core, keyboard-only actions, screenshots.
import { Checks, launch, shot } from "./harness.mjs";
import { a11y, customerBooks, gateway, orgSetup, signIn, tabTo, pageErrors } from "./staff_lib.mjs";

const c = new Checks("staff");
const gw = await gateway();
const browser = await launch();

try {
  const env = await orgSetup(gw);
  const { O, tia, tom } = env;
  let tiaP;
  let tomP;
  let reqId;

  await c.step("a trainer signs in from the emailed link", async () => {
    tiaP = (await signIn(browser, gw, env.org.id, "tia@by.test")).page;
    c.eq(new URL(tiaP.url()).pathname, "/dashboard", "the link lands Tia on /dashboard");
    tomP = (await signIn(browser, gw, env.org.id, "tom@by.test")).page;
  });

  await c.step("not signed in: the request page sends to the sign-in page", async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(gw.url + "/requests/1");
    await p.waitForURL((u) => u.pathname === "/login", { timeout: 10000 });
    c.check(new URL(p.url()).searchParams.get("next") === "/requests/1",
      "to /login?next=/requests/1");
    // signing in from there: the emailed link, opened in the same browser, comes back here
    const before = gw.maildir().filter((m) => m.kind === "sign_in" &&
      m.to.includes("tia@by.test")).length;
    await p.getByLabel("Email").fill("tia@by.test");
    await p.getByLabel("Organisation number").fill(String(env.org.id));
    await p.getByRole("button", { name: "Email me a sign-in link" }).click();
    let link = null;
    const end = Date.now() + 10000;
    while (!link && Date.now() < end) {
      const got = gw.maildir().filter((m) => m.kind === "sign_in" && m.to.includes("tia@by.test"));
      if (got.length > before) link = got[got.length - 1].links.find((u) => u.includes("/login/"));
      else await new Promise((res) => setTimeout(res, 100));
    }
    c.check(!!link, "the sign-in form emails a link");
    if (link) {
      await p.goto(link);
      await p.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 10000 });
      c.eq(new URL(p.url()).pathname, "/requests/1", "the link comes back to /requests/1");
    }
    await ctx.close();
  });

  await c.step("the request page from the new_request email", async () => {
    const req = await gw.ok("POST", O + "/requests", {
      customer: { name: "Nina Newman", email: "nina@cust.test", phone: "+49 30 555 0101" },
      skills: ["yoga"], answers: { goal: "more flexibility", experience: "beginner" },
    });
    reqId = req.id;
    const m = await gw.waitMail((x) => x.kind === "new_request" && x.to.includes("tia@by.test"));
    const link = m.links.find((u) => u.includes(`/requests/${reqId}`));
    c.check(!!link, "the email links to /requests/{id}");
    await tiaP.goto(link);
    await tomP.goto(link);
    for (const p of [tiaP, tomP]) await p.getByRole("button", { name: "Claim This Request" })
      .waitFor();
    const text = await tiaP.locator("main").innerText();
    for (const want of ["Nina Newman", "nina@cust.test", "+49 30 555 0101", "more flexibility",
      "beginner"]) {
      c.check(text.includes(want), `the request page shows ${want}`);
    }
    c.eq(await tiaP.locator("#status").innerText(), "New", "status New");
    await a11y(tiaP, "request (new)");
    await shot(tiaP, "staff-request-new");
  });

  await c.step("Tia claims with the keyboard; Tom loses the race and is told", async () => {
    const claim = tiaP.getByRole("button", { name: "Claim This Request" });
    c.check(await tabTo(tiaP, claim), "Claim This Request is reached with Tab");
    await tiaP.keyboard.press("Enter");
    await tiaP.locator("#status", { hasText: "Claimed by Trainer" }).waitFor();
    c.check(true, "Tia's claim: status Claimed by Trainer");
    await tomP.getByRole("button", { name: "Claim This Request" }).click();
    await tomP.getByText("This request has already been claimed by another trainer.").waitFor();
    c.check(true, "Tom sees the lost race's message");
    c.eq(await tomP.getByRole("button", { name: "Claim This Request" }).count(), 0,
      "and no claim button any more");
    const r = await gw.ok("GET", `${O}/requests/${reqId}`, undefined, env.admin.token);
    c.eq([r.status, r.trainer_id], ["claimed", tia.id], "the request is Tia's");
    await a11y(tomP, "request (lost race)");
    await shot(tomP, "staff-request-lost");
  });

  await c.step("session type, then Send and Resend Scheduling Link", async () => {
    const sel = tiaP.getByLabel("Session Type");
    await sel.selectOption({ label: "Private yoga" });
    await tiaP.getByText("Session type saved.").waitFor();
    const r = await gw.ok("GET", `${O}/requests/${reqId}`, undefined, env.admin.token);
    c.eq(r.session_type_id, env.st.id, "the select PATCHed the session type");
    await a11y(tiaP, "request (claimed)");
    await shot(tiaP, "staff-request-claimed");
    await tiaP.getByRole("button", { name: "Send Scheduling Link" }).click();
    await tiaP.locator("#status", { hasText: "Customer Scheduling" }).waitFor();
    const resend = tiaP.getByRole("button", { name: "Resend Scheduling Link" });
    await resend.waitFor();
    c.check(true, "after sending: Customer Scheduling and Resend Scheduling Link");
    // sent at 08:00Z by the test clock: 09:00 in Tia's zone (Europe/Berlin)
    const sent = await tiaP.locator("#link-sent").innerText();
    c.check(/Mon,? 30 Nov 2026, 09:00/.test(sent), "the time it was sent, in her zone: " + sent);
    await gw.setClock("2026-11-30T08:20:00Z");
    await resend.click();
    await tiaP.locator("#link-sent", { hasText: "09:20" }).waitFor();
    const mails = gw.maildir().filter((m) => m.kind === "scheduling_link" &&
      m.to.includes("nina@cust.test"));
    c.eq(mails.length, 2, "two scheduling_link emails reached the customer");
    await shot(tiaP, "staff-request-scheduling");
  });

  let bookingId;
  await c.step("the customer books and pays; the dashboard lists the session", async () => {
    bookingId = await customerBooks(gw, "nina@cust.test", "2026-11-30T13:00:00Z");
    await tiaP.reload();
    await tiaP.locator("#status", { hasText: "Pending Payment" }).waitFor();
    c.check(true, "the request page shows Pending Payment");
    // a second request stays new for the New Requests table
    await gw.ok("POST", O + "/requests", { customer: { name: "Otto Open", email: "otto@c.test" },
      skills: ["yoga"] });
    await tiaP.goto(gw.url + "/dashboard");
    const row = tiaP.locator(`tr[data-booking="${bookingId}"]`);
    await row.waitFor();
    const rtext = await row.innerText();
    c.check(rtext.includes("Nina Newman") && rtext.includes("Pending Payment"),
      "My Upcoming Sessions: Nina, Pending Payment");
    c.check(/Mon,? 30 Nov 2026, 14:00/.test(rtext), "at 14:00 Berlin time: " + rtext);
    c.check(rtext.includes("Arranged by the trainer"), "the delivery method (manual)");
    c.eq(await row.getByRole("button", { name: /^Mark Complete/ }).count(), 0,
      "no Mark Complete before the session");
    const newTable = await tiaP.locator("#new-requests").innerText();
    c.check(newTable.includes("Otto Open") && !newTable.includes("Nina"),
      "New Requests: the unclaimed one only");
    for (const h of ["New Requests", "My Requests", "My Upcoming Sessions"]) {
      c.eq(await tiaP.getByRole("heading", { name: h, exact: true }).count(), 1, "heading " + h);
    }
    await a11y(tiaP, "dashboard");
    await shot(tiaP, "staff-dashboard");
  });

  await c.step("Confirm Payment from the keyboard", async () => {
    const row = tiaP.locator(`tr[data-booking="${bookingId}"]`);
    const btn = row.getByRole("button", { name: /^Confirm Payment/ });
    c.check(await tabTo(tiaP, btn), "Confirm Payment is reached with Tab");
    await tiaP.keyboard.press("Enter");
    await row.getByText("Confirmed", { exact: true }).waitFor();
    const b = await gw.ok("GET", `${O}/bookings/${bookingId}`, undefined, env.admin.token);
    c.eq(b.status, "confirmed", "the booking is confirmed");
    await gw.waitMail((x) => x.kind === "confirmation" && x.to.includes("nina@cust.test"));
    c.check(true, "the confirmation email went out");
    c.eq(await row.getByRole("button", { name: /^Mark Complete/ }).count(), 0,
      "still no Mark Complete before the end");
  });

  await c.step("private notes on the session", async () => {
    const row = tiaP.locator(`tr[data-booking="${bookingId}"]`);
    await row.getByRole("button", { name: /^Notes/ }).click();
    const dlg = tiaP.getByRole("dialog");
    await dlg.getByLabel("Add a private note").fill("Bring a mat.");
    await dlg.getByRole("button", { name: "Add Note" }).click();
    await dlg.getByText("Bring a mat.").waitFor();
    const notes = await gw.ok("GET", `${O}/bookings/${bookingId}/notes`, undefined, tia.token);
    c.check(JSON.stringify(notes).includes("Bring a mat."), "the note is stored for Tia");
    await a11y(tiaP, "dashboard notes dialog");
    await tiaP.keyboard.press("Escape");
    await dlg.waitFor({ state: "detached" });
  });

  await c.step("availability: a bad row is refused by the field, a good one saved", async () => {
    const form = tiaP.locator("#availability-form");
    await form.getByRole("button", { name: "Add hours" }).click();
    const rows = form.locator("tr.staff-weekly-row");
    const last = rows.last();
    await last.getByLabel("Day").selectOption("sat");
    await last.getByLabel("From").fill("15:00");
    await last.getByLabel("Until").fill("10:00");
    await form.getByRole("button", { name: "Save Availability" }).click();
    const err = tiaP.locator("#weekly-error");
    await err.waitFor();
    c.check(/start before end/.test(await err.innerText()), "the message is by the weekly hours");
    c.eq(await last.getByLabel("From").inputValue(), "15:00", "what was typed stays");
    let av = await gw.ok("GET", `${O}/users/${tia.id}/availability`, undefined, tia.token);
    c.eq(av.weekly.length, 5, "nothing was stored");
    await a11y(tiaP, "dashboard availability error");
    await last.getByLabel("Until").fill("18:00");
    await form.getByRole("button", { name: "Save Availability" }).click();
    await form.getByText("Availability saved.").waitFor();
    av = await gw.ok("GET", `${O}/users/${tia.id}/availability`, undefined, tia.token);
    c.eq(av.weekly[av.weekly.length - 1], { day: "sat", start: "15:00", end: "18:00" },
      "Saturday 15:00-18:00 saved");
  });

  await c.step("after the end, Mark Complete", async () => {
    // the same day: the sign-in session (12 hours from the login) still holds
    await gw.setClock("2026-11-30T14:05:00Z");
    await tiaP.reload();
    const row = tiaP.locator(`tr[data-booking="${bookingId}"]`);
    const btn = row.getByRole("button", { name: /^Mark Complete/ });
    await btn.waitFor();
    c.check(true, "Mark Complete shows once the test clock passed the end");
    await btn.click();
    await row.waitFor({ state: "detached" });
    const b = await gw.ok("GET", `${O}/bookings/${bookingId}`, undefined, env.admin.token);
    c.eq([b.status, String(b.completed_by)], ["completed", String(tia.id)],
      "completed by Tia");
    await shot(tiaP, "staff-dashboard-after");
  });

  await c.step("Cancel Request with a reason", async () => {
    const req = await gw.ok("POST", O + "/requests", { customer: { name: "Paul Pass",
      email: "paul@c.test" }, skills: ["yoga"] });
    await gw.ok("POST", `${O}/requests/${req.id}/claim`, undefined, tia.token);
    await tiaP.goto(`${gw.url}/requests/${req.id}`);
    await tiaP.getByRole("button", { name: "Cancel Request" }).click();
    const dlg = tiaP.getByRole("dialog");
    await dlg.getByLabel("Reason (optional)").fill("The customer found another studio.");
    await a11y(tiaP, "request cancel dialog");
    await dlg.getByRole("button", { name: "Cancel Request" }).click();
    await tiaP.getByText("The request is cancelled.").waitFor();
    c.eq(await tiaP.locator("#status").innerText(), "Cancelled", "status Cancelled");
    const r = await gw.ok("GET", `${O}/requests/${req.id}`, undefined, env.admin.token);
    c.eq([r.status, r.cancel_reason], ["cancelled", "The customer found another studio."],
      "cancelled with its reason");
    c.eq(await tiaP.getByRole("button", { name: /Claim|Scheduling Link|Cancel Request/ }).count(),
      0, "no action is left on a cancelled request");
  });

  await c.step("calendar connection: its state and the configured providers", async () => {
    await tiaP.goto(gw.url + "/dashboard");
    await tiaP.locator("#calendar-status").waitFor();
    const text = await tiaP.locator("#calendar-conn").innerText();
    c.check(/No calendar connected/.test(text), "no calendar yet");
    c.eq(await tiaP.locator("#calendar-conn a").count(), 0, "no provider, no connect button");
    await gw.ok("PUT", `${O}/providers/google`, { client_id: "cid", client_secret: "s" },
      env.admin.token);
    await tiaP.reload();
    const a = tiaP.getByRole("link", { name: "Connect Google Calendar" });
    await a.waitFor();
    c.eq(await a.getAttribute("href"), `${O}/users/${tia.id}/calendar/connect?provider=google`,
      "Connect Google Calendar links to the consent flow");
  });
  c.eq(pageErrors, [], "no script error or CSP refusal on any page");
} catch (e) {
  c.check(false, "unexpected: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  await gw.stop();
}
c.done();
