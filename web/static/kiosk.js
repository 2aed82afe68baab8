// kiosk.js - the check-in kiosk (/kiosk). The device is signed in by an org admin's session, or
// by a kiosk token typed once (kept in this browser's localStorage, sent as a bearer token).
// The customer types their email, sees their sessions in the check-in window and confirms.
// POST /v1/orgs/{org}/checkin {customer_email, confirm}.
import {
  api, busy, clearErrors, fieldError, fmtTime, fmtDay, focusHeading, h, renderHeader, session,
  setTitle, show, showApiError,
} from "./common.js";

const app = document.getElementById("app");
const KEY = "ordinatus.kiosk";
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const kiosk = { org: null, token: null, zone: "UTC", name: "" };
let resetTimer = null;

function stored() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || "null");
    return v && Number.isInteger(v.org) && typeof v.token === "string" ? v : null;
  } catch {
    return null;
  }
}

async function start() {
  const s = await session();
  if (s && s.user && (s.user.roles || []).includes("org_admin")) {
    kiosk.org = s.user.org_id;
  } else {
    const k = stored();
    if (!k) return setup();
    kiosk.org = k.org;
    kiosk.token = k.token;
  }
  try {
    const org = await api("GET", `/v1/orgs/${kiosk.org}`, undefined, { token: kiosk.token });
    kiosk.zone = org.timezone || "UTC";
    kiosk.name = org.name || "";
  } catch (err) {
    if (kiosk.token && (err.status === 401 || err.status === 403 || err.status === 404)) {
      localStorage.removeItem(KEY);
      return setup("This device's kiosk token no longer works. Enter a new one.");
    }
    show(app, h("div", { class: "notice error", role: "alert" }, h("p", {}, err.message)));
    return;
  }
  renderHeader({ org: kiosk.name });
  ask();
}

function setup(message) {
  setTitle("Set up the kiosk");
  const form = h("form", { id: "setup", novalidate: true },
    message ? h("div", { class: "notice error", role: "alert" }, h("p", {}, message)) : null,
    h("p", {}, "An administrator sets this device up once: enter the organisation number and " +
      "the kiosk token. They stay in this browser."),
    h("div", { class: "field" }, h("label", { for: "org" }, "Organisation number"),
      h("input", { type: "text", inputmode: "numeric", id: "org", name: "org",
        autocomplete: "off", required: true })),
    h("div", { class: "field" }, h("label", { for: "token" }, "Kiosk token"),
      h("input", { type: "password", id: "token", name: "token", autocomplete: "off",
        required: true })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"),
      h("a", { href: "/login" }, "Sign in as an administrator instead")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const org = form.elements.org.value.trim();
    const token = form.elements.token.value.trim();
    if (!/^[1-9][0-9]{0,17}$/.test(org)) {
      return fieldError(form, "org", "Enter the organisation number (digits only).");
    }
    if (!token) return fieldError(form, "token", "Enter the kiosk token.");
    try {
      await busy(form, () => api("GET", `/v1/orgs/${org}`, undefined, { token }));
    } catch (err) {
      if (err.status === 401) return fieldError(form, "token", "This token is not valid.");
      if (err.status === 403) return fieldError(form, "token", "This token may not run a kiosk.");
      if (err.status === 404) {
        return fieldError(form, "org", "This token does not belong to that organisation.");
      }
      return showApiError(form, err);
    }
    localStorage.setItem(KEY, JSON.stringify({ org: Number(org), token }));
    start();
  });
  show(app, form);
}

function forget() {
  localStorage.removeItem(KEY);
  location.reload();
}

function ask(notice) {
  clearTimeout(resetTimer);
  setTitle("Check in");
  const form = h("form", { id: "find", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "email" }, "Your email"),
      h("p", { class: "hint", id: "email-hint" }, "The address you booked with."),
      h("input", { type: "email", id: "email", name: "customer_email", autocomplete: "off",
        required: true, "aria-describedby": "email-hint" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Find my session")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const email = form.elements.customer_email.value.trim();
    if (!EMAIL.test(email)) {
      return fieldError(form, "customer_email", "Enter your email address, like name@example.com.");
    }
    let r;
    try {
      r = await busy(form, () => checkin(email, false));
    } catch (err) {
      return showApiError(form, err);
    }
    found(email, r.bookings || []);
  });
  show(app, notice || null, form,
    kiosk.token ? h("p", { class: "muted" }, h("button", { type: "button", class: "link",
      onclick: forget }, "Forget this device")) : null);
  document.getElementById("email").focus();
}

function checkin(email, confirm) {
  return api("POST", `/v1/orgs/${kiosk.org}/checkin`, { customer_email: email, confirm },
    { token: kiosk.token });
}

function found(email, bookings) {
  if (!bookings.length) {
    return ask(h("div", { class: "notice error", role: "alert" }, h("p", {},
      "We found no session for this email that starts soon. Check the address, or ask at the " +
      "desk.")));
  }
  setTitle("Your session");
  const open = bookings.filter((b) => !b.checked_in);
  const list = h("ul", { class: "plain" }, bookings.map((b) => h("li", { class: "card" },
    h("dl", { class: "facts" },
      h("dt", {}, "Name"), h("dd", {}, (b.customer && b.customer.first_name) || ""),
      h("dt", {}, "Time"), h("dd", {}, `${fmtDay(b.start, kiosk.zone)}, ` +
        `${fmtTime(b.start, kiosk.zone)}–${fmtTime(b.end, kiosk.zone)}`),
      h("dt", {}, "Trainer"), h("dd", {}, (b.trainer && b.trainer.name) || ""),
      b.checked_in ? [h("dt", {}, "Status"), h("dd", {}, "Checked in")] : null))));
  const form = h("form", { id: "confirm", novalidate: true },
    h("div", { class: "actions" },
      open.length ? h("button", { type: "submit" }, "Confirm check-in") : null,
      h("button", { type: "button", class: "secondary", onclick: () => ask() }, "Not me")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await busy(form, () => checkin(email, true));
    } catch (err) {
      return showApiError(form, err);
    }
    done();
  });
  show(app, h("p", {}, open.length ? "Is this you? Confirm to check in." :
    "You are already checked in."), list, form);
  focusHeading(document.querySelector("main"));
}

function done() {
  setTitle("You are checked in");
  show(app, h("div", { class: "notice ok", role: "status" },
    h("p", {}, "You are checked in. Your trainer knows you are here.")),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => ask() },
      "Next customer")));
  focusHeading(document.querySelector("main"));
  resetTimer = setTimeout(() => ask(), 30000);
}

start();
