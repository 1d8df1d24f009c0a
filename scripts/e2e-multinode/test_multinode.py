"""Three `parley serve` nodes on one PostgreSQL database behind nginx (deploy/nginx.conf).

Started by scripts/e2e-multinode/run, which passes, in the environment:
PARLEY_MN_NGINX_URL, and space-separated PARLEY_MN_NODE_URLS, PARLEY_MN_NODE_PIDS and
PARLEY_MN_NODE_LOGS (the same order), and PARLEY_MN_NGINX_ERROR_LOG.

Clients stream events over SSE and WebSocket, some straight from each node and some through
nginx; senders post through nginx; one node is SIGKILLed mid-traffic (the last test: the
others run on three live nodes). Every client must end up with every message of each of its
conversations exactly once and in order, every sender's accepted messages exactly once, and
no event id twice.

Each connection attempt sends an X-Request-ID (client name and attempt number), which the
nodes log: a failure message names the attempt to look for in the node logs and in nginx's
access log (which records the upstream that served each request).
"""
import json
import os
import signal
import socket
import threading
import time
import uuid

import pytest
import requests
import websocket

PASSWORD = "correct horse battery staple"
HTTP_TIMEOUT = 10


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this through scripts/e2e-multinode/run")
    return value


@pytest.fixture(scope="module")
def cluster():
    nodes = _env("PARLEY_MN_NODE_URLS").split()
    pids = [int(p) for p in _env("PARLEY_MN_NODE_PIDS").split()]
    logs = _env("PARLEY_MN_NODE_LOGS").split()
    assert len(nodes) == len(pids) == len(logs) == 3
    return {"nginx": _env("PARLEY_MN_NGINX_URL").rstrip("/"), "nodes": [n.rstrip("/") for n in nodes],
            "pids": pids, "logs": logs}


_counter = iter(range(1_000_000))


def fresh_prefix():
    """Unique per test and run: the database may be reused."""
    return f"mn{int(time.time() * 1000) % 10**9}x{next(_counter)}"


def auth(user):
    return {"Authorization": f"Bearer {user['access_token']}"}


def register(base, handle):
    response = requests.post(f"{base}/v1/auth/register", json={"handle": handle, "password": PASSWORD}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()


def create_group(base, owner, title, members):
    response = requests.post(f"{base}/v1/conversations", headers=auth(owner), timeout=HTTP_TIMEOUT,
                             json={"kind": "group", "title": title, "member_ids": [m["user"]["id"] for m in members]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def all_messages(base, user, cid):
    """Every message of a conversation from the REST API, oldest first (paged with after=)."""
    items, after = [], 0
    while True:
        response = requests.get(f"{base}/v1/conversations/{cid}/messages", headers=auth(user),
                                params={"after": after, "limit": 25}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if not page["has_more"]:
            return items
        after = page["items"][-1]["seq"]


def replay(base, user, until):
    """The stored events the user may see, replayed over SSE from since=0 up to id `until`."""
    frames = []
    with requests.get(f"{base}/v1/events/stream", params={"since": 0}, headers=auth(user), stream=True,
                      timeout=(5, 10)) as response:
        assert response.status_code == 200, response.text
        buffer = b""
        try:
            for chunk in response.iter_content(chunk_size=None):
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    data = [line[len("data: "):] for line in block.decode("utf-8").split("\n") if line.startswith("data: ")]
                    frame = json.loads(data[0]) if data else {}
                    if "id" in frame:
                        frames.append(frame)
                        if frame["id"] >= until:
                            return frames
        except requests.ConnectionError:  # read timeout: `until` never came; the caller compares
            pass
    return frames


def wait_until(condition, timeout, what):
    """Polls `condition` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --- a client of the event stream ------------------------------------------------------------

class EventClient(threading.Thread):
    """Follows /v1/events (WebSocket) or /v1/events/stream (SSE) as one user, from `since=0`.

    Records every stored frame (one with an `id`), checks that ids only grow, and when the
    connection drops reconnects through nginx from the last id it saw. SSE clients resume
    with `since` or `Last-Event-ID`; WebSocket clients authenticate with the bearer header
    or with a one-time ticket.
    """

    def __init__(self, name, user, transport, first_url, nginx, *, ticket=False, last_event_id_header=False,
                 churn_every=None):
        super().__init__(name=name, daemon=True)
        self.user, self.transport, self.first_url, self.nginx = user, transport, first_url, nginx
        self.ticket, self.last_event_id_header = ticket, last_event_id_header
        # Hang up by itself after every `churn_every` stored frames, right after one arrives,
        # and reconnect through nginx: the replay-then-live switch, many times under load,
        # often landing on a node whose hub is a little behind or ahead of the last one.
        self.churn_every = churn_every
        self.churns = 0
        self._churning = False
        self.lock = threading.Lock()
        self.frames = []          # stored frames, in arrival order
        self.last_id = 0
        self.errors = []          # protocol violations seen while receiving
        self.connections = []     # (url, since) of each established connection
        self.drops = 0            # established connections the server side ended
        self.failed_attempts = 0  # connection attempts that did not get through
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self._abort = None        # closes the current connection from another thread
        self._up = False          # the current attempt got through
        self.state = "starting"   # what it is doing now, for failure messages
        self.attempts = 0
        self.request_id = None

    # -- what the test reads (under the lock) --
    def snapshot(self):
        with self.lock:
            return list(self.frames)

    def max_seq(self, cid):
        with self.lock:
            return max((f["data"]["seq"] for f in self.frames
                        if f["type"] == "message.created" and f["conversation_id"] == cid), default=0)

    def stop(self):
        """Ends the current connection; join() afterwards."""
        self.stopping.set()
        abort = self._abort
        if abort:
            abort()

    # -- receiving --
    def _record(self, frame):
        if frame.get("type") == "resync_required":
            # Only for a cursor outside the log: every cursor here came from this database,
            # within the retention window, so this would mean a replay was refused.
            with self.lock:
                self.errors.append(f"resync_required after id {self.last_id}: {frame}")
            return
        if "id" not in frame:
            return  # heartbeat, typing
        with self.lock:
            if not isinstance(frame["id"], int) or frame["id"] <= self.last_id:
                self.errors.append(f"event id {frame['id']} after {self.last_id} ({frame['type']})")
            else:
                self.last_id = frame["id"]
            self.frames.append(frame)
            count = len(self.frames)
        if self.churn_every and count % self.churn_every == 0 and not self.stopping.is_set():
            self._churning = True
            self._abort()

    def run(self):
        url = self.first_url
        failing_since = None
        while not self.stopping.is_set():
            self._up = False
            self._churning = False
            with self.lock:
                since = self.last_id
            self.attempts += 1
            self.request_id = f"{self.name}-{self.attempts}"  # X-Request-ID: find it in the node logs
            self.state = f"connecting to {url} since {since} at {time.monotonic():.1f} as {self.request_id}"
            try:
                if self.transport == "sse":
                    self._follow_sse(url, since)
                else:
                    self._follow_ws(url, since)
                failure = "the server ended the stream"
            except Exception as error:  # noqa: BLE001 - refused, reset, 502 from nginx, …
                failure = repr(error)
            self.state = f"disconnected at {time.monotonic():.1f}: {failure}"
            if self.stopping.is_set():
                break
            if self._churning:
                self.churns += 1
                failing_since = None
            elif self._up:
                self.drops += 1
                failing_since = None
            else:
                self.failed_attempts += 1
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > 30:
                    with self.lock:
                        self.errors.append(f"could not reconnect for 30 s: {failure}")
                    return
                time.sleep(0.1)  # back off before the next attempt
            url = self.nginx  # every reconnect goes through nginx

    def _established(self, base, since, abort):
        self._up = True
        self.state = f"streaming from {base} since {since} since {time.monotonic():.1f}"
        self._abort = abort
        self.connections.append((base, since))
        self.connected.set()
        if self.stopping.is_set():
            abort()

    def _follow_sse(self, base, since):
        headers = {**auth(self.user), "X-Request-ID": self.request_id}
        params = {}
        if since and self.last_event_id_header:
            headers["Last-Event-ID"] = str(since)
        else:
            params["since"] = since
        with requests.get(f"{base}/v1/events/stream", params=params, headers=headers, stream=True,
                          timeout=(5, 45)) as response:
            if response.status_code != 200:
                raise ConnectionError(f"SSE {base}: {response.status_code} {response.text[:200]}")
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise ConnectionError(f"SSE {base}: Content-Type {response.headers.get('Content-Type')}")
            sock = _socket_of(response)
            self._established(base, since, lambda: _shutdown(sock, response))
            buffer = b""
            for chunk in response.iter_content(chunk_size=None):
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._sse_block(block.decode("utf-8"))

    def _sse_block(self, block):
        fields = {}
        for line in block.split("\n"):
            key, _, value = line.partition(":")
            fields.setdefault(key, value[1:] if value.startswith(" ") else value)
        if "data" not in fields:
            return  # the `retry:` preamble
        frame = json.loads(fields["data"])
        if "id" in frame and fields.get("id") != str(frame["id"]):
            # (An `id:` line without a JSON id is a cursor move: `resync_required`.)
            with self.lock:
                self.errors.append(f"SSE id: line {fields.get('id')!r} for frame id {frame['id']}")
        if fields.get("event") != frame["type"]:
            with self.lock:
                self.errors.append(f"SSE event: line {fields.get('event')!r} for frame type {frame['type']}")
        self._record(frame)

    def _follow_ws(self, base, since):
        url = "ws" + base[len("http"):] + f"/v1/events?since={since}"
        header = [f"X-Request-ID: {self.request_id}"]
        if self.ticket:
            response = requests.post(f"{base}/v1/events/ticket", headers={**auth(self.user), "X-Request-ID": self.request_id + "-ticket"},
                                     timeout=HTTP_TIMEOUT)
            if response.status_code != 201:
                raise ConnectionError(f"ticket {base}: {response.status_code} {response.text[:200]}")
            url += "&ticket=" + response.json()["ticket"]
        else:
            header.append(f"Authorization: Bearer {self.user['access_token']}")
        ws = websocket.create_connection(url, header=header, timeout=45, enable_multithread=True)
        try:
            self._established(base, since, ws.abort)
            while True:
                text = ws.recv()  # answers the server's pings by itself
                if not text:
                    return  # close frame
                frame = json.loads(text)
                if frame.get("type") == "resume":
                    # Fell behind (close 4008 follows): the resume point must be what we saw.
                    if frame["data"]["since"] != self.last_id:
                        with self.lock:
                            self.errors.append(f"resume since {frame['data']['since']} but last id {self.last_id}")
                    continue
                self._record(frame)
        finally:
            ws.close(timeout=1)


def stop_all(clients):
    for client in clients:
        client.stop()
    deadline = time.monotonic() + 10
    for client in clients:
        client.join(max(0.1, deadline - time.monotonic()))


def _socket_of(response):
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        try:
            sock = response.raw._fp.fp.raw._sock
        except AttributeError:
            sock = None
    return sock


def _shutdown(sock, response):
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    else:
        response.close()


# --- a sender --------------------------------------------------------------------------------

class Sender(threading.Thread):
    """Posts `count` messages to one conversation through nginx, one after another, each with
    its own Idempotency-Key; a request that fails on the way (connection error, 502/503/504
    from nginx) is retried with the same key and body until accepted."""

    RETRYABLE = {502, 503, 504}

    def __init__(self, name, base, user, cid, count):
        super().__init__(name=name, daemon=True)
        self.base, self.user, self.cid, self.count = base, user, cid, count
        self.prefix = f"{name}-{uuid.uuid4().hex[:8]}"
        self.accepted = []   # (key, body, message) in send order
        self.retries = 0
        self.replayed = 0    # retries answered from the first attempt (Idempotent-Replayed)
        self.errors = []

    def run(self):
        session = requests.Session()
        for n in range(self.count):
            key = f"{self.prefix}-{n}"
            body = f"{self.name} message {n}"
            deadline = time.monotonic() + 30
            attempt = 0
            while True:
                attempt += 1
                try:
                    response = session.post(f"{self.base}/v1/conversations/{self.cid}/messages", json={"body": body},
                                            headers={**auth(self.user), "Idempotency-Key": key}, timeout=HTTP_TIMEOUT)
                except requests.RequestException as error:
                    failure = repr(error)
                    session.close()  # drop a connection that may be half dead
                    session = requests.Session()
                else:
                    if response.status_code == 201:
                        if response.headers.get("Idempotent-Replayed") == "true":
                            self.replayed += 1
                        self.accepted.append((key, body, response.json()))
                        break
                    if response.status_code not in self.RETRYABLE:
                        self.errors.append(f"{key}: {response.status_code} {response.text[:300]}")
                        return
                    failure = f"{response.status_code} {response.text[:100]}"
                if time.monotonic() > deadline:
                    self.errors.append(f"{key}: still failing after {attempt} attempts: {failure}")
                    return
                self.retries += 1
                time.sleep(min(0.5, 0.05 * attempt))  # back off before retrying


# --- the tests -------------------------------------------------------------------------------

def test_a_message_sent_to_one_node_reaches_clients_of_the_others(cluster):
    """Cross-node delivery with no failure: a message posted to node 0 arrives at an SSE client
    of node 1, a WebSocket client of node 2, and both through nginx."""
    nginx, nodes = cluster["nginx"], cluster["nodes"]
    prefix = fresh_prefix()
    ann, ben = register(nodes[0], prefix + "a"), register(nodes[1], prefix + "b")
    cid = create_group(nodes[2], ann, "across", [ben])
    clients = [EventClient("sse-node1", ben, "sse", nodes[1], nginx),
               EventClient("ws-node2", ben, "ws", nodes[2], nginx),
               EventClient("sse-nginx", ben, "sse", nginx, nginx),
               EventClient("ws-nginx", ann, "ws", nginx, nginx, ticket=True)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: all(c.connected.is_set() for c in clients), 20, "the clients to connect")
        for n in range(5):
            response = requests.post(f"{nodes[0]}/v1/conversations/{cid}/messages", headers=auth(ann),
                                     json={"body": f"hello {n}"}, timeout=HTTP_TIMEOUT)
            assert response.status_code == 201, response.text
        wait_until(lambda: all(c.max_seq(cid) >= 5 for c in clients), 20, "the messages to arrive on every node")
    finally:
        stop_all(clients)
    for client in clients:
        assert client.errors == [], (client.name, client.errors)
        messages = [f["data"] for f in client.snapshot() if f["type"] == "message.created"]
        assert [(m["seq"], m["body"]) for m in messages] == [(n + 1, f"hello {n}") for n in range(5)], client.name
        assert client.drops == 0, (client.name, client.connections)


def test_a_file_uploaded_to_one_node_is_served_by_the_others(cluster):
    """The database store: a file uploaded through nginx, attached on node 0, downloads whole
    from nodes 1 and 2, and its thumbnail (made by whichever node ran the job, or on request)
    from every node."""
    import struct
    import zlib
    nginx, nodes = cluster["nginx"], cluster["nodes"]
    prefix = fresh_prefix()
    ann, ben = register(nodes[0], prefix + "a"), register(nodes[1], prefix + "b")
    cid = create_group(nodes[0], ann, "files", [ben])
    # A 1.3 MB file (more than one storage chunk) and a picture.
    blob = b"".join(f"line {n:07d} of a long text file\n".encode() for n in range(40000))
    rows = b"".join(b"\0" + bytes(v for x in range(500) for v in (x % 256, y % 256, 90)) for y in range(300))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    picture = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 500, 300, 8, 2, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    ids = []
    for name, data in (("big.txt", blob), ("picture.png", picture)):
        response = requests.post(f"{nginx}/v1/uploads", params={"name": name}, data=data, headers=auth(ann), timeout=HTTP_TIMEOUT)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    response = requests.post(f"{nodes[0]}/v1/conversations/{cid}/messages", headers=auth(ann), timeout=HTTP_TIMEOUT,
                             json={"body": "two files", "attachments": ids})
    assert response.status_code == 201, response.text
    for base in nodes[1:]:
        got = requests.get(f"{base}/v1/uploads/{ids[0]}/content", headers=auth(ben), timeout=HTTP_TIMEOUT)
        assert got.status_code == 200 and got.content == blob, (base, got.status_code)
        assert got.headers["Content-Type"].startswith("text/plain")
        assert requests.get(f"{base}/v1/uploads/{ids[1]}/content", headers=auth(ben), timeout=HTTP_TIMEOUT).content == picture
    thumbnails = {requests.get(f"{base}/v1/uploads/{ids[1]}/thumbnail", headers=auth(ben), timeout=HTTP_TIMEOUT).content
                  for base in nodes}
    assert len(thumbnails) == 1, "every node serves the same thumbnail"
    thumbnail = thumbnails.pop()
    assert thumbnail.startswith(b"\x89PNG") and struct.unpack(">II", thumbnail[16:24]) == (360, 216)


def test_a_refused_websocket_upgrade_does_not_stall_later_requests(cluster):
    """A WebSocket upgrade refused with 401 (a spent ticket, as after a reconnect that nginx
    retried on another node) must not leave nginx an upstream connection that hangs the next
    request sent on it."""
    nginx = cluster["nginx"]
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

    def answer(path, **kwargs):
        try:
            return requests.get(f"{nginx}{path}", timeout=3, **kwargs).status_code
        except requests.Timeout:
            return "no answer within 3 s"

    # Refused upgrades on every node, each followed by ordinary requests.
    outcomes = []
    for n in range(6):
        outcomes.append(("upgrade", answer("/v1/events", params={"ticket": f"spent{n}"}, headers=upgrade)))
        outcomes += [("healthz", answer("/healthz")) for _ in range(3)]
    expected = [(what, 401 if what == "upgrade" else 200) for what, _ in outcomes]
    assert outcomes == expected, [o for o, e in zip(outcomes, expected) if o != e]


def test_live_delivery_and_replay_agree_on_a_new_conversation(cluster):
    """What a client connected while a conversation is created receives live equals what a
    replay from since=0 gives afterwards (the promise of exact resume)."""
    nginx, nodes = cluster["nginx"], cluster["nodes"]
    prefix = fresh_prefix()
    ann, ben = register(nginx, prefix + "a"), register(nginx, prefix + "b")
    clients = [EventClient("ann-live-node1", ann, "sse", nodes[1], nginx),
               EventClient("ben-live-node2", ben, "ws", nodes[2], nginx)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: all(c.connected.is_set() for c in clients), 20, "the clients to connect")
        cid = create_group(nodes[0], ann, "new", [ben])
        response = requests.post(f"{nodes[0]}/v1/conversations/{cid}/messages", headers=auth(ann),
                                 json={"body": "first"}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 201, response.text
        wait_until(lambda: all(c.max_seq(cid) >= 1 for c in clients), 20, "the message to arrive")
    finally:
        stop_all(clients)
    for client in clients:
        live = [_summary(f) for f in client.snapshot()]
        replayed = [_summary(f) for f in replay(nginx, client.user, until=max(f[0] for f in live))]
        assert live == replayed, f"{client.name}: live {live}, replay {replayed}"


def test_a_model_promoted_or_rolled_back_on_one_node_is_served_by_the_others(cluster):
    """The model registry across nodes: a moderation model trained by a job (on whichever node
    claims it), promoted through node 0, scores messages sent to node 2 within a second; a
    second version promoted through node 1 replaces it everywhere, and a rollback through node 2
    puts the first back on every node. Prints how long the other nodes took to follow (the
    target is within a second; the deadline here is wider, so a loaded machine does not fail it)."""
    import subprocess
    nginx, nodes = cluster["nginx"], cluster["nodes"]
    prefix = fresh_prefix()
    admin, ann, ben = (register(nginx, prefix + name) for name in ("admin", "a", "b"))
    database_url = _env("PARLEY_MN_DATABASE_URL")
    subprocess.run(["psql", database_url, "-q", "-c", f"UPDATE users SET role = 'admin' WHERE handle = '{prefix}admin'"],
                   check=True, capture_output=True)
    spam = ["WIN a FREE prize now, call 0800", "URGENT you have won cash, txt CLAIM to", "Free entry!! reply WIN for 1000"]
    ham = ["are we still on for lunch at", "I'll be home late tonight, see you at", "can you send me the notes from"]
    examples = [{"text": f"{(spam if n % 2 == 0 else ham)[n // 2 % 3]} {n}", "label": n % 2 == 0} for n in range(40)]
    response = requests.post(f"{nodes[0]}/v1/admin/models/moderation/examples", json={"examples": examples}, headers=auth(admin),
                             timeout=HTTP_TIMEOUT)
    assert response.status_code == 201, response.text

    def versions(base):
        response = requests.get(f"{base}/v1/admin/models/moderation", headers=auth(admin), timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def train():
        before = len(versions(nginx)["versions"])
        response = requests.post(f"{nginx}/v1/admin/models/moderation/train", headers=auth(admin), timeout=HTTP_TIMEOUT)
        assert response.status_code == 202, response.text
        wait_until(lambda: len(versions(nginx)["versions"]) > before, 60, "the training job to make a version")
        return versions(nginx)["versions"][0]["version"]

    def serves(base, label):
        return versions(base)["serving"].get("production") == label

    delays = []

    def followed(bases, label):
        started = time.monotonic()
        for base in bases:
            wait_until(lambda: serves(base, label), 10, f"{base} to serve {label}")
        delays.append(time.monotonic() - started)

    first = train()
    response = requests.put(f"{nodes[0]}/v1/admin/models/moderation/versions/{first}/stage", json={"stage": "production"},
                            headers=auth(admin), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    assert serves(nodes[0], f"moderation@{first}"), "the node that promoted serves it when it answers"
    followed(nodes[1:], f"moderation@{first}")
    cid = create_group(nginx, ann, "moderated", [ben])
    sent = requests.post(f"{nodes[2]}/v1/conversations/{cid}/messages", json={"body": "URGENT you have won cash, txt CLAIM to 99"},
                         headers=auth(ann), timeout=HTTP_TIMEOUT)
    assert sent.status_code == 201, sent.text
    assert sent.json()["moderation"]["model"] == f"moderation@{first}", sent.text

    second = train()
    response = requests.put(f"{nodes[1]}/v1/admin/models/moderation/versions/{second}/stage", json={"stage": "production"},
                            headers=auth(admin), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    followed((nodes[0], nodes[2]), f"moderation@{second}")
    response = requests.post(f"{nodes[2]}/v1/admin/models/moderation/rollback", json={"reason": "multi-node check"},
                             headers=auth(admin), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["rolled_back"]["note"] == "rolled back: multi-node check"
    followed(nodes[:2], f"moderation@{first}")
    print(f"\nmodel registry: the other nodes served each change within {max(delays) * 1000:.0f} ms "
          f"(promotion, promotion, rollback: {', '.join(f'{d * 1000:.0f}' for d in delays)} ms)")


def test_no_message_lost_or_repeated_when_a_node_is_killed(cluster):
    """Six users in four overlapping conversations, fifteen clients spread over the three nodes
    and nginx (three of them hanging up and reconnecting all the time), eight senders through
    nginx; node 1 is SIGKILLed mid-traffic. Afterwards every
    client holds, for each of its conversations, message.created seqs exactly 1..N (N from the
    REST API), with the REST API's ids and bodies, no event id twice, ids increasing; each
    client of a user holds the user's replayed log up to its last event, with no gap; every
    accepted send exists exactly once."""
    nginx, nodes, pids = cluster["nginx"], cluster["nodes"], cluster["pids"]
    victim = 1
    prefix = fresh_prefix()
    started = time.monotonic()

    users = [register(nginx, f"{prefix}u{i}") for i in range(6)]
    u = users
    conversations = {
        "g1": create_group(nginx, u[0], "g1", [u[1], u[2], u[3]]),
        "g2": create_group(nginx, u[2], "g2", [u[3], u[4], u[5]]),
        "g3": create_group(nginx, u[4], "g3", [u[0], u[5]]),
    }
    response = requests.post(f"{nginx}/v1/conversations", headers=auth(u[1]), timeout=HTTP_TIMEOUT,
                             json={"kind": "channel", "title": f"{prefix} general", "visibility": "public"})
    assert response.status_code == 201, response.text
    conversations["ch"] = response.json()["id"]
    for i in (0, 2, 4, 5):
        joined = requests.post(f"{nginx}/v1/conversations/{conversations['ch']}/join", headers=auth(u[i]), timeout=HTTP_TIMEOUT)
        assert joined.status_code == 201, joined.text
    members = {"g1": {0, 1, 2, 3}, "g2": {2, 3, 4, 5}, "g3": {0, 4, 5}, "ch": {0, 1, 2, 4, 5}}

    # Two clients per user, one SSE and one WebSocket, spread so that every node (and nginx)
    # has both kinds and the victim has several users' clients; and three that keep hanging
    # up and reconnecting through nginx.
    N0, N1, N2, NG = nodes[0], nodes[1], nodes[2], nginx
    plan = [(0, "sse", N0), (0, "ws", N1), (1, "sse", N1), (1, "ws", N2), (2, "sse", N2), (2, "ws", NG),
            (3, "sse", NG), (3, "ws", N0), (4, "sse", N1), (4, "ws", NG), (5, "sse", N0), (5, "ws", N1)]
    place = {N0: "node0", N1: "node1", N2: "node2", NG: "nginx"}
    clients = [EventClient(f"c{k}-u{i}-{transport}-{place[url]}", u[i], transport, url, nginx,
                           ticket=(transport == "ws" and k % 4 == 1), last_event_id_header=(transport == "sse" and k % 4 == 0))
               for k, (i, transport, url) in enumerate(plan)]
    churners = [EventClient("churn-u2-sse-nginx", u[2], "sse", NG, nginx, last_event_id_header=True, churn_every=7),
                EventClient("churn-u4-ws-nginx", u[4], "ws", NG, nginx, ticket=True, churn_every=7),
                EventClient("churn-u5-sse-node2", u[5], "sse", N2, nginx, churn_every=11)]
    clients += churners
    for client in clients:
        client.user_index = next(i for i, user in enumerate(u) if user is client.user)
        client.start()

    # Two senders per conversation, all through nginx.
    per_sender = 30
    senders = [Sender(f"{prefix}-{name}-u{i}", nginx, u[i], conversations[name], per_sender)
               for name, pair in (("g1", (0, 3)), ("g2", (2, 5)), ("g3", (4, 0)), ("ch", (1, 5)))
               for i in pair]
    sender_conversation = {s.name: name for s, name in zip(senders, ["g1", "g1", "g2", "g2", "g3", "g3", "ch", "ch"])}
    killed_at = None
    try:
        wait_until(lambda: all(c.connected.is_set() for c in clients), 20, "every client to connect")
        victims = [c for c in clients if c.first_url == nodes[victim]]
        assert victims, "no client is connected straight to the node to kill"

        for sender in senders:
            sender.start()
        total = per_sender * len(senders)
        wait_until(lambda: sum(len(s.accepted) for s in senders) >= total // 3 or not any(s.is_alive() for s in senders),
                   60, "a third of the messages to be accepted")
        accepted_before_kill = sum(len(s.accepted) for s in senders)
        os.kill(pids[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        assert accepted_before_kill < total, "the senders finished before the node was killed: send more"

        wait_until(lambda: not any(s.is_alive() for s in senders), 60, "the senders to finish")
        for sender in senders:
            assert sender.errors == [], (sender.name, sender.errors)
            assert len(sender.accepted) == per_sender, sender.name

        # What the REST API says was sent.
        history = {name: all_messages(nginx, u[min(members[name])], cid) for name, cid in conversations.items()}
        for name, cid in conversations.items():
            conversation = requests.get(f"{nginx}/v1/conversations/{cid}", headers=auth(u[min(members[name])]), timeout=HTTP_TIMEOUT)
            assert conversation.status_code == 200, conversation.text
            messages = history[name]
            assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), f"{name}: seqs have a gap"
            assert conversation.json()["last_seq"] == len(messages), name
            # Exactly the accepted sends, each once: same ids, seqs and bodies.
            sent = [(m["id"], m["seq"], body) for s in senders if sender_conversation[s.name] == name
                    for _, body, m in s.accepted]
            assert sorted(sent, key=lambda x: x[1]) == [(m["id"], m["seq"], m["body"]) for m in messages], \
                f"{name}: the stored messages are not exactly the accepted sends"
        for sender in senders:
            seqs = [m["seq"] for _, _, m in sender.accepted]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{sender.name}: accepted out of order {seqs}"

        # Every client catches up with every one of its conversations (polling, with a deadline).
        expected = {name: len(history[name]) for name in conversations}
        def caught_up():
            return all(c.max_seq(conversations[name]) >= expected[name]
                       for c in clients for name in conversations if c.user_index in members[name])
        try:
            wait_until(caught_up, 20, "every client to catch up")
        except pytest.fail.Exception:
            behind = {c.name: {name: (c.max_seq(conversations[name]), expected[name]) for name in conversations
                               if c.user_index in members[name] and c.max_seq(conversations[name]) < expected[name]}
                      for c in clients}
            raise AssertionError(
                f"now {time.monotonic():.1f} (node {victim} killed at {killed_at:.1f}); clients behind (seen, sent): "
                + "; ".join(f"{c.name}: {behind[c.name]}, {c.state}, connections {c.connections}" for c in clients if behind[c.name]))
    finally:
        stop_all(clients)

    # --- the checks ---
    events = 0
    for client in clients:
        assert client.errors == [], (client.name, client.errors)
        frames = client.snapshot()
        ids = [f["id"] for f in frames]
        assert len(ids) == len(set(ids)), f"{client.name}: an event id twice"
        assert ids == sorted(ids), f"{client.name}: event ids not increasing"
        events += len(frames)
        for name, cid in conversations.items():
            created = [f for f in frames if f["type"] == "message.created" and f["conversation_id"] == cid]
            if client.user_index not in members[name]:
                assert created == [], f"{client.name} got {name}'s messages without being a member"
                continue
            seqs = [f["data"]["seq"] for f in created]
            assert seqs == list(range(1, expected[name] + 1)), \
                f"{client.name} in {name}: seqs {_describe(seqs, expected[name])} (connections {client.connections})"
            assert [(f["data"]["id"], f["data"]["body"]) for f in created] == \
                [(m["id"], m["body"]) for m in history[name]], f"{client.name} in {name}: not the stored messages"

    # The clients of one user (WebSocket and SSE, on different nodes) saw the same log: the
    # one a fresh replay from the database gives now (live delivery and replay follow the same
    # rule; see test_live_delivery_and_replay_agree_on_a_new_conversation). Each client holds
    # that log up to the last event it got, with no gap: events written after the messages
    # (notifications, made by a log follower) may still have been on their way to one client
    # when the clients were stopped, but never missing before one that arrived.
    for i in range(len(u)):
        mine = [c for c in clients if c.user_index == i]
        frames = {c.name: {f["id"]: f for f in c.snapshot()} for c in mine}
        every = {}
        for seen in frames.values():
            every.update(seen)
        frames["replay"] = {f["id"]: f for f in replay(nginx, u[i], until=max(every))}
        every.update(frames["replay"])
        differences = {name: [_summary(every[id_]) for id_ in sorted(set(every) - set(seen)) if id_ <= max(seen, default=0)]
                       for name, seen in frames.items()}
        differences = {name: missed for name, missed in differences.items() if missed}
        assert set(frames["replay"]) == set(every), f"user {i}: clients got events a replay does not give: " + \
            str([_summary(every[id_]) for id_ in sorted(set(every) - set(frames["replay"]))])
        assert differences == {}, f"user {i}: clients missed events that others of the user got: {differences}; " + \
            "; ".join(f"{c.name}: {len(frames[c.name])} events, connections {c.connections}" for c in mine)

    # The kill did what it should: the victim's clients lost their connection and came back
    # through nginx, and got messages after that.
    for client in victims:
        assert client.drops >= 1, f"{client.name} never lost its connection to the killed node"
        assert len(client.connections) >= 2 and client.connections[1][0] == nginx, (client.name, client.connections)
    for client in churners:
        assert client.churns >= 5, f"{client.name} reconnected only {client.churns} times by itself"
    reconnects = sum(len(c.connections) - 1 for c in clients)
    assert all(c.connections[-1][0] == nginx for c in victims)

    messages = sum(expected.values())
    print(f"\nmulti-node: {len(clients)} clients ({sum(c.transport == 'sse' for c in clients)} SSE, "
          f"{sum(c.transport == 'ws' for c in clients)} WebSocket), {len(conversations)} conversations, "
          f"{messages} messages from {len(senders)} senders ({accepted_before_kill} accepted before node {victim} was killed), "
          f"{events} events checked, {reconnects} reconnects ({sum(c.drops for c in clients)} drops, "
          f"{sum(c.churns for c in clients)} by choice, "
          f"{sum(c.failed_attempts for c in clients)} failed connection attempts), "
          f"{sum(s.retries for s in senders)} send retries ({sum(s.replayed for s in senders)} answered as replays), "
          f"{time.monotonic() - started:.1f} s")


def _summary(frame):
    return (frame["id"], frame["type"], frame.get("conversation_id"), frame["data"].get("seq"), frame["data"].get("user_id"))


def _describe(seqs, n):
    missing = sorted(set(range(1, n + 1)) - set(seqs))
    repeated = sorted({s for s in seqs if seqs.count(s) > 1})
    return f"count {len(seqs)} of {n}, missing {missing[:20]}, repeated {repeated[:20]}, order ok {seqs == sorted(seqs)}"
