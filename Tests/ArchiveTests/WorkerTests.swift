import Archive
import Foundation
import Logging
import Testing

/// A processor scripted per file: a file named `bad*` fails, `long*` blocks for `longSeconds`
/// (on the worker's own thread) and then runs `afterLong`; every call is recorded.
final class ScriptedProcessor: ArchiveProcessor, @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [String] = []
    let longSeconds: Double
    let afterLong: @Sendable () async throws -> Void

    init(longSeconds: Double = 0, afterLong: @escaping @Sendable () async throws -> Void = {}) {
        self.longSeconds = longSeconds
        self.afterLong = afterLong
    }

    var processed: [String] { lock.withLock { calls } }

    func process(file: String, outputFolder: String) async throws -> ProcessedFile {
        lock.withLock { calls.append(file) }
        let name = (file as NSString).lastPathComponent
        if name.hasPrefix("bad") { throw ProcessingFailure(message: "\(file): not a media file", category: "data-error") }
        if name.hasPrefix("long") {
            usleep(useconds_t(longSeconds * 1_000_000))  // blocking: the job's own thread is busy, as with a real job
            try await afterLong()
        }
        return ProcessedFile(events: [event(0, 0, name)], outputs: [outputFolder + "/" + name + ".events.json"], damaged: false)
    }
}

let quietLogger = Logger(label: "densecap.archive.test") { _ in SwiftLogNoOpLogHandler() }

@Suite struct WorkerTests {
    @Test(arguments: StoreKind.allCases)
    func twoWorkersFinishEveryFileOnce(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("workers")
        let paths = (0..<30).map { $0 % 7 == 3 ? "/v/bad\($0).mp4" : "/v/clip\($0).mp4" }
        _ = try await store.register(paths.map { fingerprint($0) })
        let settings = ArchiveSettings(outputRoot: "/out", maxCrashes: 3, leaseSeconds: 60)
        let processor = ScriptedProcessor()
        let summaries = try await withThrowingTaskGroup(of: ArchiveWorker.Summary.self) { group in
            for w in 0..<2 {
                group.addTask { try await ArchiveWorker(store: store, settings: settings, owner: "w\(w)", logger: quietLogger).run(processor) }
            }
            return try await group.reduce(into: [ArchiveWorker.Summary]()) { $0.append($1) }
        }
        // Every file once, none twice, none refused; failures recorded with their line.
        #expect(processor.processed.sorted() == paths.sorted())
        let bad = paths.filter { $0.contains("bad") }.count
        #expect(summaries.map(\.done).reduce(0, +) == paths.count - bad)
        #expect(summaries.map(\.failed).reduce(0, +) == bad)
        #expect(summaries.allSatisfy { $0.refused == 0 })
        let files = try await store.files()
        #expect(files.allSatisfy { $0.attempts == 1 && $0.crashes == 0 })
        #expect(files.filter { $0.state == .done }.allSatisfy { $0.completions == 1 })
        #expect(files.filter { $0.state == .failed }.map(\.path).sorted() == paths.filter { $0.contains("bad") }.sorted())
        #expect(files.filter { $0.state == .failed }.allSatisfy { $0.error == "\($0.path): not a media file" && $0.exitCategory == "data-error" })
        for f in files where f.state == .done {
            #expect(try await store.events(of: f.id).map(\.caption) == [(f.path as NSString).lastPathComponent])
        }
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func theHeartbeatKeepsAFileLongerThanItsLease(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("heartbeat")
        _ = try await store.register([fingerprint("/v/long.mp4")])
        // A 3 s lease (renewed every second, on the worker's heartbeat thread) on a file that takes
        // 4 s: at its end another worker finds the lease alive (a wait, not a claim), and the
        // result is taken.
        let settings = ArchiveSettings(outputRoot: "/out", maxCrashes: 3, leaseSeconds: 3)
        let thief = ThiefResult()
        let processor = ScriptedProcessor(longSeconds: 4) {
            thief.set(try await store.claim(owner: "thief", leaseSeconds: 60, maxCrashes: 3))
        }
        let summary = try await ArchiveWorker(store: store, settings: settings, owner: "w", logger: quietLogger).run(processor)
        guard case .wait = try #require(thief.value) else {
            Issue.record("the lease expired while the file was being processed: \(String(describing: thief.value))")
            return
        }
        #expect(summary.done == 1 && summary.failed == 0 && summary.refused == 0)
        let f = try #require(try await store.files().first)
        #expect(f.state == .done && f.attempts == 1 && f.crashes == 0 && f.completions == 1)
        try await store.close()
    }
}

final class ThiefResult: @unchecked Sendable {
    private let lock = NSLock()
    private var result: ClaimResult?
    var value: ClaimResult? { lock.withLock { result } }
    func set(_ r: ClaimResult) { lock.withLock { result = r } }
}
