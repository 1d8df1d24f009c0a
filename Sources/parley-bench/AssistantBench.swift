import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import WebSocketKit

extension Run {
    /// Assistant runs end to end: C clients, each in its own group with the assistant, each
    /// mentioning it and waiting for the reply before asking again. A run is the shape of a
    /// small agent turn: one tool call, then a streamed reply (the server's `scripted`
    /// provider, so the figures are Parley's own cost, not a model's). Measured on the
    /// asker's WebSocket: mention → first `assistant.delta`, and mention → the reply message.
    func assistants() async throws {
        guard let handle = options.assistantHandle else { return print("== assistants: no --assistant-handle: skipped") }
        let clients = options.senders, perClient = options.runsPerClient
        print("== assistants: \(clients) clients × \(perClient) runs (one tool call, then a streamed reply), then \(perClient) runs one at a time")
        let found = try await api.call(.GET, "/v1/users?q=\(handle)", token: (try await api.register(self.handle("aq"))).token).body
        guard let assistantID = (found["items"] as? [[String: Any]])?.first(where: { $0["handle"] as? String == handle })?["id"] as? String else {
            throw Missing(description: "no assistant @\(handle) on the server")
        }
        var askers: [(API.User, String)] = []
        for n in 0..<clients {
            let user = try await api.register(self.handle("as\(n)"))
            askers.append((user, try await api.conversation(user, kind: "group", title: "assistant \(n)", members: [API.User(id: assistantID, token: "")])))
        }

        // Warm-up, then one client alone (the latency an idle server gives), then all together.
        _ = try await askRepeatedly(askers[0], assistantID: assistantID, runs: 20)
        let alone = try await askRepeatedly(askers[0], assistantID: assistantID, runs: perClient)
        Self.line("idle: mention → first delta p50 / p99", "\(Self.ms(alone.first.valueAtPercentile(50))) / \(Self.ms(alone.first.valueAtPercentile(99)))",
                  target: "p50 ≤ 3 ms")
        Self.line("idle: mention → reply message p50 / p99", "\(Self.ms(alone.reply.valueAtPercentile(50))) / \(Self.ms(alone.reply.valueAtPercentile(99)))",
                  target: "(no target)")

        let before = sample()
        let start = now()
        let results = try await withThrowingTaskGroup(of: Timings.self) { tasks in
            for asker in askers { tasks.addTask { try await askRepeatedly(asker, assistantID: assistantID, runs: perClient) } }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        let elapsed = Double(now() - start) / 1e9
        let after = sample()
        var first = Histogram<UInt64>(highestTrackableValue: 60_000_000_000), reply = first
        for result in results { first.add(result.first); reply.add(result.reply) }
        let runs = clients * perClient
        Self.line("runs/s (\(clients) clients)", String(format: "%.0f", Double(runs) / elapsed), target: "≥ 200")
        Self.line("loaded: mention → first delta p50 / p99", "\(Self.ms(first.valueAtPercentile(50))) / \(Self.ms(first.valueAtPercentile(99)))",
                  target: "(no target)")
        Self.line("loaded: mention → reply message p50 / p99", "\(Self.ms(reply.valueAtPercentile(50))) / \(Self.ms(reply.valueAtPercentile(99)))",
                  target: "(no target)")
        if let before, let after {
            Self.line("server CPU per run", String(format: "%.2f ms", (after.cpuSeconds - before.cpuSeconds) / Double(runs) * 1000), target: "≤ 4 ms")
        }
        print("  all \(runs) runs answered on the askers' WebSockets")
    }

    struct Timings: Sendable {
        var first = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        var reply = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    }

    /// One asker: mention, wait for the first delta and the reply on its own WebSocket, repeat.
    ///
    /// The socket subscribes with `since=0`, and the asker first sends a plain message and
    /// waits for it on the socket: a socket without `since` is live only from when the server
    /// has registered it, so a run asked for at once could be answered before that (and the
    /// asker would wait for good, as one did in a round). Frames replayed before the marker
    /// are older runs' and are ignored (no question is waiting).
    func askRepeatedly(_ asker: (API.User, String), assistantID: String, runs: Int) async throws -> Timings {
        let (user, conversation) = asker
        let state = NIOLockedValueBox<(started: UInt64, first: UInt64?, done: CheckedContinuation<(UInt64, UInt64), Never>?)>((0, nil, nil))
        let replyMarker = #""author_id":"\#(assistantID)""#
        let readyMarker = "ready \(UInt64.random(in: 0...UInt64.max))"
        let ready = NIOLockedValueBox<(seen: Bool, waiting: CheckedContinuation<Void, Never>?)>((false, nil))
        let url = api.base.replacingOccurrences(of: "http://", with: "ws://") + "/v1/events?since=0"
        let promise = group.any().makePromise(of: WebSocket.self)
        WebSocket.connect(to: url, headers: ["Authorization": "Bearer \(user.token)"], configuration: .init(maxFrameSize: 1 << 20), on: group) { ws in
            ws.onText { _, text in
                let at = now()
                if text.contains(readyMarker) {
                    let waiting = ready.withLockedValue { ready in
                        defer { ready = (true, nil) }
                        return ready.waiting
                    }
                    waiting?.resume()
                } else if text.contains(#""type":"assistant.delta""#) {
                    state.withLockedValue { if $0.first == nil { $0.first = at } }
                } else if text.contains(#""type":"message.created""#), text.contains(replyMarker) {
                    let resume = state.withLockedValue { state -> (CheckedContinuation<(UInt64, UInt64), Never>, UInt64, UInt64)? in
                        guard let done = state.done, let first = state.first else { return nil }
                        state.done = nil
                        return (done, first - state.started, at - state.started)
                    }
                    if let (done, first, reply) = resume { done.resume(returning: (first, reply)) }
                }
            }
            promise.succeed(ws)
        }.whenFailure { promise.fail($0) }
        let socket = try await promise.futureResult.get()
        try await api.send(user, conversation, body: readyMarker)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let seen = ready.withLockedValue { ready in
                if !ready.seen { ready.waiting = continuation }
                return ready.seen
            }
            if seen { continuation.resume() }
        }
        var timings = Timings()
        for n in 0..<runs {
            let (first, reply) = await withCheckedContinuation { (continuation: CheckedContinuation<(UInt64, UInt64), Never>) in
                state.withLockedValue { $0 = (now(), nil, continuation) }
                Task { try await api.send(user, conversation, body: "@\(options.assistantHandle ?? "") question \(n)") }
            }
            timings.first.record(first)
            timings.reply.record(reply)
        }
        try? await socket.close()
        return timings
    }
}
