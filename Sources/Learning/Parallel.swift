import Foundation

/// Work spread over the machine's cores on threads of its own.
///
/// Not `DispatchQueue.concurrentPerform`: on Linux its iterations run on the global queues'
/// threads, which are also Swift concurrency's cooperative pool, so a long fit run that way
/// stalls every task of the process (a server's requests) until it ends. Threads made here
/// leave that pool alone; the caller's thread does its share and waits for the rest.
enum Parallel {
    /// `transform` applied to every element, in order.
    static func map<Element, Result>(_ elements: [Element], _ transform: @escaping @Sendable (Element) -> Result) -> [Result] {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard elements.count > 1, cores > 1 else { return elements.map(transform) }
        let workers = min(cores, elements.count)
        return [Result](unsafeUninitializedCapacity: elements.count) { buffer, initialized in
            // Each index is written by exactly one worker, and the buffer outlives them all.
            nonisolated(unsafe) let output = buffer
            elements.withUnsafeBufferPointer { input in
                nonisolated(unsafe) let input = input
                do {
                    // Workers take the next index from a shared counter, so uneven elements balance.
                    let next = NSLock()
                    nonisolated(unsafe) var counter = 0
                    let work: @Sendable () -> Void = {
                        while true {
                            next.lock()
                            let index = counter
                            counter += 1
                            next.unlock()
                            guard index < input.count else { return }
                            (output.baseAddress! + index).initialize(to: transform(input[index]))
                        }
                    }
                    let done = DispatchSemaphore(value: 0)
                    for _ in 1..<workers {
                        let thread = Thread {
                            work()
                            done.signal()
                        }
                        thread.stackSize = 1 << 22
                        thread.start()
                    }
                    work()
                    for _ in 1..<workers { done.wait() }
                }
            }
            initialized = elements.count
        }
    }
}
