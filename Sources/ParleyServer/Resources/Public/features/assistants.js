// Assistants in a conversation: replies streaming in, approval cards, and a run's trace.

import { get, post } from "../lib/api.js";
import { dialog, h, clear, fullTime } from "../lib/dom.js";
import { displayName, state } from "../lib/store.js";

// Replies being written right now in this conversation, as rows under the messages.
export function streamingRows(conversationID) {
  const rows = [];
  for (const [runID, delta] of state.deltas) {
    if (delta.conversationID !== conversationID || !delta.text) continue;
    rows.push(h("li", { class: "message streaming", dataset: { run: runID }, "aria-live": "off" },
      h("div", { class: "meta" }, h("strong", { class: "author", text: displayName(delta.assistantID) }), h("span", { class: "tag", text: "assistant" }),
        h("span", { class: "time", text: "writing…" })),
      h("div", { class: "body", text: delta.text })));
  }
  return rows;
}

// Runs waiting for a person's approval in this conversation, as cards with Approve / Reject.
export function approvalCards(conversationID, onDecided) {
  const cards = [];
  for (const run of state.runs.values()) {
    if (run.conversation_id !== conversationID || run.status !== "awaiting_approval" || !run.approval) continue;
    const mayDecide = run.approval.approvers?.includes(state.me.id);
    const reason = h("input", { type: "text", name: "reason", placeholder: "Reason (optional, the assistant sees it)", "aria-label": "Reason" });
    const decide = async (approved) => {
      try {
        await post(`/v1/runs/${run.id}/approval`, { approved, reason: reason.value.trim() || undefined });
        onDecided();
      } catch (error) {
        card.querySelector(".form-error").textContent = error.message;
      }
    };
    const card = h("li", { class: "approval-card", role: "group", "aria-label": `Approval request from ${displayName(run.assistant_id)}` },
      h("p", {}, h("strong", { text: displayName(run.assistant_id) }), " wants to run ", h("code", { text: run.approval.tool })),
      h("pre", { class: "arguments", text: run.approval.arguments }),
      mayDecide
        ? h("div", { class: "actions" }, reason,
          h("button", { type: "button", class: "primary", text: "Approve", onclick: () => decide(true) }),
          h("button", { type: "button", class: "danger", text: "Reject", onclick: () => decide(false) }))
        : h("p", { class: "muted", text: "Waiting for the person who asked, or a conversation admin." }),
      h("button", { type: "button", class: "link", text: "View run", onclick: () => traceDialog(run.id) }),
      h("p", { class: "form-error", role: "alert" }));
    cards.push(card);
  }
  return cards;
}

// The runs of a conversation, so approval cards survive a reload.
export async function loadRuns(conversationID) {
  try {
    const page = await get(`/v1/conversations/${conversationID}/runs?limit=20`);
    for (const run of page.items) state.runs.set(run.id, run);
  } catch { /* no assistants here, or not allowed */ }
}

export function runForReply(conversationID, seq) {
  for (const run of state.runs.values()) if (run.conversation_id === conversationID && run.reply_seq === seq) return run;
  return null;
}

export async function traceDialog(runID) {
  const body = h("div", { class: "trace" }, h("p", { text: "Loading…" }));
  dialog("Run trace", body);
  try {
    const run = await get(`/v1/runs/${runID}`);
    const usage = run.usage || {};
    clear(body,
      h("p", {}, h("strong", { text: run.status }), ` · ${usage.prompt_tokens ?? 0} prompt + ${usage.completion_tokens ?? 0} completion tokens`,
        run.error ? h("span", { class: "error", text: ` · ${run.error}` }) : null),
      h("ol", { class: "steps" }, (run.steps || []).map((step) => h("li", {},
        h("details", {}, h("summary", {}, h("strong", { text: step.kind }), ` ${step.name} · ${Math.round(step.duration_ms ?? 0)} ms · ${fullTime(step.started_at)}`),
          h("pre", { text: JSON.stringify(step.detail, null, 2) }))))));
  } catch (error) {
    clear(body, h("p", { role: "alert", text: error.message }));
  }
}
