// Building DOM nodes. Text from the server is only ever set as text (textContent or text
// nodes), never parsed as HTML: a message that contains markup shows the markup.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A message body as nodes: `code spans`, links (http and https only) and @mentions, the
// rest as text. Nothing in the body can become markup or a script.
const TOKEN = /(`[^`\n]+`)|(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])|(@[a-z0-9_.-]{3,32})/gi;

export function richText(body) {
  const nodes = [];
  let last = 0;
  for (const match of body.matchAll(TOKEN)) {
    if (match.index > last) nodes.push(document.createTextNode(body.slice(last, match.index)));
    const [text, code, url, mention] = match;
    if (code) nodes.push(h("code", { text: code.slice(1, -1) }));
    else if (url) nodes.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
    else if (mention) nodes.push(h("span", { class: "mention", text: mention }));
    last = match.index + text.length;
  }
  if (last < body.length) nodes.push(document.createTextNode(body.slice(last)));
  return nodes;
}

// A message's structure, as the server parsed it (formatting and mentions), built as
// elements around text nodes. Only http, https and mailto links become links.
export function renderContent(nodes, { me } = {}) {
  return nodes.map((node) => contentNode(node, me, 0));
}

// A message's structure as one line of plain text (for previews).
export function plainText(nodes) {
  const parts = [];
  const walk = (node) => {
    if (node.type === "mention") parts.push(`@${node.handle}`);
    else if (node.type === "line_break") parts.push(" ");
    else if (node.text) parts.push(node.text);
    (node.children || []).forEach(walk);
    if (["paragraph", "quote", "list_item", "code_block"].includes(node.type)) parts.push(" ");
  };
  nodes.forEach(walk);
  return parts.join("").replace(/\s+/g, " ").trim();
}

function contentNode(node, me, depth) {
  const children = () => (depth < 16 ? (node.children || []).map((child) => contentNode(child, me, depth + 1)) : []);
  switch (node.type) {
    case "paragraph": return h("p", {}, children());
    case "quote": return h("blockquote", {}, children());
    case "list": return h(node.ordered ? "ol" : "ul", {}, children());
    case "list_item": return h("li", {}, children());
    case "code_block": return h("pre", {}, h("code", { dataset: node.language ? { language: node.language } : undefined, text: node.text || "" }));
    case "strong": return h("strong", {}, children());
    case "emphasis": return h("em", {}, children());
    case "code": return h("code", { text: node.text || "" });
    case "line_break": return h("br");
    case "link":
      return /^(https?:|mailto:)/i.test(node.url || "")
        ? h("a", { href: node.url, target: "_blank", rel: "noopener noreferrer nofollow" }, children())
        : h("span", {}, children());
    case "mention": {
      const mine = node.user_id ? node.user_id === me : ["channel", "here"].includes(node.handle);
      return h("span", { class: `mention${mine ? " me" : ""}`, dataset: node.user_id ? { user: node.user_id } : undefined, text: `@${node.handle}` });
    }
    default: return document.createTextNode(node.text || "");
  }
}

// A search snippet: the server escapes the text and marks matches with <mark>; we rebuild
// it as text and <mark> nodes rather than trusting it as HTML.
export function snippet(escaped) {
  const decode = (text) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"").replace(/&#39;/g, "'").replace(/&amp;/g, "&");
  return escaped.split(/(<mark>.*?<\/mark>)/g).filter(Boolean).map((part) =>
    part.startsWith("<mark>") ? h("mark", { text: decode(part.slice(6, -7)) }) : document.createTextNode(decode(part)));
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });

export function shortTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : `${dayFormat.format(date)} ${timeFormat.format(date)}`;
}

export function fullTime(iso) {
  return new Date(iso).toLocaleString();
}

export function uuid() {
  return crypto.randomUUID ? crypto.randomUUID() : "k" + Math.random().toString(36).slice(2) + Date.now().toString(36);
}

// A modal dialog (the native <dialog>: focus is trapped and Escape closes it).
export function dialog(title, content, { onClose } = {}) {
  const node = h("dialog", { class: "dialog", "aria-label": title },
    h("header", {}, h("h2", { text: title }), h("button", { type: "button", class: "icon", "aria-label": "Close", onclick: () => node.close() }, "×")),
    content);
  node.addEventListener("close", () => { node.remove(); onClose?.(); });
  document.body.append(node);
  node.showModal();
  return node;
}

export function fieldErrors(form, error) {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  const general = form.querySelector(".form-error");
  if (general) general.textContent = "";
  let placed = false;
  for (const [field, message] of Object.entries(error.fields || {})) {
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.after(h("p", { class: "field-error", role: "alert", text: message }));
      placed = true;
    }
  }
  if (!placed && general) general.textContent = error.message;
}
