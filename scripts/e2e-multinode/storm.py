"""The storm: test_no_message_lost_or_repeated_when_a_node_is_killed at benchmark size, with figures.

Runs against a cluster started by scripts/e2e-multinode/run (it reads the same PARLEY_MN_*
variables); scripts/bench-cluster runs it that way, or by hand:

    PARLEY_MN_COMMAND=".venv/bin/python scripts/e2e-multinode/storm.py --messages 1000" \\
        scripts/e2e-multinode/run BINARY DATABASE_URL .venv/bin/python WORKDIR

Users in overlapping groups and one public channel; event clients (SSE and WebSocket) spread
over the three nodes and nginx, a few of them hanging up and reconnecting by themselves all the
time; senders posting through nginx, one message after another, each with its own
Idempotency-Key and retried with that key when its node dies (test_multinode.Sender). Node 1 is
SIGKILLed once a third of the messages have been accepted.

Afterwards the test's exactness checks: every client holds, for each of its conversations,
message.created seqs exactly 1..N (N from the REST API) with the stored ids and bodies, no event
id twice, ids increasing; the clients of a user hold the user's replayed log with no gap; the
stored messages are exactly the accepted sends, each once. Then the figures: throughput, send
latency, send-to-receive delivery, retries, and the longest gap between consecutive deliveries
to one client, around the kill and elsewhere. Exits 1 if a check fails.

The clients and senders are threads of this one Python process (one GIL), on the machine that
runs the nodes, nginx and PostgreSQL: the figures are the whole system's, this client included.
"""
import argparse
import math
import os
import signal
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_multinode import (HTTP_TIMEOUT, EventClient, Sender, _describe, _summary, all_messages,  # noqa: E402
                            auth, create_group, fresh_prefix, register, replay, stop_all, wait_until)

VICTIM = 1


class TimedClient(EventClient):
    """An EventClient that also notes when each message.created frame arrived, and keeps each
    conversation's highest seq as frames come: EventClient.max_seq scans every frame, too slow
    to poll across forty clients holding thousands of frames each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals = []  # (time.monotonic(), message id) of each message.created frame
        self.highest = {}   # conversation id -> highest seq seen

    def _record(self, frame):
        at = time.monotonic()
        if frame.get("type") == "message.created" and "id" in frame:
            with self.lock:
                self.arrivals.append((at, frame["data"]["id"]))
                cid = frame["conversation_id"]
                self.highest[cid] = max(self.highest.get(cid, 0), frame["data"]["seq"])
        super()._record(frame)

    def max_seq(self, cid):
        with self.lock:
            return self.highest.get(cid, 0)


class _Accepted(list):
    """A Sender's `accepted` list that notes when each send was accepted, and whether it took
    more than one attempt (the sender's retry count moved since the send before)."""

    def __init__(self, sender):
        super().__init__()
        self.sender = sender
        self.times = []
        self.retried = 0
        self._retries_seen = 0

    def append(self, item):
        self.times.append(time.monotonic())
        if self.sender.retries > self._retries_seen:
            self.retried += 1
            self._retries_seen = self.sender.retries
        super().append(item)


class TimedSender(Sender):
    """A Sender whose sends can be timed: it sends one message after another, so each send
    starts when the one before it was accepted (the first when the thread started), and its
    latency runs to its own acceptance, retries included."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = _Accepted(self)
        self.started = None

    def run(self):
        self.started = time.monotonic()
        super().run()

    def timings(self):
        """(start, accepted, message) of each accepted send."""
        times = self.accepted.times
        return [(start, end, message) for start, end, (_, _, message)
                in zip([self.started] + times[:-1], times, list(self.accepted))]


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def line(what, value):
    print(f"  {what.ljust(56)} {value}", flush=True)


def cluster_from_environment():
    names = ("PARLEY_MN_NGINX_URL", "PARLEY_MN_NODE_URLS", "PARLEY_MN_NODE_PIDS")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        sys.exit(f"storm: {', '.join(missing)} not set: run this through scripts/e2e-multinode/run (PARLEY_MN_COMMAND)")
    nodes = [url.rstrip("/") for url in os.environ["PARLEY_MN_NODE_URLS"].split()]
    pids = [int(pid) for pid in os.environ["PARLEY_MN_NODE_PIDS"].split()]
    if len(nodes) != 3 or len(pids) != 3:
        sys.exit("storm: expected three nodes")
    return os.environ["PARLEY_MN_NGINX_URL"].rstrip("/"), nodes, pids


def arguments():
    parser = argparse.ArgumentParser(description="Many senders and clients on three nodes behind nginx; node 1 is "
                                                 "SIGKILLed mid-storm; every client must end exact.")
    parser.add_argument("--messages", type=int, default=10_000, help="messages in all (default 10000)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders, through nginx (default 32)")
    parser.add_argument("--clients", type=int, default=40,
                        help="event clients over the three nodes and nginx, a tenth of them reconnecting by themselves (default 40)")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="SIGKILL node 1 once this many messages were accepted (default a third of --messages)")
    parser.add_argument("--users", type=int, default=24, help="users (default 24)")
    parser.add_argument("--conversations", type=int, default=12,
                        help="conversations: groups and one public channel (default 12)")
    parser.add_argument("--window", type=float, default=5.0,
                        help="seconds after the kill that count as around it, for the delivery gaps (default 5)")
    parser.add_argument("--churn-every", type=int, default=None,
                        help="stored frames after which a reconnecting client hangs up (default messages/250, at least 7)")
    args = parser.parse_args()
    if args.kill_after is None:
        args.kill_after = args.messages // 3
    if args.churn_every is None:
        args.churn_every = max(7, args.messages // 250)
    if not 0 < args.kill_after < args.messages:
        parser.error("--kill-after must be between 1 and --messages - 1")
    if args.users < 6 or args.conversations < 2 or args.clients < 8 or not 0 < args.senders <= args.messages:
        parser.error("need at least 6 users, 2 conversations, 8 clients, and 1 to --messages senders")
    return args


def main():
    args = arguments()
    nginx, nodes, pids = cluster_from_environment()
    try:
        os.kill(pids[VICTIM], 0)
    except ProcessLookupError:
        sys.exit(f"storm: node {VICTIM} (pid {pids[VICTIM]}) is not running: a storm kills it, so one storm per cluster")
    began = time.monotonic()
    failures = []

    # --- users and conversations ---
    prefix = fresh_prefix()
    users = [register(nginx, f"{prefix}u{i}") for i in range(args.users)]
    conversations, members = {}, {}
    for g in range(args.conversations - 1):
        # Groups of five that overlap their neighbours; with the odd users in the channel, each
        # user is in one to four conversations.
        owner = (2 * g) % args.users
        others = sorted({(owner + d) % args.users for d in (1, 2, 3, 5)} - {owner})
        conversations[f"g{g}"] = create_group(nginx, users[owner], f"g{g}", [users[i] for i in others])
        members[f"g{g}"] = {owner, *others}
    response = requests.post(f"{nginx}/v1/conversations", headers=auth(users[1]), timeout=HTTP_TIMEOUT,
                             json={"kind": "channel", "title": f"{prefix} storm", "visibility": "public"})
    if response.status_code != 201:
        sys.exit(f"storm: could not create the channel: {response.status_code} {response.text}")
    conversations["ch"] = response.json()["id"]
    members["ch"] = {i for i in range(args.users) if i % 2 == 1}
    for i in sorted(members["ch"] - {1}):
        joined = requests.post(f"{nginx}/v1/conversations/{conversations['ch']}/join", headers=auth(users[i]), timeout=HTTP_TIMEOUT)
        if joined.status_code != 201:
            sys.exit(f"storm: user {i} could not join the channel: {joined.status_code} {joined.text}")
    names = list(conversations)

    # --- clients: every place (three nodes, nginx) has both kinds; a user's second client is
    # elsewhere than its first; a tenth hang up and reconnect through nginx all the time ---
    places = {nodes[0]: "node0", nodes[1]: "node1", nodes[2]: "node2", nginx: "nginx"}
    order = list(places)
    listed = [i for i in range(args.users) if any(i in m for m in members.values())]
    churning = max(1, args.clients // 10)
    clients = []
    for k in range(args.clients - churning):
        i, round_ = listed[k % len(listed)], k // len(listed)
        url = order[(k + round_) % 4]
        transport = ("sse", "ws")[(k // 4 + round_) % 2]
        client = TimedClient(f"c{k}-u{i}-{transport}-{places[url]}", users[i], transport, url, nginx,
                             ticket=(transport == "ws" and k % 3 == 0),
                             last_event_id_header=(transport == "sse" and k % 3 == 0))
        client.user_index = i
        clients.append(client)
    churners = []
    for j in range(churning):
        i = listed[(5 * j + 2) % len(listed)]
        transport, url = (("sse", nginx), ("ws", nginx), ("sse", nodes[2]))[j % 3]
        client = TimedClient(f"churn{j}-u{i}-{transport}-{places[url]}", users[i], transport, url, nginx,
                             ticket=(transport == "ws"), last_event_id_header=(j % 3 == 0), churn_every=args.churn_every)
        client.user_index = i
        churners.append(client)
    clients += churners

    # --- senders: spread over the conversations, each a member of its conversation ---
    per, extra = divmod(args.messages, args.senders)
    senders, sender_conversation = [], {}
    for s in range(args.senders):
        name = names[s % len(names)]
        roster = sorted(members[name])
        i = roster[(s // len(names)) % len(roster)]
        sender = TimedSender(f"{prefix}-s{s}-{name}-u{i}", nginx, users[i], conversations[name], per + (s < extra))
        sender_conversation[sender.name] = name
        senders.append(sender)
    total = sum(s.count for s in senders)

    print(f"storm: {total} messages from {len(senders)} senders (through nginx) in {len(conversations)} conversations "
          f"({len(conversations) - 1} groups, 1 public channel) of {args.users} users; {len(clients)} event clients "
          f"({sum(c.transport == 'sse' for c in clients)} SSE, {sum(c.transport == 'ws' for c in clients)} WebSocket; first "
          + ", ".join(f"{sum(c.first_url == url for c in clients)} on {where}" for url, where in places.items())
          + f"; {len(churners)} reconnecting every {args.churn_every} events); node {VICTIM} SIGKILLed after "
          f"{args.kill_after} accepted", flush=True)

    killed_at = sending_began = None
    victims = []
    accepted_before_kill = 0
    history, expected = {}, {}
    try:
        for client in clients:
            client.start()
        wait_until(lambda: all(c.connected.is_set() for c in clients), 30, "every client to connect")
        victims = [c for c in clients if c.first_url == nodes[VICTIM]]

        sending_began = time.monotonic()
        for sender in senders:
            sender.start()
        wait_until(lambda: sum(len(s.accepted) for s in senders) >= args.kill_after or not any(s.is_alive() for s in senders),
                   max(60, args.kill_after / 10), f"{args.kill_after} messages to be accepted")
        accepted_before_kill = sum(len(s.accepted) for s in senders)
        os.kill(pids[VICTIM], signal.SIGKILL)
        killed_at = time.monotonic()
        print(f"  node {VICTIM} (pid {pids[VICTIM]}) SIGKILLed at +{killed_at - sending_began:.1f} s, "
              f"{accepted_before_kill} messages accepted", flush=True)
        if accepted_before_kill >= total:
            failures.append("the senders finished before the node was killed: send more")

        wait_until(lambda: not any(s.is_alive() for s in senders), max(120, total / 20), "the senders to finish")
        for sender in senders:
            if sender.errors:
                failures.append(f"{sender.name}: {sender.errors}")
            elif len(sender.accepted) != sender.count:
                failures.append(f"{sender.name}: {len(sender.accepted)} of {sender.count} accepted")
        sending_ended = max((t for s in senders for t in s.accepted.times), default=time.monotonic())
        print(f"  senders done at +{sending_ended - sending_began:.1f} s; reading the history", flush=True)

        # What the REST API says was sent: exactly the accepted sends, each once, seqs 1..N.
        for name, cid in conversations.items():
            reader = users[min(members[name])]
            history[name] = messages = all_messages(nginx, reader, cid)
            expected[name] = len(messages)
            if [m["seq"] for m in messages] != list(range(1, len(messages) + 1)):
                failures.append(f"{name}: stored seqs have a gap: {_describe([m['seq'] for m in messages], len(messages))}")
            conversation = requests.get(f"{nginx}/v1/conversations/{cid}", headers=auth(reader), timeout=HTTP_TIMEOUT)
            if conversation.status_code != 200 or conversation.json()["last_seq"] != len(messages):
                failures.append(f"{name}: last_seq {conversation.text[:200]} but {len(messages)} messages")
            sent = sorted(((m["id"], m["seq"], body) for s in senders if sender_conversation[s.name] == name
                           for _, body, m in s.accepted), key=lambda x: x[1])
            stored = [(m["id"], m["seq"], m["body"]) for m in messages]
            if sent != stored:
                failures.append(f"{name}: the stored messages are not exactly the accepted sends "
                                f"({len(sent)} accepted, {len(stored)} stored; accepted not stored: "
                                f"{sorted(set(sent) - set(stored))[:5]}; stored not accepted: {sorted(set(stored) - set(sent))[:5]})")
        for sender in senders:
            seqs = [m["seq"] for _, _, m in sender.accepted]
            if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
                failures.append(f"{sender.name}: accepted out of order or twice: {_describe(seqs, max(seqs, default=0))}")

        # Every client catches up with every one of its conversations.
        def behind():
            return {c.name: {name: (c.max_seq(conversations[name]), expected[name]) for name in conversations
                             if c.user_index in members[name] and c.max_seq(conversations[name]) < expected[name]}
                    for c in clients}
        try:
            wait_until(lambda: not any(behind().values()), 60, "every client to catch up")
        except pytest.fail.Exception:
            late = behind()
            failures.append("clients behind 60 s after the senders finished (seen, sent): "
                            + "; ".join(f"{c.name}: {late[c.name]}, {c.state}, connections {c.connections}"
                                        for c in clients if late[c.name]))
        caught_up = time.monotonic()
    except pytest.fail.Exception as error:
        failures.append(str(error))
        caught_up = time.monotonic()
    finally:
        stop_all(clients)

    # --- the checks (as the test's) ---
    events = 0
    if history:
        for client in clients:
            if client.errors:
                failures.append(f"{client.name}: {client.errors[:5]}")
            frames = client.snapshot()
            ids = [f["id"] for f in frames]
            events += len(frames)
            if len(ids) != len(set(ids)):
                failures.append(f"{client.name}: an event id twice: {sorted({i for i in ids if ids.count(i) > 1})[:10]}")
            if ids != sorted(ids):
                failures.append(f"{client.name}: event ids not increasing")
            for name, cid in conversations.items():
                created = [f for f in frames if f["type"] == "message.created" and f["conversation_id"] == cid]
                if client.user_index not in members[name]:
                    if created:
                        failures.append(f"{client.name} got {name}'s messages without being a member")
                    continue
                seqs = [f["data"]["seq"] for f in created]
                if seqs != list(range(1, expected[name] + 1)):
                    failures.append(f"{client.name} in {name}: seqs {_describe(seqs, expected[name])} (connections {client.connections})")
                elif [(f["data"]["id"], f["data"]["body"]) for f in created] != [(m["id"], m["body"]) for m in history[name]]:
                    failures.append(f"{client.name} in {name}: not the stored messages")

        # The clients of one user hold the log a fresh replay gives, up to their last event, with no gap.
        for i in sorted({c.user_index for c in clients}):
            mine = [c for c in clients if c.user_index == i]
            frames = {c.name: {f["id"]: f for f in c.snapshot()} for c in mine}
            every = {}
            for seen in frames.values():
                every.update(seen)
            if not every:
                continue
            frames["replay"] = {f["id"]: f for f in replay(nginx, users[i], until=max(every))}
            every.update(frames["replay"])
            if set(frames["replay"]) != set(every):
                failures.append(f"user {i}: clients got events a replay does not give: "
                                + str([_summary(every[id_]) for id_ in sorted(set(every) - set(frames["replay"]))][:10]))
            differences = {name: [_summary(every[id_]) for id_ in sorted(set(every) - set(seen)) if id_ <= max(seen, default=0)]
                           for name, seen in frames.items()}
            differences = {name: missed[:10] for name, missed in differences.items() if missed}
            if differences:
                failures.append(f"user {i}: clients missed events that others of the user got: {differences}")

        # The kill did what it should: the victim's clients lost their node and came back through nginx.
        for client in victims:
            if client.drops < 1 or len(client.connections) < 2 or client.connections[-1][0] != nginx:
                failures.append(f"{client.name} did not lose its connection to the killed node and come back through "
                                f"nginx: {client.drops} drops, connections {client.connections}")

    # --- the figures ---
    ended = time.monotonic()
    timings = [t for s in senders for t in s.timings()]
    print("== storm")
    line("messages accepted", f"{len(timings)} of {total} ({accepted_before_kill} before the kill)")
    if timings and sending_began:
        sending = max(end for _, end, _ in timings) - sending_began
        line("sending (first send to last acceptance)", f"{sending:.1f} s")
        line("messages/s (accepted, through nginx)", f"{len(timings) / sending:.0f}")
        latencies = [end - start for start, end, _ in timings]
        line("send latency p50 / p99 / max (retries included)",
             f"{ms(percentile(latencies, 50))} / {ms(percentile(latencies, 99))} / {ms(max(latencies))}")
        retried = sum(s.accepted.retried for s in senders)
        line("sends retried (same Idempotency-Key)",
             f"{retried} ({sum(s.retries for s in senders)} retries, {sum(s.replayed for s in senders)} answered as replays)")

        start_of = {m["id"]: start for start, _, m in timings}
        steady = [c for c in clients if not c.churn_every]
        kept = [c for c in steady if c.drops == 0 and len(c.connections) == 1]
        lost = [c for c in steady if c.drops > 0]

        accepted_at = {m["id"]: end for _, end, m in timings}

        # From the start of a send (as parley-bench's send-to-receive), and from its 201 (what
        # the event path adds after the commit), to the frame's arrival at a client.
        def deliveries(group, since):
            return [at - since[mid] for c in group for at, mid in c.arrivals if mid in since]
        for label, group, since in (("send→receive p50 / p99, all steady clients", steady, start_of),
                                    (f"send→receive p50 / p99, the {len(kept)} that kept their node", kept, start_of),
                                    ("201→receive p50 / p99, all steady clients", steady, accepted_at)):
            values = deliveries(group, since)
            if values:
                line(label, f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))} (max {ms(max(values))})")

        # The longest wait between two consecutive messages arriving at one client, while the
        # senders sent: around the kill (from 1 s before it to --window s after) and elsewhere.
        def gaps(group):
            around, elsewhere = (0, None, None), (0, None, None)
            for c in group:
                times = [at for at, _ in c.arrivals]
                for a, b in zip(times, times[1:]):
                    if a < sending_began:
                        continue
                    if killed_at and a <= killed_at + args.window and b >= killed_at - 1:
                        around = max(around, (b - a, c.name, a - killed_at), key=lambda gap: gap[0])
                    else:
                        elsewhere = max(elsewhere, (b - a, c.name, a - (killed_at or sending_began)), key=lambda gap: gap[0])
            return around, elsewhere

        def said(gap):
            size, name, at = gap
            if name is None:
                return "none"
            when = f"{at:.2f} s after the kill" if at >= 0 else f"{-at:.2f} s before the kill"
            return f"{ms(size)} ({name}, starting {when})"
        around, elsewhere = gaps(kept)
        line("longest delivery gap, kept their node, around the kill", said(around))
        line("longest delivery gap, kept their node, otherwise", said(elsewhere))
        around, _ = gaps(lost)
        line(f"longest delivery gap, the {len(lost)} that lost their node", said(around))
        line("until every client had every message", f"{caught_up - max(end for _, end, _ in timings):.2f} s after the last acceptance")
    line("events checked", f"{events} ({len(clients)} clients; {sum(len(c.connections) - 1 for c in clients)} reconnects: "
                           f"{sum(c.drops for c in clients)} drops, {sum(c.churns for c in clients)} by choice, "
                           f"{sum(c.failed_attempts for c in clients)} failed attempts)")
    line("wall time (setup, storm, checks)", f"{ended - began:.1f} s")
    if failures:
        print(f"  exactness: FAILED ({len(failures)} problems)")
        for failure in failures:
            print(f"    - {failure}")
        return 1
    print("  exactness: every client has every message of its conversations once, in order; every accepted send stored once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
