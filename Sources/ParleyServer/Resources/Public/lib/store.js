// What the client knows, and how events change it. Views subscribe and re-render what
// changed; every change from the server (REST answers and live frames) goes through here.

import { get } from "./api.js";

export const state = {
  me: null,
  conversations: new Map(),
  users: new Map(),
  members: new Map(),
  // conversation id → { items: [messages by seq], hasOlder, loaded, pending: [optimistic echoes] }
  messages: new Map(),
  typing: new Map(),
  presence: new Map(),
  // run id → the run as its last event showed it; run id → text streamed so far
  runs: new Map(),
  deltas: new Map(),
  // my inbox: the newest notifications first, and how many are unread
  notifications: [],
  unreadNotifications: 0,
  connection: "connecting",
  current: null,
};

const listeners = new Set();
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
export function emit(kind, detail = {}) {
  for (const listener of [...listeners]) listener(kind, detail);
}

export function reset() {
  state.me = null;
  for (const key of ["conversations", "users", "members", "messages", "typing", "presence", "runs", "deltas"]) state[key].clear();
  state.current = null;
  state.notifications = [];
  state.unreadNotifications = 0;
}

export async function loadNotifications() {
  const page = await get("/v1/notifications?limit=50");
  state.notifications = page.items;
  state.unreadNotifications = page.unread_count;
  emit("notifications");
}

// MARK: People

const wanted = new Map();
export async function user(id) {
  if (!id) return null;
  if (state.users.has(id)) return state.users.get(id);
  if (!wanted.has(id)) {
    wanted.set(id, get(`/v1/users/${id}`).then((found) => {
      state.users.set(id, found);
      emit("users");
      return found;
    }).catch(() => null).finally(() => wanted.delete(id)));
  }
  return wanted.get(id);
}

export function displayName(id) {
  const known = state.users.get(id);
  if (!known) { user(id); return "…"; }
  return known.display_name || known.handle;
}

export async function members(conversationID, { refresh = false } = {}) {
  if (!refresh && state.members.has(conversationID)) return state.members.get(conversationID);
  const page = await get(`/v1/conversations/${conversationID}/members?limit=200`);
  for (const member of page.items) state.users.set(member.user.id, member.user);
  state.members.set(conversationID, page.items);
  emit("members", { conversationID });
  return page.items;
}

export function conversationTitle(conversation) {
  if (!conversation) return "";
  if (conversation.title) return conversation.kind === "channel" ? `# ${conversation.title}` : conversation.title;
  const others = (state.members.get(conversation.id) || []).filter((m) => m.user.id !== state.me?.id);
  if (others.length) return others.map((m) => m.user.display_name || m.user.handle).join(", ");
  if (conversation.kind === "direct") members(conversation.id).catch(() => {});
  return conversation.kind === "direct" ? "Direct message" : "Group";
}

// MARK: Conversations

export async function loadConversations() {
  let cursor = null;
  const seen = new Set();
  do {
    const page = await get(`/v1/conversations?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const conversation of page.items) {
      seen.add(conversation.id);
      state.conversations.set(conversation.id, conversation);
    }
    cursor = page.next_cursor;
  } while (cursor);
  for (const id of [...state.conversations.keys()]) if (!seen.has(id)) state.conversations.delete(id);
  emit("conversations");
}

export function sortedConversations() {
  return [...state.conversations.values()].sort((a, b) => (b.last_activity_at || "").localeCompare(a.last_activity_at || ""));
}

export function upsertConversation(conversation) {
  const known = state.conversations.get(conversation.id) || {};
  state.conversations.set(conversation.id, { ...known, ...conversation });
  emit("conversations");
}

// MARK: Messages

export function timeline(conversationID) {
  if (!state.messages.has(conversationID)) state.messages.set(conversationID, { items: [], hasOlder: true, loaded: false, pending: [], live: [] });
  return state.messages.get(conversationID);
}

function indexOfSeq(items, seq) {
  let low = 0, high = items.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (items[mid].seq < seq) low = mid + 1; else high = mid;
  }
  return low;
}

// Puts a message in its place by seq, replacing the one with the same seq.
export function putMessage(message) {
  const line = timeline(message.conversation_id);
  const at = indexOfSeq(line.items, message.seq);
  if (line.items[at]?.seq === message.seq) line.items[at] = message;
  // Past the end of a window into the middle of the history: it comes with the newer pages.
  else if (line.hasNewer && at === line.items.length) return at;
  else if (line.loaded || line.items.length) line.items.splice(at, 0, message);
  // Before the first page: kept aside, so a page the server read before this message
  // committed does not lose it (keepLive puts it back).
  else if (line.live.push(message) > 50) line.live.shift();
  // The echo of our own send is replaced by the stored message, whichever arrives first.
  line.pending = line.pending.filter((echo) => echo.id !== message.id);
  return at;
}

// Moderation holds a message back from the other members: their events show its place with
// no text. Its author's copy of that event is followed by `message.held` with the whole
// message, so the place never replaces the text the author already has on screen.
function keepWhole(message) {
  if (message.moderation?.state !== "held" || message.body != null || message.deleted_at || message.author_id !== state.me?.id) return message;
  const known = findMessage(message.conversation_id, message.seq);
  return known?.id === message.id && known.body != null && !known.deleted_at ? known : message;
}

export function findMessage(conversationID, seq) {
  const items = timeline(conversationID).items;
  const found = items[indexOfSeq(items, seq)];
  return found?.seq === seq ? found : null;
}

// Messages that arrived live while a page was loading and are newer than the page: the page
// may have been read before they committed, so they are put back after it.
function liveSince(line) {
  const arrived = [...line.items, ...line.live];
  line.live = [];
  return arrived;
}

function keepLive(line, arrived) {
  const last = line.items.at(-1)?.seq ?? 0;
  for (const message of arrived) if (message.seq > last) putMessage(message);
}

export async function loadLatest(conversationID) {
  const page = await get(`/v1/conversations/${conversationID}/messages?limit=50`);
  const line = timeline(conversationID);
  const arrived = liveSince(line);
  line.items = [];
  line.loaded = true;
  line.hasNewer = false;
  for (const message of page.items) putMessage(message);
  keepLive(line, arrived);
  line.hasOlder = page.has_more;
  emit("messages", { conversationID, reset: true });
}

// A window of the history around `seq` (jumping to an old message): older and newer pages
// load as the list is scrolled either way.
export async function loadAround(conversationID, seq) {
  const page = await get(`/v1/conversations/${conversationID}/messages?limit=60&before=${seq + 30}`);
  const line = timeline(conversationID);
  // Newer messages come with the newer pages as the list scrolls down.
  line.live = [];
  line.items = [];
  line.loaded = true;
  line.hasNewer = false;
  for (const message of page.items) putMessage(message);
  line.hasOlder = page.has_more;
  const last = line.items.at(-1)?.seq ?? 0;
  line.hasNewer = last < (state.conversations.get(conversationID)?.last_seq ?? 0);
  emit("messages", { conversationID, reset: true });
}

export async function loadNewer(conversationID) {
  const line = timeline(conversationID);
  if (!line.hasNewer || line.loadingNewer || !line.items.length) return 0;
  line.loadingNewer = true;
  try {
    const page = await get(`/v1/conversations/${conversationID}/messages?limit=100&after=${line.items.at(-1).seq}`);
    line.hasNewer = false;
    for (const message of page.items) putMessage(message);
    line.hasNewer = page.has_more;
    emit("messages", { conversationID, newer: page.items.length });
    return page.items.length;
  } finally {
    line.loadingNewer = false;
  }
}

export async function loadOlder(conversationID) {
  const line = timeline(conversationID);
  if (!line.hasOlder || line.loadingOlder || !line.items.length) return 0;
  line.loadingOlder = true;
  try {
    const page = await get(`/v1/conversations/${conversationID}/messages?limit=100&before=${line.items[0].seq}`);
    for (const message of page.items) putMessage(message);
    line.hasOlder = page.has_more;
    emit("messages", { conversationID, older: page.items.length });
    return page.items.length;
  } finally {
    line.loadingOlder = false;
  }
}

// MARK: Live frames

export function applyFrame(frame) {
  const conversationID = frame.conversation_id;
  const data = frame.data || {};
  switch (frame.type) {
    case "message.created": {
      putMessage(keepWhole(data));
      const conversation = state.conversations.get(conversationID);
      if (conversation) {
        // Counted once: a message at or below the last seq the list showed is in its count.
        if (data.seq > (conversation.last_seq || 0)) {
          conversation.last_seq = data.seq;
          conversation.last_activity_at = data.created_at;
          if (!data.reply_to) conversation.last_message = data;
          if (data.author_id !== state.me?.id) conversation.unread_count = (conversation.unread_count || 0) + 1;
        }
      } else {
        loadConversations().catch(() => {});
      }
      clearTyping(conversationID, data.author_id);
      // A reply changes its root's reply count: read the root again (exact, however the
      // reply reached us).
      if (data.reply_to && data.reply_to_seq && findMessage(conversationID, data.reply_to_seq)) refreshMessage(conversationID, data.reply_to_seq);
      // A reply written by an assistant ends its stream.
      for (const [runID, delta] of state.deltas) if (delta.assistantID === data.author_id && delta.conversationID === conversationID) state.deltas.delete(runID);
      emit("messages", { conversationID, created: data });
      emit("conversations");
      break;
    }
    case "message.edited":
    case "message.held":
    case "message.approved":
    case "message.deleted": {
      // A change's event carries no reactions or reply count (they are not the message's
      // own): the ones on screen stay, except on a tombstone.
      const known = findMessage(conversationID, data.seq);
      const changed = frame.type === "message.deleted" || !known || known.id !== data.id
        ? data : keepWhole({ ...data, reactions: known.reactions, reply_count: known.reply_count });
      putMessage(changed);
      const conversation = state.conversations.get(conversationID);
      if (conversation?.last_message?.seq === data.seq) { conversation.last_message = changed; emit("conversations"); }
      emit("messages", { conversationID, changed });
      break;
    }
    case "reaction.added":
    case "reaction.removed":
      // Counts cannot be applied twice safely (the page on screen may already include this
      // reaction), so the message is read again; the newest answer wins.
      if (findMessage(conversationID, data.seq)) refreshMessage(conversationID, data.seq);
      break;
    case "read.updated": {
      const conversation = state.conversations.get(conversationID);
      if (conversation) {
        conversation.membership = { ...(conversation.membership || {}), last_read_seq: data.last_read_seq };
        conversation.unread_count = Math.max(0, unreadAfter(conversationID, data.last_read_seq));
        emit("conversations");
      }
      break;
    }
    case "notification.created":
      if (!state.notifications.some((n) => n.id === data.id)) {
        state.notifications.unshift(data);
        if (!data.read_at) state.unreadNotifications += 1;
        emit("notifications", { created: data });
      }
      break;
    case "notifications.read": {
      const ids = new Set(data.ids || []);
      const now = new Date().toISOString();
      for (const n of state.notifications) if (ids.has(n.id) && !n.read_at) n.read_at = now;
      state.unreadNotifications = data.unread_count ?? state.unreadNotifications;
      emit("notifications");
      break;
    }
    case "membership.updated": {
      const conversation = state.conversations.get(conversationID);
      if (conversation?.membership) {
        if (data.muted !== undefined) conversation.membership.muted = data.muted;
        // null: back to the default, which the server knows; read the conversation again.
        if (data.notify === null) get(`/v1/conversations/${conversationID}`).then(upsertConversation).catch(() => {});
        else if (data.notify !== undefined) conversation.membership.notify = data.notify;
        emit("conversations");
      }
      break;
    }
    case "conversation.created":
    case "conversation.updated":
      upsertConversation(data);
      break;
    case "conversation.deleted":
      state.conversations.delete(data.id || conversationID);
      emit("conversations");
      break;
    case "member.joined":
    case "member.left":
    case "member.role_changed":
      if (data.user_id === state.me?.id) loadConversations().catch(() => {});
      if (state.members.has(conversationID)) members(conversationID, { refresh: true }).catch(() => {});
      break;
    case "typing": {
      if (data.user_id === state.me?.id) break;
      const typing = state.typing.get(conversationID) || new Map();
      typing.set(data.user_id, Date.parse(data.expires_at) || Date.now() + 5000);
      state.typing.set(conversationID, typing);
      emit("typing", { conversationID });
      setTimeout(() => emit("typing", { conversationID }), 5100);
      break;
    }
    case "presence":
      state.presence.set(data.user_id, data.status);
      emit("presence");
      break;
    case "presence.snapshot":
      // The answer to a presence.subscribe: the named people's status now.
      for (const entry of data.users || []) state.presence.set(entry.user_id, entry.status);
      emit("presence");
      break;
    case "assistant.delta": {
      // With several servers a delta can arrive after its run ended (deltas and events travel
      // apart): the reply is already shown, so the late text is not.
      if (["completed", "failed", "cancelled"].includes(state.runs.get(data.run_id)?.status)) break;
      const delta = state.deltas.get(data.run_id) || { text: "", conversationID, assistantID: data.assistant_id, turn: data.turn };
      if (delta.turn !== data.turn) { delta.text = ""; delta.turn = data.turn; }
      delta.text += data.text;
      state.deltas.set(data.run_id, delta);
      emit("deltas", { conversationID, runID: data.run_id });
      break;
    }
    case "run.started":
    case "run.approval_requested":
    case "run.approval_decided":
    case "run.completed":
    case "run.failed":
    case "run.cancelled":
      state.runs.set(data.id, data);
      if (frame.type !== "run.started" && frame.type !== "run.approval_decided") state.deltas.delete(data.id);
      emit("runs", { conversationID, run: data });
      emit("deltas", { conversationID });
      break;
    default:
      break;
  }
}

const refreshing = new Map();
export async function refreshMessage(conversationID, seq) {
  const key = `${conversationID}:${seq}`;
  const ticket = (refreshing.get(key) || 0) + 1;
  refreshing.set(key, ticket);
  try {
    const message = await get(`/v1/conversations/${conversationID}/messages/${seq}`);
    if (refreshing.get(key) !== ticket) return;
    putMessage(message);
    emit("messages", { conversationID, changed: message });
  } catch { /* gone or not visible any more */ } finally {
    if (refreshing.get(key) === ticket) refreshing.delete(key);
  }
}

function unreadAfter(conversationID, seq) {
  const line = state.messages.get(conversationID);
  const conversation = state.conversations.get(conversationID);
  if (!line?.loaded) return Math.max(0, (conversation?.last_seq || 0) - seq);
  return line.items.filter((m) => m.seq > seq && m.author_id !== state.me?.id && !m.deleted_at).length;
}

function clearTyping(conversationID, userID) {
  if (state.typing.get(conversationID)?.delete(userID)) emit("typing", { conversationID });
}

export function typingNames(conversationID) {
  const typing = state.typing.get(conversationID);
  if (!typing) return [];
  const now = Date.now();
  for (const [id, until] of typing) if (until < now) typing.delete(id);
  return [...typing.keys()].map(displayName);
}
