// test_calendar.mjs - the week calendar in Chromium: a trainer's own sessions placed in the
// right day column at the right height for their time in her zone, the session dialog opened
// from the keyboard, a reschedule to a free time from the dialog (the block moves), Mark
// Complete once the test clock passed the end, a completed session that can no longer move,
// previous and next week, and the admin's view of every trainer with its trainer filter.
import { Checks, launch, shot } from "./harness.mjs";
import { a11y, bookConfirmed, gateway, orgSetup, signIn, tabTo, pageErrors } from "./staff_lib.mjs";

const c = new Checks("calendar");
const gw = await gateway();
const browser = await launch();
const HOUR_PX = 48;

try {
  const env = await orgSetup(gw);
  const { O, admin, tia, tom } = env;
  // Monday 30 Nov 2026 (the clock: 08:00Z); Berlin is UTC+1
  const b1 = await bookConfirmed(gw, env, tia, "Cara Cust", "cara@c.test", "2026-11-30T13:00:00Z");
  const b2 = await bookConfirmed(gw, env, tom, "Dora Cust", "dora@c.test", "2026-12-02T09:00:00Z");
  const b3 = await bookConfirmed(gw, env, tia, "Emil Cust", "emil@c.test", "2026-12-03T10:30:00Z");
  await gw.ok("POST", `${O}/bookings/${b3}/complete`, { note: "done early" }, admin.token);
  const week = gw.url + "/calendar?week=2026-11-30";
  let page;

  /* placed - the block of booking id: its day column and its offset from the column's top */
  async function placed(p, id) {
    const blk = p.locator(`.wk-block[data-booking="${id}"]`);
    await blk.waitFor();
    const day = await blk.evaluate((e) => e.closest(".wk-day").dataset.day);
    const top = await blk.evaluate((e) => e.getBoundingClientRect().top -
      e.closest(".wk-day").getBoundingClientRect().top);
    const height = await blk.evaluate((e) => e.getBoundingClientRect().height);
    return { day, top: Math.round(top), height: Math.round(height) };
  }

  await c.step("Tia's week: her sessions by day and hour, not Tom's", async () => {
    page = (await signIn(browser, gw, env.org.id, "tia@by.test")).page;
    await page.goto(week);
    const p1 = await placed(page, b1);
    // 14:00 Berlin, the grid from 07:00: 7 hours down; 60 minutes tall
    c.eq(p1.day, "2026-11-30", "Cara's session is on Monday");
    c.check(Math.abs(p1.top - 7 * HOUR_PX) <= 2, `at 14:00 (top ${p1.top})`);
    c.check(Math.abs(p1.height - HOUR_PX) <= 3, `one hour tall (${p1.height})`);
    const p3 = await placed(page, b3);
    c.eq(p3.day, "2026-12-03", "Emil's on Thursday");
    c.check(Math.abs(p3.top - 4.5 * HOUR_PX) <= 2, `at 11:30 (top ${p3.top})`);
    c.eq(await page.locator(`.wk-block[data-booking="${b2}"]`).count(), 0, "Tom's is not shown");
    c.check(/Week of 30 Nov 2026 to 6 Dec 2026/.test(await page.locator("#week-title").innerText()),
      "the week's title");
    await a11y(page, "calendar (trainer)");
    await shot(page, "calendar-trainer");
  });

  await c.step("the dialog from the keyboard; a completed session cannot move", async () => {
    const blk = page.locator(`.wk-block[data-booking="${b3}"]`);
    c.check(await tabTo(page, blk), "a session block is reached with Tab");
    await page.keyboard.press("Enter");
    const dlg = page.getByRole("dialog");
    await dlg.locator("#dlg-status", { hasText: "Completed" }).waitFor();
    c.check(/can no longer be moved/.test(await dlg.locator("#no-move").innerText()),
      "a completed session says it can no longer be moved");
    c.eq(await dlg.locator("#move-day").count(), 0, "and offers no free times");
    await page.keyboard.press("Escape");
    await dlg.waitFor({ state: "detached" });
    c.check(await blk.evaluate((e) => document.activeElement === e), "focus back on the block");
  });

  await c.step("reschedule to a free time from the dialog", async () => {
    await page.locator(`.wk-block[data-booking="${b1}"]`).click();
    const dlg = page.getByRole("dialog");
    await dlg.locator("#move-day").waitFor();
    c.eq(await dlg.getByRole("button", { name: "Mark Complete" }).count(), 0,
      "no Mark Complete before the end");
    await a11y(page, "calendar dialog");
    await shot(page, "calendar-dialog");
    await dlg.locator("#move-day").selectOption({ label: "Mon, 30 Nov 2026" });
    await dlg.getByRole("button", { name: "Move to Mon, 30 Nov 2026, 16:00" }).click();
    await dlg.getByText(/^Moved to Mon, 30 Nov 2026, 16:00/).waitFor();
    const b = await gw.ok("GET", `${O}/bookings/${b1}`, undefined, admin.token);
    c.eq([b.start, b.sequence], ["2026-11-30T15:00:00Z", 1], "moved to 15:00Z, sequence 1");
    await page.keyboard.press("Escape");
    const p1 = await placed(page, b1);
    c.check(p1.day === "2026-11-30" && Math.abs(p1.top - 9 * HOUR_PX) <= 2,
      `the block moved to 16:00 (top ${p1.top})`);
  });

  await c.step("after the end: Mark Complete in the dialog", async () => {
    await gw.setClock("2026-11-30T16:10:00Z");
    await page.reload();
    await page.locator(`.wk-block[data-booking="${b1}"]`).click();
    const dlg = page.getByRole("dialog");
    await dlg.getByRole("button", { name: "Mark Complete" }).click();
    await dlg.locator("#dlg-status", { hasText: "Completed" }).waitFor();
    await dlg.locator("#no-move").waitFor();
    const b = await gw.ok("GET", `${O}/bookings/${b1}`, undefined, admin.token);
    c.eq(b.status, "completed", "completed");
    const r = await gw.api("POST", `${O}/bookings/${b1}/reschedule`,
      { start: "2026-12-01T09:00:00Z" }, tia.token);
    c.eq(r.status, 409, "and the API refuses to move it");
    await page.keyboard.press("Escape");
    c.check((await page.locator(`.wk-block[data-booking="${b1}"]`).getAttribute("class"))
      .includes("wk-completed"), "the block shows it completed");
  });

  await c.step("previous and next week", async () => {
    await page.getByRole("link", { name: "Next week" }).click();
    await page.waitForURL(/week=2026-12-07/);
    await page.locator("#week .staff-hint", { hasText: "0 sessions" }).waitFor();
    c.check(true, "next week is empty");
    await page.getByRole("link", { name: "Previous week" }).click();
    await page.waitForURL(/week=2026-11-30/);
    await page.locator(`.wk-block[data-booking="${b1}"]`).waitFor();
    c.check(true, "and back");
  });

  await c.step("the admin sees every trainer's sessions, and filters by trainer", async () => {
    const ap = (await signIn(browser, gw, env.org.id, "ada@by.test")).page;
    await ap.goto(week);
    await ap.locator(`.wk-block[data-booking="${b2}"]`).waitFor();
    const label = await ap.locator(`.wk-block[data-booking="${b2}"]`).textContent();
    c.check(/Dora Cust/.test(label) && /Tom Trainer/.test(label),
      "Tom's block names him: " + label);
    c.eq(await ap.locator(".wk-block").count(), 3, "three sessions of two trainers");
    await a11y(ap, "calendar (admin)");
    await shot(ap, "calendar-admin");
    await ap.getByLabel("Trainer").selectOption({ label: "Tom Trainer" });
    await ap.waitForURL(new RegExp(`trainer=${tom.id}`));
    await ap.locator(`.wk-block[data-booking="${b2}"]`).waitFor();
    c.eq(await ap.locator(".wk-block").count(), 1, "only Tom's with the filter");
  });
  c.eq(pageErrors, [], "no script error or CSP refusal on any page");
} catch (e) {
  c.check(false, "unexpected: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  await gw.stop();
}
c.done();
