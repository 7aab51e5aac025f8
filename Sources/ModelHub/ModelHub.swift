import Foundation
import Logging
import Synchronization

/// What a pull reports while it runs; calls never overlap (they are serialized).
public enum HubEvent: Sendable {
    /// About to download `files` files of `bytes` bytes (nil when the API gave no sizes).
    case downloading(ModelReference, commit: String, files: Int, bytes: Int64?)
    /// Bytes received so far of `total` (all files together).
    case progress(received: Int64, total: Int64?)
    /// One file is in the cache.
    case fileCompleted(String)
}

/// The outcome of a pull.
public struct PullResult: Sendable {
    /// `snapshots/<commit>`: the model directory.
    public let snapshot: String
    public let commit: String
    public let downloadedFiles: Int
    public let downloadedBytes: Int64
}

/// Models by Hub id in the shared Hugging Face cache: pull, resolve, list, remove.
///
/// Imports no stage; the CLI puts `resolveModel` in front of anything that takes `--model`.
public struct ModelHub: Sendable {
    public let configuration: HubConfiguration
    public let cache: HubCache
    private let logger: Logger
    private let events: @Sendable (HubEvent) -> Void

    public init(
        configuration: HubConfiguration = .fromEnvironment(), logger: Logger,
        events: @escaping @Sendable (HubEvent) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.cache = HubCache(directory: configuration.cacheDirectory)
        self.logger = logger
        self.events = events
    }

    /// A local model directory for `spec`: an existing directory as is; otherwise `spec` is a
    /// model id `ORG/NAME[@REVISION]` — the cached snapshot when there is one, else (unless
    /// HF_HUB_OFFLINE is set) it is pulled first.
    public func resolveModel(_ spec: String) async throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw HubError(.notFound, repo: spec, reason: "not a model directory") }
            return spec
        }
        let looksLikePath = spec.hasPrefix("/") || spec.hasPrefix(".") || spec.hasPrefix("~")
        guard !looksLikePath, let reference = try? ModelReference(parsing: spec) else {
            throw HubError(
                .notFound, repo: spec, reason: "no such model directory, and not a model id (ORG/NAME[@REVISION])")
        }
        if let snapshot = cache.snapshot(for: reference) {
            // A ref is written only after a whole pull; a commit's snapshot has no such mark, so
            // online it is checked against the file list (one request, no download when whole).
            guard reference.isCommitHash, !configuration.offline else {
                logger.debug("\(reference): cached at \(snapshot)")
                return snapshot
            }
            do {
                return try await pull(reference).snapshot
            } catch let error as HubError where error.kind == .network {
                logger.warning("\(error); using the cached snapshot \(snapshot)")
                return snapshot
            }
        }
        guard !configuration.offline else {
            throw HubError(
                .offline, repo: reference.description,
                reason:
                    "no such model directory, and not in the Hugging Face cache (\(cache.directory)); HF_HUB_OFFLINE is set, so it cannot be downloaded"
            )
        }
        return try await pull(reference).snapshot
    }

    /// Downloads what the cache lacks of `reference` and records the revision in `refs/`.
    public func pull(_ reference: ModelReference) async throws -> PullResult {
        if configuration.offline {
            if let snapshot = cache.snapshot(for: reference), let commit = cache.commit(for: reference) {
                return PullResult(snapshot: snapshot, commit: commit, downloadedFiles: 0, downloadedBytes: 0)
            }
            throw HubError(
                .offline, repo: reference.description,
                reason: "not in the Hugging Face cache (\(cache.directory)) and HF_HUB_OFFLINE is set")
        }
        let client = HubClient(configuration: configuration, logger: logger)
        do {
            let result = try await pull(reference, client: client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func pull(_ reference: ModelReference, client: HubClient) async throws -> PullResult {
        let info = try await client.repoInfo(reference)
        let missing = info.files.filter { !cache.hasFile(repo: info.repo, commit: info.commit, file: $0.path) }
        let sizes = missing.map(\.size)
        let total: Int64? = sizes.contains(nil) ? nil : sizes.reduce(0) { $0 + $1! }
        // Fail before downloading anything rather than on the last gigabyte.
        if let total, let free = cache.freeBytes(), free < total {
            throw HubError(
                .diskFull, repo: reference.description,
                reason: "needs \(formatBytes(total)) but only \(formatBytes(free)) is free in \(cache.directory)")
        }
        if !missing.isEmpty {
            events(.downloading(reference, commit: info.commit, files: missing.count, bytes: total))
        }
        // No CACHEDIR.TAG: huggingface_hub 2.x writes one, but 0.x's scan_cache_dir reports it
        // as a corrupted repo.
        let counter = ProgressCounter(total: total, events: events)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = missing[...]
            func startNext() {
                guard let file = pending.popFirst() else { return }
                group.addTask {
                    try await fetch(file.path, repo: info.repo, commit: info.commit, client: client, counter: counter)
                    counter.report(.fileCompleted(file.path))
                }
            }
            for _ in 0..<configuration.parallelDownloads { startNext() }
            while try await group.next() != nil { startNext() }
        }
        // The ref goes last: a ref in the cache means every file of the snapshot is there.
        if !reference.isCommitHash {
            try cache.writeRef(repo: info.repo, revision: reference.revision, commit: info.commit)
        }
        let snapshot = cache.snapshotDirectory(repo: info.repo, commit: info.commit)
        try cache.createDirectory(snapshot, repo: info.repo, file: nil)
        return PullResult(
            snapshot: snapshot, commit: info.commit, downloadedFiles: missing.count, downloadedBytes: counter.received)
    }

    /// One file into `blobs/` and its link into `snapshots/<commit>/`.
    private func fetch(_ file: String, repo: String, commit: String, client: HubClient, counter: ProgressCounter)
        async throws
    {
        let metadata = try await client.metadata(repo: repo, commit: commit, file: file)
        guard metadata.commit == commit else {
            throw HubError(
                .protocolError, repo: repo, file: file, reason: "the Hub served commit \(metadata.commit) for \(commit)"
            )
        }
        guard metadata.etag.range(of: "^[A-Za-z0-9._-]+$", options: .regularExpression) != nil else {
            throw HubError(.protocolError, repo: repo, file: file, reason: "unusable ETag '\(metadata.etag)'")
        }
        if !FileManager.default.fileExists(atPath: cache.blobPath(repo: repo, etag: metadata.etag)) {
            var download = BlobDownload(
                client: client, cache: cache, repo: repo, file: file, metadata: metadata,
                progress: { counter.add($0) })
            try await download.run()
        } else {
            counter.add(metadata.size)
        }
        try cache.link(repo: repo, commit: commit, file: file, etag: metadata.etag)
    }
}

/// Bytes received across the parallel downloads; reports each change in order.
private final class ProgressCounter: Sendable {
    private let state = Mutex<Int64>(0)
    private let total: Int64?
    private let events: @Sendable (HubEvent) -> Void

    init(total: Int64?, events: @escaping @Sendable (HubEvent) -> Void) {
        self.total = total
        self.events = events
    }

    var received: Int64 { state.withLock { $0 } }

    func report(_ event: HubEvent) {
        state.withLock { _ in events(event) }
    }

    func add(_ bytes: Int64) {
        state.withLock {
            $0 += bytes
            events(.progress(received: $0, total: total))
        }
    }
}
