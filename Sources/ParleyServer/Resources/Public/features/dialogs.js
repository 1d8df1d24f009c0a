// Dialogs: starting a conversation, the channel directory, members, and my profile.

import { ApiError, del, get, patch, post, put } from "../lib/api.js";
import { dialog, fieldErrors, h, clear } from "../lib/dom.js";
import { emit, loadConversations, members, state, subscribe, upsertConversation } from "../lib/store.js";

// A people picker: type a handle or name, pick from the matches.
function peoplePicker({ multiple }) {
  const chosen = new Map();
  const results = h("ul", { class: "picker-results", role: "listbox", "aria-label": "Matching people" });
  const chips = h("ul", { class: "chips", "aria-label": "Chosen people" });
  const input = h("input", { type: "search", name: "people", placeholder: "Handle or name", autocomplete: "off", "aria-label": "Find people" });
  let timer;
  const renderChips = () => clear(chips, [...chosen.values()].map((user) =>
    h("li", {}, h("span", { text: `@${user.handle}` }), h("button", { type: "button", class: "icon", "aria-label": `Remove @${user.handle}`,
      onclick: () => { chosen.delete(user.id); renderChips(); } }, "×"))));
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (!q) return clear(results);
      const page = await get(`/v1/users?q=${encodeURIComponent(q)}&limit=8`).catch(() => ({ items: [] }));
      clear(results, page.items.filter((u) => u.id !== state.me.id).map((user) => h("li", {},
        h("button", { type: "button", role: "option", onclick: () => {
          if (!multiple) chosen.clear();
          chosen.set(user.id, user);
          state.users.set(user.id, user);
          renderChips();
          clear(results);
          input.value = "";
          input.focus();
        } }, h("strong", { text: user.display_name }), ` @${user.handle}`, user.kind === "assistant" ? h("span", { class: "tag", text: "assistant" }) : null))));
    }, 150);
  });
  return { node: h("div", { class: "picker" }, input, results, chips), chosen };
}

export function newConversationDialog() {
  const picker = peoplePicker({ multiple: true });
  const kind = h("select", { name: "kind", id: "new-kind" },
    h("option", { value: "direct", text: "Direct message" }), h("option", { value: "group", text: "Group" }), h("option", { value: "channel", text: "Channel" }));
  const titleRow = h("div", { class: "row", hidden: true }, h("label", { for: "new-title", text: "Name" }), h("input", { id: "new-title", name: "title", maxlength: 100 }));
  const visibilityRow = h("div", { class: "row", hidden: true }, h("label", { for: "new-visibility", text: "Who can find it" }),
    h("select", { id: "new-visibility", name: "visibility" }, h("option", { value: "public", text: "Anyone (public)" }), h("option", { value: "private", text: "Members only (private)" })));
  kind.addEventListener("change", () => {
    titleRow.hidden = kind.value === "direct";
    visibilityRow.hidden = kind.value !== "channel";
  });
  const form = h("form", { class: "stack" },
    h("label", { for: "new-kind", text: "Kind" }), kind, titleRow, visibilityRow,
    h("label", { text: "People" }), picker.node,
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", class: "primary", text: "Start" }));
  const node = dialog("New conversation", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { kind: kind.value, member_ids: [...picker.chosen.keys()] };
    if (kind.value !== "direct" && form.title.value.trim()) body.title = form.title.value.trim();
    if (kind.value === "channel") body.visibility = form.visibility.value;
    try {
      const conversation = await post("/v1/conversations", body);
      upsertConversation(conversation);
      node.close();
      location.hash = `#/c/${conversation.id}`;
    } catch (error) {
      fieldErrors(form, error);
    }
  });
}

export function browseChannelsDialog() {
  const list = h("ul", { class: "channel-list" });
  const filter = h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter channels" });
  const load = async () => {
    const page = await get(`/v1/channels?limit=100${filter.value ? `&q=${encodeURIComponent(filter.value)}` : ""}`);
    clear(list, page.items.length ? page.items.map((channel) => {
      const joined = state.conversations.has(channel.id);
      return h("li", {}, h("div", {}, h("strong", { text: `# ${channel.title}` }), h("span", { class: "muted", text: ` ${channel.member_count ?? ""} members` }),
        channel.topic ? h("p", { class: "muted", text: channel.topic }) : null),
        h("button", { type: "button", text: joined ? "Open" : "Join", onclick: async () => {
          if (!joined) await post(`/v1/conversations/${channel.id}/join`);
          await loadConversations();
          node.close();
          location.hash = `#/c/${channel.id}`;
        } }));
    }) : h("li", { class: "muted", text: "No public channels match." }));
  };
  let timer;
  filter.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 150); });
  const node = dialog("Channels", h("div", { class: "stack" }, filter, list));
  load().catch((error) => clear(list, h("li", { role: "alert", text: error.message })));
}

export async function membersDialog(conversation) {
  const list = h("ul", { class: "member-list" });
  const mine = conversation.membership?.role;
  const canManage = mine === "owner" || mine === "admin";
  let items = [];
  const draw = () => {
    clear(list, items.map((member) => {
      const self = member.user.id === state.me.id;
      // Owners and admins change roles (only the owner hands ownership over) and remove people.
      const editable = canManage && !self && member.role !== "owner" && conversation.kind !== "direct";
      const roles = mine === "owner" ? ["owner", "admin", "member"] : ["admin", "member"];
      const role = editable
        ? h("select", { class: "role", "aria-label": `Role of @${member.user.handle}`, onchange: async (event) => {
          try { await patch(`/v1/conversations/${conversation.id}/members/${member.user.id}`, { role: event.target.value }); await render(); }
          catch (error) { alert(error.message); await render(); }
        } }, roles.map((value) => h("option", { value, text: value, selected: value === member.role })))
        : h("span", { class: "role", text: member.role });
      return h("li", {},
        h("span", { class: `presence ${state.presence.get(member.user.id) || "offline"}`, "aria-label": state.presence.get(member.user.id) || "offline", dataset: { user: member.user.id } }),
        h("strong", { text: member.user.display_name }), ` @${member.user.handle} `,
        member.user.kind === "assistant" ? h("span", { class: "tag", text: "assistant" }) : null,
        role,
        editable ? h("button", { type: "button", class: "icon", "aria-label": `Remove @${member.user.handle}`, onclick: async () => {
          try { await del(`/v1/conversations/${conversation.id}/members/${member.user.id}`); await render(); }
          catch (error) { alert(error.message); }
        } }, "×") : null);
    }));
  };
  // Presence is pushed only through small conversations: ask for the people shown here by
  // name while the dialog is open (over SSE, read once).
  const watch = async () => {
    const ids = items.map((member) => member.user.id).filter((id) => id !== state.me.id).slice(0, 500);
    if (state.live?.watchPresence(ids) || !ids.length) return;
    try {
      const presence = await get(`/v1/presence?user_ids=${ids.join(",")}`);
      for (const id of ids) state.presence.set(id, "offline");
      for (const entry of presence.users) state.presence.set(entry.user_id, entry.status);
      emit("presence");
    } catch { /* presence is optional */ }
  };
  const render = async () => {
    items = await members(conversation.id, { refresh: true });
    draw();
    await watch();
  };
  // Changes repaint the dots only (a role menu being used stays as it is).
  const stopListening = subscribe((kind) => {
    if (kind !== "presence") return;
    for (const dot of list.querySelectorAll(".presence[data-user]")) {
      const status = state.presence.get(dot.dataset.user) || "offline";
      dot.className = `presence ${status}`;
      dot.setAttribute("aria-label", status);
    }
  });
  const content = h("div", { class: "stack" }, list);
  if (canManage && conversation.kind !== "direct") {
    const picker = peoplePicker({ multiple: true });
    const form = h("form", { class: "stack" }, h("label", { text: "Add people" }), picker.node, h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", text: "Add" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        for (const id of picker.chosen.keys()) await post(`/v1/conversations/${conversation.id}/members`, { user_id: id });
        picker.chosen.clear();
        await render();
      } catch (error) { fieldErrors(form, error); }
    });
    content.append(form);
  }
  if (conversation.kind !== "direct") {
    content.append(h("button", { type: "button", class: "danger", text: "Leave conversation", onclick: async () => {
      await post(`/v1/conversations/${conversation.id}/leave`);
      await loadConversations();
      node.close();
      location.hash = "#/";
    } }));
  }
  const node = dialog("Members", content, { onClose: () => { stopListening(); state.live?.watchPresence([]); } });
  await render();
}

export function profileDialog() {
  const me = state.me;
  const profile = h("form", { class: "stack" },
    h("label", { for: "p-name", text: "Display name" }), h("input", { id: "p-name", name: "display_name", value: me.display_name, maxlength: 64 }),
    h("label", { for: "p-bio", text: "About you" }), h("textarea", { id: "p-bio", name: "bio", maxlength: 280, rows: 3, text: me.profile?.bio || "" }),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", class: "primary", text: "Save profile" }));
  const password = h("form", { class: "stack" },
    h("label", { for: "p-current", text: "Current password" }), h("input", { id: "p-current", name: "current_password", type: "password", autocomplete: "current-password" }),
    h("label", { for: "p-new", text: "New password" }), h("input", { id: "p-new", name: "new_password", type: "password", autocomplete: "new-password" }),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", text: "Change password" }));
  profile.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      state.me = await patch("/v1/me", { display_name: profile.display_name.value, bio: profile.bio.value });
      state.users.set(state.me.id, state.me);
      emit("me");
      profile.querySelector(".form-error").textContent = "Saved.";
    } catch (error) { fieldErrors(profile, error); }
  });
  password.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await put("/v1/me/password", { current_password: password.current_password.value, new_password: password.new_password.value });
      password.reset();
      password.querySelector(".form-error").textContent = "Password changed.";
    } catch (error) { fieldErrors(password, error instanceof ApiError ? error : new ApiError(0, {})); }
  });
  dialog("Profile", h("div", { class: "stack" }, h("p", { class: "muted", text: `Signed in as @${me.handle}` }), profile, h("h3", { text: "Password" }), password));
}

// Reporting someone else's message to the moderators: why (a kind, and optionally more), then
// a confirmation in the dialog. Reporting a message twice changes nothing, and says so.
const REPORT_KINDS = ["Spam", "Harassment or abuse", "Something else"];

export function reportDialog(conversationID, message, authorName) {
  const kind = h("select", { id: "report-kind", name: "kind" }, REPORT_KINDS.map((text) => h("option", { value: text, text })));
  const details = h("textarea", { id: "report-details", name: "reason", rows: 3, maxlength: 450 });
  const form = h("form", { class: "stack" },
    h("p", { class: "muted", text: `The moderators will see this message from ${authorName}, and your reason.` }),
    h("label", { for: "report-kind", text: "Why" }), kind,
    h("label", { for: "report-details", text: "More about it (optional)" }), details,
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit", class: "primary", text: "Report" }));
  const node = dialog("Report message", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const more = details.value.trim();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { status } = await post(`/v1/conversations/${conversationID}/messages/${message.seq}/reports`,
        { reason: more ? `${kind.value}: ${more}` : kind.value }, { withStatus: true });
      const done = h("button", { type: "button", class: "primary", text: "Done", onclick: () => node.close() });
      form.replaceWith(h("div", { class: "stack" },
        h("p", { role: "status", text: status === 201 ? "Reported. Thank you: a moderator will look at it." : "You reported this message already; a moderator will look at it." }),
        done));
      done.focus();
    } catch (error) {
      button.disabled = false;
      fieldErrors(form, error);
    }
  });
}
