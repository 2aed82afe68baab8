// test_harness.mjs - the harness itself: a gateway starts and stops by pid, chromium opens a
// page of it, axe runs under the page's CSP, screenshots are written, the maildir parses.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Checks, SCREENS, checkA11y, launch, shot, startGateway } from "./harness.mjs";

const t = new Checks("harness");
const gw = await startGateway();
const browser = await launch();
try {
  await t.step("api and maildir", async () => {
    const h = await gw.api("GET", "/healthz");
    t.eq(h.status, 200, "healthz answers 200");
    const org = await gw.org();
    t.check(Number.isInteger(org.id), "org created");
    t.eq(gw.maildir(), [], "maildir empty before any email");
  });
  await t.step("browser, axe and screenshots", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const r = await page.goto(gw.url + "/healthz");
    t.eq(r.status(), 200, "chromium loads a gateway URL");
    await page.setContent("<!doctype html><html lang=en><title>x</title><main><h1>Hi</h1>" +
      "<img src=x.png></main></html>");
    let failed = false;
    try {
      await checkA11y(page, "bad");
    } catch (e) {
      failed = /image-alt/.test(String(e));
    }
    t.check(failed, "axe reports an image without alt");
    await page.setContent("<!doctype html><html lang=en><title>x</title><main><h1>Hi</h1>" +
      "</main></html>");
    t.check(await checkA11y(page, "good"), "axe passes a clean page");
    await shot(page, "harness");
    t.check(existsSync(join(SCREENS, "harness-phone.png")) &&
      existsSync(join(SCREENS, "harness-laptop.png")), "screenshots written");
    await ctx.close();
  });
} finally {
  await browser.close();
  const e = await gw.stop();
  t.eq(e.code, 0, "gateway exits 0 on SIGTERM");
}
t.done();
