// dashboard.js - /dashboard, the trainer's page: New Requests (unclaimed ones for their
// skills), My Requests (claimed, waiting for the customer), My Upcoming Sessions with the
// session link and the booking actions the API allows now (Confirm Payment, Mark Complete,
// Mark No-Show), private notes, the weekly hours and blackouts, and the calendar connection.
import {
  act, api, clear, clearFieldErrors, dialog, el, errorText, fieldError, fmt, header, label,
  notesPanel, say, showError, staffSession, utcToZoned, zonedToUtc,
} from "./staff.js";

const msg = document.getElementById("msg");
const DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];
let s;

function table(caption, heads, rows, empty) {
  if (!rows.length) return el("p", { class: "staff-none", text: empty });
  return el("table", { class: "staff-table" },
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows));
}

function requestLink(r) {
  return el("a", { href: `/requests/${r.id}`,
    text: (r.customer && r.customer.name) || `Request ${r.id}` });
}

async function loadRequests() {
  const all = await api("GET", `${s.base}/requests`);
  const fresh = all.filter((r) => r.status === "new");
  const mine = all.filter((r) => r.trainer_id === s.user.id &&
    ["claimed", "scheduling"].includes(r.status));
  clear(document.getElementById("new-requests"), table("New Requests",
    ["Customer", "Skills", "Received", "Status"],
    fresh.map((r) => el("tr", {}, el("td", {}, requestLink(r)),
      el("td", { text: (r.skills || []).join(", ") }),
      el("td", { text: fmt(r.created_at, s.zone) }),
      el("td", { text: label("request", r.status) }))),
    "No new requests for your skills."));
  clear(document.getElementById("my-requests"), table("My Requests",
    ["Customer", "Session type", "Status", "Scheduling link"],
    mine.map((r) => el("tr", {}, el("td", {}, requestLink(r)),
      el("td", { text: r.session_type ? r.session_type.name : "not chosen" }),
      el("td", { text: label("request", r.status) }),
      el("td", { text: r.link_sent_at ? "sent " + fmt(r.link_sent_at, s.zone) : "not sent" }))),
    "You have no open requests."));
}

const ACTION_LABELS = {
  "confirm-payment": "Confirm Payment", complete: "Mark Complete", "no-show": "Mark No-Show",
};

/* sessionLink - Open in Zoho Assist when the booking has a session link, else the delivery */
function sessionLink(b) {
  if (b.session_link) {
    return el("a", { href: b.session_link, class: "btn", rel: "noopener", target: "_blank",
      text: "Open in Zoho Assist" });
  }
  return el("span", { text: label("delivery", s.orgInfo.delivery_method || "manual") });
}

function bookingButtons(b) {
  const who = (b.customer && b.customer.name) || "the customer";
  const out = [];
  for (const a of ["confirm-payment", "complete", "no-show"]) {
    if (!(b.actions || []).includes(a)) continue;
    const btn = el("button", { type: "button", class: "btn", "data-action": a,
      "aria-label": `${ACTION_LABELS[a]}: ${who}, ${fmt(b.start, s.zone)}`,
      text: ACTION_LABELS[a] });
    btn.addEventListener("click", async () => {
      const body = a === "no-show" ? { customer: true } : undefined;
      const r = await act(btn, msg, () => api("POST", `${s.base}/bookings/${b.id}/${a}`, body),
        `${ACTION_LABELS[a]}: done for ${who}.`);
      if (r) await loadSessions();
    });
    out.push(btn);
  }
  const notes = el("button", { type: "button", class: "btn btn-quiet",
    "aria-label": `Notes: ${who}, ${fmt(b.start, s.zone)}`, text: "Notes" });
  notes.addEventListener("click", async () => {
    const { body } = dialog(`Notes on ${who}'s session`);
    await notesPanel(s, b.id, body);
  });
  out.push(notes);
  return el("div", { class: "staff-actions" }, out);
}

async function loadSessions() {
  const list = await api("GET", `${s.base}/bookings?trainer_id=${s.user.id}`);
  const open = list.filter((b) => b.trainer_id === s.user.id &&
    ["pending_payment", "confirmed"].includes(b.status))
    .sort((a, b) => (a.start < b.start ? -1 : 1));
  clear(document.getElementById("my-sessions"), table("My Upcoming Sessions",
    ["When", "Customer", "Session type", "Status", "Session link", "Actions"],
    open.map((b) => el("tr", { "data-booking": b.id },
      el("td", { text: fmt(b.start, s.zone) + " - " + fmt(b.end, s.zone, {
        weekday: undefined, day: undefined, month: undefined, year: undefined }) }),
      el("td", { text: (b.customer && b.customer.name) || "" }),
      el("td", { text: b.session_type ? b.session_type.name : "" }),
      el("td", {}, el("span", { class: "staff-badge staff-badge-" + b.status,
        text: label("booking", b.status) })),
      el("td", {}, sessionLink(b)),
      el("td", {}, bookingButtons(b)))),
    "No upcoming sessions."));
}

/* ---- availability ---- */

let rowSeq = 0;

function weeklyRow(w = { day: "mon", start: "09:00", end: "17:00" }) {
  const n = ++rowSeq;
  const tr = el("tr", { class: "staff-weekly-row" });
  const day = el("select", { id: `w-day-${n}`, "aria-label": "Day" },
    DAYS.map(([k, v]) => el("option", { value: k, text: v, selected: k === w.day })));
  const a = el("input", { type: "time", id: `w-start-${n}`, value: w.start, required: true,
    "aria-label": "From" });
  const b = el("input", { type: "time", id: `w-end-${n}`, value: w.end, required: true,
    "aria-label": "Until" });
  const rm = el("button", { type: "button", class: "btn btn-quiet", text: "Remove",
    "aria-label": "Remove these hours" });
  rm.addEventListener("click", () => tr.remove());
  tr.append(el("td", {}, day), el("td", {}, a), el("td", {}, b), el("td", {}, rm));
  tr.read = () => ({ day: day.value, start: a.value, end: b.value });
  return tr;
}

/* local - an instant as the value of a datetime-local input in the trainer's zone */
function local(iso) {
  const p = utcToZoned(iso, s.zone);
  const z = (x) => String(x).padStart(2, "0");
  return `${p.y}-${z(p.mo)}-${z(p.d)}T${z(p.h)}:${z(p.mi)}`;
}

/* instant - a datetime-local value in the trainer's zone as RFC 3339 UTC, or null */
function instant(v) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(v || "");
  if (!m) return null;
  const t = zonedToUtc(+m[1], +m[2], +m[3], +m[4], +m[5], s.zone);
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function blackoutRow(bk) {
  const n = ++rowSeq;
  const tr = el("tr", { class: "staff-blackout-row" });
  const a = el("input", { type: "datetime-local", id: `b-start-${n}`, "aria-label": "From",
    value: bk ? local(bk.start) : "" });
  const b = el("input", { type: "datetime-local", id: `b-end-${n}`, "aria-label": "Until",
    value: bk ? local(bk.end) : "" });
  const rm = el("button", { type: "button", class: "btn btn-quiet", text: "Remove",
    "aria-label": "Remove this blackout" });
  rm.addEventListener("click", () => tr.remove());
  tr.append(el("td", {}, a), el("td", {}, b), el("td", {}, rm));
  tr.read = () => ({ start: instant(a.value) || a.value, end: instant(b.value) || b.value });
  return tr;
}

async function loadAvailability() {
  const box = document.getElementById("availability");
  if (!s.isTrainer) {
    clear(box, el("p", { class: "staff-none", text: "Only trainers have working hours." }));
    return;
  }
  const av = await api("GET", `${s.base}/users/${s.user.id}/availability`);
  const weekly = el("tbody", {}, (av.weekly || []).map((w) => weeklyRow(w)));
  const blackouts = el("tbody", {}, (av.blackouts || []).map((b) => blackoutRow(b)));
  const addW = el("button", { type: "button", class: "btn btn-quiet", text: "Add hours" });
  addW.addEventListener("click", () => {
    const r = weeklyRow();
    weekly.append(r);
    r.querySelector("select").focus();
  });
  const addB = el("button", { type: "button", class: "btn btn-quiet", text: "Add blackout" });
  addB.addEventListener("click", () => {
    const r = blackoutRow(null);
    blackouts.append(r);
    r.querySelector("input").focus();
  });
  const region = el("p", { class: "staff-msg", role: "status", hidden: true });
  const form = el("form", { id: "availability-form", novalidate: true },
    el("fieldset", { name: "weekly", id: "weekly", "data-field": "weekly" },
      el("legend", { text: `Weekly hours (${s.zone})` }),
      el("table", { class: "staff-table" }, el("thead", {}, el("tr", {},
        ["Day", "From", "Until", ""].map((h) => el("th", { scope: "col", text: h })))), weekly),
      addW),
    el("fieldset", { name: "blackouts", id: "blackouts", "data-field": "blackouts" },
      el("legend", { text: "Blackouts (days off, holidays)" }),
      el("table", { class: "staff-table" }, el("thead", {}, el("tr", {},
        ["From", "Until", ""].map((h) => el("th", { scope: "col", text: h })))), blackouts),
      addB),
    el("button", { type: "submit", class: "btn btn-primary", text: "Save Availability" }),
    region);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const body = {
      weekly: [...weekly.children].map((r) => r.read()),
      blackouts: [...blackouts.children].map((r) => r.read()),
    };
    try {
      await api("PUT", `${s.base}/users/${s.user.id}/availability`, body);
      say(region, "Availability saved.", "ok");
    } catch (e) {
      say(region, "", "ok");
      if (e.field === "weekly" || e.field === "blackouts") fieldError(form, e.field, errorText(e));
      else say(region, errorText(e), "error");
    }
  });
  clear(box, form);
}

/* ---- calendar connection ---- */

async function loadCalendar() {
  const box = document.getElementById("calendar-conn");
  if (!s.isTrainer) {
    clear(box, el("p", { class: "staff-none", text: "Only trainers connect a calendar." }));
    return;
  }
  const me = await api("GET", `${s.base}/users/${s.user.id}`);
  const cal = me.calendar;
  const parts = [];
  if (cal) {
    const ok = cal.status === "connected";
    parts.push(el("p", { id: "calendar-status" },
      `${cal.provider[0].toUpperCase() + cal.provider.slice(1)} calendar: `,
      el("span", { class: "staff-badge staff-badge-" + (ok ? "confirmed" : "cancelled"),
        text: ok ? "connected" : "needs reconnecting" })));
    if (!ok && cal.last_error) {
      parts.push(el("p", { class: "staff-hint", text: "Reason: " + cal.last_error }));
    }
  } else {
    parts.push(el("p", { id: "calendar-status", text: "No calendar connected: sessions are not " +
      "added to a calendar, and your busy times are not taken into account." }));
  }
  const provs = s.orgInfo.calendar_providers || [];
  const names = { google: "Google Calendar", outlook: "Outlook" };
  if (provs.length) {
    parts.push(el("div", { class: "staff-actions" }, provs.map((p) => el("a", {
      class: "btn", href: `${s.base}/users/${s.user.id}/calendar/connect?provider=${p}`,
      text: (cal && cal.provider === p ? "Reconnect " : "Connect ") + names[p] }))));
  } else if (!cal) {
    parts.push(el("p", { class: "staff-hint", text: "Your organisation has not set up a " +
      "calendar provider yet." }));
  }
  clear(box, parts);
}

async function section(id, fn) {
  try {
    await fn();
  } catch (e) {
    showError(document.getElementById(id), e);
  }
}

(async () => {
  s = await staffSession();
  header(s);
  await Promise.all([
    section("new-requests", async () => {
      try {
        await loadRequests();
      } catch (e) {
        showError(document.getElementById("my-requests"), e);
        throw e;
      }
    }),
    section("my-sessions", loadSessions),
    section("availability", loadAvailability),
    section("calendar-conn", loadCalendar),
  ]);
})();
