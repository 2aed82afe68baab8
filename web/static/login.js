// login.js - signing in (/login, /login/{token}). /login asks for the email and the
// organisation (?org=N fills it in) and sends the link: POST /v1/auth/sign-in. The emailed
// link /login/{token} signs in with POST /v1/auth/login (a GET of the link never uses it up),
// then goes back to the page that sent the person here (/login?next=/requests/5, remembered in
// this browser while the email is on its way), else to /dashboard, or /admin for an org admin
// who is not a trainer.
import {
  api, busy, clearErrors, fieldError, focusHeading, h, pathToken, renderHeader, session,
  setSession, setTitle, show, showApiError,
} from "./common.js";

const app = document.getElementById("app");
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const NEXT_KEY = "ordinatus.next";
const NEXT_MS = 30 * 60 * 1000; // a little longer than the link's 15 minutes

/* localPath - p when it is a path of this site ("/x", never "//host" or "/\\host"), else "" */
function localPath(p) {
  return typeof p === "string" && /^\/(?![/\\])[^\s]*$/.test(p) && !p.startsWith("/login")
    ? p : "";
}

/* rememberNext - keep ?next= for the emailed link, which opens without it */
function rememberNext() {
  const next = localPath(new URLSearchParams(location.search).get("next"));
  try {
    if (next) localStorage.setItem(NEXT_KEY, JSON.stringify({ next, at: Date.now() }));
  } catch (e) { /* storage refused: the user lands on their home page */ }
  return next;
}

/* takeNext - the remembered page, once */
function takeNext() {
  try {
    const v = JSON.parse(localStorage.getItem(NEXT_KEY) || "null");
    localStorage.removeItem(NEXT_KEY);
    return v && Date.now() - v.at < NEXT_MS ? localPath(v.next) : "";
  } catch (e) {
    return "";
  }
}

function form(message) {
  setTitle("Sign in");
  const org = new URLSearchParams(location.search).get("org") || "";
  const f = h("form", { id: "signin", novalidate: true },
    message || null,
    h("div", { class: "field" }, h("label", { for: "email" }, "Email"),
      h("input", { type: "email", id: "email", name: "email", autocomplete: "email",
        required: true })),
    h("div", { class: "field" }, h("label", { for: "org" }, "Organisation number"),
      h("p", { class: "hint", id: "org-hint" }, "The number your administrator gave you."),
      h("input", { type: "text", inputmode: "numeric", id: "org", name: "org",
        value: /^[0-9]+$/.test(org) ? org : "", required: true, "aria-describedby": "org-hint" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Email me a sign-in link")));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(f);
    const email = f.elements.email.value.trim();
    const orgv = f.elements.org.value.trim();
    if (!EMAIL.test(email)) {
      return fieldError(f, "email", "Enter your email address, like name@example.com.");
    }
    if (!/^[1-9][0-9]{0,17}$/.test(orgv)) {
      return fieldError(f, "org", "Enter the organisation number (digits only).");
    }
    try {
      await busy(f, () => api("POST", "/v1/auth/sign-in", { email, org: Number(orgv) }));
    } catch (err) {
      return showApiError(f, err);
    }
    setTitle("Check your email");
    show(app, h("div", { class: "notice ok", role: "status" },
      h("p", {}, `If ${email} may sign in to this organisation, a sign-in link is on its way. ` +
        "It works once, for 15 minutes.")),
    h("p", {}, h("a", { href: location.pathname + location.search }, "Send another link")));
    focusHeading(document.querySelector("main"));
  });
  show(app, f);
}

async function follow(token) {
  setTitle("Signing you in");
  show(app, h("p", { class: "muted" }, "Signing you in…"));
  let s;
  try {
    s = await api("POST", "/v1/auth/login", { token });
  } catch (err) {
    const text = err.status === 410
      ? "This sign-in link was already used or has expired. Enter your email to get a new one."
      : err.status === 404 ? "This sign-in link is not valid. Enter your email to get a new one."
        : err.message;
    history.replaceState(null, "", "/login");
    return form(h("div", { class: "notice error", role: "alert" }, h("p", {}, text)));
  }
  setSession(s);
  location.replace(takeNext() || home(s.user));
}

/* home - where a signed-in user's work is */
function home(user) {
  const roles = (user && user.roles) || [];
  return roles.includes("trainer") || !roles.includes("org_admin") ? "/dashboard" : "/admin";
}

/* start - the form; signed in already, a way on beside it */
async function start() {
  const next = rememberNext();
  const s = await session();
  if (s && s.user && next) {
    takeNext();
    return location.replace(next);
  }
  if (!s || !s.user) return form();
  renderHeader({ user: s.user });
  form(h("div", { class: "notice", role: "status" }, h("p", {},
    `You are signed in as ${s.user.email || s.user.name}. `,
    h("a", { href: home(s.user) }, "Continue"), ", or sign in as someone else below.")));
}

const token = location.pathname.startsWith("/login/") ? pathToken() : "";
if (token) follow(token);
else start();
