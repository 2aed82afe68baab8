// survey.js - the survey link (/survey/{token}): a rating from 1 to 5 and a comment, once;
// then thanks. GET and POST /v1/survey/{token}.
import { api, busy, clearErrors, fieldError, fmtDay, focusHeading, h, localZone, pathToken,
  setTitle, show, showApiError, renderHeader } from "./common.js";

const app = document.getElementById("app");
const base = "/v1/survey/" + encodeURIComponent(pathToken());
const LABELS = ["Poor", "Fair", "Good", "Very good", "Excellent"];

function notice(title, text, kind = "notice") {
  setTitle(title);
  show(app, h("div", { class: kind, role: kind.includes("error") ? "alert" : "status" },
    h("p", {}, text)));
  focusHeading(document.querySelector("main"));
}

function thanks() {
  notice("Thank you", "Thank you for your feedback. It helps your trainer and us get better.",
    "notice ok");
}

async function load() {
  let v;
  try {
    v = await api("GET", base);
  } catch (err) {
    if (err.status === 404) return notice("Survey not found", "This survey link is not valid.",
      "notice error");
    if (err.status === 410) return notice("Survey closed", "This survey link has expired.",
      "notice error");
    return notice("Something went wrong", err.message, "notice error");
  }
  if (v.organisation) renderHeader({ org: v.organisation });
  if (v.answered) {
    return notice("Already answered", "You have already answered this survey. Thank you!",
      "notice ok");
  }
  const who = v.trainer && v.trainer.name ? ` with ${v.trainer.name}` : "";
  const when = v.start ? ` on ${fmtDay(v.start, localZone())}` : "";
  const form = h("form", { id: "survey", novalidate: true },
    h("fieldset", { class: "field" },
      h("legend", {}, `How was your session${who}${when}?`),
      h("ul", { class: "choices" }, LABELS.map((label, i) => h("li", { class: "choice" },
        h("input", { type: "radio", name: "rating", id: "rating-" + (i + 1), value: i + 1 }),
        h("label", { for: "rating-" + (i + 1) }, `${i + 1} – ${label}`))))),
    h("div", { class: "field" },
      h("label", { for: "comment" }, "Comment (optional)"),
      h("textarea", { id: "comment", name: "comment", maxlength: 4000, rows: 5 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send feedback")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const r = form.querySelector("input[name=rating]:checked");
    if (!r) return fieldError(form, "rating", "Choose a rating from 1 to 5.");
    const comment = form.elements.comment.value;
    if (new TextEncoder().encode(comment).length > 4000) {
      return fieldError(form, "comment", "The comment is too long (at most 4000 characters).");
    }
    try {
      await busy(form, () => api("POST", base, { rating: Number(r.value), comment }));
    } catch (err) {
      if (err.code === "invalid_state") {
        return notice("Already answered", "You have already answered this survey. Thank you!",
          "notice ok");
      }
      return showApiError(form, err);
    }
    thanks();
  });
  setTitle("Your feedback");
  show(app, h("p", {}, v.session_type ? `Your ${v.session_type} session.` : ""), form);
}

load();
