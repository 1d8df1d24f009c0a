// Search across every conversation I can read, with the matches highlighted; a result opens
// its message in its conversation.

import { get } from "../lib/api.js";
import { clear, h, shortTime, snippet } from "../lib/dom.js";
import { conversationTitle, displayName, state } from "../lib/store.js";

export async function renderSearch(main, q) {
  const input = h("input", { type: "search", name: "q", value: q, "aria-label": "Search messages", autocomplete: "off" });
  const results = h("ol", { class: "search-results", "aria-label": "Results" });
  const form = h("form", { class: "search-form", role: "search", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/search?q=${encodeURIComponent(input.value.trim())}`;
  } }, input, h("button", { type: "submit", text: "Search" }));
  clear(main, h("header", { class: "conversation-header" }, h("a", { href: "#/", class: "back", "aria-label": "Back", text: "‹" }),
    h("h1", { text: "Search" })), form, results);
  if (!q) return input.focus();
  clear(results, h("li", { class: "muted", text: "Searching…" }));
  try {
    const page = await get(`/v1/search/messages?q=${encodeURIComponent(q)}&limit=50`);
    clear(results, page.items.length ? page.items.map(({ message, snippet: text }) => {
      const conversation = state.conversations.get(message.conversation_id);
      return h("li", {}, h("a", { href: `#/c/${message.conversation_id}/m/${message.seq}`, class: "result" },
        h("span", { class: "meta" }, h("strong", { text: conversation ? conversationTitle(conversation) : "A conversation" }),
          ` · ${displayName(message.author_id)} · ${shortTime(message.created_at)}`),
        h("span", { class: "snippet" }, snippet(text))));
    }) : h("li", { class: "muted", text: `Nothing matches “${q}”.` }));
    results.querySelector("a")?.focus();
  } catch (error) {
    clear(results, h("li", { role: "alert", text: error.message }));
  }
}
