// Signing up and in with the browser session (an HttpOnly cookie and a CSRF token).

import { ApiError, del, get, post, setCSRF } from "../lib/api.js";
import { clear, fieldErrors, h } from "../lib/dom.js";

export async function currentSession() {
  try {
    return await get("/v1/auth/session", { quiet401: true });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 400)) return null;
    throw error;
  }
}

export async function signOut() {
  try { await del("/v1/auth/session"); } catch { /* the session may be gone already */ }
  setCSRF(null);
}

// `invite`: the token of an invite link being used (sign-up takes it, and lands in its
// conversation).
export function renderAuth(root, { onSignedIn, mode = "signin", invite = null }) {
  const signingUp = mode === "signup" || !!invite;
  const banner = invite ? h("p", { class: "invite-banner", role: "status", text: "Checking your invite…" }) : null;
  let invited = null;
  if (invite) {
    get(`/v1/join/${encodeURIComponent(invite)}`, { quiet401: true })
      .then((found) => { invited = found; banner.textContent = found.conversation_title ? `You're invited to ${found.conversation_title}.` : "You're invited to Parley."; })
      .catch(() => { banner.textContent = "This invite link has expired, been used up or been revoked."; });
  }
  const form = h("form", { class: "auth-form", novalidate: true },
    h("h1", {}, h("img", { src: new URL("../icon.svg", import.meta.url).href, alt: "", width: 32, height: 32 }), " Parley"),
    banner,
    h("h2", { text: signingUp ? "Create your account" : "Sign in" }),
    h("label", { for: "auth-handle", text: signingUp ? "Handle" : "Handle or email" }),
    h("input", { id: "auth-handle", name: "handle", autocomplete: "username", required: true, autofocus: true }),
    signingUp && [
      h("label", { for: "auth-display", text: "Display name (optional)" }),
      h("input", { id: "auth-display", name: "display_name", autocomplete: "name" }),
    ],
    h("label", { for: "auth-password", text: "Password" }),
    h("input", { id: "auth-password", name: "password", type: "password", required: true,
      autocomplete: signingUp ? "new-password" : "current-password", minlength: signingUp ? 10 : undefined }),
    signingUp && h("p", { class: "hint", text: "At least 10 characters, not your handle, not a common password." }),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", class: "primary", text: signingUp ? "Create account" : "Sign in" }),
    h("p", { class: "switch" }, signingUp ? "Have an account? " : "New here? ",
      h("a", { href: signingUp ? "#/signin" : "#/signup", text: signingUp ? "Sign in" : "Create an account" })),
    invite ? h("p", { class: "hint", text: "Have an account already? Sign in, then open the invite link again to join." }) : null);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      if (signingUp) {
        const body = { handle: data.handle, password: data.password };
        if (data.display_name) body.display_name = data.display_name;
        if (invite) body.invite = invite;
        await post("/v1/auth/register", body, { quiet401: true });
      }
      const session = await post("/v1/auth/session", { handle: data.handle, password: data.password }, { quiet401: true });
      setCSRF(session.csrf_token);
      onSignedIn(session, invited);
    } catch (error) {
      fieldErrors(form, error instanceof ApiError ? error : new ApiError(0, { title: String(error) }));
      if (error.status === 401) form.querySelector(".form-error").textContent = "That handle and password do not match.";
    } finally {
      button.disabled = false;
    }
  });
  clear(root, h("main", { class: "auth" }, form));
  form.querySelector("input").focus();
}
