"""The chat API over real HTTP: conversations, messages, idempotency, edits, reactions, search."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import assert_problem, register


def auth(tokens):
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_conversation_message_lifecycle(base_url, handle):
    ann = register(base_url, handle + "a")
    ben = register(base_url, handle + "b")
    created = requests.post(f"{base_url}/v1/conversations", headers=auth(ann),
                            json={"kind": "group", "title": "e2e", "member_ids": [ben["user"]["id"]]})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    messages = f"{base_url}/v1/conversations/{cid}/messages"

    key = str(uuid.uuid4())
    first = requests.post(messages, headers={**auth(ann), "Idempotency-Key": key}, json={"body": "ship it?"})
    again = requests.post(messages, headers={**auth(ann), "Idempotency-Key": key}, json={"body": "ship it?"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert_problem(requests.post(messages, headers={**auth(ann), "Idempotency-Key": key}, json={"body": "other"}), 422)

    reply = requests.post(messages, headers=auth(ben), json={"body": "yes, deploy", "reply_to": first.json()["id"]})
    assert reply.status_code == 201 and reply.json()["reply_to_seq"] == 1

    # Edit with If-Match; a stale ETag is 412.
    current = requests.get(f"{messages}/1", headers=auth(ann))
    etag = current.headers["ETag"]
    edited = requests.patch(f"{messages}/1", headers={**auth(ann), "If-Match": etag, "Content-Type": "application/merge-patch+json"},
                            data='{"body":"ship it now?"}')
    assert edited.status_code == 200, edited.text
    assert_problem(requests.put(f"{messages}/1", headers={**auth(ann), "If-Match": etag}, json={"body": "x", "reply_to": None}), 412)

    # A percent-encoded emoji in the path, over a real socket.
    assert requests.put(f"{messages}/1/reactions/%F0%9F%9A%80", headers=auth(ben)).status_code == 201
    assert requests.put(f"{messages}/1/reactions/%F0%9F%9A%80", headers=auth(ben)).status_code == 200
    assert requests.get(f"{messages}/1", headers=auth(ann)).json()["reactions"] == [{"emoji": "🚀", "count": 1, "me": False}]

    # Pages carry an ETag; If-None-Match answers 304 with no body.
    page = requests.get(messages, headers=auth(ben))
    assert [m["seq"] for m in page.json()["items"]] == [1, 2]
    cached = requests.get(messages, headers={**auth(ben), "If-None-Match": page.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""

    # Unread counts and the read marker.
    listed = requests.get(f"{base_url}/v1/conversations", headers=auth(ann)).json()["items"]
    assert listed[0]["id"] == cid and listed[0]["unread_count"] == 1
    marked = requests.put(f"{base_url}/v1/conversations/{cid}/read", headers=auth(ann), json={"seq": 2})
    assert marked.json() == {"last_read_seq": 2, "unread_count": 0}

    # Search, then delete: the tombstone keeps the seq and drops the text everywhere.
    hits = requests.get(f"{base_url}/v1/search/messages", params={"q": "deploy"}, headers=auth(ann)).json()["items"]
    assert [h["message"]["seq"] for h in hits] == [2] and "<mark>deploy</mark>" in hits[0]["snippet"]
    assert requests.delete(f"{messages}/2", headers=auth(ben)).status_code == 204
    page = requests.get(messages, headers=auth(ann)).json()["items"]
    assert [m["seq"] for m in page] == [1, 2] and "body" not in page[1] and "deleted_at" in page[1]
    assert requests.get(f"{base_url}/v1/search/messages", params={"q": "deploy"}, headers=auth(ann)).json()["items"] == []


def test_strangers_get_404_not_403(base_url, handle):
    ann = register(base_url, handle + "a")
    eve = register(base_url, handle + "e")
    cid = requests.post(f"{base_url}/v1/conversations", headers=auth(ann), json={"kind": "group", "title": "private"}).json()["id"]
    assert_problem(requests.get(f"{base_url}/v1/conversations/{cid}", headers=auth(eve)), 404)
    assert_problem(requests.get(f"{base_url}/v1/conversations/{cid}/messages", headers=auth(eve)), 404)
    assert_problem(requests.post(f"{base_url}/v1/conversations/{cid}/messages", headers=auth(eve), json={"body": "hi"}), 404)


def test_concurrent_senders_get_gap_free_seqs(base_url, handle):
    owner = register(base_url, handle + "o")
    senders = [register(base_url, f"{handle}s{i}") for i in range(6)]
    cid = requests.post(f"{base_url}/v1/conversations", headers=auth(owner),
                        json={"kind": "group", "title": "race", "member_ids": [s["user"]["id"] for s in senders]}).json()["id"]

    def send(sender):
        session = requests.Session()
        return [session.post(f"{base_url}/v1/conversations/{cid}/messages", headers=auth(sender), json={"body": f"n{n}"}).status_code
                for n in range(20)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = [s for result in pool.map(send, senders) for s in result]
    assert statuses == [201] * 120
    seqs = []
    after = 0
    while True:
        page = requests.get(f"{base_url}/v1/conversations/{cid}/messages", params={"after": after, "limit": 100}, headers=auth(owner)).json()
        seqs += [m["seq"] for m in page["items"]]
        if not page["has_more"]:
            break
        after = seqs[-1]
    assert seqs == list(range(1, 121))
