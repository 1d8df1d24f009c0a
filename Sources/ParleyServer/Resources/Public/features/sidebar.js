// The sidebar: who I am, search, and my conversations ordered by activity with unread counts.

import { h, clear, plainText } from "../lib/dom.js";
import { conversationTitle, displayName, sortedConversations, state, subscribe } from "../lib/store.js";
import { newConversationDialog, browseChannelsDialog, profileDialog } from "./dialogs.js";
import { bellButton } from "./notifications.js";

// In a direct conversation, whether the other person is online or away.
function directPresence(conversation) {
  if (conversation.kind !== "direct") return null;
  const other = (state.members.get(conversation.id) || []).find((m) => m.user.id !== state.me.id);
  if (!other) return null;
  const status = state.presence.get(other.user.id) || "offline";
  return h("span", { class: `presence ${status}`, role: "img", "aria-label": status });
}

export function renderSidebar(root, { onSignOut }) {
  const list = h("ul", { class: "conversation-list", "aria-label": "Your conversations" });
  const search = h("form", { class: "search-box", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const q = search.q.value.trim();
    if (q) location.hash = `#/search?q=${encodeURIComponent(q)}`;
  } }, h("label", { for: "search-q", class: "visually-hidden", text: "Search messages" }),
    h("input", { id: "search-q", name: "q", type: "search", placeholder: "Search messages", autocomplete: "off" }));
  const me = h("div", { class: "me" });
  // Moderators and administrators: their screens.
  const staff = h("ul", { class: "staff-links", "aria-label": "Site administration" });
  clear(root,
    h("header", { class: "sidebar-header" }, h("div", { class: "brand-row" }, h("strong", { class: "brand", text: "Parley" }), bellButton()), me),
    search,
    h("div", { class: "sidebar-actions" },
      h("button", { type: "button", text: "New conversation", onclick: () => newConversationDialog() }),
      h("button", { type: "button", text: "Browse channels", onclick: () => browseChannelsDialog() })),
    list,
    staff,
    h("footer", { class: "sidebar-footer" },
      h("button", { type: "button", text: "Profile", onclick: () => profileDialog() }),
      h("button", { type: "button", text: "Sign out", onclick: onSignOut })));

  const renderMe = () => clear(me, h("span", { class: "presence online", "aria-hidden": "true" }),
    h("span", { text: state.me.display_name || state.me.handle }), h("span", { class: "handle", text: ` @${state.me.handle}` }));

  const renderStaff = () => {
    const role = state.me.role;
    const links = [];
    if (role === "moderator" || role === "admin") links.push(["#/moderation", "Moderation"]);
    if (role === "admin") links.push(["#/admin/models", "Models"]);
    const hash = location.hash || "#/";
    clear(staff, links.map(([href, text]) => {
      const current = hash === href || hash.startsWith(`${href}/`);
      return h("li", {}, h("a", { href, class: `staff-link${current ? " current" : ""}`, "aria-current": current ? "page" : undefined, text }));
    }));
    staff.hidden = !links.length;
  };

  const renderList = () => {
    const items = sortedConversations().map((conversation) => {
      const muted = conversation.membership?.muted;
      // A muted conversation shows no count (a mention of me still reaches the inbox).
      const unread = muted ? 0 : conversation.unread_count || 0;
      const current = conversation.id === state.current;
      const last = conversation.last_message;
      const text = last?.content ? plainText(last.content) : last?.body;
      const withheld = last?.moderation?.state === "held" && last.body == null && !last.deleted_at;
      const preview = last ? `${displayName(last.author_id)}: ${withheld ? "(waiting for review)" : text ?? "(deleted)"}` : "No messages yet";
      return h("li", {},
        h("a", { href: `#/c/${conversation.id}`, class: `conversation${current ? " current" : ""}${unread ? " unread" : ""}${muted ? " muted" : ""}`,
          "aria-current": current ? "page" : undefined, dataset: { id: conversation.id } },
          h("span", { class: "title" }, directPresence(conversation), conversationTitle(conversation)),
          unread ? h("span", { class: "badge", "aria-label": `${unread} unread`, text: unread > 99 ? "99+" : String(unread) }) : null,
          h("span", { class: "preview", text: preview.slice(0, 80) })));
    });
    clear(list, items.length ? items : h("li", { class: "muted", text: "No conversations yet." }));
  };

  renderMe();
  renderList();
  renderStaff();
  subscribe((kind) => {
    if (["conversations", "users", "members", "route", "presence"].includes(kind)) renderList();
    if (kind === "route" || kind === "me") renderStaff();
    if (kind === "me") renderMe();
  });
}
