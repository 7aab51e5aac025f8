import DenseCore
import Engine
import Foundation
import Logging
import Testing
import VideoIO

@testable import NIAH

let engineFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../EngineTests/Fixtures").standardized.path

let quietLogger: Logger = {
    var logger = Logger(label: "niah-test")
    logger.logLevel = .error
    return logger
}()

func temporaryFolder(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "densecap-niah-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Media made at test time: a synthetic haystack (the make-haystack recipe, tiny) and needle
/// images drawn with ffmpeg's sources, with a dataset.json beside them.
enum TestMedia {
    /// 20 s at 2 fps, 96×64: every 2nd decoded frame is sampled (1 fps), so 20 haystack frames.
    static let haystack: String = {
        let folder = NSTemporaryDirectory() + "densecap-niah-media-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/haystack.mp4"
        if !FileManager.default.fileExists(atPath: path) {
            try! HaystackRecipe(seed: 7, duration: 20, width: 96, height: 64, rate: 2).render(to: path)
        }
        return path
    }()

    /// A folder with `dataset.json` and two needle images (one multiple choice, one short answer).
    static func dataset(in folder: String, entries: [[String: String]]? = nil) throws -> String {
        try ffmpeg(["-f", "lavfi", "-i", "mandelbrot=s=80x60", "-frames:v", "1", folder + "/needle-a.png"])
        try ffmpeg(["-f", "lavfi", "-i", "smptebars=s=120x90", "-frames:v", "1", folder + "/needle-b.png"])
        let items = entries ?? [
            ["path": "needle-a.png",
             "prompt": "\nWhat is in the frame?\nA. Bars\nB. A fractal\nC. A cat\nAnswer with the option's letter from the given choices directly.",
             "answer": "B"],
            ["path": "needle-b.png", "prompt": "\nWhat colour is the first bar?\nAnswer the question using a single word or phrase.",
             "answer": "Grey"],
        ]
        let path = folder + "/dataset.json"
        try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func ffmpeg(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"] + arguments
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NIAHError(.tool, "", "ffmpeg \(arguments) failed") }
    }
}

/// The NVILA engine with every call recorded, so tests see exactly what each cell was given.
final class RecordingModel: NeedleModel, @unchecked Sendable {
    let inner: NVILANeedleModel
    var predictions: [(frames: [Tensor], question: String)] = []
    var frameTokenCalls = 0

    init(_ directory: String) throws {
        inner = NVILANeedleModel(model: try NVILAModel.load(directory: directory, logger: quietLogger), name: "tiny", directory: directory)
    }

    var identity: ModelIdentity { inner.identity }
    var frameTokenShape: [Int] { inner.frameTokenShape }
    var contextLength: Int { inner.contextLength }
    func frameTokens(_ image: RGBImage, mode: NeedleMode) -> Tensor {
        frameTokenCalls += 1
        return inner.frameTokens(image, mode: mode)
    }
    func needleTokens(_ image: RGBImage, mode: NeedleMode, frameSize: (width: Int, height: Int)) -> Tensor {
        inner.needleTokens(image, mode: mode, frameSize: frameSize)
    }
    func tokenize(_ text: String) -> [Int] { inner.tokenize(text) }
    func decode(_ ids: [Int]) -> String { inner.decode(ids) }
    func promptLength(frames: Int, question: String, mode: NeedleMode) throws -> Int {
        try inner.promptLength(frames: frames, question: question, mode: mode)
    }
    func peakBytes(rows: Int) -> Int { inner.peakBytes(rows: rows) }
    func predict(frames: [Tensor], question: String, answer: [Int], mode: NeedleMode) throws -> [Int] {
        predictions.append((frames, question))
        return try inner.predict(frames: frames, question: question, answer: answer, mode: mode)
    }
}

struct Stop: Error {}

@Suite struct SweepTests {
    /// Depths are np.arange(0, 1 + Δ, Δ) (values printed by numpy 2.4.6) and "Frame Depth" is
    /// round(d × 100, -1) (Python's rounding).
    @Test func depthsFollowNumpyArange() {
        var s = NIAHSettings()
        s.depthInterval = 0.1
        #expect(s.depths.count == 11)
        s.depthInterval = 0.2
        #expect(s.depths.map { Cell(frames: 300, depth: $0).needleIndex } == [0, 60, 120, 180, 240, 300])
        s.depthInterval = 0.3
        #expect(s.depths.map { Cell(frames: 300, depth: $0).needleIndex } == [0, 90, 180, 270, 360])
        s.depthInterval = 0.25
        #expect(s.depths.map { Cell(frames: 300, depth: $0).depthPercent } == [0, 20, 50, 80, 100])
        s.depthInterval = 0.05
        #expect(s.depths.count == 21)
        #expect(s.depths.map { Cell(frames: 300, depth: $0).needleIndex }
            == [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165, 180, 195, 210, 225, 240, 255, 270, 285, 300])
        #expect(s.depths.map { Cell(frames: 300, depth: $0).depthPercent }
            == [0, 0, 10, 20, 20, 20, 30, 40, 40, 40, 50, 60, 60, 60, 70, 80, 80, 90, 90, 100, 100])
        s.depthInterval = 0.01
        #expect(Set(s.depths.map { Cell(frames: 300, depth: $0).fileName }).count == 101)  // one file per cell
        #expect(Cell(frames: 8, depth: 0.125).fileName == "frame_8_depth_12.5.json")
        s.minFrames = 50
        s.maxFrames = 500
        s.frameInterval = 50
        #expect(s.frameCounts == [50, 100, 150, 200, 250, 300, 350, 400, 450, 500])
    }

    @Test func needleIsInsertedBeforeFrameIntDepthTimesN() {
        let haystack = Array(0..<40)
        for n in [1, 7, 20, 40] {
            for depth in NIAHSettings().depths {
                let cell = Cell(frames: n, depth: depth)
                let frames = insertNeedle(-1, into: haystack, cell: cell)
                #expect(frames.count == n + 1)
                #expect(frames.firstIndex(of: -1) == Int(depth * Double(n)))
                #expect(frames.filter { $0 != -1 } == Array(0..<n))  // nothing lost, nothing reordered
            }
        }
    }

    @Test func multipleChoiceRotations() throws {
        let prompt = "\nQ?\nA. one\nB. two\nC. three\nAnswer with the option's letter."
        let choice = try #require(MultipleChoice(prompt: prompt, answer: "B"))
        #expect(choice.rotated(by: 0) == (prompt, "B"))
        let (p1, a1) = choice.rotated(by: 1)
        #expect(p1 == "\nQ?\nA. three\nB. one\nC. two\nAnswer with the option's letter.")
        #expect(a1 == "C")
        #expect(choice.rotated(by: 2).answer == "A")
        #expect(MultipleChoice(prompt: "\nWhat colour?\nAnswer with a word.", answer: "Yellow") == nil)
        #expect(MultipleChoice(prompt: prompt, answer: "Yellow") == nil)
    }
}

@Suite struct ScoringGoldenTests {
    struct Golden: Decodable {
        struct IDCase: Decodable {
            var name: String
            var answerIDs: [Int]
            var predictedIDs: [Int]
            var longva: Bool
            var vila: Bool
        }
        struct VNCase: Decodable {
            var name: String
            var answer: String
            var predictions: [String]
            var counts: Bool
        }
        var vocabulary: [String]
        var idCases: [IDCase]
        var vnbenchCases: [VNCase]
    }

    static func golden() throws -> Golden {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/niah_scoring_golden.json")
        return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }

    /// The references' own comparison lines (run by tools/fixtures/gen_niah_scoring_golden.py)
    /// against ours. Our teacher-forced pass yields exactly one id per answer token, as the
    /// references' slice `pred[:, L-1 : L+k-1]` does.
    @Test func longvaAndVilaAgreeWithTheReferences() throws {
        let g = try Self.golden()
        #expect(g.idCases.count >= 15)
        #expect(g.idCases.contains { $0.longva != $0.vila })  // the cases tell the two rules apart
        for c in g.idCases {
            let predicted = Array(c.predictedIDs.prefix(c.answerIDs.count))
            let text = predicted.map { g.vocabulary[$0] }.joined(), answer = c.answerIDs.map { g.vocabulary[$0] }.joined()
            #expect(NIAHScoring.longva(predicted: predicted, answer: c.answerIDs) == c.longva, "\(c.name)")
            #expect(NIAHScoring.vila(predictedText: text, answerText: answer) == c.vila, "\(c.name)")
        }
    }

    /// VNBench's eval.py: a question counts only if all 4 tries are right.
    @Test func vnbenchAgreesWithTheReference() throws {
        let g = try Self.golden()
        #expect(g.vnbenchCases.contains { $0.counts } && g.vnbenchCases.contains { !$0.counts })
        for c in g.vnbenchCases {
            let answers = c.predictions.enumerated().map { k, p in
                AnswerRecord(needle: 0, rotation: k, answerIDs: [], predictedIDs: [], predictedText: p, longva: false, vila: false,
                             vnbench: NIAHScoring.vnbench(predictedText: p, answer: c.answer))
            }
            #expect((CellResult.score(answers, rule: .vnbench) == 1) == c.counts, "\(c.name)")
        }
    }
}

@Suite(.serialized) struct NIAHRunTests {
    static let model = engineFixtures + "/tiny-nvila-video"

    static func settings(_ mode: NeedleMode, depthInterval: Double = 0.25) -> NIAHSettings {
        var s = NIAHSettings()
        s.minFrames = 4
        s.maxFrames = 8
        s.frameInterval = 4
        s.depthInterval = depthInterval
        s.mode = mode
        return s
    }

    /// Every cell, both modes: the frames given to the model are the haystack's first N in order
    /// with the needle's tokens at int(d × N); the prompt has the rows `promptLength` said, and in
    /// embedding mode the needle's rows sit right after the preprompt and the frames before it.
    @Test(arguments: NeedleMode.allCases) func needleLandsAtTheExpectedIndex(mode: NeedleMode) throws {
        let out = try temporaryFolder("land-\(mode)")
        let dataset = try TestMedia.dataset(in: out)
        let engine = try RecordingModel(Self.model)
        let runner = NIAHRunner(engine: engine, settings: Self.settings(mode), logger: quietLogger)
        let report = try runner.run(haystack: TestMedia.haystack, dataset: dataset, out: out)
        let cells = Self.settings(mode).cells
        #expect(report.cellsComputed == cells.count && report.cellsReused == 0)
        #expect(report.haystackFramesComputed == 8)
        #expect(engine.predictions.count == cells.count * 2)

        // The haystack frames, decoded by hand at the reference rule (every 2nd frame at 2 fps).
        let reader = try VideoReader(path: TestMedia.haystack)
        var images: [RGBImage] = []
        var index = 0
        while images.count < 8, let f = try reader.nextFrame() {
            if index % 2 == 0 { images.append(try reader.image(from: f)) }
            index += 1
        }
        let haystack = images.map { engine.inner.frameTokens($0, mode: mode) }
        let needle = engine.inner.needleTokens(try VideoReader.readImage(path: out + "/needle-a.png"), mode: mode, frameSize: (96, 64))
        let other = engine.inner.needleTokens(try VideoReader.readImage(path: out + "/needle-b.png"), mode: mode, frameSize: (96, 64))
        #expect(needle != other && !haystack.contains(needle))
        let pre = engine.tokenize(ReferenceTemplate.preprompt).count
        for (c, cell) in cells.enumerated() {
            let call = engine.predictions[2 * c]
            let i = Int(cell.depth * Double(cell.frames))
            #expect(call.frames.count == cell.frames + 1)
            #expect(call.frames[i] == needle, "cell \(cell)")
            #expect(Array(call.frames[..<i]) + Array(call.frames[(i + 1)...]) == Array(haystack[..<cell.frames]), "cell \(cell)")
            #expect(engine.predictions[2 * c + 1].frames[i] == other)
            let prompt = try engine.inner.prompt(frames: call.frames, question: call.question, mode: mode)
            let rows = try engine.promptLength(frames: cell.frames + 1, question: call.question, mode: mode)
            #expect(prompt.shape[0] == rows)
            if mode == .embedding {
                let S = engine.frameTokenShape[0], H = engine.frameTokenShape[1]
                let needleRows = Array(prompt.scalars[(pre + i * S) * H..<(pre + (i + 1) * S) * H])
                #expect(needleRows == needle.scalars)
            }
        }
        // Pixel mode goes through the checkpoint's own video path (TSP pooling, its template).
        if mode == .pixel, let call = engine.predictions.first {
            let direct = try engine.inner.model.promptEmbeddings(text: call.question, media: [.videoTokens(call.frames)])
            let ours = try engine.inner.prompt(frames: call.frames, question: call.question, mode: .pixel)
            #expect(ours == direct)
        }
    }

    /// A run stopped after two cells (as a kill between cell files leaves it) resumes computing
    /// only the missing cells, with no haystack frame through the tower again.
    @Test func resumeComputesOnlyMissingCells() throws {
        let out = try temporaryFolder("resume")
        let dataset = try TestMedia.dataset(in: out)
        let settings = Self.settings(.embedding, depthInterval: 0.5)
        let total = settings.cells.count
        let first = try RecordingModel(Self.model)
        var done = 0
        #expect(throws: Stop.self) {
            try NIAHRunner(engine: first, settings: settings, logger: quietLogger).run(
                haystack: TestMedia.haystack, dataset: dataset, out: out,
                afterCell: { _ in
                    done += 1
                    if done == 2 { throw Stop() }
                })
        }
        #expect(first.predictions.count == 4)
        // A half-written temporary file from the kill is not a result.
        try Data("{\"Num. Frame\": 4".utf8).write(to: URL(fileURLWithPath: out + "/cells/.frame_8_depth_0.json.123.partial"))
        // A file torn by a crash outside our atomic writes (or edited by hand) is recomputed, not trusted.
        try Data("{\"Num. Frame\": 8, \"Frame".utf8).write(to: URL(fileURLWithPath: out + "/cells/frame_8_depth_100.json"))
        let cellsBefore = try FileManager.default.contentsOfDirectory(atPath: out + "/cells").filter { $0.hasPrefix("frame_") }
        #expect(cellsBefore.count == 3)

        let second = try RecordingModel(Self.model)
        let report = try NIAHRunner(engine: second, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(report.cellsReused == 2)
        #expect(report.cellsComputed == total - 2)
        #expect(second.predictions.count == 2 * (total - 2))
        #expect(report.haystackFramesComputed == 0 && report.haystackFramesCached == 8)
        #expect(second.frameTokenCalls == 0)

        // A third run has nothing to do.
        let third = try RecordingModel(Self.model)
        let again = try NIAHRunner(engine: third, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(again.cellsComputed == 0 && third.predictions.isEmpty)

        // Other settings in the same folder are refused, not mixed in.
        var other = settings
        other.score = .vila
        #expect(throws: NIAHError.self) {
            try NIAHRunner(engine: third, settings: other, logger: quietLogger).run(haystack: TestMedia.haystack, dataset: dataset, out: out)
        }
    }

    @Test func outputsHaveTheReferencesSchema() throws {
        let out = try temporaryFolder("schema")
        let dataset = try TestMedia.dataset(in: out)
        var settings = Self.settings(.embedding, depthInterval: 0.5)
        settings.rotateChoices = true
        let engine = try RecordingModel(Self.model)
        let report = try NIAHRunner(engine: engine, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        // The multiple-choice needle is asked 3 times (3 options), the other once.
        #expect(engine.predictions.count == settings.cells.count * 4)

        let list = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/all_accuracies.json"))) as? [[String: Any]])
        #expect(list.count == settings.cells.count)
        for (entry, cell) in zip(list, settings.cells) {
            #expect(Set(entry.keys) == ["Num. Frame", "Frame Depth", "Score"])
            #expect(entry["Num. Frame"] as? Int == cell.frames)
            #expect(entry["Frame Depth"] as? Double == cell.depthPercent)
            let score = try #require(entry["Score"] as? Double)
            #expect([0, 0.5, 1].contains(score))  // 2 needles
        }
        let text = try String(contentsOfFile: out + "/all_accuracies.json", encoding: .utf8)
        #expect(text.contains("        \"Frame Depth\": 0.0,\n"))  // json.dump(indent=4) spelling
        let average = try String(contentsOfFile: out + "/avg_accuracy.txt", encoding: .utf8)
        let mean = try #require(report.averageScore)
        #expect(average == "Average Accuracy: \(NIAHOutputs.pythonFloat(mean))\n")

        let reader = try VideoReader(path: out + "/heatmap.png")
        #expect(reader.info.width == 1750 && reader.info.height == 800)
        let frame = try #require(try reader.nextFrame())
        let image = try reader.image(from: frame)
        #expect(Set(stride(from: 0, to: image.pixels.count, by: 997).map { image.pixels[$0] }).count > 3)  // not blank

        let html = try String(contentsOfFile: out + "/heatmap.html", encoding: .utf8)
        for label in ["Num. of Frames", "Depth Percent", "Score"] { #expect(html.contains(label)) }
        #expect(!html.contains("<script") && !html.contains("http"))

        let run = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/run.json")))
        #expect(run.settings == settings)
        #expect(run.haystack.framePTS == (0..<8).map { "\($0)" })  // 1 fps from 0 s, exact
        #expect(run.haystack.sha256.count == 64 && run.needles.count == 2 && run.seed == 24_242_424)
        #expect(run.model.tokensPerFrame == 256)

        // --plot-only redraws from the JSON alone.
        try FileManager.default.removeItem(atPath: out + "/heatmap.png")
        try FileManager.default.removeItem(atPath: out + "/avg_accuracy.txt")
        let replotted = try NIAHOutputs.plot(directory: out)
        #expect(replotted == report.averageScore)
        #expect(FileManager.default.fileExists(atPath: out + "/heatmap.png"))
    }

    @Test func limitsAreStatedUpFront() throws {
        let out = try temporaryFolder("limits")
        let dataset = try TestMedia.dataset(in: out)
        var settings = Self.settings(.embedding, depthInterval: 0.5)
        settings.memoryLimit = 1 << 20
        let engine = try RecordingModel(Self.model)
        let report = try NIAHRunner(engine: engine, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(report.refused.count == settings.cells.count)
        #expect(report.refused.allSatisfy { $0.reason.contains("--memory-limit") })
        #expect(engine.predictions.isEmpty && engine.frameTokenCalls == 0)

        // Past the trained positions (4096 for the tiny model, 256 tokens a frame): computed and marked.
        let out2 = try temporaryFolder("context")
        var long = NIAHSettings()
        (long.minFrames, long.maxFrames, long.frameInterval, long.depthInterval) = (4, 16, 12, 1)
        let report2 = try NIAHRunner(engine: engine, settings: long, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: try TestMedia.dataset(in: out2), out: out2)
        #expect(report2.cellsComputed == 4 && report2.beyondContextCells == 2)
    }

    @Test func badInputsAreOneLineErrors() throws {
        let out = try temporaryFolder("bad")
        let engine = try RecordingModel(Self.model)
        let runner = NIAHRunner(engine: engine, settings: Self.settings(.embedding), logger: quietLogger)
        let missing = try TestMedia.dataset(in: out, entries: [["path": "nowhere.png", "prompt": "q", "answer": "a"]])
        #expect(throws: NIAHError(.missing, missing, "needle 0: image nowhere.png not found (looked at \(out)/nowhere.png)")) {
            try runner.run(haystack: TestMedia.haystack, dataset: missing, out: out + "/o")
        }
        let empty = try TestMedia.dataset(in: out, entries: [])
        #expect(throws: NIAHError(.data, empty, "the needle dataset is empty")) {
            try runner.run(haystack: TestMedia.haystack, dataset: empty, out: out + "/o")
        }
        let dataset = try TestMedia.dataset(in: out)
        var long = Self.settings(.embedding)
        long.maxFrames = 40
        do {
            _ = try NIAHRunner(engine: engine, settings: long, logger: quietLogger).run(haystack: TestMedia.haystack, dataset: dataset, out: out + "/o")
            Issue.record("a 20-frame haystack ran a 40-frame sweep")
        } catch let error as NIAHError {
            #expect(error.kind == .data && error.description.contains("haystack shorter than the sweep"))
            #expect(!error.description.contains("\n"))
        }
        #expect(engine.frameTokenCalls == 0 && engine.predictions.isEmpty)
    }
}

@Suite struct FeatureStoreTests {
    /// A torn last record (a kill mid-append) is dropped; the records before it stay.
    @Test func tornTailIsDropped() throws {
        let path = try temporaryFolder("store") + "/f.features"
        let store = try FeatureStore(path: path, key: "k", tokenShape: [2, 3])
        for i in 0..<3 { try store.append(time: MediaTime(value: Int64(i), timescale: 3), tokens: Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0 + 10 * i) })) }
        try store.finish()
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 7, count: 20))
        try handle.close()
        let reopened = try FeatureStore(path: path, key: "k", tokenShape: [2, 3])
        #expect(reopened.count == 3)
        try reopened.finish()
        #expect(reopened.time(2) == MediaTime(value: 2, timescale: 3))
        #expect(reopened.tokens(1).scalars == (0..<6).map { Float($0 + 10) })
        #expect(try FeatureStore(path: path, key: "other", tokenShape: [2, 3]).count == 0)
    }
}

@Suite struct HaystackMakerTests {
    @Test func sameSeedSameBytes() throws {
        let folder = try temporaryFolder("make")
        let recipe = HaystackRecipe(seed: 42, duration: 9, width: 64, height: 48, rate: 3)
        #expect(recipe.scenes.reduce(0) { $0 + $1.duration } == 9)
        #expect(recipe == HaystackRecipe(seed: 42, duration: 9, width: 64, height: 48, rate: 3))
        try recipe.render(to: folder + "/a.mp4")
        try recipe.render(to: folder + "/b.mp4")
        try HaystackRecipe(seed: 43, duration: 9, width: 64, height: 48, rate: 3).render(to: folder + "/c.mp4")
        let a = try Haystack.sha256(file: folder + "/a.mp4"), b = try Haystack.sha256(file: folder + "/b.mp4")
        let c = try Haystack.sha256(file: folder + "/c.mp4")
        #expect(a == b)
        #expect(a != c)
        let reader = try VideoReader(path: folder + "/a.mp4")
        var times: [MediaTime] = []
        while let f = try reader.nextFrame() { times.append(f.time) }
        #expect(times == (0..<27).map { MediaTime(value: Int64($0), timescale: 3) })
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["a.mp4", "b.mp4", "c.mp4"])
    }
}

@Suite struct ModelIdentityTests {
    /// Hugging Face cache snapshots are links to blobs: a changed blob changes the fingerprint.
    @Test func fingerprintFollowsLinks() throws {
        let dir = try temporaryFolder("fingerprint")
        try Data("12345".utf8).write(to: URL(fileURLWithPath: dir + "/blob"))
        try FileManager.default.createDirectory(atPath: dir + "/snapshot", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/snapshot/model.safetensors", withDestinationPath: dir + "/blob")
        let before = checkpointFingerprint(dir + "/snapshot")
        #expect(before == checkpointFingerprint(dir + "/snapshot"))
        try Data("123456".utf8).write(to: URL(fileURLWithPath: dir + "/blob"))
        #expect(checkpointFingerprint(dir + "/snapshot") != before)
    }
}
