import Foundation
import Logging
import Synchronization
import TestHubServer
import Testing

@testable import ModelHub

// MARK: - Fixture

let mainCommit = "1f2e3d4c5b6a79880123456789abcdef01234567"
let oldCommit = "0a0b0c0d0e0f10111213141516171819aabbccdd"

/// Deterministic bytes (LCG) so the LFS file is neither empty nor trivially compressible.
func pseudoRandomBytes(_ count: Int, seed: UInt32) -> [UInt8] {
    var x = seed
    return (0..<count).map { _ in
        x = x &* 1_664_525 &+ 1_013_904_223
        return UInt8(truncatingIfNeeded: x >> 24)
    }
}

let weights = FixtureFile(path: "llm/model.safetensors", bytes: pseudoRandomBytes(300_000, seed: 7), lfs: true)
let mainFiles = [
    FixtureFile(path: "config.json", bytes: Array("{\"model_type\": \"llava_llama\"}\n".utf8), lfs: false),
    FixtureFile(path: "README.md", bytes: Array("hello\n".utf8), lfs: false),
    FixtureFile(
        path: "llm/config.json", bytes: Array("{\"model_type\": \"qwen2\", \"hidden_size\": 8}\n".utf8), lfs: false),
    weights,
]
let oldFiles = [
    FixtureFile(path: "config.json", bytes: Array("{\"model_type\": \"old\"}\n".utf8), lfs: false), weights,
]

let tinyRepo = FixtureRepo(revisions: ["main": (mainCommit, mainFiles), "v0": (oldCommit, oldFiles)])

/// A test Hub with the tiny repo, a fresh cache folder and a ModelHub pointed at both.
final class Harness {
    let server: TestHub
    let root: String
    var configuration: HubConfiguration
    let events = EventLog()

    init(server: TestHub, root: String, configuration: HubConfiguration) {
        self.server = server
        self.root = root
        self.configuration = configuration
    }

    var cache: HubCache { HubCache(directory: configuration.cacheDirectory) }
    func hub() -> ModelHub {
        let events = self.events
        return ModelHub(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }) {
            events.append($0)
        }
    }
    var repoDirectory: String { cache.repoDirectory("tiny-org/tiny-model") }
}

final class EventLog: Sendable {
    private let events = Mutex<[HubEvent]>([])
    func append(_ e: HubEvent) { events.withLock { $0.append(e) } }
    var all: [HubEvent] { events.withLock { $0 } }
}

func withHarness(token: String? = "good-token", _ body: (Harness) async throws -> Void) async throws {
    let server = try await TestHub.start()
    server.state.addRepo("tiny-org/tiny-model", tinyRepo)
    let root = NSTemporaryDirectory() + "modelhub-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    let harness = Harness(
        server: server, root: root,
        configuration: HubConfiguration(
            endpoint: server.endpoint, token: token, cacheDirectory: root + "/hub", parallelDownloads: 3, attempts: 3,
            retryDelay: .milliseconds(5)))
    do {
        try await body(harness)
    } catch {
        await server.stop()
        try? FileManager.default.removeItem(atPath: root)
        throw error
    }
    await server.stop()
    try? FileManager.default.removeItem(atPath: root)
}

/// Every path under `root` (relative), for "nothing left behind" checks.
func allPaths(_ root: String) -> [String] {
    (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).sorted()
}

func downloads(_ log: [LoggedRequest]) -> [LoggedRequest] {
    log.filter { $0.method == "GET" && !$0.path.hasPrefix("/api/") }
}

/// The cache of one pulled revision, checked byte for byte against huggingface_hub's layout.
func expectSnapshot(_ h: Harness, commit: String, files: [FixtureFile], ref: String?) throws {
    let repo = h.repoDirectory
    if let ref {
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(repo)/refs/\(ref)")) == Data(commit.utf8))
    }
    for f in files {
        let pointer = "\(repo)/snapshots/\(commit)/\(f.path)"
        let depth = f.path.split(separator: "/").count + 1
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: pointer)
        #expect(target == String(repeating: "../", count: depth) + "blobs/\(f.etag)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: pointer)) == Data(f.bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(repo)/blobs/\(f.etag)")) == Data(f.bytes))
    }
    #expect(!allPaths(h.cache.directory).contains { $0.hasSuffix(".incomplete") })
}

// MARK: - Pull

@Suite struct PullTests {
    @Test func etagsAreTheHubsHashes() {
        // `git hash-object` and `sha256sum` of "hello\n", computed outside Swift.
        let hello = FixtureFile(path: "README.md", bytes: Array("hello\n".utf8), lfs: false)
        #expect(hello.gitBlobID == "ce013625030ba8dba906f756967f9e9ca394464a")
        #expect(hello.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    }

    @Test func pullFillsTheCacheInHuggingFaceHubLayout() async throws {
        try await withHarness { h in
            let result = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            #expect(result.commit == mainCommit)
            #expect(result.snapshot == "\(h.repoDirectory)/snapshots/\(mainCommit)")
            #expect(result.downloadedFiles == 4)
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
            let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(h.repoDirectory)/blobs").sorted()
            #expect(blobs == mainFiles.map(\.etag).sorted())
            #expect(
                FileManager.default.fileExists(
                    atPath: "\(h.cache.directory)/.locks/models--tiny-org--tiny-model/\(weights.sha256).lock"))

            // The token goes to the Hub, never to the LFS host the Hub redirects to.
            let log = h.server.state.log
            #expect(log.filter { $0.server == "hub" }.allSatisfy { $0.authorization == "Bearer good-token" })
            let cdn = log.filter { $0.server == "cdn" }
            #expect(cdn.count == 1 && cdn.allSatisfy { $0.authorization == nil })

            // Progress ends at the announced total, after one size notice.
            let events = h.events.all
            guard case .downloading(_, let commit, let files, let bytes) = events.first else {
                Issue.record("no size notice first")
                return
            }
            #expect(commit == mainCommit && files == 4 && bytes == Int64(mainFiles.map(\.bytes.count).reduce(0, +)))
            let last = events.compactMap { e -> Int64? in
                if case .progress(let received, _) = e { return received } else { return nil }
            }.last
            #expect(last == bytes)
        }
    }

    @Test func secondPullDownloadsNothing() async throws {
        try await withHarness { h in
            let hub = h.hub()
            _ = try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model"))
            h.server.state.clearLog()
            let again = try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model"))
            #expect(again.downloadedFiles == 0)
            #expect(h.server.state.log.map(\.path) == ["/api/models/tiny-org/tiny-model/revision/main?blobs=true"])
        }
    }

    @Test func secondRevisionSharesBlobs() async throws {
        try await withHarness { h in
            let hub = h.hub()
            _ = try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model"))
            h.server.state.clearLog()
            _ = try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model@v0"))
            try expectSnapshot(h, commit: oldCommit, files: oldFiles, ref: "v0")
            // Only the new config.json is fetched; the weights blob is already there.
            #expect(
                downloads(h.server.state.log).map(\.path) == ["/tiny-org/tiny-model/resolve/\(oldCommit)/config.json"])
            // A commit hash is immutable: no ref is written for it.
            _ = try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model@\(oldCommit)"))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: "\(h.repoDirectory)/refs").sorted() == [
                    "main", "v0",
                ])
        }
    }

    @Test func droppedConnectionResumesWithRange() async throws {
        try await withHarness { h in
            h.server.state.faults { $0.dropOnce[weights.sha256] = 100_000 }
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
            // The client resumes from what reached the disk (at most the 100 000 bytes sent).
            let ranges = h.server.state.log.filter { $0.server == "cdn" }.map(\.range)
            #expect(ranges.count == 2 && ranges[0] == nil)
            let resumedAt = ranges.last.flatMap { $0.flatMap { Int($0.dropFirst(6).dropLast()) } } ?? -1
            #expect(resumedAt > 0 && resumedAt <= 100_000, "\(ranges)")
        }
    }

    @Test func expiredStorageURLIsRenewedOnce() async throws {
        try await withHarness { h in
            h.server.state.faults { $0.expireOnce = [weights.sha256] }
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
            let heads = h.server.state.log.filter { $0.method == "HEAD" && $0.path.hasSuffix("/llm/model.safetensors") }
            #expect(heads.count == 2)
        }
    }

    @Test func interruptedDownloadResumesFromIncompleteFile() async throws {
        try await withHarness { h in
            let blobs = "\(h.repoDirectory)/blobs"
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
            try Data(weights.bytes[0..<50_000]).write(to: URL(fileURLWithPath: "\(blobs)/\(weights.sha256).incomplete"))
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
            #expect(h.server.state.log.filter { $0.server == "cdn" }.map(\.range) == ["bytes=50000-"])
        }
    }

    @Test func connectionThatKeepsDroppingFailsAndLeavesTheCacheConsistent() async throws {
        try await withHarness { h in
            h.server.state.faults { $0.dropAlways[weights.sha256] = 0 }
            let error = await #expect(throws: HubError.self) {
                try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            }
            #expect(error?.kind == .network)
            #expect(error?.description.hasPrefix("tiny-org/tiny-model/llm/model.safetensors: ") == true)
            // No ref (the snapshot is not whole) and no blob under the weights' name.
            #expect(!FileManager.default.fileExists(atPath: "\(h.repoDirectory)/refs/main"))
            #expect(!FileManager.default.fileExists(atPath: "\(h.repoDirectory)/blobs/\(weights.sha256)"))
            #expect(h.cache.snapshot(for: try ModelReference(parsing: "tiny-org/tiny-model")) == nil)

            // With the network back, the next pull completes what is missing.
            h.server.state.faults { $0.dropAlways = [:] }
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
        }
    }

    @Test func corruptPartialDownloadIsDiscarded() async throws {
        try await withHarness { h in
            let blobs = "\(h.repoDirectory)/blobs"
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
            try Data(repeating: 0xAB, count: 1000).write(
                to: URL(fileURLWithPath: "\(blobs)/\(weights.sha256).incomplete"))
            let error = await #expect(throws: HubError.self) {
                try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            }
            #expect(error?.kind == .corrupt)
            #expect(error?.description.contains("sha256 mismatch") == true)
            #expect(!FileManager.default.fileExists(atPath: "\(blobs)/\(weights.sha256)"))
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
        }
    }

    @Test func renamedRepoFollowsRelativeRedirects() async throws {
        try await withHarness { h in
            h.server.state.rename("old-org/tiny-model", to: "tiny-org/tiny-model")
            let result = try await h.hub().pull(ModelReference(parsing: "old-org/tiny-model"))
            // Cached under the name asked for, as huggingface_hub does.
            #expect(result.snapshot == "\(h.cache.repoDirectory("old-org/tiny-model"))/snapshots/\(mainCommit)")
            #expect(try String(contentsOfFile: "\(result.snapshot)/README.md", encoding: .utf8) == "hello\n")
            let followed = h.server.state.log.filter { $0.path.hasPrefix("/tiny-org/tiny-model/resolve/") }
            #expect(!followed.isEmpty && followed.allSatisfy { $0.authorization == "Bearer good-token" })
        }
    }

    @Test func transientServerErrorsAreRetried() async throws {
        try await withHarness { h in
            h.server.state.faults { $0.apiFailures = 2 }
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
        }
    }
}

// MARK: - Errors

@Suite struct HubErrorTests {
    func pullError(_ spec: String, token: String? = nil, setUp: @escaping (HubState) -> Void = { _ in }) async throws
        -> HubError?
    {
        var caught: HubError?
        try await withHarness(token: token) { h in
            h.server.state.addRepo(
                "private-org/secret", FixtureRepo(revisions: ["main": (mainCommit, mainFiles)], access: .private))
            h.server.state.addRepo(
                "gated-org/gated", FixtureRepo(revisions: ["main": (mainCommit, mainFiles)], access: .gated))
            setUp(h.server.state)
            do {
                _ = try await h.hub().pull(ModelReference(parsing: spec))
            } catch let error as HubError {
                caught = error
            }
            // Whatever failed, nothing half-made is left in the cache.
            if caught != nil {
                #expect(!allPaths(h.cache.directory).contains { $0.hasSuffix(".incomplete") || $0.contains("/refs/") })
            }
        }
        return caught
    }

    @Test func privateRepoAsksForAToken() async throws {
        let error = try await pullError("private-org/secret")
        #expect(error?.kind == .unauthorized)
        #expect(error?.description.contains("HF_TOKEN") == true)
        #expect(try await pullError("private-org/secret", token: "good-token") == nil)
    }

    @Test func gatedRepoSaysSo() async throws {
        let error = try await pullError("gated-org/gated", token: "wrong")
        #expect(error?.kind == .unauthorized)
        #expect(error?.description.hasPrefix("gated-org/gated: gated model") == true)
    }

    @Test func missingRepoRevisionAndFile() async throws {
        #expect(try await pullError("nobody/nothing")?.kind == .notFound)
        let revision = try await pullError("tiny-org/tiny-model@no-such-branch")
        #expect(revision?.kind == .notFound)
        #expect(
            revision?.description
                == "tiny-org/tiny-model: revision 'no-such-branch' not found (404) (Invalid rev id: no-such-branch)")
    }

    @Test func persistentServerErrorGivesUpAfterRetries() async throws {
        let error = try await pullError("tiny-org/tiny-model") { $0.faults { $0.apiFailures = 100 } }
        #expect(error?.kind == .network)
        #expect(error?.description.contains("500") == true && error?.description.contains("after 3 tries") == true)
    }

    @Test func unreachableHubIsANetworkError() async throws {
        // A port nothing listens on: bind one, note it, close it.
        let server = try await TestHub.start()
        let endpoint = server.endpoint
        await server.stop()
        let root = NSTemporaryDirectory() + "modelhub-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hub = ModelHub(
            configuration: HubConfiguration(
                endpoint: endpoint, cacheDirectory: root, attempts: 2, retryDelay: .milliseconds(5),
                connectTimeout: .milliseconds(300)),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let error = await #expect(throws: HubError.self) {
            try await hub.pull(ModelReference(parsing: "tiny-org/tiny-model"))
        }
        #expect(error?.kind == .network)
        #expect(error?.description.contains("cannot reach 127.0.0.1") == true)
    }

    @Test func unwritableCacheIsOneLine() async throws {
        try await withHarness { h in
            // A file where the cache folder should be: every write fails.
            try Data("x".utf8).write(to: URL(fileURLWithPath: h.root + "/blocked"))
            h.configuration.cacheDirectory = h.root + "/blocked/hub"
            let error = await #expect(throws: HubError.self) {
                try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            }
            #expect(error?.kind == .io)
            #expect(error?.description.contains("\n") == false)
        }
    }

    @Test(arguments: [
        (ENOSPC, HubError.Kind.diskFull), (EDQUOT, .diskFull), (EACCES, .permissionDenied), (EROFS, .permissionDenied),
        (EIO, .io),
    ])
    func errnoKinds(code: Int32, kind: HubError.Kind) {
        let error = HubCache.error(code, repo: "a/b", file: "c", doing: "cannot write x")
        #expect(error.kind == kind)
        #expect(error.description == "a/b/c: cannot write x: \(String(cString: strerror(code)))")
    }
}

// MARK: - Resolve, offline, list, rm

@Suite struct ResolveTests {
    @Test func directoryIsReturnedAsIs() async throws {
        try await withHarness { h in
            let resolved = try await h.hub().resolveModel(h.root)
            #expect(resolved == h.root)
            let error = await #expect(throws: HubError.self) { try await h.hub().resolveModel(h.root + "/missing") }
            #expect(error?.kind == .notFound)
            #expect(h.server.state.log.isEmpty)
        }
    }

    @Test func missingModelIsPulledOnFirstUseThenServedFromTheCache() async throws {
        try await withHarness { h in
            let path = try await h.hub().resolveModel("tiny-org/tiny-model")
            #expect(path == "\(h.repoDirectory)/snapshots/\(mainCommit)")
            #expect(h.events.all.contains { if case .downloading = $0 { true } else { false } })
            h.server.state.clearLog()
            #expect(try await h.hub().resolveModel("tiny-org/tiny-model") == path)
            #expect(h.server.state.log.isEmpty)
        }
    }

    @Test func partialCommitSnapshotIsCompletedOnline() async throws {
        try await withHarness { h in
            let pinned = "tiny-org/tiny-model@\(mainCommit)"
            h.server.state.faults { $0.dropAlways[weights.sha256] = 0 }
            await #expect(throws: HubError.self) { try await h.hub().resolveModel(pinned) }
            // Some files made it, the weights did not: online, the next use completes the snapshot.
            #expect(h.cache.snapshot(for: try ModelReference(parsing: pinned)) != nil)
            h.server.state.faults { $0.dropAlways = [:] }
            let path = try await h.hub().resolveModel(pinned)
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: nil)
            // Whole now: one listing request and no downloads.
            h.server.state.clearLog()
            #expect(try await h.hub().resolveModel(pinned) == path)
            #expect(h.server.state.log.count == 1 && downloads(h.server.state.log).isEmpty)
        }
    }

    @Test func offlineUsesTheCacheOrFailsInOneLine() async throws {
        try await withHarness { h in
            h.configuration.offline = true
            let error = await #expect(throws: HubError.self) { try await h.hub().resolveModel("tiny-org/tiny-model") }
            #expect(error?.kind == .offline)
            #expect(error?.description.contains("HF_HUB_OFFLINE") == true)
            h.configuration.offline = false
            let path = try await h.hub().resolveModel("tiny-org/tiny-model")
            h.configuration.offline = true
            h.server.state.clearLog()
            #expect(try await h.hub().resolveModel("tiny-org/tiny-model") == path)
            #expect(try await h.hub().resolveModel("tiny-org/tiny-model@\(mainCommit)") == path)
            #expect(try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model")).snapshot == path)
            #expect(h.server.state.log.isEmpty)
        }
    }

    @Test func listAndRemove() async throws {
        try await withHarness { h in
            #expect(try h.cache.list().isEmpty)
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model"))
            _ = try await h.hub().pull(ModelReference(parsing: "tiny-org/tiny-model@v0"))
            let models = try h.cache.list()
            #expect(models.map(\.repo) == ["tiny-org/tiny-model"])
            let model = try #require(models.first)
            let unique = Set((mainFiles + oldFiles).map(\.etag))
            let uniqueBytes = (mainFiles + oldFiles).reduce(into: [String: Int]()) { $0[$1.etag] = $1.bytes.count }
            #expect(unique.count == 5)
            #expect(model.sizeOnDisk == Int64(uniqueBytes.values.reduce(0, +)))
            #expect(model.revisions.map(\.commit) == [oldCommit, mainCommit])
            #expect(model.revisions.map(\.refs) == [["v0"], ["main"]])
            #expect(model.revisions.map(\.files) == [2, 4])
            #expect(model.revisions[1].sizeOnDisk == Int64(mainFiles.map(\.bytes.count).reduce(0, +)))

            // One revision: its snapshot, ref and the blob only it used (the old config.json).
            let oldConfig = oldFiles[0]
            #expect(
                try h.cache.remove(ModelReference(parsing: "tiny-org/tiny-model@v0")) == Int64(oldConfig.bytes.count))
            #expect(!FileManager.default.fileExists(atPath: "\(h.repoDirectory)/blobs/\(oldConfig.etag)"))
            #expect(!FileManager.default.fileExists(atPath: "\(h.repoDirectory)/refs/v0"))
            #expect(try h.cache.list().first?.revisions.map(\.commit) == [mainCommit])
            try expectSnapshot(h, commit: mainCommit, files: mainFiles, ref: "main")
            #expect(try h.cache.remove(ModelReference(parsing: "tiny-org/tiny-model@v0")) == nil)

            let remaining = Int64(mainFiles.map(\.bytes.count).reduce(0, +))
            #expect(try h.cache.remove(repo: "tiny-org/tiny-model") == remaining)
            #expect(!FileManager.default.fileExists(atPath: h.repoDirectory))
            #expect(!FileManager.default.fileExists(atPath: "\(h.cache.directory)/.locks/models--tiny-org--tiny-model"))
            #expect(try h.cache.list().isEmpty)
            #expect(try h.cache.remove(repo: "tiny-org/tiny-model") == nil)
        }
    }
}

// MARK: - Configuration and references

@Suite struct ConfigurationTests {
    @Test func defaultsFollowHuggingFaceHub() {
        let c = HubConfiguration.fromEnvironment(["HOME": "/home/u"])
        #expect(c.endpoint == "https://huggingface.co")
        #expect(c.cacheDirectory == "/home/u/.cache/huggingface/hub")
        #expect(c.token == nil)
        #expect(!c.offline)
        #expect(
            HubConfiguration.fromEnvironment(["HOME": "/h", "XDG_CACHE_HOME": "/x"]).cacheDirectory
                == "/x/huggingface/hub")
        #expect(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HOME": "/hf"]).cacheDirectory == "/hf/hub")
        #expect(
            HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]).cacheDirectory
                == "/c")
        #expect(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HUB_CACHE": "~/c"]).cacheDirectory == "/h/c")
        #expect(
            HubConfiguration.fromEnvironment(["HF_ENDPOINT": "http://127.0.0.1:9/"]).endpoint == "http://127.0.0.1:9")
    }

    @Test(arguments: [
        ("1", true), ("true", true), ("YES", true), ("on", true), ("0", false), ("", false), ("no", false),
    ])
    func offlineValues(value: String, offline: Bool) {
        #expect(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HUB_OFFLINE": value]).offline == offline)
    }

    @Test func tokenFromEnvironmentOrTheHFCLIsFile() throws {
        let home = NSTemporaryDirectory() + "hfhome-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try "hf_file_token\n".write(toFile: "\(home)/token", atomically: true, encoding: .utf8)
        try "hf_other\n".write(toFile: "\(home)/other", atomically: true, encoding: .utf8)
        #expect(HubConfiguration.fromEnvironment(["HF_HOME": home]).token == "hf_file_token")
        #expect(
            HubConfiguration.fromEnvironment(["HF_HOME": home, "HF_TOKEN_PATH": "\(home)/other"]).token == "hf_other")
        #expect(HubConfiguration.fromEnvironment(["HF_HOME": home, "HF_TOKEN": "hf_env"]).token == "hf_env")
        #expect(HubConfiguration.fromEnvironment(["HF_HOME": home + "/none"]).token == nil)
    }

    @Test(arguments: [
        ("Efficient-Large-Model/NVILA-Lite-2B", "Efficient-Large-Model/NVILA-Lite-2B", "main"),
        ("Qwen/Qwen2-0.5B@v1.0", "Qwen/Qwen2-0.5B", "v1.0"),
        ("org/name@refs/pr/1", "org/name", "refs/pr/1"),
        ("org/name@\(mainCommit)", "org/name", mainCommit),
    ])
    func referencesParse(spec: String, repo: String, revision: String) throws {
        let r = try ModelReference(parsing: spec)
        #expect(r.repo == repo && r.revision == revision)
    }

    @Test(arguments: [
        "name", "a/b/c", "/abs/path", "org/", "org/-x", "org/a--b", "org/a..b", "org/name@", "org/name@../x", "o rg/n",
    ])
    func badReferencesAreRejected(spec: String) {
        #expect(throws: HubError.self) { try ModelReference(parsing: spec) }
    }

    @Test func folderNames() {
        #expect(
            HubCache.folderName(repo: "Efficient-Large-Model/NVILA-Lite-2B")
                == "models--Efficient-Large-Model--NVILA-Lite-2B")
    }

    @Test(arguments: [
        (0, "0 B"), (999, "999 B"), (1500, "1.50 kB"), (12_345_678, "12.3 MB"), (4_210_000_000, "4.21 GB"),
    ])
    func sizes(bytes: Int64, text: String) {
        #expect(formatBytes(bytes) == text)
    }

    @Test func headerParsing() {
        #expect(normalizedETag("W/\"abc\"") == "abc")
        #expect(normalizedETag("\"abc\"") == "abc")
        #expect(contentRangeStart("bytes 100-199/200") == 100)
        #expect(percentEncoded("a b/c+d.json", keepingSlash: true) == "a%20b/c%2Bd.json")
        #expect(percentEncoded("refs/pr/1", keepingSlash: false) == "refs%2Fpr%2F1")
    }
}
