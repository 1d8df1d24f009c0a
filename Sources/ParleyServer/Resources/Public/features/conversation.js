// One conversation: its messages (only the rows on screen are in the page, so a history of
// tens of thousands scrolls as fast as a short one), the composer with an optimistic echo,
// edit, delete, reactions, threads, read markers, typing, and assistants' live replies.

import { ApiError, del, get, patch, post, put } from "../lib/api.js";
import { clear, h, renderContent, richText, shortTime, fullTime, uuid } from "../lib/dom.js";
import {
  conversationTitle, displayName, emit, findMessage, loadAround, loadLatest, loadNewer, loadOlder, members, putMessage, state, subscribe,
  timeline, typingNames, user,
} from "../lib/store.js";
import { approvalCards, loadRuns, runForReply, streamingRows, traceDialog } from "./assistants.js";
import { membersDialog, reportDialog } from "./dialogs.js";
import { notificationSettings } from "./notifications.js";
import { inviteDialog } from "./invites.js";
import { attachmentList, attachmentPicker } from "./files.js";

const QUICK_REACTIONS = ["👍", "🎉", "❤️", "😄", "👀"];
const ESTIMATE = 56;
const OVERSCAN = 600;

let view = null;

export function closeConversation() {
  view?.dispose();
  view = null;
  state.current = null;
}

export async function openConversation(conversationID, { main, thread, focusSeq = null, reload = false }) {
  // (A view that found no conversation, say before the list loaded, is built again.)
  if (view && view.id === conversationID && !reload && view.ready) {
    if (focusSeq) view.jumpTo(focusSeq);
    return;
  }
  view?.dispose();
  state.current = conversationID;
  view = new ConversationView(conversationID, main, thread);
  await view.start(focusSeq);
}

class ConversationView {
  constructor(id, main, threadPane) {
    this.id = id;
    this.main = main;
    this.threadPane = threadPane;
    this.heights = new Map();
    this.stickToBottom = true;
    this.disposers = [];
    this.lastTyping = 0;
    this.lastReadSent = 0;
    this.threadRoot = null;
  }

  get conversation() { return state.conversations.get(this.id); }
  get line() { return timeline(this.id); }

  async start(focusSeq) {
    const conversation = this.conversation;
    if (!conversation) {
      clear(this.main, h("section", { class: "empty" }, h("h2", { text: "Conversation not found" }),
        h("p", { text: "It may have been deleted, or you are not a member." })));
      return;
    }
    this.firstUnread = (conversation.membership?.last_read_seq ?? 0) + 1;
    this.ready = true;
    this.build();
    members(this.id).catch(() => {});
    await Promise.all([this.line.loaded ? null : loadLatest(this.id), loadRuns(this.id)]);
    this.render();
    if (focusSeq) await this.jumpTo(focusSeq);
    else this.scrollToBottom();
    this.markRead();
    this.disposers.push(subscribe((kind, detail) => this.changed(kind, detail)));
  }

  dispose() {
    for (const dispose of this.disposers) dispose();
    this.disposers = [];
    this.closeThread();
  }

  build() {
    const conversation = this.conversation;
    this.title = h("h1", { text: conversationTitle(conversation) });
    this.scroller = h("div", { class: "messages", tabindex: 0, role: "log", "aria-label": "Messages", "aria-live": "polite" });
    this.top = h("div", { class: "spacer" });
    this.rows = h("ol", { class: "rows" });
    this.bottom = h("div", { class: "spacer" });
    this.extra = h("ol", { class: "rows extra" });
    this.scroller.append(this.top, this.rows, this.bottom, this.extra);
    this.scroller.addEventListener("scroll", () => this.scrolled(), { passive: true });
    this.typing = h("p", { class: "typing", "aria-live": "polite" });
    this.composer = composer({
      label: `Message ${conversationTitle(conversation)}`,
      onSend: (body, attachments) => this.send(body, null, attachments),
      onTyping: () => this.announceTyping(),
      onEditLast: () => this.editLast(),
      files: true,
    });
    clear(this.main,
      h("header", { class: "conversation-header" },
        h("a", { href: "#/", class: "back", "aria-label": "Back to conversations", text: "‹" }),
        this.title,
        conversation.topic ? h("p", { class: "topic", text: conversation.topic }) : null,
        this.settings = h("span", {}, notificationSettings(conversation, () => this.renderSettings())),
        conversation.kind !== "direct" && ["owner", "admin"].includes(conversation.membership?.role)
          ? h("button", { type: "button", text: "Invite", onclick: () => inviteDialog(this.conversation) }) : null,
        h("button", { type: "button", text: "Members", onclick: () => membersDialog(this.conversation) })),
      this.scroller, this.typing, this.composer.node);
    this.composer.focus();
    addEventListener("focus", this.onFocus = () => this.markRead());
    this.disposers.push(() => removeEventListener("focus", this.onFocus));
  }

  renderSettings() {
    clear(this.settings, notificationSettings(this.conversation, () => this.renderSettings()));
    emit("conversations");
  }

  changed(kind, detail) {
    if (kind === "messages" && detail.conversationID === this.id) {
      this.render();
      if (detail.created && this.threadRoot && detail.created.reply_to === this.threadRoot.id) this.renderThread();
      if (detail.changed && this.threadRoot && (detail.changed.id === this.threadRoot.id || detail.changed.reply_to === this.threadRoot.id)) this.renderThread();
      this.markRead();
    } else if (kind === "runs" && detail.conversationID === this.id) {
      // A finished run links its reply to its trace.
      this.render();
    } else if (kind === "deltas" && (!detail.conversationID || detail.conversationID === this.id)) {
      this.renderExtra();
    } else if (kind === "typing" && detail.conversationID === this.id) {
      const names = typingNames(this.id);
      this.typing.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
    } else if (kind === "users" || kind === "members") {
      this.title.textContent = conversationTitle(this.conversation);
      this.composer.label(`Message ${conversationTitle(this.conversation)}`);
      this.render();
    }
  }

  // The rows of the main timeline: top-level messages (replies live in their thread), then
  // my sends not yet stored.
  items() {
    const line = this.line;
    return line.items.filter((m) => !m.reply_to).concat(line.pending.filter((m) => !m.reply_to));
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 24;
  }

  // Renders only the rows around the visible part; the rest is two spacers whose heights
  // are the measured (or estimated) heights of the rows they stand for.
  render() {
    const items = this.items();
    const s = this.scroller;
    const stick = this.stickToBottom;
    // Keep the first visible row where it is when rows above it come or change: find it in
    // the new list and scroll to where it now is, before choosing what to render.
    const anchor = stick ? null : this.anchor();
    const offsets = new Array(items.length + 1);
    offsets[0] = 0;
    for (let i = 0; i < items.length; i++) offsets[i + 1] = offsets[i] + (this.heights.get(key(items[i])) ?? ESTIMATE);
    const focus = this.focusState();
    if (anchor) {
      const index = items.findIndex((m) => key(m) === anchor.key);
      if (index >= 0) {
        // Give the list its full height first, or the browser clamps the scroll position.
        this.top.style.height = `${offsets[items.length]}px`;
        this.bottom.style.height = "0px";
        s.scrollTop = this.padding() + offsets[index] - anchor.offset;
      }
    }
    const from = Math.max(0, s.scrollTop - OVERSCAN), to = s.scrollTop + s.clientHeight + OVERSCAN;
    let start = 0;
    while (start < items.length && offsets[start + 1] < from) start++;
    let end = start;
    while (end < items.length && offsets[end] < to) end++;
    if (stick) { end = items.length; start = Math.max(0, Math.min(start, end - Math.ceil((s.clientHeight + 2 * OVERSCAN) / ESTIMATE))); }
    this.top.style.height = `${offsets[start]}px`;
    this.bottom.style.height = `${offsets[items.length] - offsets[end]}px`;
    const conversation = this.conversation;
    clear(this.rows, items.slice(start, end).map((message) => this.row(message, conversation)));
    for (const node of this.rows.children) this.heights.set(node.dataset.key, node.offsetHeight);
    this.renderExtra();
    if (stick) s.scrollTop = s.scrollHeight;
    // Measured heights differ from estimates: correct what is left from the DOM.
    else if (anchor) this.restore(anchor);
    if (focus) this.restoreFocus(focus);
  }

  // Rows are rebuilt when anything changes: the element that had focus in a row (an action
  // button, the edit box and its caret) gets it back in the row's new copy.
  focusState() {
    const active = document.activeElement;
    const row = active && this.rows.contains(active) ? active.closest("[data-key]") : null;
    if (!row) return null;
    const controls = [...row.querySelectorAll("button, textarea, a, summary, [tabindex]")];
    return { key: row.dataset.key, index: controls.indexOf(active), row: active === row,
      selection: active.selectionStart ?? null };
  }

  restoreFocus(focus) {
    const row = this.rows.querySelector(`[data-key="${CSS.escape(focus.key)}"]`);
    if (!row) return;
    const target = focus.row ? row : [...row.querySelectorAll("button, textarea, a, summary, [tabindex]")][focus.index];
    target?.focus({ preventScroll: true });
    if (target && focus.selection !== null && "setSelectionRange" in target) target.setSelectionRange(focus.selection, focus.selection);
  }

  padding() {
    this.paddingTop ??= parseFloat(getComputedStyle(this.scroller).paddingTop) || 0;
    return this.paddingTop;
  }

  renderExtra() {
    clear(this.extra, approvalCards(this.id, () => loadRuns(this.id).then(() => this.renderExtra())), streamingRows(this.id));
    if (this.stickToBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  anchor() {
    const top = this.scroller.getBoundingClientRect().top;
    for (const node of this.rows.children) {
      const box = node.getBoundingClientRect();
      if (box.bottom > top) return { key: node.dataset.key, offset: box.top - top };
    }
    return null;
  }

  restore(anchor) {
    const node = [...this.rows.children].find((n) => n.dataset.key === anchor.key);
    if (!node) return;
    const delta = node.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top - anchor.offset;
    if (Math.abs(delta) > 1) this.scroller.scrollTop += delta;
  }

  scrolled() {
    this.stickToBottom = this.atBottom() && !this.line.hasNewer;
    if (this.frame) return;
    this.frame = requestAnimationFrame(async () => {
      this.frame = null;
      this.render();
      const s = this.scroller;
      if (s.scrollTop < 400 && this.line.hasOlder) await loadOlder(this.id);
      else if (s.scrollHeight - s.scrollTop - s.clientHeight < 400 && this.line.hasNewer) await loadNewer(this.id);
      if (this.stickToBottom) this.markRead();
    });
  }

  scrollToBottom() {
    this.stickToBottom = true;
    this.render();
  }

  async jumpTo(seq) {
    // Near what is loaded: page back to it; far: load a window around it.
    const first = this.line.items[0]?.seq ?? 0;
    if (!findMessage(this.id, seq) && first - seq > 200) await loadAround(this.id, seq);
    while (!findMessage(this.id, seq) && this.line.hasOlder && this.line.items.length && this.line.items[0].seq > seq) {
      if (!(await loadOlder(this.id))) break;
    }
    const message = findMessage(this.id, seq);
    if (!message) return;
    const target = message.reply_to ? findMessage(this.id, message.reply_to_seq) || message : message;
    if (message.reply_to) this.openThread(target);
    const items = this.items();
    const index = items.findIndex((m) => m.seq === target.seq);
    let offset = 0;
    for (let i = 0; i < index; i++) offset += this.heights.get(key(items[i])) ?? ESTIMATE;
    this.stickToBottom = false;
    this.scroller.scrollTop = Math.max(0, offset - 80);
    this.render();
    this.highlighted = target.seq;
    this.render();
    this.rows.querySelector(`[data-key="${CSS.escape(key(target))}"]`)?.focus();
  }

  row(message, conversation) {
    const mine = message.author_id === state.me.id;
    const author = state.users.get(message.author_id) || (user(message.author_id), null);
    const deleted = !!message.deleted_at;
    // Held by moderation: the other members see its place without its text.
    const withheld = !deleted && message.moderation?.state === "held" && message.body == null && !message.pending;
    const canDelete = mine || ["owner", "admin"].includes(conversation?.membership?.role);
    const run = author?.kind === "assistant" ? runForReply(this.id, message.seq) : null;
    const node = h("li", {
      class: `message${message.pending ? " pending" : ""}${message.failed ? " failed" : ""}${deleted ? " deleted" : ""}${withheld ? " withheld" : ""}${message.seq === this.firstUnread ? " first-unread" : ""}${message.seq === this.highlighted ? " highlight" : ""}`,
      dataset: { key: key(message), seq: message.seq ?? "" }, tabindex: -1,
    },
      message.seq === this.firstUnread && !mine ? h("div", { class: "unread-divider", text: "New messages" }) : null,
      h("div", { class: "meta" },
        h("strong", { class: "author", text: displayName(message.author_id) }),
        author?.kind === "assistant" ? h("span", { class: "tag", text: "assistant" }) : null,
        h("time", { datetime: message.created_at, title: fullTime(message.created_at), text: shortTime(message.created_at) }),
        message.edited_at && !deleted ? h("span", { class: "edited", text: "(edited)" }) : null,
        message.pending ? h("span", { class: "status", text: message.failed ? "not sent" : "sending…" }) : null,
        withheld || deleted ? null : moderationMark(message, mine)),
      this.editing?.seq === message.seq && !message.pending && !deleted ? this.editor(message)
        : h("div", { class: "body" }, deleted
          ? h("em", { text: message.moderation?.state === "removed" ? "This message was removed by a moderator." : "This message was deleted." })
          : withheld ? h("em", { text: "A message is waiting for review." })
          // The server's structure when there is one; a message still being sent shows its text.
          : message.content ? renderContent(message.content, { me: state.me.id }) : richText(message.body || "")),
      deleted || withheld ? null : attachmentList(message.attachments),
      message.citations?.length ? h("p", { class: "citations" }, "Sources: ",
        message.citations.map((c) => h("a", { href: `#/c/${this.id}/m/${c.seq}`, text: `#${c.seq}` }))) : null,
      withheld ? null : reactionBar(message, this.id),
      message.reply_count ? h("button", { type: "button", class: "link replies", text: `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`,
        onclick: () => this.openThread(message) }) : null,
      message.failed ? h("button", { type: "button", class: "link", text: "Retry", onclick: () => this.retry(message) }) : null,
      !message.pending && !deleted && !withheld ? h("div", { class: "actions", role: "toolbar", "aria-label": "Message actions" },
        h("button", { type: "button", "aria-label": "React with 👍", onclick: () => react(this.id, message, "👍") }, "👍"),
        h("button", { type: "button", text: "Reply", onclick: () => this.openThread(message) }),
        mine ? h("button", { type: "button", text: "Edit", onclick: () => this.edit(message) }) : null,
        canDelete ? h("button", { type: "button", text: "Delete", onclick: () => this.remove(message) }) : null,
        mine ? null : h("button", { type: "button", text: "Report", onclick: () => reportDialog(this.id, message, displayName(message.author_id)) }),
        run ? h("button", { type: "button", text: "Run", onclick: () => traceDialog(run.id) }) : null) : null);
    return node;
  }

  // MARK: Sending

  async send(body, replyTo = null, attachments = []) {
    // Writing from the middle of the history: go back to the present first.
    if (this.line.hasNewer) await loadLatest(this.id);
    const line = this.line;
    const idempotencyKey = uuid();
    const echo = { id: `local-${idempotencyKey}`, conversation_id: this.id, author_id: state.me.id, body, reply_to: replyTo?.id, attachments,
      created_at: new Date().toISOString(), reactions: [], reply_count: 0, pending: true, idempotencyKey };
    line.pending.push(echo);
    this.stickToBottom = true;
    emit("messages", { conversationID: this.id });
    await this.deliver(echo);
  }

  async deliver(echo) {
    const line = this.line;
    try {
      const request = { body: echo.body, reply_to: echo.reply_to ?? null };
      if (echo.attachments?.length) request.attachments = echo.attachments.map((file) => file.id);
      const stored = await post(`/v1/conversations/${this.id}/messages`, request,
        { headers: { "Idempotency-Key": echo.idempotencyKey } });
      line.pending = line.pending.filter((m) => m !== echo);
      putMessage(stored);
    } catch (error) {
      echo.failed = true;
      echo.error = error instanceof ApiError ? error.message : String(error);
    }
    emit("messages", { conversationID: this.id });
  }

  retry(echo) {
    echo.failed = false;
    emit("messages", { conversationID: this.id });
    this.deliver(echo);
  }

  announceTyping() {
    const now = Date.now();
    if (now - this.lastTyping < 3000) return;
    this.lastTyping = now;
    if (!state.live?.send({ type: "typing", conversation_id: this.id })) post(`/v1/conversations/${this.id}/typing`).catch(() => {});
  }

  // The read marker follows what is on screen: at the bottom of a visible, focused page.
  markRead() {
    const conversation = this.conversation;
    if (!conversation || document.hidden || !document.hasFocus() || !this.atBottom()) return;
    const last = this.line.items.at(-1)?.seq ?? 0;
    const read = conversation.membership?.last_read_seq ?? 0;
    if (last <= read || last <= this.lastReadSent) {
      if (conversation.unread_count) { conversation.unread_count = 0; emit("conversations"); }
      return;
    }
    this.lastReadSent = last;
    put(`/v1/conversations/${this.id}/read`, { seq: last }).then((marker) => {
      conversation.membership = { ...(conversation.membership || {}), last_read_seq: marker.last_read_seq };
      conversation.unread_count = marker.unread_count;
      emit("conversations");
    }).catch(() => { this.lastReadSent = 0; });
  }

  // MARK: Editing and deleting

  editLast() {
    const mine = this.line.items.filter((m) => m.author_id === state.me.id && !m.deleted_at && !m.reply_to).at(-1);
    if (!mine) return false;
    this.edit(mine);
    return true;
  }

  // Editing is part of the view's state, so rows rendered again (a message arriving, a
  // reaction) keep the editor and what was typed in it.
  edit(message) {
    this.editing = { seq: message.seq, draft: message.body };
    this.render();
    const field = this.main.querySelector(`[data-key="${CSS.escape(key(message))}"] textarea.edit`);
    field?.focus();
  }

  editor(message) {
    const field = h("textarea", { class: "edit", "aria-label": "Edit message", rows: 2 });
    field.value = this.editing.draft;
    const done = () => { this.editing = null; this.render(); this.composer.focus(); };
    const save = async () => {
      const text = field.value.trim();
      if (!text || text === message.body) return done();
      try {
        putMessage(await patch(`/v1/conversations/${this.id}/messages/${message.seq}`, { body: text }));
        done();
      } catch (error) {
        field.setCustomValidity(error.message);
        field.reportValidity();
      }
    };
    field.addEventListener("input", () => { this.editing.draft = field.value; field.setCustomValidity(""); });
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); save(); }
      if (event.key === "Escape") { event.preventDefault(); done(); }
    });
    return h("div", { class: "body" }, field, h("p", { class: "hint", text: "Enter to save · Escape to cancel" }));
  }

  async remove(message) {
    if (!confirm("Delete this message?")) return;
    try {
      putMessage(await del(`/v1/conversations/${this.id}/messages/${message.seq}`) || { ...message, deleted_at: new Date().toISOString(), body: undefined });
      emit("messages", { conversationID: this.id });
    } catch (error) { alert(error.message); }
  }

  // MARK: Threads

  async openThread(root) {
    this.threadRoot = root;
    this.threadPane.hidden = false;
    document.body.dataset.thread = "open";
    this.threadComposer = composer({ label: "Reply in thread", onSend: (body) => this.send(body, this.threadRoot), onTyping: () => this.announceTyping() });
    await this.loadThread();
    this.threadComposer.focus();
  }

  async loadThread() {
    const root = this.threadRoot;
    try {
      const page = await get(`/v1/conversations/${this.id}/messages/${root.seq}/replies?limit=100`);
      for (const reply of page.items) putMessage(reply);
    } catch { /* shown empty */ }
    this.renderThread();
  }

  renderThread() {
    if (!this.threadRoot) return;
    const root = findMessage(this.id, this.threadRoot.seq) || this.threadRoot;
    const conversation = this.conversation;
    const replies = this.line.items.filter((m) => m.reply_to === root.id).concat(this.line.pending.filter((m) => m.reply_to === root.id));
    clear(this.threadPane,
      h("header", { class: "thread-header" }, h("h2", { text: "Thread" }),
        h("button", { type: "button", class: "icon", "aria-label": "Close thread", onclick: () => { this.closeThread(); this.composer.focus(); } }, "×")),
      h("ol", { class: "rows thread-rows" }, this.row(root, conversation), replies.map((m) => this.row(m, conversation))),
      this.threadComposer.node);
  }

  closeThread() {
    this.threadRoot = null;
    if (this.threadPane) { this.threadPane.hidden = true; clear(this.threadPane); }
    delete document.body.dataset.thread;
  }
}

// Moderation's mark, on a message whose text I can see: its author (and moderators, whom
// the server shows it) learn that it is held back or flagged, and the model's score.
function moderationMark(message, mine) {
  const moderation = message.moderation;
  if (!moderation || !["held", "flagged"].includes(moderation.state)) return null;
  const held = moderation.state === "held";
  const score = typeof moderation.score === "number" ? ` · score ${moderation.score.toFixed(2)}` : "";
  return h("span", {
    class: `moderation-mark ${moderation.state}`,
    title: held ? (mine ? "Only you and the moderators see it until a moderator approves it." : "The other members do not see it until a moderator approves it.")
      : "Everyone sees it; a moderator will look at it.",
    text: `${held ? "Held for review" : "Flagged"}${score}`,
  });
}

function key(message) {
  return message.pending ? message.id : `s${message.seq}`;
}

function reactionBar(message, conversationID) {
  const reactions = message.reactions || [];
  if (!reactions.length && message.deleted_at) return null;
  const picker = h("details", { class: "reaction-picker" }, h("summary", { "aria-label": "Add a reaction", text: "☺+" }),
    h("div", { class: "choices" }, QUICK_REACTIONS.map((emoji) => h("button", { type: "button", "aria-label": `React with ${emoji}`,
      onclick: (event) => { event.target.closest("details").open = false; react(conversationID, message, emoji); } }, emoji))));
  if (!reactions.length && message.pending) return null;
  return h("div", { class: "reactions" },
    reactions.map((r) => h("button", { type: "button", class: `reaction${r.me ? " mine" : ""}`, "aria-pressed": r.me ? "true" : "false",
      "aria-label": `${r.emoji} ${r.count}${r.me ? ", including you" : ""}`, onclick: () => react(conversationID, message, r.emoji) },
    `${r.emoji} ${r.count}`)),
    message.pending ? null : picker);
}

async function react(conversationID, message, emoji) {
  const mine = (message.reactions || []).find((r) => r.emoji === emoji)?.me;
  const path = `/v1/conversations/${conversationID}/messages/${message.seq}/reactions/${encodeURIComponent(emoji)}`;
  try {
    if (mine) await del(path); else await put(path);
  } catch (error) { alert(error.message); }
}

// The message box: Enter sends, Shift+Enter starts a new line, Up in an empty box edits my
// last message. With `files`, an attach button, and files pasted or dropped on it, go with the
// next message (Send waits until they have uploaded).
function composer({ label, onSend, onTyping, onEditLast, files: withFiles = false }) {
  const field = h("textarea", { class: "composer-input", rows: 1, "aria-label": label, placeholder: label, maxlength: 4000 });
  const button = h("button", { type: "submit", class: "primary", text: "Send" });
  const files = withFiles ? attachmentPicker({ onChange: () => { button.disabled = files.busy(); } }) : null;
  const form = h("form", { class: "composer" }, files?.button, files?.input, field, button);
  const node = files ? h("div", { class: "composer-box" }, files.list, form) : form;
  const submit = () => {
    const body = field.value.trim();
    if (files?.busy() || (!body && !files?.count)) return;
    field.value = "";
    resize();
    onSend(body, files ? files.take() : []);
  };
  if (files) {
    field.addEventListener("paste", (event) => {
      const pasted = [...(event.clipboardData?.files || [])];
      if (pasted.length) { event.preventDefault(); pasted.forEach(files.add); }
    });
    node.addEventListener("dragover", (event) => { if (event.dataTransfer?.types.includes("Files")) event.preventDefault(); });
    node.addEventListener("drop", (event) => {
      const dropped = [...(event.dataTransfer?.files || [])];
      if (dropped.length) { event.preventDefault(); dropped.forEach(files.add); }
    });
  }
  const resize = () => { field.style.height = "auto"; field.style.height = `${Math.min(field.scrollHeight, 200)}px`; };
  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); field.focus(); });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    else if (event.key === "ArrowUp" && !field.value && onEditLast?.()) event.preventDefault();
  });
  field.addEventListener("input", () => { resize(); if (field.value) onTyping?.(); });
  const relabel = (text) => { field.setAttribute("aria-label", text); field.placeholder = text; };
  return { node, focus: () => field.focus(), label: relabel };
}
