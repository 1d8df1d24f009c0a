// Parley's service worker: shows Web Push notifications (unless a Parley tab has the focus,
// where the page shows them itself) and opens the conversation when one is clicked. It
// caches nothing: the page is always fetched from the server.

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { title: "Parley", body: event.data?.text() || "" }; }
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    if (windows.some((client) => client.focused)) return;
    await self.registration.showNotification(data.title || "Parley", {
      body: data.body || "", tag: data.tag, data: { url: data.url || "/" },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || "/", self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = windows.find((client) => new URL(client.url).origin === url.origin);
    if (open) { await open.focus(); await open.navigate(url.href); } else { await self.clients.openWindow(url.href); }
  })());
});
