import Dispatch

/// Work spread over the machine's cores with Dispatch (Foundation's own tool for this; the
/// library has no other dependency).
enum Parallel {
    /// `transform` applied to every element, in order, running on all cores.
    static func map<Element, Result>(_ elements: [Element], _ transform: @Sendable (Element) -> Result) -> [Result] {
        guard elements.count > 1 else { return elements.map(transform) }
        return [Result](unsafeUninitializedCapacity: elements.count) { buffer, initialized in
            // Each index is written by exactly one iteration, and the buffer outlives the loop.
            nonisolated(unsafe) let output = buffer
            // A few chunks per core keep the cores busy when elements differ in cost.
            let chunks = min(elements.count, 64)
            elements.withUnsafeBufferPointer { input in
                nonisolated(unsafe) let input = input
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    let start = chunk * input.count / chunks
                    let end = (chunk + 1) * input.count / chunks
                    for index in start..<end { (output.baseAddress! + index).initialize(to: transform(input[index])) }
                }
            }
            initialized = elements.count
        }
    }
}
