import Foundation

// The values an archive's store holds and hands out. Both stores (SQLite, PostgreSQL) speak these
// types only, so the worker, the supervisor and the CLI never see SQL.

/// How an archive processes its files; recorded once by `archive init` (as JSON in the store) and
/// read by every worker, so all machines pointed at one store run the same job.
public struct ArchiveSettings: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// Event boundaries only (`densecap segment`).
        case segment
        /// Events and captions (`densecap caption`).
        case caption
    }

    public var mode: Mode
    /// Outputs of `/a/b/clip.mp4` go to `outputRoot/a/b/clip.events.json` (and the other formats).
    public var outputRoot: String
    /// The job's own flags, exactly as `densecap segment`/`caption` take them (validated at init).
    public var jobArguments: [String]
    /// A file whose worker died (or lost its lease) this many times is marked failed.
    public var maxCrashes: Int
    /// Seconds a claim stays valid without a heartbeat; heartbeats renew it every third of that.
    public var leaseSeconds: Double

    public init(mode: Mode = .segment, outputRoot: String, jobArguments: [String] = [], maxCrashes: Int = 3, leaseSeconds: Double = 60) {
        self.mode = mode
        self.outputRoot = outputRoot
        self.jobArguments = jobArguments
        self.maxCrashes = maxCrashes
        self.leaseSeconds = leaseSeconds
    }

    /// The folder that receives the outputs of `file` (its absolute folder mirrored under the root,
    /// so two `clip.mp4` in different folders never share outputs).
    public func outputFolder(for file: String) -> String {
        let folder = (file as NSString).deletingLastPathComponent.drop { $0 == "/" }
        return (outputRoot as NSString).appendingPathComponent(String(folder))
    }
}

public enum FileState: String, Codable, Sendable, CaseIterable {
    case pending, running, done, failed
}

/// What `archive add` records of a file: a changed size, mtime or content hash makes it pending again.
public struct FileFingerprint: Codable, Equatable, Sendable {
    public var path: String
    public var size: Int64
    /// Seconds since 1970 (the file system's modification time).
    public var mtime: Double
    /// SHA-256 of the content, lowercase hex.
    public var hash: String

    public init(path: String, size: Int64, mtime: Double, hash: String) {
        self.path = path
        self.size = size
        self.mtime = mtime
        self.hash = hash
    }
}

/// One file's row.
public struct FileRecord: Codable, Equatable, Sendable {
    public var id: Int64
    public var path: String
    public var size: Int64
    public var mtime: Double
    public var hash: String
    public var state: FileState
    /// Claims so far (each run of the job on it).
    public var attempts: Int
    /// Claims that ended with the worker dead or its lease expired.
    public var crashes: Int
    /// Accepted completions (1 for a done file, whatever happened on the way).
    public var completions: Int
    /// The one-line error of a failed file.
    public var error: String?
    /// The failure's category (an exit status name: data-error, no-input, unavailable, crash, …).
    public var exitCategory: String?
    /// Output written, but the input was damaged or truncated.
    public var damaged: Bool
    /// Seconds the job took on it (the accepted attempt).
    public var seconds: Double?
    /// When it was finished (seconds since 1970).
    public var finishedAt: Double?
}

/// A claim on one file: valid while `token` is the file's lease token.
public struct Lease: Codable, Equatable, Sendable {
    public var fileID: Int64
    public var path: String
    public var token: String
    public var owner: String
    /// Seconds since 1970, on the store's clock.
    public var expires: Double
    public var attempt: Int
    /// A worker had claimed the file before (it crashed, lost its lease, or the file was retried or
    /// changed): that worker may have left partial outputs behind. False on a file's first claim.
    public var claimedBefore: Bool
}

public enum ClaimResult: Equatable, Sendable {
    case claimed(Lease)
    /// Nothing to claim now, but files are running under live leases that may expire.
    case wait(seconds: Double)
    /// Every file is done or failed.
    case finished
}

/// Who claims a file, and on what terms (`ArchiveStore.claim`, and `finish` claiming the next one).
public struct ClaimRequest: Equatable, Sendable {
    /// Who holds the lease (`host:pid`).
    public var owner: String
    public var leaseSeconds: Double
    /// An expired lease whose next crash reaches this count fails its file instead of being reclaimed.
    public var maxCrashes: Int

    public init(owner: String, leaseSeconds: Double, maxCrashes: Int) {
        self.owner = owner
        self.leaseSeconds = leaseSeconds
        self.maxCrashes = maxCrashes
    }
}

/// How the job on one file ended, as its worker reports it to the store.
public enum FileOutcome: Equatable, Sendable {
    case done(ProcessedFile)
    case failed(ProcessingFailure)
}

/// What `ArchiveStore.finish` did.
public enum FinishResult: Equatable, Sendable {
    /// The lease had been lost (expired and reclaimed, or the file re-registered): nothing was
    /// written and nothing claimed.
    case refused
    /// The outcome was recorded; `next` is what the claim in the same transaction found (nil when
    /// none was asked for).
    case accepted(next: ClaimResult?)
}

/// One event of a file as the store keeps it (times in seconds, with the exact rationals beside).
public struct ArchivedEvent: Codable, Equatable, Sendable {
    public var index: Int
    public var start: Double
    public var end: Double
    public var startExact: String
    public var endExact: String
    public var kind: String
    public var caption: String?
    /// Path of the keyframe's PNG, when one was written.
    public var keyframe: String?

    public init(index: Int, start: Double, end: Double, startExact: String, endExact: String, kind: String, caption: String?, keyframe: String?) {
        self.index = index
        self.start = start
        self.end = end
        self.startExact = startExact
        self.endExact = endExact
        self.kind = kind
        self.caption = caption
        self.keyframe = keyframe
    }
}

/// What processing one file produced.
public struct ProcessedFile: Codable, Equatable, Sendable {
    public var events: [ArchivedEvent]
    /// Every file written (absolute paths).
    public var outputs: [String]
    /// Outputs were written, but the input was damaged or truncated.
    public var damaged: Bool

    public init(events: [ArchivedEvent], outputs: [String], damaged: Bool) {
        self.events = events
        self.outputs = outputs
        self.damaged = damaged
    }
}

/// A file the job could not process: recorded as failed, never retried automatically.
public struct ProcessingFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// One line naming the file and the problem.
    public var message: String
    /// The exit status's name (`data-error`, `no-input`, `unavailable`, `cannot-create`, `failure`).
    public var category: String

    public init(message: String, category: String) {
        self.message = message
        self.category = category
    }

    public var description: String { message }
}

/// Turns one file into events and outputs. Implementations throw `ProcessingFailure` for a file
/// that cannot be processed; any other error is treated the same way with category `failure`.
public protocol ArchiveProcessor: Sendable {
    func process(file: String, outputFolder: String) async throws -> ProcessedFile
}

public struct RegisterSummary: Codable, Equatable, Sendable {
    public var added = 0
    public var changed = 0
    public var unchanged = 0
    public init() {}
}

/// Counts and rates for `archive status` and the progress line.
public struct ArchiveStatus: Codable, Equatable, Sendable {
    public var counts: [FileState: Int]
    public var damaged: Int
    /// Files finished per second between the first start and the last finish (nil before two).
    public var throughput: Double?
    /// The most frequent error lines, most frequent first.
    public var errors: [ErrorCount]

    public struct ErrorCount: Codable, Equatable, Sendable {
        public var category: String
        public var message: String
        public var count: Int
    }

    public init(counts: [FileState: Int], damaged: Int, throughput: Double?, errors: [ErrorCount]) {
        self.counts = counts
        self.damaged = damaged
        self.throughput = throughput
        self.errors = errors
    }

    public var total: Int { counts.values.reduce(0, +) }
    /// Done or failed.
    public var finished: Int { count(.done) + count(.failed) }
    public func count(_ state: FileState) -> Int { counts[state] ?? 0 }
}

public enum ArchiveError: Error, Equatable, CustomStringConvertible {
    case notInitialised(String)
    case settingsDiffer(String)
    case badStore(String)
    case database(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .notInitialised(let s): "\(s): no archive here (run `densecap archive init` first)"
        case .settingsDiffer(let s): "\(s): the archive was initialised with other settings"
        case .badStore(let s), .database(let s), .badInput(let s): s
        }
    }
}
