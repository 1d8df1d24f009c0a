import ArgumentParser
import AsyncHTTPClient
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A bounded load against a running Parley server on 127.0.0.1. It creates its own users and
/// conversations (start the server with a low PARLEY_BCRYPT_COST and a high
/// PARLEY_MAX_CONNECTIONS_PER_USER; `scripts/bench-realtime` does all of that), runs each
/// phase, prints its figures beside the targets, and stops.
@main
struct ParleyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "parley-bench",
                                                    abstract: "Load-test a running Parley server and print latency, throughput and memory figures.")

    @Option(help: "The server's base URL.") var url = "http://127.0.0.1:8080"
    @Option(help: "The server's process id, for RSS and CPU time from /proc.") var serverPid: Int32?
    @Option(help: "Concurrent senders in the throughput phase.") var senders = 8
    @Option(help: "Messages each concurrent sender sends.") var messagesPerSender = 1000
    @Option(help: "Messages sent one after another in the latency phase.") var sequential = 2000
    @Option(help: "Subscribers of one channel in the fan-out phase.") var subscribers = 1000
    @Option(help: "Messages fanned out, one at a time.") var fanoutRounds = 100
    @Option(help: "Idle WebSockets held in the last phase.") var idle = 10000
    @Option(help: "Users the idle WebSockets are spread over.") var idleUsers = 100
    @Option(help: "The handle of an assistant on the server (the assistants phase; scripts/bench-assistants makes one).")
    var assistantHandle: String?
    @Option(help: "Runs each client asks for in the assistants phase.") var runsPerClient = 200
    @Option(help: "Phases to run (comma-separated): idle-baseline,throughput,latency,fanout,idle,assistants")
    var phases = "idle-baseline,throughput,latency,fanout,idle"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        let api = API(http: http, base: url.hasSuffix("/") ? String(url.dropLast()) : url)
        let run = Run(api: api, group: group, options: self, tag: String(UInt32.random(in: 0...UInt32.max), radix: 36))
        let wanted = Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        do {
            if wanted.contains("idle-baseline") { run.idleBaseline() }
            if wanted.contains("throughput") { try await run.throughput() }
            if wanted.contains("latency") { try await run.latency() }
            if wanted.contains("fanout") { try await run.fanout() }
            if wanted.contains("idle") { try await run.idleSockets() }
            if wanted.contains("assistants") { try await run.assistants() }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        try await group.shutdownGracefully()
    }
}

struct Run {
    let api: API
    let group: any EventLoopGroup
    let options: ParleyBench
    /// Makes handles unique per run, so the bench can run again against the same database.
    let tag: String

    func handle(_ name: String) -> String { "b\(tag)\(name)" }

    func sample() -> ProcessSample? { options.serverPid.flatMap(ProcessSample.read(pid:)) }

    static func ms(_ nanos: UInt64) -> String { String(format: "%.2f ms", Double(nanos) / 1e6) }

    static func line(_ what: String, _ value: String, target: String) {
        // Padded, never cut: `padding(toLength:)` truncates a longer value.
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        print("  \(pad(what, 44)) \(pad(value, 16)) target \(target)")
    }

    func idleBaseline() {
        print("== idle server")
        guard let sample = sample() else { return print("  (no --server-pid: skipped)") }
        Self.line("server RSS", String(format: "%.1f MiB", Double(sample.rssBytes) / 1048576), target: "≤ 40 MiB")
    }

    /// N senders, each in its own conversation with a receiver that holds a WebSocket; every
    /// message must arrive before the phase ends.
    func throughput() async throws {
        let count = options.senders * options.messagesPerSender
        print("== throughput: \(options.senders) concurrent senders × \(options.messagesPerSender) messages")
        let receiver = try await api.register(handle("rx"))
        var pairs: [(API.User, String)] = []
        for n in 0..<options.senders {
            let sender = try await api.register(handle("tx\(n)"))
            pairs.append((sender, try await api.conversation(sender, kind: "group", title: "throughput \(n)", members: [receiver])))
        }
        let arrived = Countdown(count)
        // From the receiver's first event: the first sends may commit before the server has
        // registered a live-only connection, and those messages would never come. (The
        // benchmark's database is fresh, so nothing has been pruned, and the receiver's
        // history is the few events of its conversations' creation.)
        let subscriber = try await Subscriber.connect(api.base, token: receiver.token, since: 0, on: group) { _ in arrived.tick() }
        let before = sample()
        let start = now()
        let histograms = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { tasks in
            for (sender, conversation) in pairs {
                tasks.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
                    for n in 0..<options.messagesPerSender {
                        let t0 = now()
                        try await api.send(sender, conversation, body: "tp \(n)")
                        histogram.record(now() - t0)
                    }
                    return histogram
                }
            }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        let sent = now()
        try await waiting(arrived, "\(count) deliveries")
        let after = sample()
        var all = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        for histogram in histograms { all.add(histogram) }
        let seconds = Double(sent - start) / 1e9
        Self.line("messages/s (sent and committed)", String(format: "%.0f", Double(count) / seconds), target: "≥ 2,500")
        Self.line("send latency under load p50 / p99",
                  "\(Self.ms(all.valueAtPercentile(50))) / \(Self.ms(all.valueAtPercentile(99)))", target: "(no target)")
        if let before, let after {
            let perMessage = (after.cpuSeconds - before.cpuSeconds) / Double(count) * 1000
            Self.line("server CPU per message", String(format: "%.3f ms", perMessage), target: "≤ 0.4 ms")
        }
        print("  all \(count) messages delivered to the receiver's WebSocket")
        await subscriber.close()
    }

    /// One sender, one message at a time, with the receiver on a WebSocket: send latency, and
    /// the time from starting the send to the frame arriving.
    func latency() async throws {
        print("== latency: \(options.sequential) messages, one at a time")
        let sender = try await api.register(handle("ls")), receiver = try await api.register(handle("lr"))
        let conversation = try await api.conversation(sender, kind: "direct", title: nil, members: [receiver])
        let received = NIOLockedValueBox(Histogram<UInt64>(highestTrackableValue: 60_000_000_000))
        let arrived = Countdown(options.sequential)
        let subscriber = try await Subscriber.connect(api.base, token: receiver.token, on: group) { body in
            // The body is "lat <send start in ns>".
            guard let started = UInt64(body.dropFirst(4)) else { return }
            let elapsed = now() - started
            received.withLockedValue { _ = $0.record(elapsed) }
            arrived.tick()
        }
        // Warm-up: connections, statement caches.
        for n in 0..<50 { try await api.send(sender, conversation, body: "warm \(n)") }
        var sending = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        for _ in 0..<options.sequential {
            let t0 = now()
            try await api.send(sender, conversation, body: "lat \(t0)")
            sending.record(now() - t0)
        }
        try await waiting(arrived, "\(options.sequential) deliveries")
        let receiving = received.withLockedValue { $0 }
        Self.line("send p50 / p99", "\(Self.ms(sending.valueAtPercentile(50))) / \(Self.ms(sending.valueAtPercentile(99)))",
                  target: "≤ 1 ms / ≤ 5 ms")
        Self.line("send-to-receive p50 / p99", "\(Self.ms(receiving.valueAtPercentile(50))) / \(Self.ms(receiving.valueAtPercentile(99)))",
                  target: "p99 ≤ 5 ms")
        await subscriber.close()
    }

    /// S subscribers of one public channel; each round one message goes out and the round's
    /// figure is the time until the last subscriber has it.
    func fanout() async throws {
        print("== fan-out: 1 message to \(options.subscribers) WebSocket subscribers, \(options.fanoutRounds) rounds")
        let owner = try await api.register(handle("fo"))
        let channel = try await api.conversation(owner, kind: "channel", title: "fanout", visibility: "public")
        let members = try await inBatches(0..<options.subscribers) { n in
            let user = try await api.register(handle("f\(n)"))
            try await api.join(user, channel)
            return user
        }
        let round = NIOLockedValueBox<(countdown: Countdown, last: UInt64)?>(nil)
        let subscribers = try await inBatches(members.indices) { n in
            try await Subscriber.connect(api.base, token: members[n].token, on: group) { body in
                guard body.hasPrefix("fan ") else { return }
                let arrival = now()
                let countdown = round.withLockedValue { state -> Countdown? in
                    guard var current = state else { return nil }
                    current.last = max(current.last, arrival)
                    state = current
                    return current.countdown
                }
                countdown?.tick()
            }
        }
        var lastDelivery = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        for n in 0..<options.fanoutRounds {
            let countdown = Countdown(subscribers.count)
            round.withLockedValue { $0 = (countdown, 0) }
            let t0 = now()
            try await api.send(owner, channel, body: "fan \(n)")
            try await waiting(countdown, "round \(n) of the fan-out")
            let last = round.withLockedValue { $0?.last ?? 0 }
            lastDelivery.record(last - t0)
        }
        Self.line("last delivery p50 / p99", "\(Self.ms(lastDelivery.valueAtPercentile(50))) / \(Self.ms(lastDelivery.valueAtPercentile(99)))",
                  target: options.subscribers > 1000 ? "p99 ≤ 250 ms (10,000)" : "p99 ≤ 50 ms (1,000)")
        for subscriber in subscribers { await subscriber.close() }
    }

    /// Opens many authenticated WebSockets, holds them, and reads the server's memory.
    func idleSockets() async throws {
        print("== idle: \(options.idle) authenticated WebSockets over \(options.idleUsers) users")
        let users = try await inBatches(0..<options.idleUsers) { n in try await api.register(handle("i\(n)")) }
        let before = sample()
        let sockets = try await inBatches(0..<options.idle, width: 64) { n in
            try await Subscriber.connect(api.base, token: users[n % users.count].token, on: group) { _ in }
        }
        if let before, let after = sample() {
            Self.line("server RSS holding them", String(format: "%.1f MiB", Double(after.rssBytes) / 1048576), target: "≤ 819 MiB (0.8 GiB)")
            Self.line("per connection", String(format: "%.1f KiB", Double(after.rssBytes - before.rssBytes) / 1024 / Double(sockets.count)),
                      target: "(no target)")
        }
        print("  \(sockets.count) connections open")
        for socket in sockets { await socket.close() }
    }

    /// Runs `body` for every element, `width` at a time, keeping the results in order.
    func inBatches<C: Collection & Sendable, T: Sendable>(_ items: C, width: Int = 16,
                                                           _ body: @escaping @Sendable (C.Element) async throws -> T) async throws -> [T]
    where C.Element: Sendable {
        var results: [T] = []
        var slice = items[...]
        while !slice.isEmpty {
            let chunk = Array(slice.prefix(width))
            slice = slice.dropFirst(width)
            let values = try await withThrowingTaskGroup(of: (Int, T).self) { tasks in
                for (i, item) in chunk.enumerated() { tasks.addTask { (i, try await body(item)) } }
                var out = [(Int, T)]()
                for try await value in tasks { out.append(value) }
                return out.sorted { $0.0 < $1.0 }.map(\.1)
            }
            results += values
        }
        return results
    }

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// Waits for a countdown, failing after two minutes rather than hanging when frames are lost.
    func waiting(_ countdown: Countdown, _ what: String) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { await countdown.wait(); return true }
            tasks.addTask { try await Task.sleep(for: .seconds(120)); return false }
            defer { tasks.cancelAll() }
            guard try await tasks.next() == true else {
                throw Missing(description: "gave up waiting for \(what): \(countdown.left) did not arrive within two minutes")
            }
        }
    }
}
