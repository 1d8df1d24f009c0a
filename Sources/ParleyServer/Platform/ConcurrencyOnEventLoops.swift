#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics
import NIOCore
import NIOPosix

/// Runs Swift concurrency's global jobs on NIO's event loops, as the generic executor.
///
/// NIO's own way of doing this (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`)
/// runs each job as if isolated to the event loop's serial executor. A task running so is not
/// on the generic executor, so every call into a nonisolated `async` function (which runs on
/// the generic executor) is a switch of executor that the runtime cannot make in place: it
/// puts the task back on the event loop's queue and resumes it on a later pass. An assistant
/// run made about 1,100 such round trips (`swift_task_switch`, counted with a probe), most of
/// its jobs. Here each job runs on the generic executor, on the event loop's thread: calls
/// between nonisolated functions continue in place, and only real changes of executor (an
/// actor, a continuation resumed from another thread) go through a queue.
///
/// Like NIO's, this sets the runtime's `swift_task_enqueueGlobal_hook` (a function pointer
/// the runtime exports for exactly this), once, before any task starts, with a
/// compare-and-exchange, and only with the compilers NIO's own takeover is known to work
/// with (the hook's signature is the runtime's, not a public API). Written by hand because
/// no listed package offers it.
enum ConcurrencyOnEventLoops {
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// The generic executor's reference: no identity, no implementation (the runtime's
    /// `SerialExecutorRef::generic()`). `UnownedSerialExecutor` has no public way to name it.
    static let generic: UnownedSerialExecutor = unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self)

    /// Installs the hook; false when the compiler is one it is not known to work with, the
    /// runtime does not export the hook, or a hook is set already. Call once, at start-up,
    /// before any other task starts.
    static func install() -> Bool {
        #if compiler(<6.6) && !os(Windows)
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else { return false }
        let slot = UnsafeAtomic<UnsafeRawPointer?>(at: symbol.assumingMemoryBound(to: UnsafeRawPointer.AtomicOptionalRepresentation.self))
        return withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook in
            hook.baseAddress!.initialize(to: { job, _ in
                // `any()` is the current loop when called on one of the group's threads.
                MultiThreadedEventLoopGroup.singleton.any().execute {
                    job.runSynchronously(on: ConcurrencyOnEventLoops.generic)
                }
            })
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { function in
                slot.compareExchange(expected: nil, desired: function.pointee, ordering: .relaxed).exchanged
            }
        }
        #else
        return false
        #endif
    }

    /// Runs `body` on the shared group's next loop in turn, skipping the calling thread's own
    /// when there is another. A task `body` starts stays on that loop (with the hook
    /// installed), so work that need not wait for what the caller's loop does next runs
    /// beside it, on another core.
    static func elsewhere(_ body: @escaping @Sendable () -> Void) {
        let group = MultiThreadedEventLoopGroup.singleton
        var loop = group.next()
        if loop.inEventLoop { loop = group.next() }
        loop.execute(body)
    }
}
