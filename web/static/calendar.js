// calendar.js - /calendar?week=YYYY-MM-DD: a week of sessions as calendar products show them,
// one column per day and each session a block placed by its time (top and height set through
// the CSSOM: the CSP forbids style attributes, not element.style). A trainer sees their own
// sessions; an admin everyone's, with a trainer filter. A block opens the session's details
// in a dialog with the actions the API allows now (Mark Complete, Undo Checkout, Mark No-Show,
// reschedule to one of the free times GET .../bookings/{id}/slots lists) and private notes.
import {
  act, api, clear, dialog, el, errorText, fmt, header, label, notesPanel, say, showError,
  staffSession, utcToZoned, zonedToUtc,
} from "./staff.js";

const weekBox = document.getElementById("week");
const HOUR_PX = 48;
const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
let s;
let monday; // [y, mo, d] of the week shown, in the user's zone
let trainerFilter = "";

const z2 = (x) => String(x).padStart(2, "0");
const ymd = ([y, mo, d]) => `${y}-${z2(mo)}-${z2(d)}`;

/* addDays - [y, mo, d] plus n days (calendar arithmetic in UTC: no zone involved) */
function addDays([y, mo, d], n) {
  const t = new Date(Date.UTC(y, mo - 1, d + n));
  return [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
}

/* mondayOf - the Monday of the week holding day [y, mo, d] */
function mondayOf([y, mo, d]) {
  const wd = new Date(Date.UTC(y, mo - 1, d)).getUTCDay();
  return addDays([y, mo, d], -((wd + 6) % 7));
}

function weekFromUrl() {
  const q = new URLSearchParams(location.search);
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(q.get("week") || "");
  trainerFilter = q.get("trainer") || "";
  if (m) return mondayOf([+m[1], +m[2], +m[3]]);
  const p = utcToZoned(Date.now(), s.zone);
  return mondayOf([p.y, p.mo, p.d]);
}

function href(day, trainer = trainerFilter) {
  const q = new URLSearchParams({ week: ymd(day) });
  if (trainer) q.set("trainer", trainer);
  return "/calendar?" + q.toString();
}

function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/* lanes - side-by-side columns for the overlapping blocks of one day */
function lanes(items) {
  const ends = [];
  for (const it of items) {
    let i = ends.findIndex((end) => end <= it.a);
    if (i < 0) {
      i = ends.length;
      ends.push(0);
    }
    ends[i] = it.e;
    it.lane = i;
  }
  for (const it of items) it.lanes = ends.length;
}

async function render() {
  const first = monday;
  const after = addDays(monday, 7);
  const from = zonedToUtc(first[0], first[1], first[2], 0, 0, s.zone);
  const to = zonedToUtc(after[0], after[1], after[2], 0, 0, s.zone);
  document.getElementById("prev").href = href(addDays(monday, -7));
  document.getElementById("next").href = href(addDays(monday, 7));
  document.getElementById("today").href = "/calendar" + (trainerFilter ? "?trainer=" +
    encodeURIComponent(trainerFilter) : "");
  const last = addDays(monday, 6);
  const title = `Week of ${fmt(iso(from + 12 * 3600e3), s.zone, { weekday: undefined,
    hour: undefined, minute: undefined })} to ${fmt(iso(zonedToUtc(last[0], last[1], last[2],
    12, 0, s.zone)), s.zone, { weekday: undefined, hour: undefined, minute: undefined })}`;
  document.getElementById("week-title").textContent = title;
  document.title = `${title} - Calendar - Ordinatus`;

  let q = `from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`;
  if (!s.isAdmin) q += `&trainer_id=${s.user.id}`;
  else if (trainerFilter) q += `&trainer_id=${encodeURIComponent(trainerFilter)}`;
  const list = await api("GET", `${s.base}/bookings?${q}`);

  // the hours shown: 07:00 to 21:00, widened to hold every session of the week
  let h0 = 7;
  let h1 = 21;
  const days = Array.from({ length: 7 }, () => []);
  for (const b of list) {
    const a = utcToZoned(b.start, s.zone);
    const dayIdx = Math.round((Date.UTC(a.y, a.mo - 1, a.d) -
      Date.UTC(first[0], first[1] - 1, first[2])) / 86400e3);
    if (dayIdx < 0 || dayIdx > 6) continue;
    const startMin = a.h * 60 + a.mi;
    const len = Math.max(15, (new Date(b.end) - new Date(b.start)) / 60000);
    const endMin = Math.min(24 * 60, startMin + len);
    h0 = Math.min(h0, Math.floor(startMin / 60));
    h1 = Math.max(h1, Math.ceil(endMin / 60));
    days[dayIdx].push({ bk: b, a: startMin, e: endMin });
  }
  const hours = h1 - h0;
  const grid = el("div", { class: "wk-grid", role: "group", "aria-label": title });
  grid.append(el("div", { class: "wk-head", "aria-hidden": "true" }));
  const today = utcToZoned(Date.now(), s.zone);
  for (let i = 0; i < 7; i++) {
    const d = addDays(monday, i);
    const isToday = d[0] === today.y && d[1] === today.mo && d[2] === today.d;
    grid.append(el("div", { class: "wk-head" + (isToday ? " wk-today" : ""), id: `wk-day-h-${i}` },
      `${DAY_NAMES[i]} ${d[2]}/${d[1]}`));
  }
  const hourCol = el("div", { class: "wk-hours", "aria-hidden": "true" });
  for (let h = h0; h < h1; h++) {
    hourCol.append(el("div", { class: "wk-hour-label", text: `${z2(h)}:00` }));
  }
  grid.append(hourCol);
  for (let i = 0; i < 7; i++) {
    const d = addDays(monday, i);
    const col = el("div", { class: "wk-day", role: "list", "aria-labelledby": `wk-day-h-${i}`,
      "data-day": ymd(d) });
    col.style.height = `${hours * HOUR_PX}px`;
    col.style.backgroundSize = `100% ${HOUR_PX}px`;
    const items = days[i].sort((p, r) => p.a - r.a);
    lanes(items);
    for (const it of items) {
      const b = it.bk;
      const who = (b.customer && b.customer.name) || "Customer";
      const when = `${fmt(b.start, s.zone, { weekday: "long", year: undefined })} to ` +
        fmt(b.end, s.zone, { weekday: undefined, day: undefined, month: undefined,
          year: undefined });
      const hm = fmt(b.start, s.zone, { weekday: undefined, day: undefined, month: undefined,
        year: undefined });
      const btn = el("button", { type: "button", class: `wk-block wk-${b.status}`,
        "data-booking": b.id, "data-start": b.start },
        el("strong", { text: `${hm} ${who}` }),
        el("span", { text: label("booking", b.status) +
          (s.isAdmin && b.trainer ? ` - ${b.trainer.name}` : "") }),
        el("span", { class: "visually-hidden", text: `, ${when}` }));
      btn.style.top = `${((it.a - h0 * 60) / 60) * HOUR_PX}px`;
      btn.style.height = `${Math.max(22, ((it.e - it.a) / 60) * HOUR_PX - 2)}px`;
      btn.style.left = `calc(${(100 * it.lane) / it.lanes}% + 2px)`;
      btn.style.width = `calc(${100 / it.lanes}% - 4px)`;
      btn.style.right = "auto";
      btn.addEventListener("click", () => details(b.id, btn));
      col.append(el("div", { role: "listitem" }, btn));
    }
    grid.append(col);
  }
  const count = list.length;
  clear(weekBox, el("p", { class: "staff-hint", text: `${count} session${count === 1 ? "" : "s"}` +
    ` this week; times in ${s.zone}.` }), el("div", { class: "wk-scroll" }, grid));
}

const ACTIONS = [["complete", "Mark Complete"], ["undo-complete", "Undo Checkout"],
  ["no-show", "Mark No-Show"]];

/* details - the session's dialog: facts, actions, reschedule, notes */
async function details(id, opener) {
  const { dlg, body } = dialog("Session");
  dlg.addEventListener("close", () => {
    if (opener && opener.isConnected) opener.focus();
  });
  const region = el("p", { class: "staff-msg", role: "status", "aria-live": "polite",
    hidden: true });
  async function fill(done) {
    let b;
    try {
      b = await api("GET", `${s.base}/bookings/${id}`);
    } catch (e) {
      clear(body, el("p", { class: "staff-msg staff-msg-error", text: errorText(e) }));
      return;
    }
    const who = (b.customer && b.customer.name) || "Customer";
    dlg.querySelector("h2").textContent = `${who}, ${fmt(b.start, s.zone)}`;
    const acts = ACTIONS.filter(([a]) => (b.actions || []).includes(a)).map(([a, t]) => {
      const btn = el("button", { type: "button", class: "btn", text: t });
      btn.addEventListener("click", async () => {
        const r = await act(btn, region, () => api("POST", `${s.base}/bookings/${id}/${a}`,
          a === "no-show" ? { customer: true } : undefined));
        if (r) {
          await fill(`${t}: done.`);
          await render();
        }
      });
      return btn;
    });
    const move = el("div", { id: "move" });
    clear(body,
      el("dl", { class: "staff-facts" },
        el("dt", { text: "Status" }), el("dd", {}, el("span", { id: "dlg-status",
          class: "staff-badge staff-badge-" + b.status, text: label("booking", b.status) })),
        el("dt", { text: "When" }), el("dd", { id: "dlg-when", text: `${fmt(b.start, s.zone)} ` +
          `- ${fmt(b.end, s.zone, { weekday: undefined, day: undefined, month: undefined,
            year: undefined })}` }),
        el("dt", { text: "Customer" }), el("dd", { text: `${who} (${(b.customer &&
          b.customer.email) || ""})` }),
        el("dt", { text: "Trainer" }), el("dd", { text: b.trainer ? b.trainer.name : "" }),
        el("dt", { text: "Session type" }), el("dd", { text: b.session_type
          ? b.session_type.name : "" }),
        el("dt", { text: "Check-in" }), el("dd", { text: b.checked_in_at
          ? "checked in " + fmt(b.checked_in_at, s.zone) : "not checked in" })),
      acts.length ? el("div", { class: "staff-actions" }, acts) : null, region,
      el("h3", { text: "Reschedule" }), move);
    if (done) say(region, done, "ok");
    if ((b.actions || []).includes("reschedule")) {
      await slots(b, move, region);
    } else {
      move.append(el("p", { class: "staff-hint", id: "no-move",
        text: `This session is ${label("booking", b.status).toLowerCase()} and can no longer ` +
          "be moved." }));
    }
    const notes = el("div", {});
    body.append(notes);
    await notesPanel(s, id, notes);
  }

  async function slots(b, box, reg) {
    let r;
    try {
      r = await api("GET", `${s.base}/bookings/${b.id}/slots`);
    } catch (e) {
      box.append(el("p", { class: "staff-hint", text: errorText(e) }));
      return;
    }
    const free = (r.slots || []).filter((x) => x.start !== b.start);
    if (!free.length) {
      box.append(el("p", { class: "staff-hint", text: "No free time in the next 14 days." }));
      return;
    }
    const byDay = new Map();
    for (const x of free) {
      const k = fmt(x.start, s.zone, { hour: undefined, minute: undefined });
      if (!byDay.has(k)) byDay.set(k, []);
      byDay.get(k).push(x);
    }
    const sel = el("select", { id: "move-day", name: "day" },
      [...byDay.keys()].map((k) => el("option", { value: k, text: k })));
    const times = el("div", { class: "staff-slots", role: "group", "aria-label": "Free times" });
    function showTimes() {
      clear(times, byDay.get(sel.value).map((x) => {
        const t = fmt(x.start, s.zone, { weekday: undefined, day: undefined, month: undefined,
          year: undefined });
        const btn = el("button", { type: "button", class: "btn btn-quiet", "data-start": x.start,
          "aria-label": `Move to ${sel.value}, ${t}`, text: t });
        btn.addEventListener("click", async () => {
          const res = await act(btn, reg, () => api("POST", `${s.base}/bookings/${b.id}/reschedule`,
            { start: x.start }));
          if (res) {
            await fill(`Moved to ${fmt(res.start, s.zone)}.`);
            await render();
          }
        });
        return btn;
      }));
    }
    sel.addEventListener("change", showTimes);
    box.append(el("div", { class: "staff-field" }, el("label", { for: "move-day",
      text: "Move to a free time on" }), sel), times);
    showTimes();
  }
  await fill();
}

async function trainerSelect() {
  if (!s.isAdmin) return;
  let users = [];
  try {
    users = (await api("GET", `${s.base}/users`))
      .filter((u) => (u.roles || []).includes("trainer"));
  } catch {
    return;
  }
  const sel = el("select", { id: "trainer", name: "trainer" },
    el("option", { value: "", text: "Every trainer" }),
    users.map((u) => el("option", { value: u.id, text: u.name,
      selected: String(u.id) === trainerFilter })));
  sel.addEventListener("change", () => {
    location.assign(href(monday, sel.value));
  });
  clear(document.getElementById("trainer-filter"), el("div", { class: "staff-check" },
    el("label", { for: "trainer", text: "Trainer" }), sel));
}

(async () => {
  s = await staffSession();
  header(s);
  monday = weekFromUrl();
  try {
    await Promise.all([render(), trainerSelect()]);
  } catch (e) {
    showError(weekBox, e);
  }
})();
