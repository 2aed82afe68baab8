// common.js - what every page shares: the API client, the session, form errors, times in a
// time zone, the page header. An ES module; no framework, nothing from outside the gateway, no
// inline script or style (the pages' Content-Security-Policy forbids both).
//
//   api(method, path, body, {token})  JSON call; an error answer is thrown as ApiError
//   session()                         the signed-in user (GET /v1/auth/session), or null
//   fieldError(form, field, message)  a message next to the field; what was typed stays
//   fmtDay / fmtTime / dayKey         an instant shown in an IANA zone (Intl.DateTimeFormat)
//   renderHeader({org, user})         the header: organisation, user and Sign out
//   h(tag, attrs, ...children)        DOM building without innerHTML

/* ApiError - an error answer: .status, .code (the body's "error"), .field, .message */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The gateway answered ${status}.`);
    this.name = "ApiError";
    this.status = status;
    this.code = (body && body.error) || "http_" + status;
    this.field = (body && body.field) || null;
    this.body = body || null;
  }
}

let cachedSession;
let csrfToken = null;

/* setSession - what POST /v1/auth/login answered: the user and the CSRF token */
export function setSession(s) {
  cachedSession = Promise.resolve(s || null);
  csrfToken = (s && s.csrf_token) || null;
}

/* api - one call to the gateway; the session cookie goes along (same origin only), and a
 * state-changing call carries the session's CSRF token when there is one */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (opts.token) headers.Authorization = "Bearer " + opts.token;
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, {
      error: "network",
      message: "The service could not be reached. Check your connection and try again.",
    });
  }
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/* session - the signed-in user {user, csrf_token}, or null; asked once per page */
export function session() {
  if (!cachedSession) {
    cachedSession = api("GET", "/v1/auth/session").then(
      (s) => {
        csrfToken = (s && s.csrf_token) || null;
        return s;
      },
      () => null,
    );
  }
  return cachedSession;
}

/* signOut - end the session and go to the sign-in page */
export async function signOut() {
  try {
    await api("POST", "/v1/auth/sign-out", {});
  } catch {
    /* signed out already, or the gateway is away: the sign-in page either way */
  }
  cachedSession = Promise.resolve(null);
  csrfToken = null;
  location.assign("/login");
}

/* h - an element with attributes (on* as listeners, class, for, aria-*, data-*) and children
 * (strings become text nodes: nothing is parsed as HTML) */
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

/* show - replace what el holds */
export function show(el, ...children) {
  el.replaceChildren(...children.flat().filter(Boolean));
}

/* focusHeading - move focus to el's first heading (after a step changed the page) */
export function focusHeading(el) {
  const head = el.querySelector("h1, h2");
  if (!head) return;
  head.setAttribute("tabindex", "-1");
  head.focus();
}

function fieldControl(form, field) {
  const c = form.elements.namedItem(field);
  if (!c) return null;
  // a radio group: the first radio; its group's fieldset is where the message goes
  return typeof c.length === "number" && !c.tagName ? c[0] : c;
}

/* clearErrors - remove the messages fieldError and formError put in form */
export function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error, .form-error")) e.remove();
  for (const c of form.querySelectorAll("[aria-invalid]")) {
    c.removeAttribute("aria-invalid");
    const ids = (c.getAttribute("aria-describedby") || "").split(" ")
      .filter((id) => id && !id.startsWith("err-"));
    if (ids.length) c.setAttribute("aria-describedby", ids.join(" "));
    else c.removeAttribute("aria-describedby");
  }
}

/* fieldError - message next to form's field, linked by aria-describedby, focus on the field;
 * the value typed stays. Without such a field, formError. */
export function fieldError(form, field, message) {
  const c = fieldControl(form, field);
  if (!c) return formError(form, message);
  const id = `err-${form.id || "form"}-${field}`;
  form.querySelector("#" + CSS.escape(id))?.remove();
  const msg = h("p", { class: "field-error", id }, message);
  const group = c.type === "radio" ? c.closest("fieldset") : null;
  const targets = group ? [...group.querySelectorAll("input")] : [c];
  for (const t of targets) {
    t.setAttribute("aria-invalid", "true");
    const ids = (t.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!ids.includes(id)) ids.push(id);
    t.setAttribute("aria-describedby", ids.join(" "));
  }
  if (group) group.append(msg);
  else (c.closest(".field") || c.parentElement).append(msg);
  c.focus();
  return msg;
}

/* formError - a message at the top of form (role alert) */
export function formError(form, message) {
  form.querySelector(".form-error")?.remove();
  const msg = h("div", { class: "notice error form-error", role: "alert" }, h("p", {}, message));
  form.prepend(msg);
  return msg;
}

/* showApiError - an ApiError on form: by its field when the form has it */
export function showApiError(form, err) {
  if (err && err.field && fieldControl(form, err.field)) return fieldError(form, err.field, err.message);
  return formError(form, (err && err.message) || "Something went wrong. Please try again.");
}

/* busy - disable form's buttons while fn runs */
export async function busy(form, fn) {
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  try {
    return await fn();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/* ---- times ---- */

/* localZone - the browser's IANA time zone */
export function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/* zones - the IANA zones the browser knows, with zone among them */
export function zones(zone) {
  let list = [];
  try {
    list = Intl.supportedValuesOf("timeZone");
  } catch {
    list = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
      "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"];
  }
  if (zone && !list.includes(zone)) list = [zone, ...list];
  if (!list.includes("UTC")) list = [...list, "UTC"];
  return list;
}

const fmtCache = new Map();
function fmt(zone, o) {
  const key = zone + JSON.stringify(o);
  if (!fmtCache.has(key)) fmtCache.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: zone, ...o }));
  return fmtCache.get(key);
}

/* fmtTime - "09:30" in zone */
export function fmtTime(iso, zone) {
  return fmt(zone, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

/* fmtDay - "Monday 30 November 2026" in zone (built from the parts: the same on every ICU) */
export function fmtDay(iso, zone) {
  const p = Object.fromEntries(fmt(zone, { weekday: "long", day: "numeric", month: "long",
    year: "numeric" }).formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.weekday} ${p.day} ${p.month} ${p.year}`;
}

/* fmtWhen - "Monday 30 November 2026, 09:30–10:30" in zone */
export function fmtWhen(start, end, zone) {
  return `${fmtDay(start, zone)}, ${fmtTime(start, zone)}` + (end ? `–${fmtTime(end, zone)}` : "");
}

/* dayKey - "2026-11-30": the calendar day of an instant in zone */
export function dayKey(iso, zone) {
  const p = Object.fromEntries(fmt(zone, { year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}

/* money - "€50.00" */
export function money(cents, currency) {
  if (cents === null || cents === undefined || !currency) return "";
  try {
    return new Intl.NumberFormat("en-GB", { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/* zoneSelect - a labelled select of IANA zones; onchange(zone) */
export function zoneSelect(id, zone, onchange) {
  const sel = h("select", { id, name: "timezone" },
    zones(zone).map((z) => h("option", { value: z, selected: z === zone }, z.replaceAll("_", " "))));
  sel.addEventListener("change", () => onchange(sel.value));
  return h("div", { class: "field" }, h("label", { for: id }, "Time zone"),
    h("p", { class: "hint", id: id + "-hint" }, "Times are shown in this zone."), sel);
}

/* ---- the page frame ---- */

/* renderHeader - the site header: brand, organisation, user and Sign out when signed in */
export function renderHeader({ org, user, nav } = {}) {
  const header = document.getElementById("site-header");
  if (!header) return;
  const parts = [h("a", { class: "brand", href: "/" }, org ? org : "Ordinatus")];
  if (nav && nav.length) {
    parts.push(h("nav", { "aria-label": "Main" },
      h("ul", {}, nav.map(([href, label]) => h("li", {}, h("a", { href }, label))))));
  }
  if (user) {
    parts.push(h("span", { class: "who" }, user.name || user.email || ""));
    parts.push(h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"));
  }
  header.replaceChildren(...parts);
}

/* pathToken - the last path segment (/s/TOKEN, /b/TOKEN, ...) */
export function pathToken() {
  const segs = location.pathname.split("/").filter(Boolean);
  return segs.length > 1 ? decodeURIComponent(segs[segs.length - 1]) : "";
}

/* setTitle - the document title and the page's h1 */
export function setTitle(text) {
  document.title = `${text} – Ordinatus`;
  const h1 = document.querySelector("main h1");
  if (h1) h1.textContent = text;
}
