// Invite links: making one for a conversation, and using one while signed in.

import { get, post } from "../lib/api.js";
import { clear, dialog, h } from "../lib/dom.js";
import { loadConversations } from "../lib/store.js";

export function inviteDialog(conversation) {
  const uses = h("select", { id: "invite-uses", name: "max_uses" },
    [["1", "1 person"], ["5", "5 people"], ["25", "25 people"], ["", "No limit"]].map(([value, text]) => h("option", { value, text })));
  const expiry = h("select", { id: "invite-expiry", name: "expires_in" },
    [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"], ["", "Never"]].map(([value, text], i) =>
      h("option", { value, text, selected: i === 2 })));
  const result = h("div", { class: "stack" });
  const form = h("form", { class: "stack" },
    h("label", { for: "invite-uses", text: "Who may use it" }), uses,
    h("label", { for: "invite-expiry", text: "Expires after" }), expiry,
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", class: "primary", text: "Make a link" }), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { conversation_id: conversation.id };
    if (uses.value) body.max_uses = Number(uses.value);
    if (expiry.value) body.expires_in = Number(expiry.value);
    try {
      const invite = await post("/v1/invites", body);
      const link = `${location.origin}/#/join/${invite.token}`;
      const field = h("input", { readonly: true, value: link, "aria-label": "Invite link" });
      clear(result, h("p", { text: "Anyone with this link can join (and sign up if they have no account). It is shown once." }), field,
        h("button", { type: "button", text: "Copy", onclick: async () => {
          field.select();
          try { await navigator.clipboard.writeText(link); } catch { document.execCommand?.("copy"); }
        } }));
      field.select();
    } catch (error) {
      form.querySelector(".form-error").textContent = error.message;
    }
  });
  dialog("Invite people", form);
}

// `#/join/<token>` while signed in: where the link leads, and a button to join.
export async function renderJoin(main, token) {
  clear(main, h("section", { class: "empty" }, h("p", { text: "Checking the invite…" })));
  try {
    const invite = await get(`/v1/join/${token}`);
    const join = h("button", { type: "button", class: "primary", text: invite.conversation_title ? `Join ${invite.conversation_title}` : "OK",
      onclick: async () => {
        try {
          const joined = await post(`/v1/join/${token}`);
          await loadConversations();
          location.hash = joined.conversation_id ? `#/c/${joined.conversation_id}` : "#/";
        } catch (error) { alert(error.message); }
      } });
    clear(main, h("section", { class: "empty" },
      h("h2", { text: invite.conversation_title ? `You're invited to ${invite.conversation_title}` : "You're invited" }), join));
    join.focus();
  } catch {
    clear(main, h("section", { class: "empty" }, h("h2", { text: "This invite link has expired, been used up or been revoked." })));
  }
}
