import Archive
import Foundation
import TestClips
import TestPostgres
import Testing

// `densecap archive` and `densecap search` as an operator runs them: real worker processes, real
// kills, a real PostgreSQL server.

/// A batch of `count` small files in nested folders: copies of a few generated clips (some with a
/// cut) and broken ones (zero bytes, truncated with and without an index, text, audio only).
func archiveBatch(_ folder: String, count: Int, seconds: Int = 12) throws -> [String] {
    try FileManager.default.createDirectory(atPath: folder + "/src", withIntermediateDirectories: true)
    let sources = [
        "testsrc2=size=320x240:rate=25:duration=\(seconds)",
        "smptebars=size=320x240:rate=25:duration=\(seconds)",
        "testsrc2=size=320x240:rate=25:duration=\(seconds / 2)[a];color=c=red:size=320x240:rate=25:duration=\(seconds / 2)[b];[a][b]concat",
        "mandelbrot=size=320x240:rate=25,trim=duration=\(seconds)",
    ]
    var clips: [String] = []
    for (i, source) in sources.enumerated() {
        let path = "\(folder)/src/clip\(i).mp4"
        try run("ffmpeg", ["-v", "error", "-y", "-filter_complex", source, "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1",
                           "-pix_fmt", "yuv420p", "-bitexact", path])
        clips.append(path)
    }
    let broken = [try Clip.empty.path, try Clip.truncated.path, try Clip.truncatedNoIndex.path, try Clip.text.path, try Clip.audioOnly.path]
    var files: [String] = []
    for i in 0..<count {
        let dir = "\(folder)/cams/cam\(i % 3)/day\(i % 2)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let source = i % 10 == 7 ? broken[(i / 10) % broken.count] : clips[i % clips.count]
        let path = "\(dir)/rec\(String(format: "%03d", i)).mp4"
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: source, toPath: path)
        files.append(path)
    }
    return files
}

/// Everything a store says about its files, with output paths relative to the output root, so two
/// archives over the same inputs compare equal when they reached the same result.
func storeSnapshot(_ location: String, outputRoot: String) async throws -> [String] {
    let store = try await openStore(location, create: false)
    var lines: [String] = []
    for f in try await store.files() {
        let events = try await store.events(of: f.id).map {
            "\($0.index) \($0.startExact)–\($0.endExact) \($0.kind) \($0.caption ?? "-") \($0.keyframe.map { $0.replacingOccurrences(of: outputRoot, with: "") } ?? "-")"
        }
        let outputs = try await store.outputs(of: f.id).map { $0.replacingOccurrences(of: outputRoot, with: "") }
        lines.append("\(f.path) \(f.state.rawValue) \(f.exitCategory ?? "-") \(f.error ?? "-") damaged=\(f.damaged) events=\(events) outputs=\(outputs)")
    }
    try await store.close()
    return lines
}

/// Every file under `root` (hidden ones too) with its bytes.
func tree(_ root: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    let e = FileManager.default.enumerator(atPath: root)
    while let rel = e?.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = FileManager.default.contents(atPath: root + "/" + rel)
        }
    }
    return out
}

/// The fields of `/proc/PID/stat` after the command name (state, parent pid, …); nil where /proc
/// does not show the process.
func procStat(_ pid: Int32) -> [Substring]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ")
}

/// Process ids whose parent is `pid`.
func children(of pid: Int32) -> [Int32] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { child in
        guard let fields = procStat(child) else { return false }
        return fields.count > 2 && Int32(fields[1]) == pid
    }
}

/// Worker processes of the supervisor `parent` that are alive now: those its `--verbose` log says
/// it started, and its children in /proc. Sorted, so a seeded choice among them repeats.
func liveWorkers(log: String, parent: Int32) -> [Int32] {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    var pids = Set(children(of: parent))
    for line in text.split(separator: "\n") {
        guard let range = line.range(of: "worker "), line.hasSuffix(" started") else { continue }
        if let pid = Int32(line[range.upperBound...].dropLast(" started".count)) { pids.insert(pid) }
    }
    return pids.filter { $0 != parent && kill($0, 0) == 0 && !isZombie($0) && isWorker($0) }.sorted()
}

/// Whether `pid` runs `archive worker` (true where /proc cannot say): a pid the log named is not
/// killed if it was reused by another process.
func isWorker(_ pid: Int32) -> Bool {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return true }
    return String(decoding: data, as: UTF8.self).split(separator: "\0").contains("worker")
}

/// Whether `pid` has exited and waits to be reaped (where /proc shows it).
func isZombie(_ pid: Int32) -> Bool { procStat(pid)?.first == "Z" }

/// A small deterministic generator (SplitMix64), so the kill moments repeat from a seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func startDensecap(_ arguments: [String], log: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: densecapBinary)
    p.arguments = arguments
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: log)
    p.standardError = FileHandle(forWritingAtPath: log)
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}

@Suite(.serialized) struct ArchiveCommandTests {
    @Test func killedWorkersLoseNothingAndFinishNothingTwice() async throws {
        let root = temporaryFolder("archive-kill")
        let files = try archiveBatch(root + "/in", count: 52, seconds: 4)
        #expect(files.count >= 50)
        for name in ["calm", "killed"] {
            // Crashes are not bounded here: only kills at random moments, which must change nothing.
            let i = try densecap(["archive", "init", "--store", "\(root)/\(name)", "--out", "\(root)/\(name)-out", "--max-crashes", "1000",
                                  "--", "--fps", "all"])
            #expect(i.status == 0, "\(i.stderr)")
            let a = try densecap(["archive", "add", "--store", "\(root)/\(name)", "--recursive", "--glob", "rec*.mp4", root + "/in"])
            #expect(a.stdout == "added 52, changed 0, unchanged 0\n")
        }
        let calm = try densecap(["archive", "run", "--store", "\(root)/calm", "--workers", "2"])
        #expect(calm.status == 0, "\(calm.stderr)")
        #expect(calm.stdout.hasPrefix("done 48, failed 4, pending 0; 0 workers died"), "\(calm.stdout)")

        var rng = SeededGenerator(state: 20261207)
        var kills = 0
        var runs = 0
        while kills < 10, runs < 5 {
            runs += 1
            let logPath = "\(root)/killed-\(runs).log"
            let run = try startDensecap(["archive", "run", "--verbose", "--store", "\(root)/killed", "--workers", "2"], log: logPath)
            while run.isRunning, kills < 10 {
                // A blocking sleep: an awaited one resumes only when a cooperative thread is free,
                // and other suites' long synchronous tests can hold them all until the run is over.
                usleep(useconds_t(Int.random(in: 200...800, using: &rng) * 1000))
                // The supervisor names each worker it starts; /proc is a second source (some
                // sandboxes show another pid namespace there, or none).
                let workers = liveWorkers(log: logPath, parent: run.processIdentifier)
                guard !workers.isEmpty, run.isRunning else { continue }
                if kill(workers[Int.random(in: 0..<workers.count, using: &rng)], SIGKILL) == 0 { kills += 1 }
            }
            run.waitUntilExit()
            #expect(run.terminationStatus == 0, "\((try? String(contentsOfFile: "\(root)/killed-\(runs).log", encoding: .utf8)) ?? "")")
        }
        #expect(kills >= 10)
        let log = (try? String(contentsOfFile: "\(root)/killed-1.log", encoding: .utf8)) ?? ""
        #expect(log.contains("died (signal 9)"))

        // The same store and the same outputs as the uninterrupted run; nothing lost, nothing twice.
        let expected = try await storeSnapshot("\(root)/calm", outputRoot: "\(root)/calm-out")
        let got = try await storeSnapshot("\(root)/killed", outputRoot: "\(root)/killed-out")
        #expect(expected.count == 52)
        #expect(got == expected)
        let killedStore = try await openStore("\(root)/killed", create: false)
        let records = try await killedStore.files()
        #expect(records.filter { $0.state == .done }.allSatisfy { $0.completions == 1 })
        #expect(records.allSatisfy { $0.state == .done || $0.state == .failed })
        #expect(records.map(\.crashes).reduce(0, +) > 0)
        try await killedStore.close()
        let calmTree = try tree("\(root)/calm-out"), killedTree = try tree("\(root)/killed-out")
        #expect(calmTree.keys.sorted() == killedTree.keys.sorted())
        #expect(calmTree == killedTree)
        #expect(!killedTree.keys.contains { $0.hasSuffix(".partial") })
        #expect(calmTree.keys.filter { $0.hasSuffix(".events.json") }.count == 48)

        // Broken files: failed with their one-line error and category (the truncated one done, damaged).
        let status = try densecap(["archive", "status", "--store", "\(root)/calm", "--json"])
        let object = try json(status.stdoutData)
        #expect((object["counts"] as? [String: Int])?["failed"] == 4)
        let report = try densecap(["archive", "report", "--store", "\(root)/calm", "--format", "csv"])
        let rows = report.stdout.split(separator: "\n")
        #expect(rows.count == 53)
        #expect(rows.contains { $0.contains("rec007.mp4,failed,0,") && $0.contains("data-error") })
        #expect(rows.contains { $0.contains("rec017.mp4,done,") && $0.contains(",true,") })  // truncated: done, damaged
        // Re-adding changes nothing; retry makes the failed ones pending and a rerun fails them again.
        let again = try densecap(["archive", "add", "--store", "\(root)/calm", "--recursive", "--glob", "rec*.mp4", root + "/in"])
        #expect(again.stdout == "added 0, changed 0, unchanged 52\n")
        #expect(try densecap(["archive", "retry", "--store", "\(root)/calm"]).stdout == "4 files pending again\n")
        #expect(try densecap(["archive", "run", "--store", "\(root)/calm"]).stdout.hasPrefix("done 48, failed 4, pending 0"))
    }

    @Test(.enabled(if: TestPostgres.unavailableReason == nil, "no PostgreSQL server (see TestPostgres.unavailableReason)"))
    func twoWorkersOnPostgresProcessEachFileOnce() async throws {
        let root = temporaryFolder("archive-pg")
        let store = try await TestPostgres.freshDatabase("twoworkers")
        _ = try archiveBatch(root + "/in", count: 20, seconds: 2)
        #expect(try densecap(["archive", "init", "--store", store, "--out", root + "/out"]).status == 0)
        #expect(try densecap(["archive", "add", "--store", store, "--recursive", root + "/in/cams"]).stdout == "added 20, changed 0, unchanged 0\n")
        let r = try densecap(["archive", "run", "--store", store, "--workers", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try await openStore(store, create: false)
        let records = try await s.files()
        #expect(records.count == 20)
        #expect(records.allSatisfy { $0.attempts == 1 && $0.crashes == 0 })
        #expect(records.filter { $0.state == .done }.allSatisfy { $0.completions == 1 })
        #expect(records.filter { $0.state == .failed }.count == 1)
        try await s.close()
    }

    @Test(.enabled(if: TestPostgres.unavailableReason == nil, "no PostgreSQL server (see TestPostgres.unavailableReason)"))
    func aFrozenWorkerLosesItsFileAndItsLateResultIsRefused() async throws {
        let root = temporaryFolder("archive-stop")
        let store = try await TestPostgres.freshDatabase("sigstop")
        let files = try archiveBatch(root + "/in", count: 4, seconds: 2)
        // The first file (claimed first: lowest id) is long, so the frozen worker is still on it.
        let long = root + "/in/a-long.mp4"
        try run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=30", "-c:v", "libx264",
                           "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p", long])
        #expect(try densecap(["archive", "init", "--store", store, "--out", root + "/out", "--lease", "2", "--", "--fps", "all"]).status == 0)
        #expect(try densecap(["archive", "add", "--store", store, long] + files).status == 0)
        let s = try await openStore(store, create: false)

        let frozen = try startDensecap(["archive", "worker", "--store", store], log: root + "/frozen.log")
        let owner = ArchiveWorker.defaultOwner(pid: frozen.processIdentifier)
        // Wait for its claim on the long file, then freeze it past its lease.
        var claimedLong = false
        for _ in 0..<200 where !claimedLong {
            try await Task.sleep(for: .milliseconds(50))
            claimedLong = try await s.files().contains { $0.path == long && $0.state == .running }
        }
        #expect(claimedLong)
        kill(frozen.processIdentifier, SIGSTOP)
        let other = try densecap(["archive", "worker", "--store", store])  // returns once every file is settled
        #expect(other.status == 0, "\(other.stderr)")
        let taken = try #require(try await s.files().first { $0.path == long })
        #expect(taken.state == .done && taken.attempts == 2 && taken.crashes == 1 && taken.completions == 1)
        kill(frozen.processIdentifier, SIGCONT)
        frozen.waitUntilExit()
        #expect(frozen.terminationStatus == 0)
        let log = try String(contentsOfFile: root + "/frozen.log", encoding: .utf8)
        #expect(log.contains("\(long): result refused, the lease was lost to another worker"), "\(log)")
        let after = try #require(try await s.files().first { $0.path == long })
        #expect(after.completions == 1 && after.attempts == 2)
        #expect(try await s.files().allSatisfy { $0.state == .done || $0.state == .failed })
        _ = owner
        try await s.close()
    }

    @Test func storedEventsAreThoseOfTheWrittenJSON() async throws {
        // The worker stores the events from the job's document in memory; they must be exactly what
        // reading the JSON back gives (the path a resumed, already-written file takes), thumbnails too.
        let root = temporaryFolder("archive-events")
        _ = try archiveBatch(root + "/in", count: 8, seconds: 2)
        let i = try densecap(["archive", "init", "--store", root + "/store", "--out", root + "/out", "--", "--thumbnails"])
        #expect(i.status == 0, "\(i.stderr)")
        #expect(try densecap(["archive", "add", "--store", root + "/store", "--recursive", root + "/in/cams"]).status == 0)
        let r = try densecap(["archive", "run", "--store", root + "/store"])
        #expect(r.stdout.hasPrefix("done 7, failed 1, pending 0"), "\(r.stdout) \(r.stderr)")
        let store = try await openStore(root + "/store", create: false)
        var keyframes = 0
        for f in try await store.files() where f.state == .done {
            let outputs = try await store.outputs(of: f.id)
            let json = try #require(outputs.first { $0.hasSuffix(".events.json") })
            let stored = try await store.events(of: f.id)
            #expect(!stored.isEmpty)
            #expect(stored == (try CaptionImport.read(json)).events, "\(f.path)")
            for k in stored.compactMap(\.keyframe) {
                #expect(outputs.contains(k) && FileManager.default.fileExists(atPath: k), "\(k)")
                keyframes += 1
            }
        }
        #expect(keyframes >= 7)
        try await store.close()
    }

    static let captionJSON = """
        {"schema": "densecap.events/1", "video": {"path": "ROOT/yard.mp4"}, "events": [
          {"index": 0, "start": 0, "end": 12.5, "start_exact": "0", "end_exact": "25/2", "kind": "start",
           "caption": "An empty yard at dawn.", "thumbnail": "yard.thumbs/event_0001.png"},
          {"index": 1, "start": 12.5, "end": 40, "start_exact": "25/2", "end_exact": "40", "kind": "motion",
           "caption": "A red truck enters the yard and stops by the gate.", "thumbnail": "yard.thumbs/event_0002.png"},
          {"index": 2, "start": 40, "end": 60, "start_exact": "40", "end_exact": "60", "kind": "motion",
           "caption": "A man unloads boxes from the truck.", "thumbnail": null}
        ]}
        """

    @Test func searchPrintsFileTimesScoreAndSnippet() async throws {
        var stores = [temporaryFolder("archive-search")]
        if TestPostgres.unavailableReason == nil { stores.append(try await TestPostgres.freshDatabase("searchcli")) }
        let root = temporaryFolder("archive-search-in")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Self.captionJSON.replacingOccurrences(of: "ROOT", with: root).write(toFile: root + "/yard.events.json", atomically: true, encoding: .utf8)
        for store in stores {
            let imported = try densecap(["archive", "import", "--store", store, root + "/yard.events.json"])
            #expect(imported.stdout == "imported 3 events from 1 file\n", "\(imported.stderr)")
            let r = try densecap(["search", "red truck", "--store", store, "--html", root + "/results.html"])
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 1)
            #expect(lines.first?.hasPrefix("\(root)/yard.mp4\t0:12.500–0:40.000\t") == true)
            #expect(lines.first?.hasSuffix("A [red] [truck] enters the yard and stops by the gate.") == true)
            let j = try densecap(["search", "truck", "--store", store, "--json", "--after", "30"])
            let hits = try #require(try JSONSerialization.jsonObject(with: j.stdoutData) as? [[String: Any]])
            #expect(hits.map { $0["start"] as? Double } == [40])
            let html = try String(contentsOfFile: root + "/results.html", encoding: .utf8)
            #expect(html.contains("<mark>red</mark> <mark>truck</mark>"))
            #expect(html.contains("<img src=\"file://\(root)/yard.thumbs/event_0002.png\""))
            let none = try densecap(["search", "helicopter", "--store", store])
            #expect(none.status == 0 && none.stdout.isEmpty)
        }
        let bad = try densecap(["search", "x", "--store", temporaryFolder("archive-none")])
        #expect(bad.status == 66 && bad.stderr.contains("no archive here"))
    }
}
