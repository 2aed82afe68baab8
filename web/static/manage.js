// manage.js - the customer's booking link (/b/{token}): the booking in the customer's time
// zone, Cancel (with a reason) and Move to another free slot until the cutoff; after it, whom
// to contact. GET /v1/manage/{token}, POST .../cancel, POST .../reschedule.
import {
  api, busy, clearErrors, dayKey, fieldError, fmtDay, fmtTime, fmtWhen, focusHeading, h, localZone,
  pathToken, setTitle, show, showApiError, zoneSelect,
} from "./common.js";

const app = document.getElementById("app");
const base = "/v1/manage/" + encodeURIComponent(pathToken());
const state = { zone: localZone(), view: null, notice: null };
const STATUS = {
  pending_payment: "Waiting for payment", confirmed: "Confirmed", completed: "Completed",
  no_show: "Missed", cancelled: "Cancelled",
};

function fail(err) {
  setTitle(err.status === 404 ? "Link not found" : err.status === 410 ? "Link expired"
    : "Something went wrong");
  const text = err.status === 404 ? "This booking link is not valid. Open the whole link from " +
    "your confirmation email." : err.status === 410 ? "This link has expired or was replaced; " +
    "use the link in your latest email." : err.message;
  show(app, h("div", { class: "notice error", role: "alert" }, h("p", {}, text)));
}

async function load() {
  try {
    state.view = await api("GET", base);
  } catch (err) {
    return fail(err);
  }
  render();
}

function render() {
  const v = state.view;
  const trainer = (v.trainer && v.trainer.name) || "your trainer";
  setTitle("Your booking");
  const parts = [];
  if (state.notice) {
    parts.push(h("div", { class: "notice ok", role: "status", tabindex: "-1", id: "notice" },
      h("p", {}, state.notice)));
  }
  parts.push(zoneSelect("zone", state.zone, (z) => {
    state.zone = z;
    render();
    document.getElementById("zone").focus();
  }));
  parts.push(h("div", { class: "card" }, h("dl", { class: "facts" },
    h("dt", {}, "When"), h("dd", { id: "when" }, `${fmtWhen(v.start, v.end, state.zone)}`),
    h("dt", {}, "Session"), h("dd", {}, (v.session_type && v.session_type.name) || "Session"),
    h("dt", {}, "Trainer"), h("dd", {}, trainer),
    h("dt", {}, "Status"), h("dd", {}, h("span", { class: "status", id: "status" },
      STATUS[v.status] || v.status)))));
  const open = v.status === "pending_payment" || v.status === "confirmed";
  if (open && (v.can_cancel || v.can_reschedule)) {
    if (v.change_cutoff_at) {
      parts.push(h("p", { class: "muted" }, "You can change or cancel this booking here until " +
        `${fmtWhen(v.change_cutoff_at, null, state.zone)}.`));
    }
    if (v.can_reschedule) parts.push(moveForm(v));
    if (v.can_cancel) parts.push(cancelForm());
  } else if (open) {
    const when = v.change_cutoff_at ? ` (changes closed ${fmtWhen(v.change_cutoff_at, null,
      state.zone)})` : "";
    parts.push(h("div", { class: "notice", id: "contact" }, h("p", {},
      `This booking can no longer be changed online${when}. To change or cancel it, ` +
      `please contact ${trainer}.`)));
  }
  show(app, parts);
}

function moveForm(v) {
  const days = new Map();
  for (const s of v.slots || []) {
    if (s.start === v.start) continue;
    const k = dayKey(s.start, state.zone);
    if (!days.has(k)) days.set(k, []);
    days.get(k).push(s);
  }
  const form = h("form", { id: "move", novalidate: true }, h("h2", {}, "Move to another time"));
  if (!days.size) {
    form.append(h("p", { class: "muted" }, "There are no other free times to move to."));
    return form;
  }
  const groups = [];
  for (const [k, list] of days) {
    groups.push(h("div", { class: "day" }, h("h3", { id: "mday-" + k }, fmtDay(list[0].start, state.zone)),
      h("ul", { class: "choices", "aria-labelledby": "mday-" + k }, list.map((s, i) => {
        const id = `move-${k}-${i}`;
        return h("li", { class: "choice" },
          h("input", { type: "radio", name: "start", id, value: s.start }),
          h("label", { for: id }, fmtTime(s.start, state.zone)));
      }))));
  }
  form.append(h("fieldset", { class: "field" }, h("legend", {}, "Free times"), groups),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Move booking")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const picked = form.querySelector("input[name=start]:checked");
    if (!picked) return fieldError(form, "start", "Choose the new time first.");
    try {
      await busy(form, () => api("POST", base + "/reschedule", { start: picked.value }));
    } catch (err) {
      if (err.code === "slot_taken") {
        state.notice = null;
        await load();
        const f = document.getElementById("move");
        if (f) showApiError(f, { message: "Sorry, that time was just taken. Please choose another." });
        return;
      }
      return showApiError(form, err);
    }
    state.notice = "Your booking was moved. You will get an updated calendar invite by email.";
    await load();
    document.getElementById("notice")?.focus();
  });
  return form;
}

function cancelForm() {
  const form = h("form", { id: "cancel", novalidate: true }, h("h2", {}, "Cancel the booking"),
    h("div", { class: "field" },
      h("label", { for: "reason" }, "Reason"),
      h("p", { class: "hint", id: "reason-hint" }, "Tell your trainer why you cancel."),
      h("textarea", { id: "reason", name: "reason", maxlength: 1000, rows: 3, required: true,
        "aria-describedby": "reason-hint" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Cancel booking")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const reason = form.elements.reason.value.trim();
    if (!reason) return fieldError(form, "reason", "Enter a reason for cancelling.");
    if (new TextEncoder().encode(reason).length > 1000) {
      return fieldError(form, "reason", "The reason is too long (at most 1000 characters).");
    }
    try {
      await busy(form, () => api("POST", base + "/cancel", { reason }));
    } catch (err) {
      return showApiError(form, err);
    }
    state.notice = "Your booking is cancelled. You will get a confirmation by email.";
    await load();
    document.getElementById("notice")?.focus();
  });
  return form;
}

load();
