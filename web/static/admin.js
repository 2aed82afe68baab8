// admin.js - /admin, the organisation admin's page: Settings (Email Settings with Reminder
// Hours Before Session, no-show, completion, check-in, surveys, undo, customer changes) saved
// with Save Settings; the providers (SMTP with DKIM, Google, Outlook, Zoho; secrets are
// write-only: the page shows whether one is set, never its value); users and roles; Awaiting
// Completion with Mark Complete; a booking panel (the customer's previous bookings, check-in,
// Undo Checkout where allowed, the delivery timeline); Deliveries (pending and dead rows with
// Retry); the payout report with an SVG chart per trainer and week.
import {
  act, api, clear, clearFieldErrors, dialog, el, errorText, fieldError, fmt, header, label,
  money, notesPanel, say, showError, staffSession, utcToZoned, zonedToUtc,
} from "./staff.js";

const msg = document.getElementById("msg");
let s;

function field(id, text, control, hint) {
  const hid = hint ? id + "-hint" : null;
  if (hid) control.setAttribute("aria-describedby", hid);
  return el("div", { class: "staff-field" }, el("label", { for: id, text }),
    hint ? el("p", { class: "staff-hint", id: hid, text: hint }) : null, control);
}

function select(id, name, options, value) {
  return el("select", { id, name }, options.map(([v, t]) => el("option", { value: v, text: t,
    selected: v === value })));
}

function check(id, name, text, on) {
  return el("div", { class: "staff-check" },
    el("input", { type: "checkbox", id, name, checked: !!on }), el("label", { for: id, text }));
}

function num(id, name, value, min, max) {
  return el("input", { type: "text", inputmode: "numeric", id, name, value: value ?? "",
    "data-min": min, "data-max": max });
}

/* intOr - a whole number typed, or what was typed (the gateway names the field then) */
function intOr(v) {
  const t = String(v).trim();
  return /^-?\d+$/.test(t) ? Number(t) : t;
}

/* ---- settings ---- */

async function loadSettings() {
  const st = await api("GET", `${s.base}/settings`);
  const ck = st.checkin || {};
  const f = el("form", { id: "settings-form", novalidate: true },
    el("fieldset", {},
      el("legend", { text: "Email Settings" }),
      field("reminder_hours", "Reminder Hours Before Session",
        el("input", { type: "text", id: "reminder_hours", name: "reminder_hours",
          value: (st.reminder_hours || []).join(", ") }),
        "Hours before the start, separated by commas (for example 24, 1). Empty: no reminders."),
      check("survey_enabled", "survey_enabled", "Send a satisfaction survey after a completed " +
        "session", st.survey_enabled)),
    el("fieldset", {},
      el("legend", { text: "No-shows" }),
      field("no_show_policy", "No-show policy", select("no_show_policy", "no_show_policy",
        [["no_refund", "No refund"], ["contact_support", "Contact support"]], st.no_show_policy),
      "What the no-show email tells the customer.")),
    el("fieldset", {},
      el("legend", { text: "Completion" }),
      field("completion_policy", "Completion policy", select("completion_policy",
        "completion_policy", [["trainer_must_close", "The trainer marks it complete"],
          ["reminder_then_auto_close", "Remind the trainer, then close automatically"],
          ["auto_close", "Close automatically"]], st.completion_policy)),
      el("div", { class: "staff-grid" },
        field("close_reminder_after_minutes", "Remind the trainer after (minutes)",
          num("close_reminder_after_minutes", "close_reminder_after_minutes",
            st.close_reminder_after_minutes)),
        field("auto_close_after_minutes", "Close automatically after (minutes, 30 to 43200)",
          num("auto_close_after_minutes", "auto_close_after_minutes",
            st.auto_close_after_minutes)),
        field("auto_close_action", "Closing automatically", select("auto_close_action",
          "auto_close_action", [["complete", "marks it complete"], ["cancel", "cancels it"]],
          st.auto_close_action))),
      check("allow_undo_completion", "allow_undo_completion",
        "Admins may undo a completion (Undo Checkout)", st.allow_undo_completion)),
    el("fieldset", {},
      el("legend", { text: "Check-in" }),
      el("div", { class: "staff-grid" },
        field("checkin-before", "Opens before the start (minutes)", num("checkin-before",
          "checkin.window_before_minutes", ck.window_before_minutes)),
        field("checkin-after", "Closes after the start (minutes)", num("checkin-after",
          "checkin.window_after_minutes", ck.window_after_minutes))),
      check("checkin-confirm", "checkin.require_confirmation", "The customer confirms at the " +
        "kiosk", ck.require_confirmation),
      check("checkin-log", "checkin.auto_log", "A check-in logs the session as completed",
        ck.auto_log)),
    el("fieldset", {},
      el("legend", { text: "Customers and links" }),
      el("div", { class: "staff-grid" },
        field("customer_change_cutoff_hours", "Customers may cancel or move until (hours " +
          "before the start; 0: never online)", num("customer_change_cutoff_hours",
          "customer_change_cutoff_hours", st.customer_change_cutoff_hours)),
        field("scheduling_link_ttl_hours", "Scheduling links work for (hours)",
          num("scheduling_link_ttl_hours", "scheduling_link_ttl_hours",
            st.scheduling_link_ttl_hours)),
        field("delivery_method", "Sessions are delivered by", select("delivery_method",
          "delivery_method", ["zoho_assist", "zoom", "google_meet", "teams", "phone", "manual"]
            .map((v) => [v, label("delivery", v)]), st.delivery_method)))),
    el("div", { class: "staff-actions" },
      el("button", { type: "submit", class: "btn btn-primary", text: "Save Settings" })),
    el("p", { id: "settings-msg", class: "staff-msg", role: "status", hidden: true }));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(f);
    const v = (n) => f.elements.namedItem(n);
    const body = {
      reminder_hours: v("reminder_hours").value,
      survey_enabled: v("survey_enabled").checked,
      no_show_policy: v("no_show_policy").value,
      completion_policy: v("completion_policy").value,
      close_reminder_after_minutes: intOr(v("close_reminder_after_minutes").value),
      auto_close_after_minutes: intOr(v("auto_close_after_minutes").value),
      auto_close_action: v("auto_close_action").value,
      allow_undo_completion: v("allow_undo_completion").checked,
      checkin: {
        window_before_minutes: intOr(v("checkin.window_before_minutes").value),
        window_after_minutes: intOr(v("checkin.window_after_minutes").value),
        require_confirmation: v("checkin.require_confirmation").checked,
        auto_log: v("checkin.auto_log").checked,
      },
      customer_change_cutoff_hours: intOr(v("customer_change_cutoff_hours").value),
      scheduling_link_ttl_hours: intOr(v("scheduling_link_ttl_hours").value),
      delivery_method: v("delivery_method").value,
    };
    const out = document.getElementById("settings-msg");
    say(out, "");
    try {
      const saved = await api("PATCH", `${s.base}/settings`, body);
      v("reminder_hours").value = (saved.reminder_hours || []).join(", ");
      say(out, "Settings saved.", "ok");
    } catch (e) {
      if (e.field && f.elements.namedItem(e.field)) fieldError(f, e.field, errorText(e));
      else say(out, errorText(e), "error");
    }
  });
  clear(document.getElementById("settings-body"), f);
}

/* ---- providers ---- */

const PROVIDERS = [
  ["smtp", "Email (SMTP server)", [
    ["host", "Host"], ["port", "Port", "int"],
    ["security", "Security", [["starttls", "STARTTLS"], ["tls", "TLS"], ["none", "None"]]],
    ["username", "User name"], ["password", "Password", "secret"],
    ["from_address", "From address"], ["from_name", "From name"],
    ["max_connections", "Connections at most (1 to 64)", "int"],
    ["ca_pem", "CA certificates (PEM) of a private server", "text"],
    ["dkim.domain", "DKIM domain"], ["dkim.selector", "DKIM selector"],
    ["dkim.private_key_pem", "DKIM private key (PEM)", "secret-text"],
  ]],
  ["google", "Google Calendar", [
    ["client_id", "Client ID"], ["client_secret", "Client secret", "secret"],
    ["authorize_url", "Authorization URL"], ["token_url", "Token URL"], ["api_base", "API base"],
  ]],
  ["outlook", "Outlook (Microsoft Graph)", [
    ["tenant", "Tenant"], ["client_id", "Client ID"], ["client_secret", "Client secret", "secret"],
    ["authorize_url", "Authorization URL"], ["token_url", "Token URL"], ["api_base", "API base"],
  ]],
  ["zoho", "Zoho Assist", [
    ["client_id", "Client ID"], ["client_secret", "Client secret", "secret"],
    ["refresh_token", "Refresh token", "secret"], ["accounts_url", "Accounts URL"],
    ["api_base", "API base"],
  ]],
];

function getPath(o, path) {
  return path.split(".").reduce((x, k) => (x && typeof x === "object" ? x[k] : undefined), o);
}

function setPath(o, path, v) {
  const ks = path.split(".");
  let x = o;
  for (const k of ks.slice(0, -1)) x = x[k] = x[k] || {};
  x[ks[ks.length - 1]] = v;
}

function providerForm(name, title, fields, cfg) {
  const f = el("form", { id: `prov-${name}`, class: "staff-card", novalidate: true,
    "aria-labelledby": `prov-${name}-h` });
  const isSet = !!cfg;
  f.append(el("h3", { id: `prov-${name}-h`, text: title }),
    el("p", { class: "staff-hint", text: isSet ? "Configured." : "Not configured" +
      (name === "smtp" ? ": email is written to the data folder's maildir." : ".") }));
  const grid = el("div", { class: "staff-grid" });
  for (const [key, text, kind] of fields) {
    const id = `p-${name}-${key.replace(/\./g, "-")}`;
    const cur = cfg ? getPath(cfg, key) : undefined;
    let ctl;
    let hint;
    if (Array.isArray(kind)) {
      ctl = select(id, key, kind, cur || kind[0][0]);
    } else if (kind === "secret" || kind === "secret-text") {
      const set = cur && typeof cur === "object" && cur.set;
      ctl = kind === "secret" ? el("input", { type: "password", id, name: key,
        autocomplete: "new-password" }) : el("textarea", { id, name: key, rows: 3 });
      hint = set ? "set: leave empty to keep it" : "not set";
      ctl.setAttribute("data-secret", set ? "set" : "");
    } else if (kind === "text") {
      ctl = el("textarea", { id, name: key, rows: 3 });
      ctl.value = cur || "";
    } else {
      ctl = el("input", { type: "text", id, name: key, value: cur ?? "",
        inputmode: kind === "int" ? "numeric" : null });
    }
    ctl.setAttribute("data-kind", Array.isArray(kind) ? "select" : kind || "string");
    grid.append(field(id, text, ctl, hint));
  }
  f.append(grid);
  const out = el("p", { class: "staff-msg", role: "status", hidden: true });
  const save = el("button", { type: "submit", class: "btn btn-primary", text: `Save ${title}` });
  const buttons = el("div", { class: "staff-actions" }, save);
  if (isSet) {
    const del = el("button", { type: "button", class: "btn btn-quiet",
      text: name === "smtp" ? "Remove (back to the maildir)" : "Remove" });
    del.addEventListener("click", async () => {
      const r = await act(del, out, () => api("DELETE", `${s.base}/providers/${name}`));
      if (r) await loadProviders(`${title} removed.`);
    });
    buttons.append(del);
  }
  if (name === "smtp" && isSet) {
    const test = el("button", { type: "button", class: "btn", text: "Send Test Email" });
    test.addEventListener("click", async () => {
      await act(test, out, () => api("POST", `${s.base}/providers/smtp/test`, {}),
        `A test email is on its way to ${s.user.email}; Deliveries shows how it went.`);
      await loadDeliveries();
    });
    buttons.append(test);
  }
  f.append(buttons, out);
  const rec = name === "smtp" && cfg && cfg.dkim && cfg.dkim.dns_record;
  if (rec) {
    f.append(el("div", { class: "staff-field", id: "dkim-record" },
      el("p", {}, "DKIM: publish this TXT record in DNS at ", el("code", { text: rec.name }),
        ":"),
      el("pre", { class: "adm-record", tabindex: 0, "aria-label": "DKIM TXT record",
        text: rec.value })));
  }

  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(f);
    const body = {};
    for (const [key, , kind] of fields) {
      const ctl = f.elements.namedItem(key);
      const v = ctl.value;
      if (kind === "secret" || kind === "secret-text") {
        if (v) setPath(body, key, v);
        else if (ctl.getAttribute("data-secret") === "set") setPath(body, key, { set: true });
      } else if (kind === "int") {
        if (v.trim()) setPath(body, key, intOr(v));
      } else if (v.trim() || Array.isArray(kind)) {
        setPath(body, key, v.trim());
      }
    }
    if (body.dkim && !body.dkim.domain && !body.dkim.selector && !body.dkim.private_key_pem) {
      delete body.dkim;
    }
    try {
      await api("PUT", `${s.base}/providers/${name}`, body);
      await loadProviders(`${title} saved.`);
    } catch (e) {
      if (e.field && f.elements.namedItem(e.field)) fieldError(f, e.field, errorText(e));
      else say(out, errorText(e), "error");
    }
  });
  return f;
}

async function loadProviders(done) {
  const p = await api("GET", `${s.base}/providers`);
  clear(document.getElementById("providers-body"),
    el("p", { text: `Email goes out through: ${p.email === "smtp" ? "the SMTP server"
      : "the maildir (no SMTP server configured)"}.` }),
    PROVIDERS.map(([n, t, f]) => providerForm(n, t, f, p[n])));
  if (done) say(msg, done, "ok");
}

/* ---- users ---- */

const ROLES = [["org_admin", "Admin"], ["trainer", "Trainer"], ["kiosk", "Kiosk"]];

async function loadUsers(done) {
  const users = await api("GET", `${s.base}/users`);
  const rows = users.map((u) => {
    const tr = el("tr", { "data-user": u.id });
    const boxes = ROLES.map(([r, t]) => el("span", { class: "staff-check" },
      el("input", { type: "checkbox", id: `u${u.id}-${r}`, checked: (u.roles || []).includes(r) }),
      el("label", { for: `u${u.id}-${r}`, text: t })));
    const active = el("span", { class: "staff-check" },
      el("input", { type: "checkbox", id: `u${u.id}-active`, checked: u.active }),
      el("label", { for: `u${u.id}-active`, text: "Active" }));
    const save = el("button", { type: "button", class: "btn", text: "Save",
      "aria-label": `Save ${u.name}` });
    save.addEventListener("click", async () => {
      const roles = ROLES.map(([r]) => r).filter((r) => tr.querySelector(`#u${u.id}-${r}`).checked);
      const r = await act(save, msg, () => api("PATCH", `${s.base}/users/${u.id}`, {
        roles, active: tr.querySelector(`#u${u.id}-active`).checked,
      }), `${u.name} saved.`);
      if (r) await loadUsers();
    });
    tr.append(el("td", { text: u.name }), el("td", { text: u.email }),
      el("td", { text: (u.skills || []).join(", ") }),
      el("td", {}, el("div", { class: "staff-actions", role: "group",
        "aria-label": `Roles of ${u.name}` }, boxes)),
      el("td", {}, active), el("td", {}, save));
    return tr;
  });
  const f = el("form", { id: "user-form", novalidate: true },
    el("h3", { text: "Add a user" }),
    el("div", { class: "staff-grid" },
      field("nu-email", "Email", el("input", { type: "email", id: "nu-email", name: "email" })),
      field("nu-name", "Name", el("input", { type: "text", id: "nu-name", name: "name" })),
      field("nu-skills", "Skills (comma-separated)", el("input", { type: "text",
        id: "nu-skills", name: "skills" })),
      field("nu-tz", "Time zone", el("input", { type: "text", id: "nu-tz", name: "timezone",
        value: s.orgInfo.timezone || "" }))),
    el("fieldset", { name: "roles", "data-field": "roles" }, el("legend", { text: "Roles" }),
      ROLES.map(([r, t]) => check(`nu-${r}`, "role-" + r, t, r === "trainer"))),
    el("div", { class: "staff-actions" }, el("button", { type: "submit", class: "btn btn-primary",
      text: "Add User" })),
    el("p", { id: "user-msg", class: "staff-msg", role: "status", hidden: true }));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(f);
    const v = (n) => f.elements.namedItem(n);
    const body = {
      email: v("email").value.trim(), name: v("name").value.trim(),
      roles: ROLES.map(([r]) => r).filter((r) => v("role-" + r).checked),
      skills: v("skills").value.split(",").map((x) => x.trim()).filter(Boolean),
      timezone: v("timezone").value.trim(),
    };
    try {
      const u = await api("POST", `${s.base}/users`, body);
      await loadUsers();
      say(document.getElementById("user-msg"), `${u.name} added. They sign in with their ` +
        "email address.", "ok");
    } catch (e) {
      if (e.field && f.elements.namedItem(e.field)) fieldError(f, e.field, errorText(e));
      else say(document.getElementById("user-msg"), errorText(e), "error");
    }
  });
  clear(document.getElementById("users-body"), el("div", { class: "staff-table-wrap" },
    el("table", { class: "staff-table" },
      el("thead", {}, el("tr", {}, ["Name", "Email", "Skills", "Roles", "Active", ""]
        .map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, rows))), f);
  if (done) say(msg, done, "ok");
}

/* ---- bookings ---- */

const B_ACTIONS = [["complete", "Mark Complete"], ["undo-complete", "Undo Checkout"],
  ["no-show", "Mark No-Show"]];

function who(b) {
  return (b.customer && b.customer.name) || "the customer";
}

function actionButtons(b, region, after) {
  return B_ACTIONS.filter(([a]) => (b.actions || []).includes(a)).map(([a, t]) => {
    const btn = el("button", { type: "button", class: "btn", "data-action": a, text: t,
      "aria-label": `${t}: ${who(b)}, ${fmt(b.start, s.zone)}` });
    btn.addEventListener("click", async () => {
      const body = a === "no-show" ? { customer: true } : undefined;
      const r = await act(btn, region, () => api("POST", `${s.base}/bookings/${b.id}/${a}`, body),
        `${t}: done for ${who(b)}.`);
      if (r && after) await after(r);
    });
    return btn;
  });
}

/* bookingPanel - one booking in a dialog: facts, actions, check-in, the customer's previous
 * bookings and the delivery timeline */
export async function bookingPanel(id) {
  const { dlg, body } = dialog("Booking");
  const region = el("p", { class: "staff-msg", role: "status", hidden: true });
  async function fill() {
    const b = await api("GET", `${s.base}/bookings/${id}`);
    const email = b.customer && b.customer.email;
    const [hist, effects] = await Promise.all([
      email ? api("GET", `${s.base}/customers/${encodeURIComponent(email)}/bookings`)
        .catch(() => []) : [],
      api("GET", `${s.base}/bookings/${id}/effects`).catch(() => []),
    ]);
    dlg.querySelector("h2").textContent = `${who(b)}, ${fmt(b.start, s.zone)}`;
    const prev = (hist || []).filter((x) => x.id !== b.id).slice(0, 10);
    clear(body,
      el("dl", { class: "staff-facts" },
        el("dt", { text: "Status" }), el("dd", {}, el("span", { class: "staff-badge " +
          "staff-badge-" + b.status, id: "panel-status", text: label("booking", b.status) })),
        el("dt", { text: "When" }), el("dd", { text: `${fmt(b.start, s.zone)} - ` +
          fmt(b.end, s.zone, { weekday: undefined, day: undefined, month: undefined,
            year: undefined }) }),
        el("dt", { text: "Trainer" }), el("dd", { text: b.trainer ? b.trainer.name : "" }),
        el("dt", { text: "Customer" }), el("dd", { text: `${who(b)} <${email || ""}>` }),
        el("dt", { text: "Session type" }), el("dd", { text: b.session_type
          ? `${b.session_type.name}, ${money(b.price_cents, b.currency)}` : "" }),
        el("dt", { text: "Payment" }), el("dd", { text: b.paid_at ? `paid ${fmt(b.paid_at,
          s.zone)} (${b.payment_reference || "no reference"})` : "not paid yet" }),
        el("dt", { text: "Check-in" }), el("dd", { id: "panel-checkin", text: b.checked_in_at
          ? "checked in " + fmt(b.checked_in_at, s.zone) : "not checked in" }),
        b.completed_at ? [el("dt", { text: "Completed" }), el("dd", { text:
          `${fmt(b.completed_at, s.zone)} by ${b.completed_by === "system" ? "the gateway"
            : "user " + b.completed_by}` })] : null),
      el("div", { class: "staff-actions" }, actionButtons(b, region, fill)), region,
      el("h3", { text: "Delivery timeline" }),
      effects.length ? el("ol", { class: "staff-notes", id: "panel-effects" },
        effects.map((e) => el("li", {},
          el("strong", { text: e.kind.replace(/_/g, " ") }), ` via ${e.provider || "none yet"}: `,
          el("span", { class: "staff-badge staff-badge-" + e.status, text: e.status }),
          ` (${e.attempts} attempt${e.attempts === 1 ? "" : "s"}; queued ` +
          `${fmt(e.created_at, s.zone)}${e.sent_at ? ", sent " + fmt(e.sent_at, s.zone) : ""})`,
          e.last_error ? el("div", { class: "adm-error-text", text: e.last_error }) : null)))
        : el("p", { class: "staff-none", text: "Nothing was sent for this booking." }),
      el("h3", { text: "The customer's previous bookings" }),
      prev.length ? el("table", { class: "staff-table", id: "panel-history" },
        el("thead", {}, el("tr", {}, ["When", "Trainer", "Status"].map((h) =>
          el("th", { scope: "col", text: h })))),
        el("tbody", {}, prev.map((x) => el("tr", {}, el("td", { text: fmt(x.start, s.zone) }),
          el("td", { text: x.trainer ? x.trainer.name : "" }),
          el("td", { text: label("booking", x.status) })))))
        : el("p", { class: "staff-none", text: "No earlier bookings." }));
    const notes = el("div", {});
    body.append(notes);
    await notesPanel(s, id, notes);
  }
  try {
    await fill();
  } catch (e) {
    clear(body, el("p", { class: "staff-msg staff-msg-error", text: errorText(e) }));
  }
  return dlg;
}

function bookingRows(list, after) {
  return list.map((b) => {
    const open = el("button", { type: "button", class: "btn btn-quiet", text: "Details",
      "aria-label": `Details: ${who(b)}, ${fmt(b.start, s.zone)}` });
    open.addEventListener("click", async () => {
      const d = await bookingPanel(b.id);
      d.addEventListener("close", () => after && after());
    });
    return el("tr", { "data-booking": b.id }, el("td", { text: fmt(b.start, s.zone) }),
      el("td", { text: who(b) }), el("td", { text: b.trainer ? b.trainer.name : "" }),
      el("td", { text: label("booking", b.status) }),
      el("td", {}, el("div", { class: "staff-actions" }, actionButtons(b, msg, after), open)));
  });
}

function bookingTable(caption, list, after, empty) {
  if (!list.length) return el("p", { class: "staff-none", text: empty });
  return el("table", { class: "staff-table" },
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, ["When", "Customer", "Trainer", "Status", "Actions"]
      .map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, bookingRows(list, after)));
}

async function loadAwaiting() {
  const list = await api("GET", `${s.base}/bookings?awaiting_completion=true`);
  clear(document.getElementById("awaiting-body"), bookingTable("Awaiting Completion", list,
    loadAwaiting, "No session is waiting to be marked complete."));
}

function loadBookingSearch() {
  const box = document.getElementById("bookings-body");
  const out = el("div", { class: "staff-table-wrap", id: "customer-bookings" });
  const f = el("form", { id: "customer-form", novalidate: true },
    field("cust-email", "Customer email", el("input", { type: "email", id: "cust-email",
      name: "email" }), "Their bookings, newest first; open one for its details."),
    el("div", { class: "staff-actions" }, el("button", { type: "submit", class: "btn",
      text: "Find Bookings" })));
  async function run() {
    clearFieldErrors(f);
    const email = f.elements.namedItem("email").value.trim();
    try {
      const list = await api("GET", `${s.base}/customers/${encodeURIComponent(email)}/bookings`);
      clear(out, bookingTable("Customer bookings", list.slice(0, 10), run,
        "No bookings for this customer."));
    } catch (e) {
      fieldError(f, "email", errorText(e));
    }
  }
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run();
  });
  clear(box, f, out);
}

/* ---- deliveries ---- */

async function loadDeliveries(done) {
  const [pending, dead] = await Promise.all([
    api("GET", `${s.base}/outbox?status=pending`), api("GET", `${s.base}/outbox?status=dead`)]);
  const rows = [...dead, ...pending].map((d) => {
    const cells = [el("td", { text: d.id }), el("td", { text: d.kind.replace(/_/g, " ") }),
      el("td", { text: d.provider || "" }),
      el("td", {}, el("span", { class: "staff-badge staff-badge-" + d.status, text: d.status })),
      el("td", { text: d.attempts }),
      el("td", {}, el("div", { class: "adm-error-text", text: d.last_error || "" })),
      el("td", { text: d.status === "pending" ? "next " + fmt(d.next_attempt_at, s.zone)
        : fmt(d.created_at, s.zone) })];
    const actions = el("td", {});
    if (d.status === "dead") {
      const b = el("button", { type: "button", class: "btn", text: "Retry",
        "aria-label": `Retry delivery ${d.id} (${d.kind.replace(/_/g, " ")})` });
      b.addEventListener("click", async () => {
        const r = await act(b, msg, () => api("POST", `${s.base}/outbox/${d.id}/retry`));
        if (r) await loadDeliveries(`Delivery ${d.id} will be tried again now.`);
      });
      actions.append(b);
    }
    if (d.booking_id) {
      const o = el("button", { type: "button", class: "btn btn-quiet", text: "Booking",
        "aria-label": `Booking of delivery ${d.id}` });
      o.addEventListener("click", () => bookingPanel(d.booking_id));
      actions.append(o);
    }
    return el("tr", { "data-delivery": d.id }, cells, actions);
  });
  const refresh = el("button", { type: "button", class: "btn btn-quiet", text: "Refresh" });
  refresh.addEventListener("click", () => loadDeliveries("Deliveries refreshed."));
  clear(document.getElementById("deliveries-body"),
    el("div", { class: "staff-actions" }, refresh),
    rows.length ? el("table", { class: "staff-table" },
      el("caption", { class: "visually-hidden", text: "Pending and dead deliveries" }),
      el("thead", {}, el("tr", {}, ["Id", "Kind", "Provider", "Status", "Attempts",
        "Last error", "When", "Actions"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))
      : el("p", { class: "staff-none", text: "Nothing is waiting or dead: every delivery went " +
        "out." }));
  if (done) say(msg, done, "ok");
}

/* ---- payouts ---- */

/* mondayOf - the Monday (y, mo, d) of the week holding instant ms in zone */
function mondayOf(ms, zone) {
  const p = utcToZoned(ms, zone);
  const back = (p.wd + 6) % 7;
  const d = new Date(Date.UTC(p.y, p.mo - 1, p.d - back));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
}

function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/* weeks - n weeks ending with the one that starts on Monday y-mo-d, in the org's zone */
function weeks(y, mo, d, n, zone) {
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const a = new Date(Date.UTC(y, mo - 1, d - 7 * i));
    const b = new Date(Date.UTC(y, mo - 1, d - 7 * i + 7));
    out.push({
      label: `${a.getUTCDate()} ${a.toLocaleString("en-GB", { month: "short", timeZone: "UTC" })}`,
      from: iso(zonedToUtc(a.getUTCFullYear(), a.getUTCMonth() + 1, a.getUTCDate(), 0, 0, zone)),
      to: iso(zonedToUtc(b.getUTCFullYear(), b.getUTCMonth() + 1, b.getUTCDate(), 0, 0, zone)),
    });
  }
  return out;
}

const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

/* chart - one trainer's completed sessions and no-shows per week as grouped bars */
function chart(name, ws, data) {
  const W = 640;
  const H = 220;
  const L = 36;
  const B = 30;
  const T = 12;
  const max = Math.max(1, ...data.flatMap((x) => [x.completed, x.no_shows]));
  const gw = (W - L - 8) / ws.length;
  const bw = Math.max(4, Math.min(22, gw / 3));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const summary = ws.map((w, i) => `week of ${w.label}: ${data[i].completed} completed, ` +
    `${data[i].no_shows} no-shows`).join("; ");
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "adm-chart", role: "img",
    "aria-label": `${name}: ${summary}` });
  g.append(svg("title", {}, `${name}: completed sessions and no-shows per week`));
  const step = Math.max(1, Math.ceil(max / 4));
  for (let v = 0; v <= max; v += step) {
    g.append(svg("line", { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: "axis",
      "stroke-opacity": v ? 0.25 : 1 }));
    g.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  ws.forEach((w, i) => {
    const x0 = L + i * gw + (gw - 2 * bw - 2) / 2;
    const d = data[i];
    g.append(svg("rect", { x: x0, y: y(d.completed), width: bw, height: y(0) - y(d.completed),
      class: "bar-completed", "data-week": w.from, "data-completed": d.completed }));
    g.append(svg("rect", { x: x0 + bw + 2, y: y(d.no_shows), width: bw,
      height: y(0) - y(d.no_shows), class: "bar-noshow", "data-noshows": d.no_shows }));
    g.append(svg("text", { x: L + i * gw + gw / 2, y: H - 10, "text-anchor": "middle" },
      w.label));
  });
  return g;
}

async function runPayouts(y, mo, d, n, box) {
  const ws = weeks(y, mo, d, n, s.orgInfo.timezone || s.zone);
  const reports = await Promise.all(ws.map((w) => api("GET", `${s.base}/reports/payouts?from=` +
    `${encodeURIComponent(w.from)}&to=${encodeURIComponent(w.to)}`)));
  const trainers = new Map();
  reports.forEach((rows, i) => {
    for (const r of rows) {
      if (!trainers.has(r.trainer_id)) {
        trainers.set(r.trainer_id, { name: r.name || `Trainer ${r.trainer_id}`,
          weeks: ws.map(() => ({ completed: 0, no_shows: 0, revenue: 0 })), currency: r.currency });
      }
      const t = trainers.get(r.trainer_id).weeks[i];
      t.completed = r.completed;
      t.no_shows = r.customer_no_shows + r.trainer_no_shows;
      t.revenue = r.revenue_cents;
    }
  });
  if (!trainers.size) {
    clear(box, el("p", { class: "staff-none", text: "No completed sessions or no-shows in " +
      "these weeks." }));
    return;
  }
  const parts = [el("ul", { class: "wk-legend" },
    el("li", {}, el("span", { class: "adm-swatch adm-swatch-completed" }), "Completed sessions"),
    el("li", {}, el("span", { class: "adm-swatch adm-swatch-noshow" }), "No-shows"))];
  for (const [tid, t] of trainers) {
    const total = t.weeks.reduce((a, x) => a + x.revenue, 0);
    parts.push(el("figure", { class: "adm-figure", "data-trainer": tid },
      el("figcaption", {}, el("strong", { text: t.name }),
        ` - ${t.weeks.reduce((a, x) => a + x.completed, 0)} completed, ` +
        `${t.weeks.reduce((a, x) => a + x.no_shows, 0)} no-shows, ` +
        `${money(total, t.currency)} revenue`),
      chart(t.name, ws, t.weeks)));
  }
  parts.push(el("table", { class: "staff-table", id: "payout-table" },
    el("caption", { text: "The same figures" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Trainer" }),
      ws.map((w) => el("th", { scope: "col", text: "Week of " + w.label })))),
    el("tbody", {}, [...trainers.values()].map((t) => el("tr", {},
      el("th", { scope: "row", text: t.name }),
      t.weeks.map((x) => el("td", { text: `${x.completed} done, ${x.no_shows} no-show` })))))));
  clear(box, parts);
}

function loadPayouts() {
  const z = (x) => String(x).padStart(2, "0");
  const [y, mo, d] = mondayOf(Date.now(), s.orgInfo.timezone || s.zone);
  const out = el("div", { id: "payout-out" });
  const f = el("form", { id: "payout-form", novalidate: true },
    el("div", { class: "staff-grid" },
      field("pay-week", "Last week shown (any day of it)", el("input", { type: "date",
        id: "pay-week", name: "week", value: `${y}-${z(mo)}-${z(d)}` })),
      field("pay-n", "Weeks", select("pay-n", "n", [["4", "4"], ["6", "6"], ["8", "8"],
        ["12", "12"]], "6"))),
    el("div", { class: "staff-actions" }, el("button", { type: "submit", class: "btn",
      text: "Show Report" })));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(f);
    const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(f.elements.namedItem("week").value);
    if (!m) {
      fieldError(f, "week", "Choose a day, such as 2026-11-30.");
      return;
    }
    const day = Date.UTC(+m[1], +m[2] - 1, +m[3], 12);
    const [wy, wm, wd] = mondayOf(day, "UTC");
    try {
      await runPayouts(wy, wm, wd, Number(f.elements.namedItem("n").value), out);
    } catch (e) {
      showError(out, e);
    }
  });
  clear(document.getElementById("payouts-body"), f, out);
  runPayouts(y, mo, d, 6, out).catch((e) => showError(out, e));
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
  if (!s.isAdmin) {
    showError(document.getElementById("main"), { message: "This page is for the " +
      "organisation's admins. Your sessions are on the dashboard." });
    return;
  }
  loadBookingSearch();
  loadPayouts();
  await Promise.all([
    section("settings-body", loadSettings), section("providers-body", () => loadProviders()),
    section("users-body", () => loadUsers()), section("awaiting-body", loadAwaiting),
    section("deliveries-body", () => loadDeliveries()),
  ]);
  const want = location.hash && document.querySelector(location.hash);
  if (want) want.scrollIntoView();
})();
