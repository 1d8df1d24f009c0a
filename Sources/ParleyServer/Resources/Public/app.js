// Parley's web client: plain JavaScript modules, no build step. This file boots the session,
// keeps the live stream, and routes between the screens (`#/c/<id>`, `#/search?q=`, …).

import { get, onUnauthorized, setCSRF } from "./lib/api.js";
import { clear, h } from "./lib/dom.js";
import { LiveStream } from "./lib/live.js";
import { applyFrame, emit, loadConversations, loadNotifications, reset, state, subscribe, timeline } from "./lib/store.js";
import { currentSession, renderAuth, signOut } from "./features/auth.js";
import { renderSidebar } from "./features/sidebar.js";
import { openConversation, closeConversation } from "./features/conversation.js";
import { renderSearch } from "./features/search.js";
import { renderJoin } from "./features/invites.js";

const root = document.getElementById("app");
let live = null;
let shell = null;

onUnauthorized(() => signedOut());

async function boot() {
  const session = await currentSession().catch(() => null);
  if (session) await signedIn(session);
  else showAuth();
  addEventListener("hashchange", route);
}

function inviteToken() {
  return location.hash.match(/^#\/join\/([A-Za-z0-9_-]+)/)?.[1] ?? null;
}

function showAuth() {
  const invite = inviteToken();
  renderAuth(root, {
    mode: location.hash === "#/signup" ? "signup" : "signin", invite,
    onSignedIn: (session, invited) => {
      // Signed up with an invite: straight into its conversation.
      if (invite) location.hash = invited?.conversation_id ? `#/c/${invited.conversation_id}` : "#/";
      signedIn(session);
    },
  });
}

async function signedIn(session) {
  setCSRF(session.csrf_token);
  state.me = session.user;
  state.users.set(session.user.id, session.user);
  buildShell();
  // The stream starts live; what happened before is read over REST, then the stream is
  // resumed from its last id on every reconnect.
  live = new LiveStream({
    onFrame: (frame) => {
      applyFrame(frame);
      // Someone new shares a conversation with me: whether they are online is not announced
      // again, so ask.
      if (frame.type === "conversation.created" || frame.type === "member.joined") loadPresence();
    },
    onStatus: (status) => { state.connection = status; emit("connection"); },
    onResync: () => refreshAll(),
  });
  // Connected first, then loaded: whatever happens while the lists load arrives on the stream
  // and is applied once (messages by seq, unread counts only past a conversation's last seq).
  state.live = live;
  live.start();
  // Away while the page is hidden, online when it is back (told over the WebSocket).
  document.addEventListener("visibilitychange", () => live?.send({ type: "presence", status: document.hidden ? "away" : "online" }));
  await Promise.all([loadConversations(), loadPresence(), loadNotifications().catch(() => {})]);
  route();
}

async function loadPresence() {
  try {
    const presence = await get("/v1/presence");
    for (const entry of presence.users) state.presence.set(entry.user_id, entry.status);
    emit("presence");
  } catch { /* presence is optional */ }
}

async function refreshAll() {
  await Promise.all([loadConversations().catch(() => {}), loadNotifications().catch(() => {})]);
  for (const [id, line] of state.messages) if (line.loaded) timeline(id).loaded = false;
  if (state.current) openConversation(state.current, { main: shell.main, thread: shell.thread, reload: true });
}

async function signedOut() {
  live?.stop();
  live = null;
  reset();
  showAuth();
}

function buildShell() {
  const banner = h("div", { class: "banner", role: "status", hidden: true });
  const sidebar = h("nav", { class: "sidebar", "aria-label": "Conversations" });
  const main = h("main", { class: "pane", id: "main" });
  const thread = h("aside", { class: "thread", "aria-label": "Thread", hidden: true });
  const skip = h("a", { class: "skip", href: "#main", text: "Skip to conversation", onclick: (e) => { e.preventDefault(); main.querySelector("textarea, [tabindex]")?.focus(); } });
  clear(root, skip, banner, h("div", { class: "shell" }, sidebar, main, thread));
  shell = { banner, sidebar, main, thread };
  renderSidebar(sidebar, { onSignOut: async () => { await signOut(); signedOut(); } });
  const showConnection = () => {
    const text = { live: "", connecting: "", reconnecting: "Reconnecting…", offline: "You are offline. Messages will appear when the connection is back." }[state.connection];
    banner.hidden = !text;
    banner.textContent = text || "";
    root.dataset.connection = state.connection;
  };
  subscribe((kind) => { if (kind === "connection") showConnection(); });
}

// The moderators' and administrators' screens are loaded when first opened (few people use
// them, so they are not part of everyone's first load). A screen's late answers are dropped
// once another screen is shown (`current`).
let screen = 0;
const staffScreens = {
  moderation: () => import("./features/moderation.js"),
  models: () => import("./features/models.js"),
};

async function staffScreen(name, render) {
  const ticket = screen;
  const current = () => ticket === screen;
  clear(shell.main, h("p", { class: "boot", role: "status", text: "Loading…" }));
  try {
    const module = await staffScreens[name]();
    if (current()) await render(module, current);
  } catch (error) {
    if (current()) clear(shell.main, h("p", { class: "boot", role: "alert", text: `This screen could not load: ${error.message}` }));
  }
}

function route() {
  if (!state.me || !shell) return showAuth();
  const hash = location.hash || "#/";
  const conversation = hash.match(/^#\/c\/([0-9a-f-]{36})(?:\/m\/(\d+))?/i);
  const staff = /^#\/(moderation|admin\/)/.test(hash);
  screen += 1;
  document.body.dataset.view = conversation ? "conversation" : staff ? "page" : "home";
  if (conversation) {
    openConversation(conversation[1], { main: shell.main, thread: shell.thread, focusSeq: conversation[2] ? Number(conversation[2]) : null });
  } else if (inviteToken()) {
    closeConversation();
    renderJoin(shell.main, inviteToken());
  } else if (hash === "#/moderation") {
    closeConversation();
    staffScreen("moderation", (module, current) => module.renderModeration(shell.main, { current }));
  } else if (hash.startsWith("#/admin/models")) {
    closeConversation();
    const version = hash.match(/^#\/admin\/models\/([a-z0-9_.-]+)\/versions\/(\d+)$/i);
    staffScreen("models", (module, current) => version
      ? module.renderModelVersion(shell.main, decodeURIComponent(version[1]), Number(version[2]), { current })
      : module.renderModels(shell.main, { current }));
  } else if (hash.startsWith("#/search")) {
    closeConversation();
    const q = new URLSearchParams(hash.split("?")[1] || "").get("q") || "";
    renderSearch(shell.main, q);
  } else {
    closeConversation();
    clear(shell.main, h("section", { class: "empty" },
      h("h2", { text: `Welcome, ${state.me.display_name || state.me.handle}` }),
      h("p", { text: "Pick a conversation on the left, or start one." })));
  }
  emit("route");
}

boot().catch((error) => clear(root, h("p", { class: "boot", role: "alert", text: `Parley could not start: ${error.message}` })));
