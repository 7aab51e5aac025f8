import Foundation
import Logging

/// `archive run`: keeps N worker processes (the same binary, a hidden subcommand) busy until the
/// archive is settled. A worker that dies (killed, crashed) has its files handed back at once,
/// with a crash counted, and is replaced while work remains.
public struct ArchiveSupervisor {
    public let store: any ArchiveStore
    public let settings: ArchiveSettings
    public let workers: Int
    /// The worker command: executable and arguments (it must run `ArchiveWorker` on this store).
    public let command: [String]
    public let logger: Logger

    public init(store: any ArchiveStore, settings: ArchiveSettings, workers: Int, command: [String], logger: Logger) {
        self.store = store
        self.settings = settings
        self.workers = workers
        self.command = command
        self.logger = logger
    }

    public struct Summary: Equatable, Sendable {
        public var started = 0
        /// Workers that ended by a signal or a non-zero status.
        public var died = 0
    }

    /// Runs until every worker has exited and no file is pending; `progress` is called about once
    /// a second with the store's counts.
    public func run(progress: (ArchiveProgress) -> Void) async throws -> Summary {
        var summary = Summary()
        var children: [Process] = []
        let start = Date()
        let initial = try await store.status()
        let doneAtStart = initial.finished
        var lastReport = Date.distantPast
        let exits = WorkerExits()

        func spawn() throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: command[0])
            p.arguments = Array(command.dropFirst())
            p.standardInput = FileHandle.nullDevice
            p.terminationHandler = { _ in exits.signal() }
            try p.run()
            children.append(p)
            summary.started += 1
            logger.debug("worker \(p.processIdentifier) started")
        }

        // Workers that exit with an error (not a signal) before any file finishes cannot start
        // (a store they cannot open, a broken job): give up instead of respawning them forever.
        var failedStarts = 0
        var finishedAtLastFailure = -1

        for _ in 0..<workers { try spawn() }
        while true {
            var exited: [Process] = []
            children.removeAll { p in
                if p.isRunning { return false }
                exited.append(p)
                return true
            }
            for p in exited {
                let clean = p.terminationReason == .exit && p.terminationStatus == 0
                if !clean {
                    summary.died += 1
                    let owner = ArchiveWorker.defaultOwner(pid: p.processIdentifier)
                    let freed = try await store.abandon(owner: owner, maxCrashes: settings.maxCrashes)
                    let how = p.terminationReason == .uncaughtSignal ? "signal \(p.terminationStatus)" : "status \(p.terminationStatus)"
                    logger.warning("worker \(p.processIdentifier) died (\(how)); \(freed) file\(freed == 1 ? "" : "s") handed back")
                    if p.terminationReason == .exit {
                        let finished = try await store.status().finished
                        failedStarts = finished == finishedAtLastFailure ? failedStarts + 1 : 1
                        finishedAtLastFailure = finished
                        if failedStarts >= 3 * workers {
                            children.forEach { $0.terminate() }
                            throw ArchiveError.database("\(store.location): workers keep exiting with errors (status \(p.terminationStatus)) without finishing a file; see their messages above")
                        }
                    }
                }
            }
            // The store is read once a second (and when a worker ended), not on every look at the
            // children: on a busy machine the supervisor's queries would take the workers' time.
            // Between reads it sleeps until a worker exits, so the run ends as soon as they do.
            let sinceReport = Date().timeIntervalSince(lastReport)
            guard sinceReport >= 1 || !exited.isEmpty || children.isEmpty else {
                await exits.wait(timeout: 1 - sinceReport)
                continue
            }
            let due = sinceReport >= 1
            let status = try await store.status()
            if !exited.isEmpty, status.count(.pending) > 0 {
                while children.count < workers { try spawn() }
            }
            if due || children.isEmpty {
                progress(ArchiveProgress(status: status, finishedThisRun: status.finished - doneAtStart,
                                         elapsed: Date().timeIntervalSince(start)))
                lastReport = Date()
            }
            if children.isEmpty {
                if status.count(.pending) > 0 { try spawn(); continue }
                return summary
            }
            await exits.wait(timeout: 1)
        }
    }
}

/// Wakes the supervisor when a worker exits (`Process.terminationHandler`), instead of it
/// looking at its children every few milliseconds.
final class WorkerExits: @unchecked Sendable {
    private let lock = NSLock()
    private var unseen = 0
    private var waiter: CheckedContinuation<Void, Never>?

    func signal() {
        lock.withLock { unseen += 1 }
        wake()
    }

    /// Returns once a worker has exited since the last call, or after `timeout` seconds.
    func wait(timeout: Double) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: .seconds(max(0, timeout)))
            if !Task.isCancelled { wake() }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if unseen > 0 {
                lock.unlock()
                c.resume()
            } else {
                waiter = c
                lock.unlock()
            }
        }
        timer.cancel()
        lock.withLock { unseen = 0 }
    }

    private func wake() {
        lock.lock()
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume()
    }
}

/// The progress line: files done and failed, the rate of this run, and the time left at that rate.
public struct ArchiveProgress: Equatable, Sendable {
    public var status: ArchiveStatus
    public var finishedThisRun: Int
    public var elapsed: Double

    public init(status: ArchiveStatus, finishedThisRun: Int, elapsed: Double) {
        self.status = status
        self.finishedThisRun = finishedThisRun
        self.elapsed = elapsed
    }

    public var rate: Double? { finishedThisRun > 0 && elapsed > 0 ? Double(finishedThisRun) / elapsed : nil }

    public var line: String {
        let finished = status.finished
        var text = "archive: \(finished)/\(status.total) finished (\(status.count(.done)) done, \(status.count(.failed)) failed, \(status.count(.running)) running)"
        if let rate {
            let left = status.count(.pending) + status.count(.running)
            text += String(format: ", %.2f files/s, ETA %@", rate, Self.duration(Double(left) / rate))
        }
        return text
    }

    /// `H:MM:SS` or `M:SS`.
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let h = s / 3600, m = (s / 60) % 60, r = s % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, r) : String(format: "%d:%02d", m, r)
    }
}
