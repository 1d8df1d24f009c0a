// The moderators' screen (`#/moderation`): the queue of held, flagged and reported messages,
// in groups of alike messages (the server groups them) so a wave is decided together; the
// site's thresholds (administrators change them); and the latest decisions.

import { ApiError, get, post, put } from "../lib/api.js";
import { clear, dialog, fieldErrors, fullTime, h, renderContent, shortTime } from "../lib/dom.js";
import { conversationTitle, displayName, state, user } from "../lib/store.js";

const STATES = { held: "Held", flagged: "Flagged", approved: "Approved", removed: "Removed" };

// An audit entry in words: "max removed a message", "Boss put moderation@2 in production".
function describe(entry) {
  const [kind, id] = entry.subject.split(/:(.*)/s);
  const conversation = kind === "conversation" ? state.conversations.get(id) : null;
  const subject = kind === "message" ? "a message" : kind === "user" ? displayName(id) : kind === "model" ? id
    : kind === "site" ? "the site's" : conversation ? `${conversationTitle(conversation)}'s` : "a conversation's";
  const stage = entry.action.match(/^model\.stage\.(\w+)$/)?.[1];
  const role = entry.action.match(/^user\.role\.(\w+)$/)?.[1];
  switch (true) {
    case entry.action === "moderation.approve": return `approved ${subject}`;
    case entry.action === "moderation.remove": return `removed ${subject}`;
    case entry.action === "moderation.policy": return `changed ${subject} policy`;
    case entry.action === "model.trained": return `trained ${subject}`;
    case entry.action === "model.rollback": return `rolled back ${subject}`;
    case !!stage: return stage === "archived" ? `archived ${subject}` : `put ${subject} in ${stage}`;
    case !!role: return `made ${subject} ${role === "admin" ? "an administrator" : role === "user" ? "a member" : `a ${role}`}`;
    default: return `${entry.action} ${entry.subject}`;
  }
}

export async function renderModeration(main, { current }) {
  const status = h("p", { class: "page-status", role: "status" });
  const count = h("p", { class: "muted" });
  const queue = h("div", { class: "queue" });
  const policy = h("div", { class: "policy" });
  const audit = h("ol", { class: "audit", "aria-label": "Recent decisions" });
  const queueHeading = h("h2", { id: "queue-heading", tabindex: -1, text: "Queue" });
  clear(main,
    h("header", { class: "conversation-header" },
      h("a", { href: "#/", class: "back", "aria-label": "Back to conversations", text: "‹" }),
      h("h1", { text: "Moderation" }),
      h("button", { type: "button", text: "Refresh", onclick: () => { status.textContent = ""; loadQueue(); loadAudit(); } })),
    h("div", { class: "page" }, status,
      h("section", { "aria-labelledby": "queue-heading" }, queueHeading, count, queue),
      h("section", { "aria-labelledby": "policy-heading" }, h("h2", { id: "policy-heading", text: "Site policy" }), policy),
      h("section", { "aria-labelledby": "audit-heading" }, h("h2", { id: "audit-heading", text: "Recent decisions" }), audit)));

  if (!["moderator", "admin"].includes(state.me.role)) {
    clear(queue, h("p", { role: "alert", text: "Only moderators and administrators see the moderation queue." }));
    return;
  }

  const say = (text) => { status.textContent = text; };
  const counted = () => {
    const left = queue.querySelectorAll(".mod-item").length;
    count.textContent = left ? `${left} ${left === 1 ? "message is" : "messages are"} waiting for a decision.` : "Nothing is waiting for a decision.";
  };

  // A decided item leaves the queue (its group too, when it was the last); focus moves on to
  // the next item, or to the queue's heading.
  const decided = (node) => {
    const items = [...queue.querySelectorAll(".mod-item")];
    const next = items[items.indexOf(node) + 1] || items[items.indexOf(node) - 1];
    const group = node.closest(".mod-group");
    node.remove();
    if (group && !group.querySelector(".mod-item")) group.remove();
    counted();
    (next?.querySelector("button") || queueHeading).focus();
    loadAudit();
  };

  async function loadQueue() {
    try {
      const answer = await get("/v1/moderation/queue");
      const items = answer.groups.flatMap((group) => group.items);
      // Every name on the screen, before it is drawn.
      await Promise.all([...new Set(items.flatMap((item) => [item.message.author_id, ...item.reports.map((r) => r.reporter_id)]))].map(user));
      if (!current()) return;
      // (Grouping needs a few messages: below that the server sends them as one group.)
      const many = answer.groups.length > 1;
      clear(queue, answer.groups.map((group, index) => h("section", { class: "mod-group", "aria-label": `Group ${index + 1}` },
        many ? h("h3", { text: group.items.length === 1 ? `Group ${index + 1}: 1 message` : `Group ${index + 1}: ${group.items.length} alike messages` }) : null,
        h("ul", { class: "mod-items" }, group.items.map((item) => h("li", {}, itemNode(item, { say, decided })))))));
      counted();
    } catch (error) {
      if (current()) clear(queue, h("p", { role: "alert", text: error.message }));
    }
  }

  async function loadAudit() {
    try {
      const page = await get("/v1/moderation/audit?limit=20");
      const people = page.items.flatMap((entry) => [entry.actor_id, entry.subject.startsWith("user:") ? entry.subject.slice(5) : null]);
      await Promise.all([...new Set(people.filter(Boolean))].map(user));
      if (!current()) return;
      clear(audit, page.items.length ? page.items.map((entry) => h("li", {},
        h("time", { datetime: entry.created_at, title: fullTime(entry.created_at), text: shortTime(entry.created_at) }),
        ` ${entry.actor_id ? displayName(entry.actor_id) : "Parley"} ${describe(entry)}`,
        entry.reason ? h("span", { class: "reason", text: `: ${entry.reason}` }) : null))
        : h("li", { class: "muted", text: "No decisions yet." }));
    } catch (error) {
      if (current()) clear(audit, h("li", { role: "alert", text: error.message }));
    }
  }

  await Promise.all([loadQueue(), renderPolicy(policy, current, loadAudit), loadAudit()]);
}

// One message waiting for a decision: where and by whom, its text, what moderation and the
// members said about it, and the two decisions.
function itemNode(item, { say, decided }) {
  const message = item.message;
  const moderation = message.moderation;
  const author = state.users.get(message.author_id);
  const authorName = displayName(message.author_id);
  const conversation = state.conversations.get(message.conversation_id);
  const marks = [];
  if (moderation?.state) marks.push(h("span", { class: `moderation-mark ${moderation.state}`, text: STATES[moderation.state] || moderation.state }));
  if (item.reports.length) marks.push(h("span", { class: "moderation-mark reported", text: item.reports.length === 1 ? "1 report" : `${item.reports.length} reports` }));
  if (typeof moderation?.score === "number") marks.push(h("span", { class: "score", text: `score ${moderation.score.toFixed(2)}` }));
  if (moderation?.model) marks.push(h("span", { class: "muted", text: moderation.model }));
  const approve = h("button", { type: "button", class: "primary", text: "Approve" });
  const remove = h("button", { type: "button", class: "danger", text: "Remove" });
  const node = h("article", { class: "mod-item", "aria-label": `Message from ${authorName}` },
    h("p", { class: "meta" },
      h("strong", { class: "author", text: authorName }), author ? h("span", { class: "muted", text: ` @${author.handle}` }) : null,
      " in ",
      conversation
        ? h("a", { href: `#/c/${message.conversation_id}/m/${message.seq}`, text: conversationTitle(conversation) })
        : h("span", { text: "a conversation you are not in" }),
      " · ", h("time", { datetime: message.created_at, title: fullTime(message.created_at), text: shortTime(message.created_at) }),
      message.edited_at ? " (edited)" : null),
    h("p", { class: "marks" }, marks),
    h("div", { class: "body" }, message.content ? renderContent(message.content, { me: state.me.id }) : message.body || ""),
    message.attachments?.length ? h("p", { class: "muted", text: `Files: ${message.attachments.map((file) => file.name).join(", ")}` }) : null,
    item.reports.length ? h("ul", { class: "reports", "aria-label": "Reports" }, item.reports.map((report) => h("li", {},
      h("strong", { text: displayName(report.reporter_id) }), `: ${report.reason}`,
      h("span", { class: "muted", text: ` · ${shortTime(report.created_at)}` })))) : null,
    h("div", { class: "decisions" }, approve, remove));

  const decide = async (action, reason) => {
    const body = reason ? { action, reason } : { action };
    try {
      await post(`/v1/moderation/messages/${message.id}/decision`, body);
      say(action === "approve" ? `Approved the message from ${authorName}.` : `Removed the message from ${authorName}.`);
    } catch (error) {
      // Decided meanwhile (by another moderator, or deleted by its author): it leaves the queue all the same.
      if (!(error instanceof ApiError && error.status === 409)) throw error;
      say(`The message from ${authorName} was decided already.`);
    }
  };

  approve.addEventListener("click", async () => {
    approve.disabled = remove.disabled = true;
    try {
      await decide("approve");
      decided(node);
    } catch (error) {
      approve.disabled = remove.disabled = false;
      say(error.message);
    }
  });
  remove.addEventListener("click", () => {
    const reason = h("textarea", { id: "remove-reason", name: "reason", rows: 3, maxlength: 500, required: true });
    const form = h("form", { class: "stack" },
      h("p", { class: "muted", text: `The message from ${authorName} becomes a tombstone for every member. Your reason goes in the audit log.` }),
      h("label", { for: "remove-reason", text: "Reason" }), reason,
      h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", class: "danger", text: "Remove message" }));
    const box = dialog("Remove message", form);
    reason.focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await decide("remove", reason.value.trim());
        box.close();
        decided(node);
      } catch (error) { fieldErrors(form, error); }
    });
  });
  return node;
}

// The site's thresholds: a message scoring at or above one is flagged, held or refused. Empty
// is never. Moderators read them; administrators change them.
async function renderPolicy(root, current, onSaved) {
  let thresholds;
  try {
    thresholds = await get("/v1/moderation/policy");
  } catch (error) {
    if (current()) clear(root, h("p", { role: "alert", text: error.message }));
    return;
  }
  if (!current()) return;
  const admin = state.me.role === "admin";
  const field = (name, label, hint) => [
    h("label", { for: `policy-${name}`, text: label }),
    h("input", { id: `policy-${name}`, name, type: "number", min: 0, max: 1, step: 0.01, inputmode: "decimal", placeholder: "never",
      value: thresholds[name] ?? "", disabled: !admin, "aria-describedby": `policy-${name}-hint` }),
    h("p", { class: "hint", id: `policy-${name}-hint`, text: hint }),
  ];
  const saved = h("p", { class: "saved", role: "status" });
  const form = h("form", { class: "stack policy-form", "aria-label": "Site policy" },
    h("p", { class: "muted", text: "A message the moderation model scores at or above a threshold is flagged, held or refused (a conversation may set its own). Leave one empty for never." }),
    field("flag_at", "Flag at", "Everyone sees it; it joins the queue."),
    field("hold_at", "Hold at", "Only its author sees it until a moderator approves it."),
    field("block_at", "Block at", "It is refused when sent."),
    h("p", { class: "form-error", role: "alert" }),
    admin ? h("button", { type: "submit", class: "primary", text: "Save policy" })
      : h("p", { class: "muted", text: "Only administrators change the site's policy." }),
    saved);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saved.textContent = "";
    for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
    const value = (name) => (form[name].value.trim() === "" ? null : Number(form[name].value));
    try {
      const answer = await put("/v1/moderation/policy", { flag_at: value("flag_at"), hold_at: value("hold_at"), block_at: value("block_at") });
      for (const node of form.querySelectorAll(".field-error")) node.remove();
      form.querySelector(".form-error").textContent = "";
      for (const name of ["flag_at", "hold_at", "block_at"]) form[name].value = answer[name] ?? "";
      saved.textContent = "Saved.";
      onSaved();
    } catch (error) { fieldErrors(form, error); }
  });
  clear(root, form);
}
