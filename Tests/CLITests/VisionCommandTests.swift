import Engine
import Foundation
import TestClips
import Testing

/// `describe`, `ask` and `caption` on the tiny NVILA checkpoints the reference wrote (see
/// Tests/EngineTests/Fixtures/README.md, "NVILA fixtures").
@Suite struct VisionCommandTests {
    struct Golden: Decodable {
        struct Case: Decodable {
            let name: String
            let greedy_ids: [Int]
        }
        let cases: [Case]
    }

    /// The image PNG goes through FFmpeg's decoder, Pillow-exact tiling, the tower, the 3×3
    /// projector and the LLM: the answer is the reference's greedy continuation, word for word.
    @Test func describePrintsTheReferenceAnswer() throws {
        let model = engineFixtures + "/tiny-nvila-lite"
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: engineFixtures + "/nvila_golden.json")))
        let ids = try #require(golden.cases.first { $0.name == "lite.image" }).greedy_ids
        let tokenizer = try BPETokenizer.load(directory: model + "/llm")
        let expected = tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        let r = try densecap("describe", "--model", model, engineFixtures + "/nvila-image.png", "--prompt", "Describe the image.",
                             "--max-new-tokens", "\(ids.count)")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == expected)
    }

    @Test func askAnswersAboutAVideo() throws {
        let r = try densecap("ask", "--model", engineFixtures + "/tiny-nvila-video", threeColours, "What colour is it?",
                             "--max-new-tokens", "8")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(r.stderr.contains("6 frames at"))  // the checkpoint's num_video_frames
    }

    @Test func badInputsAreOneLine() throws {
        let missing = try densecap("describe", "--model", engineFixtures + "/tiny-nvila-lite", "/nonexistent/x.png")
        #expect(missing.status == 66)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        let notNVILA = try densecap("describe", "--model", engineFixtures + "/tiny-qwen2", engineFixtures + "/nvila-image.png")
        #expect(notNVILA.status == 65)
        #expect(notNVILA.stderr.contains("not an NVILA checkpoint"))
    }

    /// Three colour shots: three events at the exact cut times, each captioned; every output
    /// format written; a rerun is skipped, and a run whose outputs were lost resumes from the
    /// frame cache without running the tower again.
    @Test func captionWritesEveryFormatAndResumes() throws {
        let out = temporaryFolder("caption")
        let args = ["caption", "--model", engineFixtures + "/tiny-nvila-lite", threeColours, "--out", out, "--fps", "2",
                    "--max-new-tokens", "6", "--formats", "json,csv,srt,vtt,activitynet,html", "--keep-cache"]
        let r = try densecap(args)
        #expect(r.status == 0, "\(r.stderr)")
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        let document = try json(Data(contentsOf: URL(fileURLWithPath: out + "/\(name).events.json")))
        let events = try #require(document["events"] as? [[String: Any]])
        #expect(events.map { $0["start_exact"] as? String } == ["0", "2", "4"])
        for e in events {
            #expect(!((e["caption"] as? String) ?? "").isEmpty)
            #expect((e["frame_times"] as? [Any])?.count == 4)  // 2 fps × 2 s, under the budget of 8
        }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        for suffix in ["events.json", "events.csv", "srt", "vtt", "activitynet.json", "html", "thumbs", "cache"] {
            #expect(files.contains("\(name).\(suffix)"), "\(suffix) missing")
        }
        #expect(try densecap(args).stderr.contains("already done"))
        // An output lost: the rerun writes it again from the manifest, computing nothing.
        try FileManager.default.removeItem(atPath: out + "/\(name).events.json")
        let resumed = try densecap(args)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("tower 0 frames"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("0 captions generated, 3 reused"), "\(resumed.stderr)")
        let again = try json(Data(contentsOf: URL(fileURLWithPath: out + "/\(name).events.json")))
        #expect((again["events"] as? [[String: Any]])?.map { $0["caption"] as? String } == events.map { $0["caption"] as? String })
    }

    /// `kill -9` at a seeded moment of the tower phase or of captioning: the rerun repeats no
    /// recorded tower pass and no recorded caption, and writes outputs byte-identical to an
    /// uninterrupted run's.
    @Test(arguments: [("tower", 5), ("tower", 11), ("caption", 1), ("caption", 2)])
    func killedRunResumesWithoutRepeatingWork(point: String, after: Int) throws {
        let clean = temporaryFolder("kill-clean-\(point)-\(after)")
        let out = temporaryFolder("kill-\(point)-\(after)")
        let base = ["caption", "--model", engineFixtures + "/tiny-nvila-lite", threeColours, "--fps", "2",
                    "--max-new-tokens", "6", "--formats", "json,csv,srt,vtt,activitynet,html", "--batch", "1"]
        let reference = try densecap(base + ["--out", clean])
        #expect(reference.status == 0, "\(reference.stderr)")
        #expect(reference.stderr.contains("tower 12 frames"), "\(reference.stderr)")
        let environment = ProcessInfo.processInfo.environment.merging(["DENSECAP_FAILPOINT": "\(point):\(after)"]) { $1 }
        let killed = try runProcess(densecapBinary, base + ["--out", out], environment: environment)
        #expect(killed.status == 9, "\(killed.stderr)")
        let resumed = try densecap(base + ["--out", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        // 12 caption frames (4 per event) and 3 captions in all; what the killed run recorded stays done.
        let tower = point == "tower" ? 12 - after : 0
        let generated = point == "caption" ? 3 - after : 3
        #expect(resumed.stderr.contains("tower \(tower) frames"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("\(generated) captions generated"), "\(resumed.stderr)")
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        for suffix in ["events.json", "events.csv", "srt", "vtt", "activitynet.json", "html"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: clean + "/\(name).\(suffix)"))
            let b = try Data(contentsOf: URL(fileURLWithPath: out + "/\(name).\(suffix)"))
            #expect(a == b, "\(suffix) differs after resuming")
        }
    }

    /// A missing file and an audio-only file do not stop the batch: the good clip is captioned and
    /// the most severe code is returned.
    @Test func captionBatchSurvivesBrokenInputs() throws {
        let out = temporaryFolder("caption-batch")
        let r = try densecap(["caption", "--model", engineFixtures + "/tiny-nvila-lite", "/nonexistent/a.mp4", try Clip.audioOnly.path,
                              threeColours, "--out", out, "--fps", "1", "--max-new-tokens", "2", "--formats", "json"])
        #expect(r.status == 66 || r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("/nonexistent/a.mp4"))
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        #expect(FileManager.default.fileExists(atPath: out + "/\(name).events.json"))
    }

    /// `bench vision` on an NVILA folder runs its tower's selected blocks and reports JSON.
    @Test func benchVisionReportsJSON() throws {
        let r = try densecap("bench", "vision", "--model", engineFixtures + "/tiny-nvila-s2", "--repeats", "1")
        #expect(r.status == 0, "\(r.stderr)")
        let o = try json(r.stdoutData)
        #expect(o["layers_run"] as? Int == 2)  // 3 layers, hidden_states[-2]
        #expect(o["tokens"] as? Int == 1024)
        #expect((o["tile_s"] as? Double ?? 0) > 0)
    }

    /// The detail knob tiles every frame like a single image; a TSP checkpoint refuses it clearly.
    @Test func detailKnob() throws {
        let s2 = try densecap("ask", "--model", engineFixtures + "/tiny-nvila-s2", threeColours, "What is it?", "--frames", "2",
                              "--detail", "12", "--max-new-tokens", "2")
        #expect(s2.status == 0, "\(s2.stderr)")
        let tsp = try densecap("ask", "--model", engineFixtures + "/tiny-nvila-video", threeColours, "What is it?", "--detail", "4")
        #expect(tsp.status == 65)
        #expect(tsp.stderr.contains("need the Basic video encoder"))
    }
}
