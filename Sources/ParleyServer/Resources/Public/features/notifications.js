// My inbox: what needs me (mentions, direct messages, replies in my threads, approval
// requests), live, with the unread count on the bell and in the tab's title.

import { post, put } from "../lib/api.js";
import { clear, dialog, h, shortTime } from "../lib/dom.js";
import { conversationTitle, displayName, state, subscribe } from "../lib/store.js";

const LABELS = { mention: "mentioned you", direct: "wrote to you", thread_reply: "replied in a thread",
  message: "wrote", approval: "asks for your approval" };

export function bellButton() {
  const badge = h("span", { class: "badge", hidden: true });
  const button = h("button", { type: "button", class: "bell", onclick: () => inboxDialog() }, "Inbox", badge);
  const update = () => {
    const unread = state.unreadNotifications;
    badge.hidden = !unread;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    button.setAttribute("aria-label", unread ? `Inbox, ${unread} unread` : "Inbox");
    document.title = unread ? `(${unread}) Parley` : "Parley";
  };
  update();
  subscribe((kind) => { if (kind === "notifications") update(); });
  return button;
}

function link(notification) {
  return notification.message_seq
    ? `#/c/${notification.conversation_id}/m/${notification.message_seq}`
    : `#/c/${notification.conversation_id}`;
}

export function inboxDialog() {
  const list = h("ul", { class: "inbox", "aria-label": "Notifications" });
  const render = () => clear(list, state.notifications.length ? state.notifications.map((n) => {
    const conversation = state.conversations.get(n.conversation_id);
    return h("li", { class: n.read_at ? "read" : "unread" },
      h("a", { href: link(n), onclick: () => {
        if (!n.read_at) post("/v1/notifications/read", { ids: [n.id] }).catch(() => {});
        node.close();
      } },
      h("span", { class: "meta" }, h("strong", { text: displayName(n.actor_id) }), ` ${LABELS[n.kind] || n.kind}`,
        conversation ? ` in ${conversationTitle(conversation)}` : "", ` · ${shortTime(n.created_at)}`),
      n.excerpt ? h("span", { class: "excerpt", text: n.excerpt }) : null));
  }) : h("li", { class: "muted", text: "Nothing needs you." }));
  const markAll = h("button", { type: "button", text: "Mark all read", onclick: () => post("/v1/notifications/read", { all: true }).catch(() => {}) });
  const node = dialog("Inbox", h("div", { class: "stack" }, markAll, list));
  render();
  const stop = subscribe((kind) => { if (kind === "notifications" || kind === "users") render(); });
  node.addEventListener("close", stop);
}

// A conversation's notification settings, in its header.
export function notificationSettings(conversation, onChanged) {
  const membership = conversation.membership || {};
  const level = h("select", { "aria-label": "Notify me of", onchange: () => save({ notify: level.value }) },
    [["all", "All messages"], ["mentions", "Mentions"], ["nothing", "Nothing"]].map(([value, text]) =>
      h("option", { value, text, selected: membership.notify === value })));
  const mute = h("button", { type: "button", "aria-pressed": membership.muted ? "true" : "false", text: membership.muted ? "Unmute" : "Mute",
    onclick: () => save({ muted: !membership.muted }) });
  const save = async (change) => {
    try {
      conversation.membership = await put(`/v1/conversations/${conversation.id}/membership`, change);
      onChanged();
    } catch (error) { alert(error.message); }
  };
  return h("span", { class: "notify-settings" }, level, mute);
}
