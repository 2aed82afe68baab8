// schedule.js - the customer's scheduling link (/s/{token}): free slots of the next 14 days by
// day in the customer's time zone, the session length when there are several, Book, then the
// payment reference, then what happens next. GET /v1/schedule/{token}, POST .../booking,
// POST .../payment.
import {
  api, busy, clearErrors, dayKey, fieldError, fmtDay, fmtTime, fmtWhen, focusHeading, h, localZone,
  money, pathToken, setTitle, show, showApiError, zoneSelect,
} from "./common.js";

const app = document.getElementById("app");
const token = pathToken();
const base = "/v1/schedule/" + encodeURIComponent(token);
const state = { zone: localZone(), length: null, view: null, notice: null, chosen: null };

function expired() {
  setTitle("Link expired");
  show(app, h("div", { class: "notice error", role: "alert" },
    h("p", {}, "This link has expired or was replaced; ask your trainer to resend it.")));
}

function unknown() {
  setTitle("Link not found");
  show(app, h("div", { class: "notice error", role: "alert" },
    h("p", {}, "This scheduling link is not valid. Check that you opened the whole link from " +
      "your email, or ask your trainer to resend it.")));
}

function failed(err) {
  if (err.status === 410) return expired();
  if (err.status === 404) return unknown();
  show(app, h("div", { class: "notice error", role: "alert" }, h("p", {}, err.message),
    h("p", {}, h("button", { type: "button", onclick: load }, "Try again"))));
}

async function load() {
  try {
    state.view = await api("GET", base);
  } catch (err) {
    return failed(err);
  }
  render();
}

function render() {
  const v = state.view;
  const open = (v.bookings || []).find((b) => b.status !== "cancelled");
  if (open && open.status === "pending_payment" && !open.paid_at) return renderPay(open);
  if (open) return renderNext(open);
  renderPicker();
}

function lengths() {
  const l = (state.view.session_type && state.view.session_type.lengths) || [];
  return l.length ? l : [...new Set(state.view.slots.map((s) => s.length_minutes).filter(Boolean))];
}

function summary() {
  const v = state.view;
  const st = v.session_type || {};
  const price = money(st.price_cents, st.currency);
  return h("div", { class: "card" }, h("dl", { class: "facts" },
    h("dt", {}, "Session"), h("dd", {}, st.name || "Session"),
    h("dt", {}, "Trainer"), h("dd", {}, (v.trainer && v.trainer.name) || ""),
    price ? [h("dt", {}, "Price"), h("dd", {}, price)] : null));
}

function renderPicker() {
  const v = state.view;
  setTitle("Choose a time");
  const ls = lengths();
  if (!state.length || !ls.includes(state.length)) state.length = ls[0] || null;
  const slots = v.slots.filter((s) => !s.length_minutes || !state.length ||
    s.length_minutes === state.length);
  const days = new Map();
  for (const s of slots) {
    const k = dayKey(s.start, state.zone);
    if (!days.has(k)) days.set(k, []);
    days.get(k).push(s);
  }
  const form = h("form", { id: "book", novalidate: true });
  const parts = [];
  if (state.notice) parts.push(h("div", { class: "notice error", role: "alert" },
    h("p", {}, state.notice)));
  parts.push(zoneSelect("zone", state.zone, (z) => {
    state.zone = z;
    state.notice = null;
    renderPicker();
    document.getElementById("zone").focus();
  }));
  if (ls.length > 1) {
    parts.push(h("fieldset", { class: "field" }, h("legend", {}, "Session length"),
      h("ul", { class: "choices" }, ls.map((m) => h("li", { class: "choice" },
        h("input", {
          type: "radio", name: "length", id: "len-" + m, value: m, checked: m === state.length,
          onchange: () => {
            state.length = m;
            state.notice = null;
            renderPicker();
            document.getElementById("len-" + m).focus();
          },
        }),
        h("label", { for: "len-" + m }, `${m} minutes`))))));
  }
  if (!days.size) {
    parts.push(h("p", { class: "notice" }, "There are no free times in the next 14 days. " +
      "Please ask your trainer for other times."));
  } else {
    const groups = [];
    for (const [k, list] of days) {
      groups.push(h("div", { class: "day" }, h("h3", { id: "day-" + k }, fmtDay(list[0].start, state.zone)),
        h("ul", { class: "choices", "aria-labelledby": "day-" + k }, list.map((s, i) => {
          const id = `slot-${k}-${i}`;
          return h("li", { class: "choice" },
            h("input", { type: "radio", name: "slot", id, value: s.start, "data-end": s.end,
              checked: state.chosen === s.start }),
            h("label", { for: id }, fmtTime(s.start, state.zone)));
        }))));
    }
    parts.push(h("fieldset", { class: "field" },
      h("legend", {}, `Free times (${state.length ? state.length + " minutes, " : ""}next 14 days)`),
      groups));
    if (v.truncated) parts.push(h("p", { class: "muted" }, "Only the first times are shown."));
    parts.push(h("div", { class: "actions sticky" }, h("button", { type: "submit" }, "Book")));
  }
  form.append(...parts);
  form.addEventListener("change", (e) => {
    if (e.target.name === "slot") state.chosen = e.target.value;
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    book(form);
  });
  show(app, summary(), form);
}

async function book(form) {
  clearErrors(form);
  const picked = form.querySelector("input[name=slot]:checked");
  if (!picked) return fieldError(form, "slot", "Choose a time first.");
  const body = { start: picked.value, length_minutes: state.length || undefined };
  try {
    await busy(form, () => api("POST", base + "/booking", body));
  } catch (err) {
    if (err.status === 410) return expired();
    if (err.code === "slot_taken") {
      state.notice = "Sorry, that time was just taken. Please choose another time.";
      state.chosen = null;
      await load();
      const n = app.querySelector("[role=alert]");
      if (n) {
        n.setAttribute("tabindex", "-1");
        n.focus();
      }
      return;
    }
    return showApiError(form, err);
  }
  state.notice = null;
  await load();
  focusHeading(app);
}

function renderPay(b) {
  setTitle("Pay for your session");
  const st = state.view.session_type || {};
  const price = money(st.price_cents, st.currency);
  const form = h("form", { id: "pay", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "reference" }, "Payment reference"),
      h("p", { class: "hint", id: "reference-hint" },
        "The reference or transaction number of your payment, so your trainer can find it."),
      h("input", { type: "text", id: "reference", name: "reference", maxlength: 200,
        autocomplete: "off", required: true, "aria-describedby": "reference-hint" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Record payment")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const ref = form.elements.reference.value.trim();
    if (!ref) return fieldError(form, "reference", "Enter the reference of your payment.");
    if (new TextEncoder().encode(ref).length > 200) {
      return fieldError(form, "reference", "The reference is too long (at most 200 characters).");
    }
    try {
      await busy(form, () => api("POST", base + "/payment", { reference: ref }));
    } catch (err) {
      if (err.status === 410) return expired();
      return showApiError(form, err);
    }
    await load();
    focusHeading(app);
  });
  show(app,
    h("div", { class: "notice ok", role: "status" }, h("p", {},
      `Your time is held: ${fmtWhen(b.start, b.end, state.zone)} (${state.zone}).`)),
    summary(),
    h("h2", {}, "Pay"),
    h("p", {}, price ? `Pay ${price} the way your trainer told you, then record the payment ` +
      "reference here." : "Pay the way your trainer told you, then record the payment reference here."),
    form);
}

function renderNext(b) {
  setTitle("Your session is booked");
  const trainer = (state.view.trainer && state.view.trainer.name) || "Your trainer";
  const paid = !!b.paid_at;
  show(app,
    h("div", { class: "notice ok", role: "status" }, h("p", {},
      `${fmtWhen(b.start, b.end, state.zone)} (${state.zone})`)),
    summary(),
    h("h2", {}, "What happens next"),
    h("ol", { class: "steps" },
      b.status === "confirmed" || b.status === "completed"
        ? h("li", {}, `${trainer} has confirmed your payment.`)
        : h("li", {}, paid ? `${trainer} confirms your payment.`
          : `Pay, then ${trainer} confirms your payment.`),
      h("li", {}, "You will get a confirmation email with a calendar invite."),
      h("li", {}, "That email has a link to move or cancel your booking.")));
}

load();
