// staff_lib.mjs - what the staff-page browser tests (test_staff, test_admin, test_calendar)
// share on top of harness.mjs: an organisation with an admin, two trainers and a session type,
// sign-in from the emailed link in a browser context, a customer who books and pays through
// the API, and keyboard-only activation of a control.
import { checkA11y, startGateway } from "./harness.mjs";

export const WEB = process.env.ORDINATUS_WEB_DIR; // serve --web DIR while developing pages

/* gateway - a gateway on the test clock (pages from DIR when ORDINATUS_WEB_DIR is set) */
export async function gateway(opts = {}) {
  const extraArgs = [...(opts.extraArgs || [])];
  if (WEB) extraArgs.push("--web", WEB);
  return startGateway({ testClock: true, ...opts, extraArgs });
}

/* orgSetup - an org in Europe/Berlin with an admin, trainers Tia and Tom (yoga; Tia works
 * Monday to Friday 09:00-17:00) and one session type; the clock on Monday 30 Nov 2026 08:00Z */
export async function orgSetup(gw) {
  await gw.setClock("2026-11-30T08:00:00Z");
  const org = await gw.org("Berlin Yoga", "Europe/Berlin");
  const O = `/v1/orgs/${org.id}`;
  await gw.intakeLimits(org.id);
  const admin = await gw.user(org.id, "ada@by.test", ["org_admin"], { name: "Ada Admin" });
  const tia = await gw.user(org.id, "tia@by.test", ["trainer"],
    { name: "Tia Trainer", skills: ["yoga"] });
  const tom = await gw.user(org.id, "tom@by.test", ["trainer"],
    { name: "Tom Trainer", skills: ["yoga"] });
  const st = await gw.ok("POST", O + "/session-types", {
    name: "Private yoga", skills: ["yoga"], lengths: [60], price_cents: 5000, currency: "EUR",
  }, admin.token);
  const week = ["mon", "tue", "wed", "thu", "fri"].map((d) => ({ day: d, start: "09:00",
    end: "17:00" }));
  await gw.ok("PUT", `${O}/users/${tia.id}/availability`, { weekly: week }, tia.token);
  await gw.ok("PUT", `${O}/users/${tom.id}/availability`, { weekly: week }, tom.token);
  return { org, O, admin, tia, tom, st };
}

/* pageErrors - script errors and console errors (a CSP refusal is one: "Refused to ...") of
 * every page watched; answers of 4xx are expected in these tests and left out */
export const pageErrors = [];

/* watch - collect page's errors into pageErrors */
export function watch(page, who = "") {
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      pageErrors.push(`${who}: ${m.text()}`);
    }
  });
}

/* signIn - a new browser context signed in as email: the sign-in link is asked for, read from
 * the sign_in email and followed; resolves when the login page has moved on */
export async function signIn(browser, gw, org, email, opts = {}) {
  const ctx = await browser.newContext({ timezoneId: opts.timezoneId || "Europe/Berlin",
    viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  watch(page, email);
  const before = gw.maildir().filter((m) => m.kind === "sign_in" && m.to.includes(email)).length;
  const r = await gw.api("POST", "/v1/auth/sign-in", { email, org });
  if (r.status !== 202) throw new Error("sign-in answered " + r.status);
  let link = null;
  const end = Date.now() + 10000;
  while (!link && Date.now() < end) {
    const got = gw.maildir().filter((m) => m.kind === "sign_in" && m.to.includes(email));
    if (got.length > before) link = got[got.length - 1].links.find((u) => u.includes("/login/"));
    else await new Promise((res) => setTimeout(res, 100));
  }
  if (!link) throw new Error("no sign_in email reached " + email);
  await page.goto(link);
  await page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 10000 });
  return { ctx, page, link };
}

/* customerBooks - the customer takes start through the scheduling link of the email and pays;
 * the booking's id */
export async function customerBooks(gw, email, start, length = 60) {
  const m = await gw.waitMail((x) => x.kind === "scheduling_link" && x.to.includes(email));
  const token = m.links.find((u) => u.includes("/s/")).split("/s/")[1];
  const b = await gw.ok("POST", `/v1/schedule/${token}/booking`, { start, length_minutes: length });
  await gw.ok("POST", `/v1/schedule/${token}/payment`, { reference: "pay-" + email });
  return b.booking_id;
}

/* bookConfirmed - a confirmed booking of trainer made through the API */
export async function bookConfirmed(gw, env, trainer, name, email, start) {
  const req = await gw.ok("POST", env.O + "/requests", { customer: { name, email },
    skills: ["yoga"] });
  await gw.ok("POST", `${env.O}/requests/${req.id}/claim`, undefined, trainer.token);
  await gw.ok("POST", `${env.O}/requests/${req.id}/scheduling-link`, undefined, trainer.token);
  const id = await customerBooks(gw, email, start);
  await gw.ok("POST", `${env.O}/bookings/${id}/confirm-payment`, undefined, trainer.token);
  return id;
}

/* tabTo - press Tab until the focused element is locator's (at most max presses); true when
 * reached: the control is in the keyboard order */
export async function tabTo(page, locator, max = 80) {
  const target = await locator.elementHandle();
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((t) => document.activeElement === t, target)) return true;
  }
  return false;
}

/* a11y - axe-core at the laptop width the page has, then at the phone width (390x844) */
export async function a11y(page, name) {
  const before = page.viewportSize();
  await checkA11y(page, name);
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await checkA11y(page, name + " (phone)");
  } finally {
    if (before) await page.setViewportSize(before);
  }
  return true;
}
