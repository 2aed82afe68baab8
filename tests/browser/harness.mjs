// harness.mjs - what the browser tests share: a real gateway, a headless Chromium, axe-core
// accessibility checks, screenshots, and a small checks counter.
//
// Entry points:
//   startGateway({testClock, publicUrl, extraArgs}) - init a data folder in a temp dir and serve
//       build/ordinatus ($ORDINATUS_BIN) on a free 127.0.0.1 port; stop() ends it by its pid
//   launch()            - Debian's /usr/bin/chromium through playwright-core, headless, fresh
//                         profile (playwright makes a new temporary --user-data-dir per launch)
//   checkA11y(page, n)  - axe-core in the page; throws on any WCAG 2.0/2.1 A or AA violation
//   shot(page, n)       - full-page screenshots, phone and laptop, into build/artifacts/screens/
//   new Checks(name)    - check(cond, what), step(what, fn), done(): prints
//                         "name: N checks passed, M failed" and exits non-zero on a failure
//
// Each tests/browser/test_*.mjs is a plain node script; tests/run_browser.sh runs them all.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, "../..");
export const BIN = process.env.ORDINATUS_BIN || join(ROOT, "build/ordinatus");
export const SCREENS = join(ROOT, "build/artifacts/screens");
const AXE_SRC = readFileSync(join(HERE, "node_modules/axe-core/axe.min.js"), "utf8");

// gateways and browsers still running when the script ends (a failed step, an exception) are
// stopped by their pid, so a failing test never leaves a server behind
const running = new Set();
process.on("exit", () => {
  for (const pid of running) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
});

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/* freePort - a TCP port on 127.0.0.1 that nothing listens on right now */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

// Python's mailbox and email packages parse the maildir: a real MIME parser (quoted-printable,
// base64, RFC 2047 headers), the same one the integration tests use.
const MAIL_PY = String.raw`
import email, email.policy, json, mailbox, os, re, sys
path = sys.argv[1]
out = []
if all(os.path.isdir(os.path.join(path, d)) for d in ("tmp", "new", "cur")):
    md = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(md.keys()):
        with md.get_file(key) as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        def part(kind):
            p = m.get_body((kind,))
            return p.get_content() if p is not None else ""
        text, html = part("plain"), part("html")
        links = []
        for u in re.findall(r"https?://[^\s<>\"')]+", text + " " + html):
            u = u.replace("&amp;", "&")
            if u not in links:
                links.append(u)
        out.append({"kind": str(m.get("X-Ordinatus-Kind", "")), "to": str(m.get("To", "")),
                    "subject": str(m.get("Subject", "")), "text": text, "html": html,
                    "links": links})
print(json.dumps(out))
`;

/* startGateway - a fresh data folder and a gateway serving it on a free 127.0.0.1 port */
export async function startGateway({ testClock = true, publicUrl, extraArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ordinatus-browser-"));
  const data = join(dir, "data");
  const init = spawnSync(BIN, ["init", "--data", data], { encoding: "utf8" });
  if (init.status !== 0) throw new Error("ordinatus init failed: " + init.stderr);
  const adminToken = JSON.parse(init.stdout).platform_admin_token;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["serve", "--data", data, "--listen", `127.0.0.1:${port}`,
    "--public-url", publicUrl || url, "--allow-outbound", "127.0.0.0/8", ...extraArgs];
  if (testClock) args.push("--test-clock");
  const logChunks = [];
  const proc = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(proc.pid);
  proc.stdout.on("data", (c) => logChunks.push(c));
  proc.stderr.on("data", (c) => logChunks.push(c));
  let exited = null;
  const exitP = new Promise((r) => proc.on("exit", (code, sig) => {
    exited = { code, sig };
    running.delete(proc.pid);
    r(exited);
  }));
  const log = () => Buffer.concat(logChunks).toString("utf8");

  /* api - one JSON call; {status, json, text, headers} */
  async function api(method, path, body, token, headers = {}) {
    const h = { ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (token) h.Authorization = "Bearer " + token;
    const r = await fetch(url + path, {
      method, headers: h, body: body !== undefined ? JSON.stringify(body) : undefined,
      redirect: "manual",
    });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: r.status, json, text, headers: r.headers };
  }

  /* ok - api() that must answer 200 or 201; its JSON */
  async function ok(method, path, body, token) {
    const r = await api(method, path, body, token);
    if (r.status !== 200 && r.status !== 201 && r.status !== 202) {
      throw new Error(`${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
    }
    return r.json;
  }

  function maildir() {
    const r = spawnSync("/usr/bin/python3", ["-c", MAIL_PY, join(data, "maildir")],
      { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error("maildir parse failed: " + r.stderr);
    return JSON.parse(r.stdout);
  }

  /* waitMail - the first message matching pred (kind, to, ...) within timeout ms */
  async function waitMail(pred, timeout = 10000) {
    const end = Date.now() + timeout;
    for (;;) {
      const m = maildir().filter(pred);
      if (m.length) return m[m.length - 1];
      if (Date.now() > end) throw new Error("no matching email arrived");
      await sleep(100);
    }
  }

  async function stop() {
    if (exited) return exited;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 30000);
    const e = await exitP;
    clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
    return e;
  }

  const end = Date.now() + 10000;
  for (;;) {
    if (exited) throw new Error("gateway exited: " + log());
    try {
      const r = await fetch(url + "/healthz");
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > end) throw new Error("gateway did not start: " + log());
    await sleep(50);
  }

  const gw = { url, dir, data, adminToken, pid: proc.pid, api, ok, maildir, waitMail, stop, log };

  /* setClock - the test clock's now (serve --test-clock) */
  gw.setClock = (now) => ok("PUT", "/v1/test/clock", { now });
  gw.tick = () => ok("POST", "/v1/test/tick", {});
  gw.org = (name = "Acme Training", timezone = "Europe/Berlin") =>
    ok("POST", "/v1/orgs", { name, timezone }, adminToken);
  /* user - a user of org with roles; the answer carries its bearer token */
  gw.user = (org, email, roles, extra = {}) => {
    const { token, ...rest } = extra;
    return ok("POST", `/v1/orgs/${org}/users`, {
      email, name: email.split("@")[0], skills: [], timezone: "Europe/Berlin", ...rest, roles,
    }, token || adminToken);
  };
  /* intakeLimits - raise an org's public intake limits for tests that file many requests */
  gw.intakeLimits = (org, perAddress = 1000, perOrg = 10000) =>
    ok("PATCH", `/v1/orgs/${org}/settings`, {
      intake_per_address_per_minute: perAddress, intake_per_org_per_minute: perOrg,
    }, adminToken);
  /* schedulingLink - a request filed, claimed, typed and sent: the /s/ token from the email */
  gw.schedulingLink = async (org, trainerToken, sessionTypeId, skills, name, email) => {
    const p = `/v1/orgs/${org}`;
    const req = await ok("POST", p + "/requests",
      { customer: { name, email }, session_type_id: sessionTypeId, skills });
    await ok("POST", `${p}/requests/${req.id}/claim`, undefined, trainerToken);
    await ok("PATCH", `${p}/requests/${req.id}`, { session_type_id: sessionTypeId },
      trainerToken);
    await ok("POST", `${p}/requests/${req.id}/scheduling-link`, undefined, trainerToken);
    const m = await waitMail((x) => x.kind === "scheduling_link" && x.to.includes(email));
    const link = m.links.find((u) => u.includes("/s/"));
    return { requestId: req.id, link, token: link.split("/s/")[1] };
  };
  return gw;
}

/* launch - headless Debian chromium; caller closes it */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return browser;
}

const A11Y_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/* checkA11y - axe-core over the page as it is now; throws listing every A/AA violation.
 * The page's CSP forbids injected script tags, so axe's source goes in through the DevTools
 * protocol (page.evaluate), which CSP does not govern. */
export async function checkA11y(page, name) {
  await page.evaluate(AXE_SRC);
  const res = await page.evaluate(async (tags) => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: "tag", values: tags } });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ") + " : " + n.failureSummary).slice(0, 5),
    }));
  }, A11Y_TAGS);
  if (res.length) {
    const lines = res.map((v) => `  ${v.id} (${v.impact}): ${v.help}\n    ` + v.nodes.join("\n    "));
    throw new Error(`axe: ${name}: ${res.length} violation(s)\n` + lines.join("\n"));
  }
  return true;
}

/* shot - full-page screenshots at phone (390x844) and laptop (1280x800) widths */
export async function shot(page, name) {
  mkdirSync(SCREENS, { recursive: true });
  const before = page.viewportSize();
  for (const [w, h, tag] of [[390, 844, "phone"], [1280, 800, "laptop"]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: join(SCREENS, `${name}-${tag}.png`), fullPage: true });
  }
  if (before) await page.setViewportSize(before);
}

/* Checks - counts checks and failed steps; done() prints the summary and sets the exit code */
export class Checks {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
  }

  check(cond, what) {
    if (cond) {
      this.passed++;
    } else {
      this.failed++;
      console.log(`FAIL: ${this.name}: ${what}`);
    }
    return !!cond;
  }

  /* eq - a check that prints both sides when they differ */
  eq(got, want, what) {
    const same = JSON.stringify(got) === JSON.stringify(want);
    return this.check(same, same ? what : `${what}: got ${JSON.stringify(got)}, ` +
      `want ${JSON.stringify(want)}`);
  }

  /* step - runs fn; an exception in it is one failed check, and the script goes on */
  async step(what, fn) {
    try {
      await fn();
    } catch (e) {
      this.failed++;
      console.log(`FAIL: ${this.name}: ${what}: ${e && e.stack ? e.stack : e}`);
    }
  }

  done() {
    console.log(`${this.name}: ${this.passed} checks passed, ${this.failed} failed`);
    process.exit(this.failed || !this.passed ? 1 : 0);
  }
}
