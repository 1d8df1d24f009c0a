// My inbox: what needs me (mentions, direct messages, replies in my threads, approval
// requests), live, with the unread count on the bell and in the tab's title.

import { del, get, post, put } from "../lib/api.js";
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
  const device = h("p", { class: "push-setting" });
  pushSetting(device);
  const mail = h("p", { class: "email-setting" });
  emailSetting(mail);
  const node = dialog("Inbox", h("div", { class: "stack" }, markAll, list, device, mail));
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

// Web Push on this device: offered when the server sends pushes and the browser can take them.
// The subscription goes to the server, which pushes each new notification to it; the service
// worker (/sw.js) shows it while no Parley tab has the focus.
async function pushSetting(node) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
  let status;
  try { status = await get("/v1/push"); } catch { return; }
  if (!status?.enabled || !status.public_key) return;
  const registration = await navigator.serviceWorker.register("/sw.js");
  const current = await registration.pushManager.getSubscription();
  const show = (subscribed, note = "") => clear(node,
    h("button", { type: "button", "aria-pressed": subscribed ? "true" : "false",
      text: subscribed ? "Stop notifications on this device" : "Notify me on this device",
      onclick: () => (subscribed ? turnOff() : turnOn()) }),
    note ? h("span", { class: "muted", text: ` ${note}` }) : null);
  const turnOn = async () => {
    try {
      if ((await Notification.requestPermission()) !== "granted") return show(false, "Notifications are blocked for this site.");
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64URL(status.public_key) });
      await post("/v1/push/subscriptions", subscription.toJSON());
      show(true);
    } catch (error) { show(false, `Could not turn them on: ${error.message}`); }
  };
  const turnOff = async () => {
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) {
      const mine = (await get("/v1/push/subscriptions")).items.find((s) => s.endpoint === subscription.endpoint);
      if (mine) await del(`/v1/push/subscriptions/${mine.id}`).catch(() => {});
      await subscription.unsubscribe();
    }
    show(false);
  };
  show(!!current);
}

function base64URL(text) {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// The e-mail digest of what stays unread: offered when the server sends e-mail and my account
// has an address.
async function emailSetting(node) {
  let settings;
  try { settings = await get("/v1/notifications/email"); } catch { return; }
  if (!settings?.available || !settings.address) return;
  const box = h("input", { type: "checkbox", checked: settings.enabled, onchange: async () => {
    try { await put("/v1/notifications/email", { enabled: box.checked }); } catch { box.checked = !box.checked; }
  } });
  clear(node, h("label", {}, box, ` E-mail me a digest of what I miss (${settings.address})`));
}
