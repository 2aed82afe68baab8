// request.js - /requests/{id}, the page the "New request available" email links to: who the
// customer is and what they asked, the request's state, and the trainer's next step (Claim
// This Request, the Session Type while claimed, Send or Resend Scheduling Link). Which buttons
// show is what the API answers in the request's "actions".
import {
  act, api, clear, dialog, el, errorText, fmt, header, label, say, showError, staffSession,
} from "./staff.js";

const main = document.getElementById("content");
const msg = document.getElementById("msg");
const id = Number((location.pathname.match(/^\/requests\/(\d+)/) || [])[1]);

let s;

/* bookingOf - the booking made through a booked request, when the caller may see it */
async function bookingOf(req) {
  if (req.status !== "booked" && req.status !== "closed") return null;
  try {
    const list = await api("GET", `${s.base}/bookings` +
      (s.isAdmin ? "" : `?trainer_id=${s.user.id}`));
    const mine = (list || []).filter((b) => b.request_id === req.id);
    return mine.length ? mine[mine.length - 1] : null;
  } catch {
    return null;
  }
}

/* statusText - the request's state in the seeds' words; a booked one by its booking's */
function statusText(req, booking) {
  if (booking) return label("booking", booking.status);
  return label("request", req.status);
}

function row(term, value) {
  return [el("dt", { text: term }), el("dd", {}, value === "" || value === null ||
    value === undefined ? el("span", { class: "staff-none", text: "none" }) : value)];
}

async function render() {
  let req;
  try {
    req = await api("GET", `${s.base}/requests/${id}`);
  } catch (e) {
    if (e.status === 403 && /claimed/.test(e.message || "")) {
      showError(main, { message: "This request has already been claimed by another trainer." });
    } else {
      showError(main, e);
    }
    return;
  }
  const booking = await bookingOf(req);
  const actions = new Set(req.actions || []);
  const c = req.customer || {};
  document.getElementById("title").textContent = `Request from ${c.name || "a customer"}`;
  document.title = `Request from ${c.name || "a customer"} - Ordinatus`;

  const facts = el("dl", { class: "staff-facts" },
    row("Customer", c.name),
    row("Email", c.email ? el("a", { href: "mailto:" + c.email, text: c.email }) : ""),
    row("Phone", c.phone ? el("a", { href: "tel:" + c.phone, text: c.phone }) : ""),
    row("Session type", req.session_type ? req.session_type.name : ""),
    row("Status", el("span", { class: "staff-badge staff-badge-" + (booking ? booking.status
      : req.status), id: "status", text: statusText(req, booking) })),
    row("Trainer", req.trainer ? req.trainer.name : ""),
    row("Received", fmt(req.created_at, s.zone)),
  );
  if (req.link_sent_at) facts.append(...row("Scheduling link sent", fmt(req.link_sent_at, s.zone)));
  if (booking) facts.append(...row("Session", fmt(booking.start, s.zone)));

  const answers = Object.entries(req.answers || {});
  const answersBox = el("section", { class: "staff-card", "aria-labelledby": "answers-h" },
    el("h2", { id: "answers-h", text: "Intake answers" }),
    answers.length
      ? el("dl", { class: "staff-facts" }, answers.map(([k, v]) => row(k.replace(/_/g, " "),
        typeof v === "string" ? v : JSON.stringify(v))))
      : el("p", { class: "staff-none", text: "The customer gave no answers." }));

  const next = el("section", { class: "staff-card", "aria-labelledby": "next-h" },
    el("h2", { id: "next-h", text: "Next step" }));
  const buttons = el("div", { class: "staff-actions" });

  if (actions.has("claim")) {
    const b = el("button", { type: "button", class: "btn btn-primary", id: "claim",
      text: "Claim This Request" });
    b.addEventListener("click", async () => {
      const r = await act(b, msg, () => api("POST", `${s.base}/requests/${id}/claim`));
      if (r) {
        say(msg, "You have claimed this request.", "ok");
        await render();
      } else {
        b.remove();
      }
    });
    buttons.append(b);
  }

  if (actions.has("session-type")) {
    let types = [];
    try {
      types = await api("GET", `${s.base}/session-types`);
    } catch {
      types = [];
    }
    const sel = el("select", { id: "session-type", name: "session_type_id" },
      el("option", { value: "", text: "Choose a session type" }),
      types.map((t) => el("option", { value: t.id, text: t.name,
        selected: req.session_type_id === t.id })));
    sel.addEventListener("change", async () => {
      if (!sel.value) return;
      const r = await act(sel, msg, () => api("PATCH", `${s.base}/requests/${id}`,
        { session_type_id: Number(sel.value) }), "Session type saved.");
      if (r) await render();
    });
    next.append(el("div", { class: "staff-field" },
      el("label", { for: "session-type", text: "Session Type" }), sel));
  }

  if (actions.has("scheduling-link")) {
    const again = !!req.link_sent_at;
    const b = el("button", { type: "button", class: "btn btn-primary", id: "send-link",
      text: again ? "Resend Scheduling Link" : "Send Scheduling Link" });
    b.addEventListener("click", async () => {
      const r = await act(b, msg, () => api("POST", `${s.base}/requests/${id}/scheduling-link`));
      if (r) {
        await render();
        say(msg, `Scheduling link sent to ${c.email} at ${fmt(r.link_sent_at, s.zone)}.`, "ok");
      }
    });
    buttons.append(b);
    if (again) {
      buttons.append(el("p", { class: "staff-hint", id: "link-sent",
        text: `Sent ${fmt(req.link_sent_at, s.zone)}; it works until ` +
          `${fmt(req.link_expires_at, s.zone)}. Resending replaces it.` }));
    }
  }
  if (actions.has("cancel")) {
    const b = el("button", { type: "button", class: "btn btn-quiet", id: "cancel-request",
      text: "Cancel Request" });
    b.addEventListener("click", () => {
      const { dlg, body } = dialog("Cancel this request?");
      const ta = el("textarea", { id: "cancel-reason", name: "reason", rows: 3,
        maxlength: 1000 });
      const region = el("p", { class: "staff-msg", role: "status", hidden: true });
      const yes = el("button", { type: "submit", class: "btn btn-primary",
        text: "Cancel Request" });
      const f = el("form", { class: "staff-note-form" },
        el("p", { text: "The scheduling link stops working. The customer is not emailed." }),
        el("label", { for: "cancel-reason", text: "Reason (optional)" }), ta, yes, region);
      f.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const r = await act(yes, region, () => api("POST", `${s.base}/requests/${id}/cancel`,
          ta.value.trim() ? { reason: ta.value.trim() } : {}));
        if (r) {
          dlg.close();
          await render();
          say(msg, "The request is cancelled.", "ok");
        }
      });
      body.append(f);
      ta.focus();
    });
    buttons.append(b);
  }
  if (buttons.childNodes.length) next.append(buttons);
  if (!actions.size) {
    next.append(el("p", { class: "staff-hint", text: booking
      ? "The customer has booked; the session is on your dashboard."
      : "Nothing to do here now." }));
  }
  next.append(el("p", {}, el("a", { href: "/dashboard", text: "Back to the dashboard" })));

  clear(main, el("section", { class: "staff-card", "aria-labelledby": "who-h" },
    el("h2", { id: "who-h", text: "Request" }), facts), answersBox, next);
}

(async () => {
  s = await staffSession();
  header(s);
  if (!id) {
    showError(main, { message: "This is not a request's address." });
    return;
  }
  try {
    await render();
  } catch (e) {
    say(msg, errorText(e), "error");
  }
})();
