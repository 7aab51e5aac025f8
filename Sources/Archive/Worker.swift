import Foundation
import Logging

/// One worker: claims a file, runs the processor on it while a heartbeat renews the lease, and
/// records the result fenced on the lease, until nothing is left. Several run side by side (one
/// process each, on one or several machines), each with its own model load.
public struct ArchiveWorker {
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
    }

    /// Processes files until every file is done or failed.
    public func run(_ processor: any ArchiveProcessor) async throws -> Summary {
        var summary = Summary()
        while true {
            switch try await store.claim(owner: owner, leaseSeconds: settings.leaseSeconds, maxCrashes: settings.maxCrashes) {
            case .finished:
                return summary
            case .wait(let seconds):
                // Another worker holds the rest; it may finish (then this one is done too) or die
                // (its lease expires), so look again soon.
                try await Task.sleep(for: .seconds(min(seconds, 0.5)))
            case .claimed(let lease):
                try await process(lease, processor, &summary)
            }
        }
    }

    private func process(_ lease: Lease, _ processor: any ArchiveProcessor, _ summary: inout Summary) async throws {
        logger.debug("\(lease.path): claimed (attempt \(lease.attempt))")
        let started = Date()
        let heartbeat = Task { [store, settings, logger] in
            var current = lease
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(settings.leaseSeconds / 3))
                if Task.isCancelled { return }
                guard let renewed = try? await store.renew(current, leaseSeconds: settings.leaseSeconds) else {
                    logger.warning("\(lease.path): lease lost; its result will be refused")
                    return
                }
                current = renewed
            }
        }
        let folder = settings.outputFolder(for: lease.path)
        removePartialOutputs(of: lease.path, in: folder)
        let outcome = await runOffTheCooperativePool { () -> Result<ProcessedFile, ProcessingFailure> in
            do {
                return .success(try await processor.process(file: lease.path, outputFolder: folder))
            } catch let failure as ProcessingFailure {
                return .failure(failure)
            } catch {
                return .failure(ProcessingFailure(message: "\(lease.path): \(error)", category: "failure"))
            }
        }
        heartbeat.cancel()
        let seconds = Date().timeIntervalSince(started)
        let accepted: Bool
        switch outcome {
        case .success(let result):
            accepted = try await store.complete(lease, result: result, seconds: seconds)
            if accepted { summary.done += 1 }
        case .failure(let failure):
            accepted = try await store.fail(lease, failure: failure, seconds: seconds)
            if accepted { summary.failed += 1 }
            logger.info("\(failure.message)")
        }
        if !accepted {
            summary.refused += 1
            logger.warning("\(lease.path): result refused, the lease was lost to another worker")
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

/// Runs work that blocks (a job's decoding and model passes) on a thread of its own, so
/// heartbeats keep running on the cooperative pool even on a one-core machine. The work may be
/// async: its task prefers a one-thread executor, so it resumes there after each suspension.
func runOffTheCooperativePool<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
    let executor = ThreadExecutor(stackSize: 8 << 20)
    defer { executor.shutdown() }
    return await Task(executorPreference: executor) { await work() }.value
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
