"""Server-Sent Events over a real socket: replay from Last-Event-ID, then live."""
import json
import threading

import requests

from conftest import assert_problem, register


def auth(tokens):
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def read_events(response, until):
    """Yield parsed SSE frames (with ids) until `until(frames)` is true."""
    frames, block = [], []
    for line in response.iter_lines(decode_unicode=True):
        if line:
            block.append(line)
            continue
        data = [l[len("data: "):] for l in block if l.startswith("data: ")]
        ids = [l[len("id: "):] for l in block if l.startswith("id: ")]
        block = []
        if data and ids:
            frame = json.loads(data[0])
            assert frame["id"] == int(ids[0])
            frames.append(frame)
            if until(frames):
                return frames
    return frames


def test_sse_replays_then_streams_live(base_url, handle):
    ann = register(base_url, handle + "a")
    ben = register(base_url, handle + "b")
    cid = requests.post(f"{base_url}/v1/conversations", headers=auth(ann),
                        json={"kind": "group", "title": "live", "member_ids": [ben["user"]["id"]]}).json()["id"]
    messages = f"{base_url}/v1/conversations/{cid}/messages"
    for n in range(3):
        assert requests.post(messages, headers=auth(ann), json={"body": f"before {n}"}).status_code == 201

    # Ben has seen everything up to the first message's event: start from there.
    with requests.get(f"{base_url}/v1/events/stream", params={"since": 0}, headers=auth(ben), stream=True, timeout=(5, 30)) as first:
        assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/event-stream")
        frames = read_events(first, lambda f: sum(x["type"] == "message.created" for x in f) == 1)
    seen = frames[-1]["id"]

    def send_more():
        for n in range(3, 8):
            requests.post(messages, headers=auth(ann), json={"body": f"during {n}"})

    with requests.get(f"{base_url}/v1/events/stream", headers={**auth(ben), "Last-Event-ID": str(seen)},
                      stream=True, timeout=(5, 30)) as resumed:
        sender = threading.Thread(target=send_more)
        sender.start()
        frames = read_events(resumed, lambda f: any(x["data"].get("seq") == 8 for x in f if x["type"] == "message.created"))
        sender.join()
    seqs = [f["data"]["seq"] for f in frames if f["type"] == "message.created"]
    assert seqs == list(range(2, 9)), seqs
    ids = [f["id"] for f in frames]
    assert ids == sorted(set(ids)) and all(i > seen for i in ids)


def test_stream_rejects_bad_input(base_url, handle):
    tokens = register(base_url, handle)
    assert_problem(requests.get(f"{base_url}/v1/events/stream", timeout=10), 401)
    assert_problem(requests.get(f"{base_url}/v1/events/stream", params={"since": "x"}, headers=auth(tokens), timeout=10), 422)
    ticket = requests.post(f"{base_url}/v1/events/ticket", headers=auth(tokens)).json()["ticket"]
    with requests.get(f"{base_url}/v1/events/stream", params={"ticket": ticket}, stream=True, timeout=(5, 30)) as ok:
        assert ok.status_code == 200
    assert_problem(requests.get(f"{base_url}/v1/events/stream", params={"ticket": ticket}, timeout=10), 401)
