import Foundation
import TestClips
import TestHubServer
import Testing

/// `densecap models` and `--model ORG/NAME` against a Hugging Face cache folder made here, in
/// huggingface_hub's layout, with HF_HUB_OFFLINE set: no network in these tests.
@Suite struct ModelsCommandTests {
    func environment(cache: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["HF_HUB_CACHE"] = cache
        env["HF_HUB_OFFLINE"] = "1"
        env["HF_TOKEN"] = nil
        return env
    }

    /// The tiny engine checkpoint as huggingface_hub would have cached it as `test-org/tiny-qwen2`.
    func makeCache(_ name: String) throws -> (cache: String, snapshot: String) {
        let cache = temporaryFolder(name)
        let commit = "0123456789abcdef0123456789abcdef01234567"
        let repo = "\(cache)/models--test-org--tiny-qwen2"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(repo)/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(repo)/refs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(repo)/snapshots/\(commit)", withIntermediateDirectories: true)
        try commit.write(toFile: "\(repo)/refs/main", atomically: true, encoding: .utf8)
        let source = engineFixtures + "/tiny-qwen2"
        for (i, file) in try fm.contentsOfDirectory(atPath: source).sorted().enumerated() {
            try fm.copyItem(atPath: "\(source)/\(file)", toPath: "\(repo)/blobs/blob\(i)")
            try fm.createSymbolicLink(
                atPath: "\(repo)/snapshots/\(commit)/\(file)", withDestinationPath: "../../blobs/blob\(i)")
        }
        return (cache, "\(repo)/snapshots/\(commit)")
    }

    @Test func listOnAnEmptyCache() throws {
        let cache = temporaryFolder("models-empty")
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let table = try runProcess(densecapBinary, ["models", "list"], environment: environment(cache: cache))
        #expect(table.status == 0)
        #expect(table.stdout.isEmpty)
        #expect(table.stderr == "densecap: no models in \(cache)\n")
        let listing = try runProcess(
            densecapBinary, ["models", "list", "--json"], environment: environment(cache: cache))
        #expect(listing.status == 0)
        let o = try json(listing.stdoutData)
        #expect(o["cache"] as? String == cache)
        #expect((o["models"] as? [Any])?.isEmpty == true)
    }

    @Test func listShowsACachedModel() throws {
        let (cache, snapshot) = try makeCache("models-list")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let r = try runProcess(densecapBinary, ["models", "list", "--json"], environment: environment(cache: cache))
        #expect(r.status == 0)
        let model = try #require((json(r.stdoutData)["models"] as? [[String: Any]])?.first)
        #expect(model["repo"] as? String == "test-org/tiny-qwen2")
        let revision = try #require((model["revisions"] as? [[String: Any]])?.first)
        #expect(revision["refs"] as? [String] == ["main"])
        #expect(revision["path"] as? String == snapshot)
        #expect(revision["files"] as? Int == 6)
        let table = try runProcess(densecapBinary, ["models", "list"], environment: environment(cache: cache))
        #expect(table.stdout.hasPrefix("MODEL "))
        #expect(table.stdout.contains("test-org/tiny-qwen2  main      0123456789ab"))
    }

    @Test func modelIdResolvesThroughTheCacheOffline() throws {
        let (cache, _) = try makeCache("models-resolve")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let r = try runProcess(
            densecapBinary, ["generate", "--model", "test-org/tiny-qwen2", "hi", "--max-new-tokens", "2"],
            environment: environment(cache: cache))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("downloading"))
    }

    @Test func missingModelIdOfflineIsOneLine() throws {
        let cache = temporaryFolder("models-offline")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        for arguments in [
            ["generate", "--model", "test-org/absent", "hi"], ["bench", "llm", "--model", "test-org/absent@v1"],
        ] {
            let r = try runProcess(densecapBinary, arguments, environment: environment(cache: cache))
            #expect(r.status == 66)
            #expect(r.stderr.hasPrefix("densecap: error: test-org/absent"))
            #expect(r.stderr.contains("HF_HUB_OFFLINE is set"))
            #expect(r.stderr.split(separator: "\n").count == 1)
        }
        let pull = try runProcess(
            densecapBinary, ["models", "pull", "test-org/absent"], environment: environment(cache: cache))
        #expect(pull.status == 66)
        #expect(pull.stderr.split(separator: "\n").count == 1)
    }

    @Test func removeDeletesTheWholeModel() throws {
        let (cache, _) = try makeCache("models-rm")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let env = environment(cache: cache)
        #expect(
            try runProcess(densecapBinary, ["models", "rm", "test-org/tiny-qwen2@v9"], environment: env).status == 66)
        let r = try runProcess(densecapBinary, ["models", "rm", "test-org/tiny-qwen2"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("removed test-org/tiny-qwen2 ("))
        #expect(!FileManager.default.fileExists(atPath: "\(cache)/models--test-org--tiny-qwen2"))
        let again = try runProcess(densecapBinary, ["models", "rm", "test-org/tiny-qwen2"], environment: env)
        #expect(again.status == 66)
        #expect(try runProcess(densecapBinary, ["models", "pull", "not-an-id"], environment: env).status == 64)
    }
}

/// `densecap` against a Hub on loopback (Tests/TestHubServer) serving the tiny engine checkpoint.
@Suite struct ModelsDownloadTests {
    static func tinyQwen2() throws -> [FixtureFile] {
        let source = engineFixtures + "/tiny-qwen2"
        return try FileManager.default.contentsOfDirectory(atPath: source).sorted().map { name in
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(source)/\(name)")))
            return FixtureFile(path: name, bytes: bytes, lfs: name.hasSuffix(".safetensors"))
        }
    }

    func withHub(_ name: String, _ body: (TestHub, [String: String]) throws -> Void) async throws {
        let hub = try await TestHub.start()
        let files = try Self.tinyQwen2()
        let commit = "89abcdef0123456789abcdef0123456789abcdef"
        hub.state.addRepo("test-org/tiny-qwen2", FixtureRepo(revisions: ["main": (commit, files)]))
        hub.state.addRepo("private-org/secret", FixtureRepo(revisions: ["main": (commit, files)], access: .private))
        let cache = temporaryFolder(name)
        var env = ProcessInfo.processInfo.environment
        env["HF_ENDPOINT"] = hub.endpoint
        env["HF_HUB_CACHE"] = cache
        env["HF_TOKEN_PATH"] = cache + "/no-token"
        env["HF_TOKEN"] = nil
        env["HF_HUB_OFFLINE"] = nil
        defer { try? FileManager.default.removeItem(atPath: cache) }
        do {
            try body(hub, env)
        } catch {
            await hub.stop()
            throw error
        }
        await hub.stop()
    }

    @Test func modelIdIsPulledOnFirstUseAfterANotice() async throws {
        try await withHub("models-first-use") { hub, env in
            let args = ["generate", "--model", "test-org/tiny-qwen2", "hi", "--max-new-tokens", "2"]
            let first = try runProcess(densecapBinary, args, environment: env)
            #expect(first.status == 0, "\(first.stderr)")
            let notices = first.stderr.split(separator: "\n").filter { $0.hasPrefix("densecap: downloading") }
            #expect(notices.count == 1)
            #expect(
                notices.first?.hasPrefix(
                    "densecap: downloading test-org/tiny-qwen2 (219.2 kB in 6 files, commit 89abcdef0123)") == true)

            hub.state.clearLog()
            let second = try runProcess(densecapBinary, args, environment: env)
            #expect(second.status == 0)
            #expect(!second.stderr.contains("downloading"))
            #expect(hub.state.log.isEmpty)

            let pull = try runProcess(
                densecapBinary, ["models", "pull", "-q", "test-org/tiny-qwen2"], environment: env)
            #expect(pull.status == 0)
            #expect(
                pull.stdout == env["HF_HUB_CACHE"]!
                    + "/models--test-org--tiny-qwen2/snapshots/89abcdef0123456789abcdef0123456789abcdef\n")
            #expect(hub.state.log.allSatisfy { $0.method != "GET" || $0.path.hasPrefix("/api/") })
        }
    }

    @Test func hubErrorsMapToExitCodes() async throws {
        try await withHub("models-errors") { _, env in
            let denied = try runProcess(densecapBinary, ["models", "pull", "private-org/secret"], environment: env)
            #expect(denied.status == 77)
            #expect(
                denied.stderr.hasPrefix("densecap: error: private-org/secret: not found, or private or gated (401)"))
            #expect(denied.stderr.contains("HF_TOKEN"))
            #expect(denied.stderr.split(separator: "\n").count == 1)
            let missing = try runProcess(
                densecapBinary, ["bench", "llm", "--model", "test-org/nothing"], environment: env)
            #expect(missing.status == 66)
            #expect(
                missing.stderr
                    == "densecap: error: test-org/nothing: repository not found (404) (Repository not found)\n")
        }
    }
}
