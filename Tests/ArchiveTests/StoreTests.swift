import Archive
import Foundation
import TestPostgres
import Testing

/// The two stores, each test run against both: SQLite in a temporary file, PostgreSQL a real
/// server (a fresh database per test).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    func open(_ label: String) async throws -> any ArchiveStore {
        switch self {
        case .sqlite:
            let folder = NSTemporaryDirectory() + "densecap-archive-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            return try await openStore(folder, create: true)
        case .postgres:
            return try await openStore(try await TestPostgres.freshDatabase(label), create: true)
        }
    }
}

/// Skips the PostgreSQL cases, with the reason, where no server can be had.
func available(_ kind: StoreKind) throws -> Bool {
    if kind == .postgres, let reason = TestPostgres.unavailableReason {
        print("note: \(reason)")
        return false
    }
    return true
}

func fingerprint(_ path: String, size: Int64 = 100, hash: String = "h") -> FileFingerprint {
    FileFingerprint(path: path, size: size, mtime: 1_700_000_000.5, hash: hash)
}

func event(_ i: Int, _ start: Double, _ caption: String?) -> ArchivedEvent {
    ArchivedEvent(index: i, start: start, end: start + 2, startExact: "\(Int(start))", endExact: "\(Int(start) + 2)",
                  kind: "cut", caption: caption, keyframe: "/k/\(i).png")
}

func claimed(_ r: ClaimResult) throws -> Lease {
    guard case .claimed(let lease) = r else { throw TestFailure("expected a claim, got \(r)") }
    return lease
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

@Suite struct StoreTests {
    @Test(arguments: StoreKind.allCases)
    func settingsAreRecordedOnce(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("settings")
        #expect(try await store.loadSettings() == nil)
        let s = ArchiveSettings(outputRoot: "/out", jobArguments: ["--still"], maxCrashes: 2, leaseSeconds: 5)
        try await store.saveSettings(s)
        try await store.saveSettings(s)  // the same again: fine
        #expect(try await store.loadSettings() == s)
        var other = s
        other.jobArguments = ["--gate"]
        await #expect(throws: ArchiveError.self) { try await store.saveSettings(other) }
        #expect(try await store.loadSettings() == s)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func reAddingIsIdempotentAndAChangedFileIsPendingAgain(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("register")
        var summary = try await store.register([fingerprint("/v/a.mp4"), fingerprint("/v/b.mp4")])
        #expect(summary.added == 2 && summary.changed == 0)
        let lease = try claimed(try await store.claim(owner: "w", leaseSeconds: 60, maxCrashes: 3))
        #expect(try await store.complete(lease, result: ProcessedFile(events: [event(0, 0, "x")], outputs: ["/o/a.events.json"], damaged: false), seconds: 1))
        summary = try await store.register([fingerprint("/v/a.mp4"), fingerprint("/v/b.mp4")])
        #expect(summary.added == 0 && summary.changed == 0 && summary.unchanged == 2)
        #expect(try await store.files().first { $0.path == "/v/a.mp4" }?.state == .done)
        summary = try await store.register([fingerprint("/v/a.mp4", hash: "changed")])
        #expect(summary.changed == 1)
        let a = try #require(try await store.files().first { $0.path == "/v/a.mp4" })
        #expect(a.state == .pending && a.completions == 0 && a.hash == "changed")
        #expect(try await store.events(of: a.id).isEmpty)
        #expect(try await store.outputs(of: a.id).isEmpty)
        // Its next claim knows a worker had it before (partial outputs may be left to remove); b's
        // first claim does not.
        let again = try claimed(try await store.claim(owner: "w", leaseSeconds: 60, maxCrashes: 3))
        #expect(again.path == "/v/a.mp4" && again.attempt == 1 && again.claimedBefore)
        let b = try claimed(try await store.claim(owner: "w", leaseSeconds: 60, maxCrashes: 3))
        #expect(b.path == "/v/b.mp4" && !b.claimedBefore)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func completionIsFencedOnTheLeaseToken(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("fence")
        _ = try await store.register([fingerprint("/v/a.mp4")])
        // A long lease first, so that a loaded machine cannot let it expire before the check.
        var first = try claimed(try await store.claim(owner: "w1", leaseSeconds: 60, maxCrashes: 3))
        // The lease is live: nothing else to claim, a wait instead.
        guard case .wait = try await store.claim(owner: "w2", leaseSeconds: 60, maxCrashes: 3) else {
            Issue.record("a live lease was reclaimed")
            return
        }
        // Then a short one, left to expire.
        first = try #require(try await store.renew(first, leaseSeconds: 0.3))
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await store.renew(first, leaseSeconds: 0.3) != nil)  // expired, but nobody took it yet
        try await Task.sleep(for: .milliseconds(600))
        let second = try claimed(try await store.claim(owner: "w2", leaseSeconds: 60, maxCrashes: 3))
        #expect(second.fileID == first.fileID && second.token != first.token && second.attempt == 2)
        // The first worker's late result and heartbeat are refused; the new owner's is taken.
        #expect(try await store.renew(first, leaseSeconds: 60) == nil)
        let late = ProcessedFile(events: [event(0, 0, "late")], outputs: ["/o/late"], damaged: true)
        #expect(try await store.complete(first, result: late, seconds: 1) == false)
        #expect(try await store.fail(first, failure: ProcessingFailure(message: "late", category: "failure"), seconds: 1) == false)
        let result = ProcessedFile(events: [event(0, 0, "on time")], outputs: ["/o/a.events.json"], damaged: false)
        #expect(try await store.complete(second, result: result, seconds: 1))
        #expect(try await store.complete(second, result: result, seconds: 1) == false)  // never twice
        let f = try #require(try await store.files().first)
        #expect(f.state == .done && f.completions == 1 && f.crashes == 1 && f.attempts == 2 && !f.damaged)
        #expect(try await store.events(of: f.id).map(\.caption) == ["on time"])
        #expect(try await store.outputs(of: f.id) == ["/o/a.events.json"])
        #expect(try await store.claim(owner: "w3", leaseSeconds: 60, maxCrashes: 3) == .finished)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func finishingClaimsTheNextFileOnlyWhenTheResultIsTaken(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("finish")
        _ = try await store.register([fingerprint("/v/a.mp4"), fingerprint("/v/b.mp4"), fingerprint("/v/c.mp4")])
        let w1 = ClaimRequest(owner: "w1", leaseSeconds: 60, maxCrashes: 3), w2 = ClaimRequest(owner: "w2", leaseSeconds: 60, maxCrashes: 3)
        let a = try claimed(try await store.claim(w1))
        #expect(a.path == "/v/a.mp4" && a.attempt == 1 && !a.claimedBefore)
        // Taken: the result is recorded and the next file claimed by the same call.
        let result = ProcessedFile(events: [event(0, 0, "a")], outputs: ["/o/a.events.json"], damaged: false)
        guard case .accepted(let afterA?) = try await store.finish(a, .done(result), seconds: 1, thenClaim: w1) else {
            Issue.record("the result was refused, or nothing claimed")
            return
        }
        let b = try claimed(afterA)
        #expect(b.path == "/v/b.mp4" && b.owner == "w1" && b.token != a.token && b.attempt == 1 && !b.claimedBefore)
        var files = try await store.files()
        #expect(files.map(\.state) == [.done, .running, .pending])
        #expect(try await store.events(of: files[0].id).map(\.caption) == ["a"])
        // w1 loses b (its lease in the past, taken over by w2): w1's result and failure are refused,
        // nothing of them is written, and nothing is claimed for w1 (c stays pending).
        _ = try #require(try await store.renew(b, leaseSeconds: -60))
        let taken = try claimed(try await store.claim(w2))
        #expect(taken.path == "/v/b.mp4" && taken.attempt == 2 && taken.claimedBefore)
        let late = ProcessedFile(events: [event(0, 0, "late")], outputs: ["/o/late"], damaged: true)
        #expect(try await store.finish(b, .done(late), seconds: 1, thenClaim: w1) == .refused)
        #expect(try await store.finish(b, .failed(ProcessingFailure(message: "late", category: "failure")), seconds: 1, thenClaim: w1) == .refused)
        files = try await store.files()
        #expect(files.map(\.state) == [.done, .running, .pending])
        #expect(files[1].completions == 0 && files[1].crashes == 1 && files[1].error == nil && !files[1].damaged)
        #expect(files[2].attempts == 0)
        #expect(try await store.events(of: files[1].id).isEmpty)
        #expect(try await store.outputs(of: files[1].id).isEmpty)
        // A failure claims the next file too; after the last file there is nothing left.
        let failure = ProcessingFailure(message: "/v/b.mp4: not a media file", category: "data-error")
        guard case .accepted(let afterB?) = try await store.finish(taken, .failed(failure), seconds: 1, thenClaim: w2) else {
            Issue.record("the failure was refused, or nothing claimed")
            return
        }
        let c = try claimed(afterB)
        #expect(c.path == "/v/c.mp4" && c.owner == "w2" && !c.claimedBefore)
        #expect(try await store.finish(c, .done(result), seconds: 1, thenClaim: w2) == .accepted(next: .finished))
        // Without a request nothing is claimed, and a result is never taken twice.
        #expect(try await store.finish(c, .done(result), seconds: 1, thenClaim: nil) == .refused)
        files = try await store.files()
        #expect(files.map(\.state) == [.done, .failed, .done])
        #expect(files.map(\.completions) == [1, 0, 1] && files.map(\.attempts) == [1, 2, 1])
        #expect(files[1].error == failure.message && files[1].exitCategory == "data-error")
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func crashesAreBounded(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("crashes")
        _ = try await store.register([fingerprint("/v/poison.mp4"), fingerprint("/v/ok.mp4")])
        // Dies twice on the first file (the supervisor frees it each time); the bound is 3.
        for n in 1...2 {
            let lease = try claimed(try await store.claim(owner: "w\(n)", leaseSeconds: 60, maxCrashes: 3))
            #expect(lease.path == "/v/poison.mp4")
            #expect(try await store.abandon(owner: "w\(n)", maxCrashes: 3) == 1)
        }
        // The third time its lease simply expires: reclaiming it would be crash 3, so it fails.
        _ = try claimed(try await store.claim(owner: "w3", leaseSeconds: 0.2, maxCrashes: 3))
        try await Task.sleep(for: .milliseconds(500))
        let next = try claimed(try await store.claim(owner: "w4", leaseSeconds: 60, maxCrashes: 3))
        #expect(next.path == "/v/ok.mp4")
        let poison = try #require(try await store.files().first { $0.path == "/v/poison.mp4" })
        #expect(poison.state == .failed && poison.crashes == 3 && poison.exitCategory == "crash")
        #expect(poison.error?.hasPrefix("/v/poison.mp4: ") == true)
        #expect(try await store.abandon(owner: "nobody", maxCrashes: 3) == 0)
        let status = try await store.status()
        #expect(status.count(.failed) == 1 && status.count(.running) == 1 && status.errors.first?.category == "crash")
        // retry: pending again with fresh counters.
        #expect(try await store.retry(paths: nil) == 1)
        let again = try #require(try await store.files().first { $0.path == "/v/poison.mp4" })
        #expect(again.state == .pending && again.crashes == 0 && again.error == nil)
        let retried = try claimed(try await store.claim(owner: "w5", leaseSeconds: 60, maxCrashes: 3))
        #expect(retried.path == "/v/poison.mp4" && retried.attempt == 1 && retried.claimedBefore)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func failuresKeepTheirLineAndCategory(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("fail")
        _ = try await store.register([fingerprint("/v/empty.mp4"), fingerprint("/v/text.mp4")])
        for _ in 0..<2 {
            let lease = try claimed(try await store.claim(owner: "w", leaseSeconds: 60, maxCrashes: 3))
            let failure = ProcessingFailure(message: "\(lease.path): not a media file", category: "data-error")
            #expect(try await store.fail(lease, failure: failure, seconds: 0.1))
        }
        #expect(try await store.claim(owner: "w", leaseSeconds: 60, maxCrashes: 3) == .finished)
        let files = try await store.files()
        #expect(files.map(\.state) == [.failed, .failed])
        #expect(files.map(\.error) == ["/v/empty.mp4: not a media file", "/v/text.mp4: not a media file"])
        #expect(try await store.status().errors.map(\.count) == [1, 1])
        #expect(try await store.retry(paths: ["/v/text.mp4"]) == 1)
        #expect(try await store.files().map(\.state) == [.failed, .pending])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentClaimsTakeEachFileOnce(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await kind.open("concurrent")
        _ = try await store.register((0..<40).map { fingerprint("/v/\($0).mp4") })
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for w in 0..<4 {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        switch try await store.claim(owner: "w\(w)", leaseSeconds: 60, maxCrashes: 3) {
                        case .finished: return mine
                        case .wait: try await Task.sleep(for: .milliseconds(10))
                        case .claimed(let lease):
                            mine.append(lease.path)
                            #expect(try await store.complete(lease, result: ProcessedFile(events: [], outputs: [], damaged: false), seconds: 0))
                        }
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claims.count == 40 && Set(claims).count == 40)
        #expect(try await store.files().allSatisfy { $0.completions == 1 && $0.attempts == 1 })
        try await store.close()
    }
}

@Suite struct SearchTests {
    static let captions: [(String, [(Double, String)])] = [
        ("/cams/yard/2026-12-01.mp4", [
            (0, "An empty yard under grey sky."),
            (30, "A red truck enters the yard through the gate and stops near the loading dock."),
            (95, "A man in a red jacket walks past a parked truck."),
        ]),
        ("/cams/street/2026-12-02.mp4", [
            (10, "A red truck, then another red truck, drive down the street: red trucks everywhere."),
            (50, "A blue car parks."),
        ]),
    ]

    func populated(_ kind: StoreKind) async throws -> any ArchiveStore {
        let store = try await kind.open("search")
        for (i, (path, events)) in Self.captions.enumerated() {
            var f = fingerprint(path)
            f.mtime = 1_764_547_200 + Double(i) * 86_400  // 2025-12-01, -02
            try await store.importEvents(f, events: events.enumerated().map { event($0.offset, $0.element.0, $0.element.1) }, outputs: [path + ".json"])
        }
        return store
    }

    @Test(arguments: StoreKind.allCases)
    func ranksEventsByTheirCaptions(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await populated(kind)
        let hits = try await store.search(SearchQuery(text: "red truck"))
        // Every event with both words, the one that says them most often first; none without both.
        #expect(hits.map(\.start) == [10, 30, 95] || hits.map(\.start) == [10, 95, 30])
        #expect(hits.first?.path == "/cams/street/2026-12-02.mp4")
        #expect(!hits.contains { $0.caption.contains("blue") || $0.caption.contains("empty") })
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
        #expect(hits.allSatisfy { $0.score > 0 })
        // Snippets mark the matched words (stemmed: "trucks" is a match too).
        let top = hits[0].snippet(open: "[", close: "]")
        #expect(top.contains("[red] [truck]"))
        #expect(top.contains("[trucks]"))
        #expect(!top.contains("[drive]"))
        let enters = try #require(hits.first { $0.start == 30 })
        #expect(enters.snippet(open: "[", close: "]").contains("A [red] [truck] enters"))
        #expect(enters.keyframe == "/k/1.png" && enters.end == 32)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func filtersByFileAndTime(kind: StoreKind) async throws {
        guard try available(kind) else { return }
        let store = try await populated(kind)
        #expect(try await store.search(SearchQuery(text: "red truck", fileGlob: "*12-01*")).map(\.start) .sorted() == [30, 95])
        #expect(try await store.search(SearchQuery(text: "red truck", fileGlob: "/cams/street/*")).map(\.start) == [10])
        #expect(try await store.search(SearchQuery(text: "red truck", fileGlob: "yard")).isEmpty)
        #expect(try await store.search(SearchQuery(text: "red truck", startAfter: 20, startBefore: 60)).map(\.start) == [30])
        #expect(try await store.search(SearchQuery(text: "red truck", fileAfter: 1_764_547_200 + 3600)).map(\.start) == [10])
        #expect(try await store.search(SearchQuery(text: "red truck", fileBefore: 1_764_547_200 + 3600)).map(\.start).sorted() == [30, 95])
        #expect(try await store.search(SearchQuery(text: "red truck", limit: 1)).count == 1)
        // Query syntax is taken literally; a query of punctuation finds nothing rather than failing.
        #expect(try await store.search(SearchQuery(text: "\"red\" -truck:*")).count == 3)
        #expect(try await store.search(SearchQuery(text: "!!!")).isEmpty)
        #expect(try await store.search(SearchQuery(text: "helicopter")).isEmpty)
        try await store.close()
    }

    @Test func searchTimesParse() {
        #expect(SearchTime(parsing: "90") == .offset(90))
        #expect(SearchTime(parsing: "1:30") == .offset(90))
        #expect(SearchTime(parsing: "1:02:03.5") == .offset(3723.5))
        #expect(SearchTime(parsing: "2025-12-01") == .date(1_764_547_200))
        #expect(SearchTime(parsing: "2025-12-01T01:00") == .date(1_764_550_800))
        #expect(SearchTime(parsing: "2025-12-01T01:00:00+01:00") == .date(1_764_547_200))
        #expect(SearchTime(parsing: "yesterday") == nil)
    }
}

@Suite struct SettingsTests {
    @Test func outputsMirrorTheInputFolderUnderTheRoot() {
        let s = ArchiveSettings(outputRoot: "/out")
        #expect(s.outputFolder(for: "/cams/a/x.mp4") == "/out/cams/a")
        #expect(s.outputFolder(for: "/x.mp4") == "/out")
        #expect(s.outputFolder(for: "/cams/b/x.mp4") != s.outputFolder(for: "/cams/a/x.mp4"))
    }

    @Test func progressLineSaysDoneFailedRateAndETA() {
        let status = ArchiveStatus(counts: [.done: 30, .failed: 2, .pending: 60, .running: 4], damaged: 0, throughput: nil, errors: [])
        let p = ArchiveProgress(status: status, finishedThisRun: 32, elapsed: 16)
        #expect(p.line == "archive: 32/96 finished (30 done, 2 failed, 4 running), 2.00 files/s, ETA 0:32")
        #expect(ArchiveProgress(status: status, finishedThisRun: 0, elapsed: 5).line == "archive: 32/96 finished (30 done, 2 failed, 4 running)")
        #expect(ArchiveProgress.duration(3725) == "1:02:05")
    }
}
