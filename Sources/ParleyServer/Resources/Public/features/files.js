// Files on messages: the composer's attach button (each file uploads as soon as it is picked,
// and the message carries the ids), and a message's attachments: pictures as thumbnails that
// open the full picture, other files as download links with their size.

import { ApiError, del, upload } from "../lib/api.js";
import { h, clear } from "../lib/dom.js";

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function attachmentList(attachments) {
  if (!attachments?.length) return null;
  return h("ul", { class: "attachments", "aria-label": "Files" }, attachments.map((file) => {
    if (file.thumbnail_url || file.media_type?.startsWith("image/")) {
      const picture = h("img", { src: file.thumbnail_url || file.url, alt: file.name, loading: "lazy", decoding: "async" });
      // Reserve the picture's box before it loads, so the list does not jump.
      if (file.width && file.height) {
        const scale = Math.min(1, 360 / Math.max(file.width, file.height));
        picture.width = Math.max(1, Math.round(file.width * scale));
        picture.height = Math.max(1, Math.round(file.height * scale));
      }
      return h("li", { class: "attachment picture" },
        h("a", { href: file.url, target: "_blank", rel: "noopener", title: `${file.name} (${formatSize(file.size)})` }, picture));
    }
    return h("li", { class: "attachment file" },
      h("a", { href: file.url, download: file.name, text: file.name }),
      h("span", { class: "size", text: formatSize(file.size) }));
  }));
}

// The files waiting to go with the next message. `onChange` runs when the list changes (the
// composer enables Send once every upload has finished).
export function attachmentPicker({ onChange }) {
  const items = [];
  // Reached through the button (the input itself is hidden and out of the tab order).
  const input = h("input", { type: "file", multiple: true, class: "visually-hidden", tabindex: -1, "aria-hidden": "true" });
  const button = h("button", { type: "button", class: "icon attach", "aria-label": "Attach files", title: "Attach files", text: "📎",
    onclick: () => input.click() });
  const list = h("ul", { class: "pending-files", "aria-live": "polite" });

  const render = () => {
    clear(list, items.map((item) => h("li", { class: `pending-file${item.error ? " failed" : ""}` },
      h("span", { text: item.file.name }),
      h("span", { class: "size", text: item.error ? item.error : item.upload ? formatSize(item.upload.size) : "uploading…" }),
      h("button", { type: "button", class: "icon", "aria-label": `Remove ${item.file.name}`, text: "×", onclick: () => remove(item) }))));
    onChange?.();
  };
  const remove = (item) => {
    items.splice(items.indexOf(item), 1);
    item.controller.abort();
    if (item.upload) del(`/v1/uploads/${item.upload.id}`).catch(() => {});
    render();
  };
  const add = (file) => {
    const item = { file, controller: new AbortController(), upload: null, error: null };
    items.push(item);
    item.done = upload(file, { signal: item.controller.signal })
      .then((stored) => { item.upload = stored; })
      .catch((error) => { if (error.name !== "AbortError") item.error = error instanceof ApiError ? error.message : String(error); })
      .finally(render);
    render();
  };
  input.addEventListener("change", () => {
    for (const file of input.files) add(file);
    input.value = "";
  });

  return {
    button, input, list, add,
    busy: () => items.some((item) => !item.upload && !item.error),
    // The finished uploads, taken for a message (the list empties).
    take: () => {
      const ready = items.filter((item) => item.upload).map((item) => item.upload);
      items.length = 0;
      render();
      return ready;
    },
    get count() { return items.filter((item) => item.upload).length; },
  };
}
