import Foundation
import Logging

/// One worker: claims a file, runs the processor on it while a heartbeat renews the lease, and
/// records the result fenced on the lease, until nothing is left. Several run side by side (one
/// process each, on one or several machines), each with its own model load.
public struct ArchiveWorker: Sendable {
    public let store: any ArchiveStore
    public let settings: ArchiveSettings
    /// Who holds the leases: `host:pid`, which the supervisor uses to free a dead worker's files.
    public let owner: String
    public let logger: Logger

    public init(store: any ArchiveStore, settings: ArchiveSettings, owner: String = ArchiveWorker.defaultOwner(), logger: Logger) {
        self.store = store
        self.settings = settings
        self.owner = owner
        self.logger = logger
    }

    public static func defaultOwner(pid: Int32 = getpid()) -> String {
        "\(ProcessInfo.processInfo.hostName):\(pid)"
    }

    public struct Summary: Equatable, Sendable {
        public var done = 0
        public var failed = 0
        /// Results the store refused: the lease had been lost (expired and reclaimed).
        public var refused = 0
        /// Seconds spent in the jobs, and waiting on the store (claims and results; sleeps excluded).
        public var jobSeconds = 0.0
        public var storeSeconds = 0.0
    }

    /// Processes files until every file is done or failed. Each result is recorded together with
    /// the claim of the next file (one transaction a file). The claims, jobs and results run on one
    /// thread the worker starts once (off the cooperative pool, no thread hop per file); one
    /// heartbeat on a thread of its own renews whichever lease the worker holds.
    public func run(_ processor: any ArchiveProcessor) async throws -> Summary {
        let request = ClaimRequest(owner: owner, leaseSeconds: settings.leaseSeconds, maxCrashes: settings.maxCrashes)
        let held = HeldLease()
        // The heartbeat has a thread of its own too: a busy cooperative pool (a worker inside a
        // larger process) cannot make it miss a renewal.
        let heartbeatThread = ThreadExecutor(stackSize: 1 << 20)
        let heartbeat = Task(executorPreference: heartbeatThread) { [store, settings, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(settings.leaseSeconds / 3))
                guard !Task.isCancelled, let lease = held.current else { continue }
                if let renewed = try? await store.renew(lease, leaseSeconds: settings.leaseSeconds) {
                    held.renewed(renewed)
                } else if held.lose(lease) {
                    logger.warning("\(lease.path): lease lost; its result will be refused")
                }
            }
        }
        // The loop (claims, jobs, results) runs on one thread of its own: the job blocks it, and
        // nothing hops between threads per file.
        let executor = ThreadExecutor(stackSize: 8 << 20)
        let ended = await Task(executorPreference: executor) { () -> Result<Summary, Error> in
            do {
                return .success(try await loop(request, processor, held))
            } catch {
                return .failure(error)
            }
        }.value
        // No renewal in flight once the caller closes the store.
        heartbeat.cancel()
        await heartbeat.value
        heartbeatThread.shutdown()
        executor.shutdown()
        return try ended.get()
    }

    private func loop(_ request: ClaimRequest, _ processor: any ArchiveProcessor, _ held: HeldLease) async throws -> Summary {
        var summary = Summary()
        let clock = ContinuousClock()
        func timed<T>(_ seconds: inout Double, _ body: () async throws -> T) async rethrows -> T {
            let start = clock.now
            defer { seconds += (clock.now - start).seconds }
            return try await body()
        }
        var next = try await timed(&summary.storeSeconds) { try await store.claim(request) }
        while true {
            switch next {
            case .finished:
                return summary
            case .wait(let seconds):
                // Another worker holds the rest; it may finish (then this one is done too) or die
                // (its lease expires), so look again soon.
                try await Task.sleep(for: .seconds(min(seconds, 0.5)))
                next = try await timed(&summary.storeSeconds) { try await store.claim(request) }
            case .claimed(let lease):
                logger.debug("\(lease.path): claimed (attempt \(lease.attempt))")
                held.hold(lease)
                let started = clock.now
                let outcome = await process(lease, processor)
                let seconds = (clock.now - started).seconds
                summary.jobSeconds += seconds
                held.hold(nil)
                let finished = try await timed(&summary.storeSeconds) {
                    try await store.finish(lease, outcome, seconds: seconds, thenClaim: request)
                }
                if case .failed(let failure) = outcome { logger.info("\(failure.message)") }
                switch finished {
                case .refused:
                    summary.refused += 1
                    logger.warning("\(lease.path): result refused, the lease was lost to another worker")
                    next = try await timed(&summary.storeSeconds) { try await store.claim(request) }
                case .accepted(let claimed):
                    if case .done = outcome { summary.done += 1 } else { summary.failed += 1 }
                    next = claimed ?? .finished
                }
            }
        }
    }

    /// Runs the job on one file (on the loop's thread).
    private func process(_ lease: Lease, _ processor: any ArchiveProcessor) async -> FileOutcome {
        let folder = settings.outputFolder(for: lease.path)
        // Only a file claimed before can have a killed worker's partial outputs: the folder is not
        // listed for every file.
        if lease.claimedBefore { removePartialOutputs(of: lease.path, in: folder) }
        do {
            return .done(try await processor.process(file: lease.path, outputFolder: folder))
        } catch let failure as ProcessingFailure {
            return .failed(failure)
        } catch {
            return .failed(ProcessingFailure(message: "\(lease.path): \(error)", category: "failure"))
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// The lease a worker holds now, shared with its heartbeat.
final class HeldLease: @unchecked Sendable {
    private let lock = NSLock()
    private var lease: Lease?

    var current: Lease? { lock.withLock { lease } }

    func hold(_ lease: Lease?) { lock.withLock { self.lease = lease } }

    /// Keeps a renewal, unless the worker has moved on to another file meanwhile.
    func renewed(_ renewal: Lease) {
        lock.withLock { if lease?.token == renewal.token { lease = renewal } }
    }

    /// Forgets `lost` if it is still held (no more renewals for it); false when the worker had
    /// already finished with it (a renewal racing the completion is no loss).
    func lose(_ lost: Lease) -> Bool {
        lock.withLock {
            guard lease?.token == lost.token else { return false }
            lease = nil
            return true
        }
    }
}

/// Removes the temporary files (`.NAME.PID.partial`) a killed worker left while writing the
/// outputs of `file`, before its next attempt writes them again.
func removePartialOutputs(of file: String, in folder: String) {
    let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
    let fm = FileManager.default
    for dir in [folder, (folder as NSString).appendingPathComponent("\(stem).thumbs")] {
        for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".partial") {
            if dir == folder, !name.hasPrefix(".\(stem).") { continue }
            try? fm.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
        }
    }
}

/// A task executor with one dedicated thread that runs its jobs in order.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init(stackSize: Int) {
        let thread = Thread { [self] in loop() }
        thread.stackSize = stackSize
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs queued so far have run.
    func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
