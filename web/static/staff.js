// staff.js - what the staff pages (request, dashboard, calendar, admin) share beyond common.js:
// the signed-in user with their organisation and time zone, a small DOM builder that never
// parses user text as HTML, the labels of the lifecycle's states, time formatting and
// conversion in an IANA zone, and a status line for the outcome of an action.
//
// Nothing here decides what a user may do: the API answers each request and booking with its
// "actions" (what its guards allow now), and the pages offer exactly those.
//
// Entry points: staffSession(), el(), clear(), label(), fmt(), zonedToUtc(), utcToZoned(),
// say(), act(), showError(), errorText().

import * as common from "./common.js";

/* api - one JSON call through common.js (session cookie, CSRF token, JSON errors thrown) */
export const api = common.api;

/* el - an element with attributes ({class, text, ...}) and children (nodes or strings) */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

/* clear - empty a node and append kids */
export function clear(node, ...kids) {
  const keep = (k) => k !== null && k !== undefined && k !== false;
  node.replaceChildren(...kids.flat(Infinity).filter(keep));
  return node;
}

/* staffSession - the signed-in user, their organisation and their zone; not signed in: off to
 * /login?next=this page (and never resolves) */
export async function staffSession() {
  let s = null;
  try {
    s = await common.session();
  } catch {
    s = null;
  }
  if (!s || !s.user) {
    const next = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(next));
    return new Promise(() => {});
  }
  const u = s.user;
  const org = u.org_id;
  const [me, orgInfo] = await Promise.all([
    api("GET", `/v1/orgs/${org}/users/${u.id}`).catch(() => null),
    api("GET", `/v1/orgs/${org}`).catch(() => null),
  ]);
  const roles = new Set(u.roles || []);
  const zone = (me && me.timezone) || (orgInfo && orgInfo.timezone) ||
    Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  return {
    user: u, me: me || u, org, orgInfo: orgInfo || { id: org }, zone, roles,
    isTrainer: roles.has("trainer"), isAdmin: roles.has("org_admin"),
    base: `/v1/orgs/${org}`,
  };
}

const REQUEST_LABELS = {
  new: "New", claimed: "Claimed by Trainer", scheduling: "Customer Scheduling",
  booked: "Booked", closed: "Closed", cancelled: "Cancelled",
};
const BOOKING_LABELS = {
  pending_payment: "Pending Payment", confirmed: "Confirmed", completed: "Completed",
  no_show: "No-Show", cancelled: "Cancelled",
};
const DELIVERY_LABELS = {
  zoho_assist: "Zoho Assist", zoom: "Zoom", google_meet: "Google Meet", teams: "Microsoft Teams",
  phone: "Phone", manual: "Arranged by the trainer",
};

/* label - the words a person reads for a state: kind "request", "booking" or "delivery" */
export function label(kind, value) {
  const t = kind === "request" ? REQUEST_LABELS : kind === "booking" ? BOOKING_LABELS
    : DELIVERY_LABELS;
  return t[value] || String(value || "").replace(/_/g, " ");
}

/* fmt - an RFC 3339 instant as a person reads it in zone ("Tue 1 Dec 2026, 11:00") */
export function fmt(iso, zone, opts = {}) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", hour12: false, ...opts,
  }).format(d);
}

/* parts - the wall-clock fields of instant ms in zone */
function parts(ms, zone) {
  const f = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
  });
  const o = {};
  for (const p of f.formatToParts(new Date(ms))) o[p.type] = p.value;
  return {
    y: +o.year, mo: +o.month, d: +o.day, h: +o.hour % 24, mi: +o.minute, s: +o.second,
    wd: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(o.weekday),
  };
}

/* utcToZoned - {y, mo, d, h, mi, wd} of an instant (ISO string or ms) in zone */
export function utcToZoned(t, zone) {
  return parts(typeof t === "number" ? t : new Date(t).getTime(), zone);
}

/* zonedToUtc - the instant (ms) of wall time y-mo-d h:mi in zone (the earlier one in a fold) */
export function zonedToUtc(y, mo, d, h, mi, zone) {
  const want = Date.UTC(y, mo - 1, d, h, mi);
  let t = want;
  for (let i = 0; i < 3; i++) {
    const p = parts(t, zone);
    const got = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi);
    if (got === want) return t;
    t += want - got;
  }
  return t;
}

/* errorText - the message of a failed call for a person */
export function errorText(e) {
  if (!e) return "Something went wrong.";
  if (e.code === "already_claimed") {
    return "This request has already been claimed by another trainer.";
  }
  return e.message || String(e);
}

/* say - put a message in a status region (role=status or alert) */
export function say(region, text, kind = "ok") {
  if (!region) return;
  region.className = "staff-msg staff-msg-" + kind;
  region.textContent = text || "";
  region.hidden = !text;
}

/* act - run an action from a button: disabled while it runs, its outcome said in region;
 * returns what fn returned, or null after an error (which region shows) */
export async function act(button, region, fn, done) {
  if (button) button.disabled = true;
  try {
    const r = await fn();
    if (done) say(region, done, "ok");
    return r;
  } catch (e) {
    say(region, errorText(e), "error");
    return null;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

/* showError - a page that could not load its data says why */
export function showError(main, e) {
  const p = el("p", { class: "staff-msg staff-msg-error", role: "alert", text: errorText(e) });
  clear(main, p);
}

/* money - cents and a currency code as a price */
export function money(cents, currency) {
  if (cents === null || cents === undefined) return "";
  try {
    return new Intl.NumberFormat("en-GB", { style: "currency", currency: currency || "EUR" })
      .format(cents / 100);
  } catch {
    return (cents / 100).toFixed(2) + " " + (currency || "");
  }
}

/* header - the page header of common.js: the organisation, the staff pages, the user and
 * Sign out */
export function header(s) {
  const nav = [["/dashboard", "Dashboard"], ["/calendar", "Calendar"]];
  if (s.isAdmin) nav.push(["/admin", "Admin"]);
  const render = common.renderHeader;
  if (typeof render === "function") {
    render({ org: (s.orgInfo && s.orgInfo.name) || "Ordinatus", user: s.user, nav });
  }
  for (const a of document.querySelectorAll("#site-header nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
  }
}

/* fieldError - a message next to the form control named field (aria-describedby, aria-invalid),
 * the typed value kept; msg null clears it. Falls back to the form's first control. */
export function fieldError(form, field, message) {
  const named = field && (form.elements.namedItem(field) ||
    form.querySelector(`[data-field="${field}"]`));
  const ctl = named ||
    form.querySelector("input, select, textarea, fieldset");
  const target = ctl instanceof RadioNodeList ? ctl[0] : ctl;
  if (!target) return;
  const eid = (target.id || field || "form") + "-error";
  let m = document.getElementById(eid);
  if (!message) {
    if (m) m.remove();
    target.removeAttribute("aria-invalid");
    return;
  }
  if (!m) {
    m = el("p", { id: eid, class: "field-error staff-field-error" });
    target.insertAdjacentElement("afterend", m);
  }
  m.textContent = message;
  target.setAttribute("aria-invalid", "true");
  const d = (target.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  if (!d.includes(eid)) target.setAttribute("aria-describedby", [...d, eid].join(" "));
  if (typeof target.focus === "function") target.focus();
}

/* clearFieldErrors - remove every field message of form */
export function clearFieldErrors(form) {
  for (const m of form.querySelectorAll(".staff-field-error")) m.remove();
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

/* dialog - a modal dialog with a title and a Close button; returns {dlg, body} (Escape closes;
 * the dialog is removed when closed) */
export function dialog(title) {
  const hid = "dlg-h-" + Math.random().toString(36).slice(2, 8);
  const body = el("div", { class: "staff-dialog-body" });
  const close = el("button", { type: "button", class: "btn staff-dialog-close", text: "Close" });
  const dlg = el("dialog", { class: "staff-dialog", "aria-labelledby": hid },
    el("div", { class: "staff-dialog-head" }, el("h2", { id: hid, text: title }), close), body);
  close.addEventListener("click", () => dlg.close());
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, body };
}

/* notesPanel - the caller's private notes on a booking, with a form to add one */
export async function notesPanel(s, bookingId, into) {
  const list = el("ul", { class: "staff-notes" });
  const fid = "note-" + bookingId;
  const ta = el("textarea", { id: fid, name: "body", rows: 3, maxlength: 4000 });
  const region = el("p", { class: "staff-msg", role: "status", hidden: true });
  const form = el("form", { class: "staff-note-form" },
    el("label", { for: fid, text: "Add a private note" }), ta,
    el("button", { type: "submit", class: "btn", text: "Add Note" }), region);
  async function load() {
    try {
      const notes = await api("GET", `${s.base}/bookings/${bookingId}/notes`);
      const arr = Array.isArray(notes) ? notes : (notes && notes.notes) || [];
      clear(list, arr.length ? arr.map((n) => el("li", {},
        el("span", { class: "staff-note-when", text: fmt(n.created_at, s.zone) + ": " }),
        n.body)) : el("li", { class: "staff-none", text: "No notes yet." }));
    } catch (e) {
      clear(list, el("li", { text: errorText(e) }));
    }
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    try {
      await api("POST", `${s.base}/bookings/${bookingId}/notes`, { body: ta.value });
      ta.value = "";
      say(region, "Note saved.", "ok");
      await load();
    } catch (e) {
      if (e.field) fieldError(form, "body", errorText(e));
      else say(region, errorText(e), "error");
    }
  });
  into.append(el("h3", { text: "Private notes" }), list, form);
  await load();
}
