// test_admin.mjs - the org admin's page in Chromium: Reminder Hours Before Session (a bad value
// is refused by the field with what was typed kept, a good one saved and read back), the SMTP
// provider saved from its form with the password write-only, a dead delivery (a local SMTP
// server answering 550) shown with its error and retried with Retry once the server accepts,
// Awaiting Completion with Mark Complete, the booking panel (previous bookings, check-in,
// Undo Checkout once allowed, the delivery timeline), users and roles, the payout chart, and
// DKIM set from the SMTP form (the DNS record shown) with Send Test Email signed by it.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checks, launch, ROOT, shot, sleep } from "./harness.mjs";
import { a11y, bookConfirmed, gateway, orgSetup, signIn, tabTo, pageErrors } from "./staff_lib.mjs";

const c = new Checks("admin");
const gw = await gateway();
const browser = await launch();
const servers = new Set();
process.on("exit", () => {
  for (const p of servers) {
    try {
      p.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/* smtpServer - tests/helpers/smtp_server.py on 127.0.0.1; {port, dir, stop} */
async function smtpServer(dir, args) {
  const p = spawn("/usr/bin/python3", [join(ROOT, "tests/helpers/smtp_server.py"), "--dir", dir,
    ...args], { stdio: ["ignore", "pipe", "inherit"] });
  servers.add(p);
  const port = await new Promise((res, rej) => {
    let buf = "";
    p.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) res(Number(buf.split("\n")[0]));
    });
    p.on("exit", () => rej(new Error("smtp_server.py exited")));
  });
  return {
    port,
    stop: () => new Promise((res) => {
      p.on("exit", res);
      p.kill("SIGTERM");
      servers.delete(p);
    }),
  };
}

try {
  const env = await orgSetup(gw);
  const { O, admin, tia } = env;
  let page;

  await c.step("the admin signs in from the emailed link and lands on /admin", async () => {
    page = (await signIn(browser, gw, env.org.id, "ada@by.test")).page;
    c.eq(new URL(page.url()).pathname, "/admin", "an admin who is no trainer lands on /admin");
    await page.locator("#settings-form").waitFor();
    await a11y(page, "admin");
    await shot(page, "admin");
  });

  await c.step("Reminder Hours Before Session: bad, then good", async () => {
    const input = page.getByLabel("Reminder Hours Before Session");
    c.eq(await input.inputValue(), "24", "the default, 24");
    await input.fill("24, soon");
    await page.getByRole("button", { name: "Save Settings" }).click();
    const err = page.locator("#reminder_hours-error");
    await err.waitFor();
    c.check(/reminder_hours must be/.test(await err.innerText()), "the message is by the field");
    c.eq(await input.getAttribute("aria-invalid"), "true", "the field is marked invalid");
    c.check((await input.getAttribute("aria-describedby")).includes("reminder_hours-error"),
      "and described by the message");
    c.eq(await input.inputValue(), "24, soon", "what was typed stays");
    let st = await gw.ok("GET", O + "/settings", undefined, admin.token);
    c.eq(st.reminder_hours, [24], "nothing was stored");
    await a11y(page, "admin settings error");
    await shot(page, "admin-settings-error");
    await input.fill("48, 2");
    const save = page.getByRole("button", { name: "Save Settings" });
    c.check(await tabTo(page, save, 200), "Save Settings is reached with Tab");
    await page.keyboard.press("Enter");
    await page.getByText("Settings saved.").waitFor();
    c.eq(await page.locator("#reminder_hours-error").count(), 0, "the message is gone");
    st = await gw.ok("GET", O + "/settings", undefined, admin.token);
    c.eq(st.reminder_hours, [48, 2], "GET settings shows [48, 2]");
    await page.reload();
    c.eq(await page.getByLabel("Reminder Hours Before Session").inputValue(), "48, 2",
      "and the page shows it after a reload");
  });

  const mailDir = mkdtempSync(join(tmpdir(), "ordinatus-smtp-"));
  let smtp;
  let deadId;
  await c.step("SMTP saved from its form; a 550 makes a dead delivery", async () => {
    smtp = await smtpServer(mailDir, ["--reject"]);
    const f = page.locator("#prov-smtp");
    await f.getByLabel("Host").fill("127.0.0.1");
    await f.getByLabel("Port").fill(String(smtp.port));
    await f.getByLabel("Security").selectOption("none");
    await f.getByLabel("From address").fill("desk@by.test");
    await f.getByLabel("From name").fill("Berlin Yoga");
    await f.getByLabel("Password", { exact: true }).fill("");
    await f.getByRole("button", { name: "Save Email (SMTP server)" }).click();
    await page.getByText("Email (SMTP server) saved.").waitFor();
    const p = await gw.ok("GET", O + "/providers", undefined, admin.token);
    c.eq([p.email, p.smtp.host, p.smtp.port], ["smtp", "127.0.0.1", smtp.port],
      "the SMTP provider is stored");
    await gw.ok("POST", O + "/requests", { customer: { name: "Rita Reject",
      email: "rita@cust.test" }, skills: ["yoga"] });
    const end = Date.now() + 15000;
    let dead = [];
    while (Date.now() < end) {
      dead = (await gw.ok("GET", O + "/outbox?status=dead", undefined, admin.token))
        .filter((d) => d.kind === "request_received");
      if (dead.length) break;
      await sleep(100);
    }
    c.eq(dead.length, 1, "the customer's receipt is dead");
    deadId = dead[0].id;
    await page.locator("#deliveries").getByRole("button", { name: "Refresh" }).click();
    const row = page.locator(`tr[data-delivery="${deadId}"]`);
    await row.waitFor();
    const t = await row.innerText();
    c.check(/dead/.test(t) && /550/.test(t), "Deliveries shows it dead with its error: " + t);
    await a11y(page, "admin deliveries");
    await shot(page, "admin-deliveries");
  });

  await c.step("Retry once the server accepts: sent", async () => {
    await smtp.stop();
    smtp = await smtpServer(mailDir, ["--port", String(smtp.port)]);
    const row = page.locator(`tr[data-delivery="${deadId}"]`);
    await row.getByRole("button", { name: /^Retry/ }).click();
    await page.getByText(`Delivery ${deadId} will be tried again now.`).waitFor();
    const end = Date.now() + 15000;
    let st = "";
    while (Date.now() < end) {
      const all = await gw.ok("GET", O + "/outbox", undefined, admin.token);
      st = (all.find((d) => d.id === deadId) || {}).status;
      if (st === "sent") break;
      await sleep(100);
    }
    c.eq(st, "sent", "the retried delivery is sent");
    c.check(readdirSync(mailDir).some((n) => n.endsWith(".eml")),
      "the SMTP server received it");
  });

  await c.step("DKIM set from the SMTP form, its DNS record; Send Test Email", async () => {
    const key = spawnSync("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt",
      "rsa_keygen_bits:2048"], { encoding: "utf8" }).stdout;
    const f = page.locator("#prov-smtp");
    c.check(/set: leave empty to keep it|not set/.test(await f.innerText()),
      "secrets show only whether they are set");
    await f.getByLabel("DKIM domain").fill("by.test");
    await f.getByLabel("DKIM selector").fill("s2026");
    await f.getByLabel("DKIM private key (PEM)").fill(key);
    await f.getByRole("button", { name: "Save Email (SMTP server)" }).click();
    await page.getByText("Email (SMTP server) saved.").waitFor();
    const rec = page.locator("#dkim-record");
    await rec.waitFor();
    const t = await rec.innerText();
    c.check(t.includes("s2026._domainkey.by.test") && /v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{300,}/
      .test(t), "the TXT record to publish: " + t.slice(0, 80));
    c.check(!(await page.locator("#prov-smtp").innerText()).includes("PRIVATE KEY"),
      "the private key never comes back");
    const before = readdirSync(mailDir).filter((n) => n.endsWith(".eml")).length;
    await page.locator("#prov-smtp").getByRole("button", { name: "Send Test Email" }).click();
    await page.getByText("A test email is on its way to ada@by.test").waitFor();
    const end = Date.now() + 15000;
    let got = [];
    while (Date.now() < end) {
      got = readdirSync(mailDir).filter((n) => n.endsWith(".eml")).sort();
      if (got.length > before) break;
      await sleep(100);
    }
    c.check(got.length > before, "the SMTP server received the test email");
    const eml = got.length > before ? readFileSync(join(mailDir, got[got.length - 1]), "utf8") : "";
    c.check(/Subject: Test email from Berlin Yoga/.test(eml) && /^To: .*ada@by\.test/m.test(eml),
      "to the admin, \"Test email from Berlin Yoga\"");
    c.check(/^DKIM-Signature: .*d=by\.test/m.test(eml) && /s=s2026/.test(eml),
      "signed with the organisation's DKIM key");
    await a11y(page, "admin providers");
    await shot(page, "admin-providers");
    // back to the maildir for the rest of the test
    await gw.ok("DELETE", O + "/providers/smtp", undefined, admin.token);
    await smtp.stop();
  });

  let b1;
  let b2;
  await c.step("Awaiting Completion: Mark Complete", async () => {
    b1 = await bookConfirmed(gw, env, tia, "Cara Cust", "cara@cust.test", "2026-11-30T10:00:00Z");
    b2 = await bookConfirmed(gw, env, tia, "Cara Cust", "cara@cust.test", "2026-11-30T12:00:00Z");
    await gw.setClock("2026-11-30T13:30:00Z");
    await page.reload();
    const row = page.locator(`#awaiting tr[data-booking="${b1}"]`);
    await row.waitFor();
    c.eq(await page.locator("#awaiting tr[data-booking]").count(), 2, "both ended sessions wait");
    await row.getByRole("button", { name: /^Mark Complete/ }).click();
    await row.waitFor({ state: "detached" });
    const b = await gw.ok("GET", `${O}/bookings/${b1}`, undefined, admin.token);
    c.eq(b.status, "completed", "Mark Complete completed it");
  });

  await c.step("the booking panel: history, check-in, timeline, Undo Checkout", async () => {
    await page.locator(`#awaiting tr[data-booking="${b2}"]`)
      .getByRole("button", { name: /^Details/ }).click();
    const dlg = page.getByRole("dialog");
    await dlg.locator("#panel-status").waitFor();
    c.eq(await dlg.locator("#panel-checkin").innerText(), "not checked in", "check-in status");
    const hist = await dlg.locator("#panel-history").innerText();
    c.check(/Completed/.test(hist) && /Tia Trainer/.test(hist),
      "the customer's previous booking is listed: " + hist);
    const tl = await dlg.locator("#panel-effects").innerText();
    c.check(/confirmation/.test(tl) && /sent/.test(tl), "the delivery timeline: " + tl);
    c.eq(await dlg.getByRole("button", { name: /^Undo Checkout/ }).count(), 0,
      "no Undo Checkout on a confirmed booking");
    await dlg.getByRole("button", { name: /^Mark Complete/ }).click();
    await dlg.locator("#panel-status", { hasText: "Completed" }).waitFor();
    c.eq(await dlg.getByRole("button", { name: /^Undo Checkout/ }).count(), 0,
      "no Undo Checkout while the organisation does not allow it");
    await a11y(page, "admin booking panel");
    await shot(page, "admin-booking");
    await page.keyboard.press("Escape");
    await page.getByLabel("Admins may undo a completion (Undo Checkout)").check();
    await page.getByRole("button", { name: "Save Settings" }).click();
    await page.getByText("Settings saved.").waitFor();
    await page.getByLabel("Customer email").fill("cara@cust.test");
    await page.getByRole("button", { name: "Find Bookings" }).click();
    const row = page.locator(`#customer-bookings tr[data-booking="${b2}"]`);
    await row.getByRole("button", { name: /^Details/ }).click();
    const dlg2 = page.getByRole("dialog");
    await dlg2.getByRole("button", { name: /^Undo Checkout/ }).click();
    await dlg2.locator("#panel-status", { hasText: "Confirmed" }).waitFor();
    const b = await gw.ok("GET", `${O}/bookings/${b2}`, undefined, admin.token);
    c.eq(b.status, "confirmed", "Undo Checkout made it confirmed again");
    await page.keyboard.press("Escape");
  });

  await c.step("users and roles: add a user, change roles", async () => {
    const f = page.locator("#user-form");
    await f.getByLabel("Email").fill("nora@by.test");
    await f.getByLabel("Name").fill("Nora New");
    await f.getByLabel("Skills (comma-separated)").fill("yoga, pilates");
    await f.getByRole("button", { name: "Add User" }).click();
    await page.getByText("Nora New added.").waitFor();
    const users = await gw.ok("GET", O + "/users", undefined, admin.token);
    const nora = users.find((u) => u.email === "nora@by.test");
    c.eq(nora && [nora.roles, nora.skills.sort()], [["trainer"], ["pilates", "yoga"]],
      "Nora is a trainer");
    const row = page.locator(`tr[data-user="${nora.id}"]`);
    await row.getByLabel("Admin").check();
    await row.getByRole("button", { name: "Save Nora New" }).click();
    await page.getByText("Nora New saved.").waitFor();
    const n2 = await gw.ok("GET", `${O}/users/${nora.id}`, undefined, admin.token);
    c.eq(n2.roles.sort(), ["org_admin", "trainer"], "and now an admin too");
  });

  await c.step("the payout chart", async () => {
    await gw.ok("POST", `${O}/bookings/${b2}/no-show`, { customer: true }, admin.token);
    await page.getByLabel("Last week shown (any day of it)").fill("2026-12-02");
    await page.getByRole("button", { name: "Show Report" }).click();
    const fig = page.locator(`#payout-out figure[data-trainer="${tia.id}"]`);
    await fig.waitFor();
    const label = await fig.locator("svg").getAttribute("aria-label");
    c.check(/week of 30 Nov: 1 completed, 1 no-shows/.test(label), "the chart's week: " + label);
    c.eq(await fig.locator(`rect[data-week="2026-11-29T23:00:00Z"]`).getAttribute(
      "data-completed"), "1", "the bar of the week of Monday 30 November (Berlin)");
    c.check((await page.locator("#payout-table").innerText()).includes("1 done, 1 no-show"),
      "the figures' table");
    await a11y(page, "admin payouts");
    await shot(page, "admin-payouts");
  });
  c.eq(pageErrors, [], "no script error or CSP refusal on any page");
} catch (e) {
  c.check(false, "unexpected: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  await gw.stop();
}
c.done();
