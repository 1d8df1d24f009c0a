const root = document.documentElement;

// The live event stream: one WebSocket (Server-Sent Events when WebSockets cannot connect),
// resumed from the last event id after any loss, with back-off. The server replays every
// event after `since` before forwarding live ones, so a reconnect misses nothing and repeats
// nothing; frames with an id at or below the last one seen are dropped all the same.

export class LiveStream {
  constructor({ onFrame, onStatus, onResync }) {
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.onResync = onResync;
    this.lastID = null;
    this.socket = null;
    this.source = null;
    this.attempt = 0;
    this.failedSockets = 0;
    this.useSSE = false;
    this.timer = null;
    this.watchdog = null;
    this.stopped = true;
    this.status = "connecting";
    // People whose presence this client asked for by name (see watchPresence).
    this.watched = [];
    addEventListener("online", () => this.reconnectNow());
    addEventListener("offline", () => this.setStatus("offline"));
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  // Sends a client frame (typing, presence) when the WebSocket is open; false otherwise.
  send(frame) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // Asks to hear of these people's presence (up to 500; [] to stop), for conversations too big
  // for the server to push it through. Kept and said again on every new WebSocket; over SSE
  // (which cannot send) it returns false and the caller reads GET /v1/presence once instead.
  watchPresence(userIDs) {
    this.watched = userIDs.slice(0, 500);
    return this.send({ type: "presence.subscribe", user_ids: this.watched });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    this.closeTransports();
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
  }

  closeTransports() {
    if (this.socket) { this.socket.onclose = null; this.socket.close(); this.socket = null; }
    if (this.source) { this.source.close(); this.source = null; }
  }

  url(path) {
    const since = this.lastID === null ? "" : `?since=${this.lastID}`;
    return `${path}${since}`;
  }

  connect() {
    if (this.stopped) return;
    this.closeTransports();
    if (this.useSSE) return this.connectSSE();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${this.url("/v1/events")}`);
    this.socket = socket;
    // A WebSocket that closes before a single frame came through (refused, or cut by a proxy
    // that does not pass WebSockets) counts as a failure; three in a row switch to SSE.
    let received = false;
    socket.onopen = () => {
      if (this.watched.length) socket.send(JSON.stringify({ type: "presence.subscribe", user_ids: this.watched }));
      this.connected();
    };
    socket.onmessage = (message) => {
      if (!received) { received = true; this.failedSockets = 0; }
      this.receive(message.data);
    };
    socket.onclose = async () => {
      if (this.socket !== socket) return;
      this.socket = null;
      // Only while the server answers plain HTTP: a server that is down or restarting is not
      // a reason to give up on WebSockets.
      if (!received && navigator.onLine && await this.serverAnswers() && ++this.failedSockets >= 3) this.useSSE = true;
      this.retry();
    };
  }

  async serverAnswers() {
    try { return (await fetch("/healthz", { cache: "no-store" })).ok; } catch { return false; }
  }

  connectSSE() {
    const source = new EventSource(this.url("/v1/events/stream"));
    this.source = source;
    source.onopen = () => this.connected();
    // Named events (`event: message.created`) and unnamed ones both carry the whole frame.
    const receive = (message) => this.receive(message.data);
    source.onmessage = receive;
    for (const type of LiveStream.sseTypes) source.addEventListener(type, receive);
    source.onerror = () => {
      if (this.source !== source) return;
      source.close();
      this.source = null;
      this.retry();
    };
  }

  connected() {
    // A reconnect before any stored event arrived has no id to resume from: read again.
    if (this.everConnected && this.lastID === null) this.onResync();
    this.everConnected = true;
    this.attempt = 0;
    root.dataset.transport = this.source ? "sse" : "websocket";
    this.setStatus("live");
    this.armWatchdog();
  }

  // The server sends a heartbeat every 20 seconds on a quiet stream: a stream silent for
  // 50 seconds is dead even if the socket has not noticed.
  armWatchdog() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.reconnectNow(), 50_000);
  }

  receive(text) {
    this.armWatchdog();
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (frame.type === "resume") {
      // The server cut this connection off (it fell behind); the next one resumes from here.
      if (frame.data?.since !== undefined) this.lastID = frame.data.since;
      return;
    }
    if (frame.type === "resync_required") {
      this.lastID = frame.data?.since ?? this.lastID;
      this.onResync();
      return;
    }
    if (frame.id !== undefined && frame.id !== null) {
      if (this.lastID !== null && frame.id <= this.lastID) return;
      this.lastID = frame.id;
    }
    this.onFrame(frame);
  }

  retry() {
    if (this.stopped) return;
    this.setStatus(navigator.onLine ? "reconnecting" : "offline");
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    const base = Math.min(15_000, 500 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
  }

  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    clearTimeout(this.timer);
    this.connect();
  }
}

LiveStream.sseTypes = ["message.created", "message.edited", "message.deleted", "message.held", "message.approved", "reaction.added", "reaction.removed",
  "member.joined", "member.left", "member.role_changed", "conversation.created", "conversation.updated",
  "conversation.deleted", "read.updated", "typing", "presence", "heartbeat", "resync_required", "assistant.delta",
  "run.started", "run.approval_requested", "run.approval_decided", "run.completed", "run.failed", "run.cancelled",
  "notification.created", "notifications.read", "membership.updated"];
