import DenseCore
import Engine
import Foundation
import ModelAPI
import Testing
import VideoIO

@testable import NIAH

/// A model behind the seam that answers scripted text and records every request.
final class ScriptedModel: VisionLanguageModel, @unchecked Sendable {
    let identity = "scripted-1"
    let displayName = "scripted"
    let defaultVideoFrames = 8
    let concurrency = 1
    private let lock = NSLock()
    private var recorded: [VisionRequest] = []
    private let reply: @Sendable (VisionRequest) throws -> String

    init(reply: @escaping @Sendable (VisionRequest) throws -> String) { self.reply = reply }

    var requests: [VisionRequest] { lock.withLock { recorded } }

    func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        lock.withLock { recorded.append(request) }
        let text = try reply(request)
        return VisionAnswer(text: text, finishReason: .stop, promptTokens: 100 + request.frames.count, completionTokens: 3, model: "scripted@server")
    }
}

/// Another model (the native one) behind the seam, its requests counted and kept.
final class CountingModel: VisionLanguageModel, @unchecked Sendable {
    let inner: any VisionLanguageModel
    private let lock = NSLock()
    private var recorded: [VisionRequest] = []

    init(_ inner: any VisionLanguageModel) { self.inner = inner }

    var identity: String { inner.identity }
    var displayName: String { inner.displayName }
    var defaultVideoFrames: Int { inner.defaultVideoFrames }
    var concurrency: Int { inner.concurrency }
    var requests: [VisionRequest] { lock.withLock { recorded } }

    func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        lock.withLock { recorded.append(request) }
        return try await inner.answer(request, onText: onText)
    }

    func answer(_ requests: [VisionRequest]) async -> [Result<VisionAnswer, any Error>] {
        lock.withLock { recorded += requests }
        return await inner.answer(requests)
    }
}

struct ModelDown: Error, CustomStringConvertible {
    var description: String { "HTTP 503 from the server (after 3 retries)" }
}

extension VisionRequest {
    /// The frames of the request's one video (empty otherwise).
    var frames: [VisionFrame] {
        guard media.count == 1, case .video(let frames) = media[0] else { return [] }
        return frames
    }
}

/// The haystack's first `count` sampled frames decoded by hand (every 2nd frame at 2 fps).
func decodedHaystack(_ count: Int) throws -> [(time: MediaTime, image: RGBImage)] {
    let reader = try VideoReader(path: TestMedia.haystack)
    var frames: [(MediaTime, RGBImage)] = []
    var index = 0
    while frames.count < count, let f = try reader.nextFrame() {
        if index % 2 == 0 { frames.append((f.time, try reader.image(from: f))) }
        index += 1
    }
    return frames
}

@Suite(.serialized) struct GeneratedModeTests {
    static func settings(minFrames: Int = 4, maxFrames: Int = 8, frameInterval: Int = 4, depthInterval: Double = 0.25,
                         maxNewTokens: Int = 16) -> NIAHSettings {
        var s = NIAHSettings()
        (s.minFrames, s.maxFrames, s.frameInterval, s.depthInterval) = (minFrames, maxFrames, frameInterval, depthInterval)
        s.mode = .pixel
        s.answer = .generated
        s.maxNewTokens = maxNewTokens
        return s
    }

    /// "B. A fractal" for the multiple-choice needle, "grey" for the colour one.
    static let scripted: @Sendable (VisionRequest) throws -> String = { $0.prompt.contains("fractal") ? "B. A fractal" : "grey" }

    /// Every request is the cell's N decoded haystack frames in order with their PTS and the needle
    /// picture (resized to the video's size) at int(d × N), times in order, the question as the
    /// prompt, greedy with the run's seed; the texts are scored by the text rules.
    @Test func requestsCarryTheCellsFramesAndTheNeedle() async throws {
        let out = try temporaryFolder("gen-shape")
        let dataset = try TestMedia.dataset(in: out)
        let settings = Self.settings()
        let model = ScriptedModel(reply: Self.scripted)
        let report = try await NIAHRunner(model: model, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        let cells = settings.cells
        #expect(report.cellsComputed == cells.count && report.cellsReused == 0 && report.failed.isEmpty)
        #expect(report.requests == 2 * cells.count && model.requests.count == 2 * cells.count)
        #expect(report.haystackFramesComputed == 8 && report.forwardPasses == 0)

        let haystack = try decodedHaystack(8)
        let needle = needleFrame(try VideoReader.readImage(path: out + "/needle-a.png"), frameSize: (96, 64))
        let other = needleFrame(try VideoReader.readImage(path: out + "/needle-b.png"), frameSize: (96, 64))
        let needleIsNew = !haystack.contains { $0.image == needle }
        #expect(needle.width == 96 && needle.height == 64 && needleIsNew)
        let questions = try NeedleDataset(path: dataset).questions(rotateChoices: false)
        for (c, cell) in cells.enumerated() {
            for (k, question) in questions.enumerated() {
                let request = model.requests[2 * c + k]
                let frames = request.frames
                let i = Int(cell.depth * Double(cell.frames))
                #expect(request.media.count == 1 && frames.count == cell.frames + 1, "cell \(cell)")
                #expect(request.prompt == question.prompt && request.system == nil && request.videoDetail == nil)
                #expect(request.generation == GenerationParameters(maxNewTokens: 16, temperature: 0, topP: 1, seed: 24_242_424))
                // (Pictures compared to a Bool first: a failure prints the cell, not megabytes of pixels.)
                let needleThere = frames[i].image == (k == 0 ? needle : other)
                #expect(needleThere, "cell \(cell), question \(k)")
                let rest = Array(frames[..<i]) + Array(frames[(i + 1)...])
                let haystackThere = rest.map(\.image) == haystack[..<cell.frames].map { $0.image }
                #expect(haystackThere, "cell \(cell)")
                #expect(rest.map { $0.time! } == haystack[..<cell.frames].map { $0.time }, "cell \(cell)")  // PTS as decoded
                let times = frames.map { $0.time! }
                #expect(times == times.sorted(), "cell \(cell): \(times)")
                if i > 0 && i < cell.frames { #expect(times[i - 1] < times[i] && times[i] < times[i + 1]) }
                #expect(frames.allSatisfy { $0.prepared == nil })
            }
        }

        // The text rules: "B. A fractal" counts by LongVA's prefix and VNBench's letter, not VILA's
        // whole text; "grey" only by VILA's (case ignored).
        let file = out + "/cells/" + cells[0].fileName
        let result = try JSONDecoder().decode(CellResult.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        #expect(result.answers.map(\.predictedText) == ["B. A fractal", "grey"])
        #expect(result.answers.map(\.longva) == [true, false])
        #expect(result.answers.map(\.vila) == [false, true])
        #expect(result.answers.map(\.vnbench) == [true, false])
        #expect(result.score == 0.5 && result.promptRows == 105 && result.beyondContext == nil)
        #expect(result.answers.allSatisfy { $0.answerIDs == nil && $0.predictedIDs == nil })
        #expect(result.answers[0].generation == GenerationRecord(
            VisionAnswer(text: "", finishReason: .stop, promptTokens: 105, completionTokens: 3, model: "scripted@server")))
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("\"finishReason\" : \"stop\"") && !text.contains("answerIDs"))
        #expect(report.averageScore == 0.5)

        let run = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/run.json")))
        #expect(run.settings == settings && run.settings.answer == .generated && run.settings.maxNewTokens == 16)
        #expect(run.model == ModelIdentity(name: "scripted", fingerprint: "scripted-1"))
        #expect(run.haystack.framePTS == (0..<8).map { "\($0)" })
        let runText = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
        #expect(runText.contains("\"answer\" : \"generated\"") && !runText.contains("tokensPerFrame"))
        #expect(FileManager.default.fileExists(atPath: out + "/haystack-frames.rgb"))
    }

    @Test func needleTimesKeepTheCellInOrder() {
        let t = (0..<4).map { MediaTime(value: Int64($0), timescale: 1) }
        #expect(needleTime(t, at: 0) == .zero)
        #expect(needleTime(t, at: 2) == MediaTime(value: 3, timescale: 2))
        #expect(needleTime(t, at: 4) == MediaTime(value: 7, timescale: 2))
        let later = [MediaTime(value: 2, timescale: 1), MediaTime(value: 4, timescale: 1)]
        #expect(needleTime(later, at: 0) == MediaTime(value: 1, timescale: 1))
        #expect(needleTime([MediaTime(value: 2, timescale: 1)], at: 1) == MediaTime(value: 5, timescale: 2))
    }

    /// A model error fails its cell alone: recorded in the cell's .failed.json, left out of the
    /// outputs, the other cells written; the next run computes only that cell.
    @Test func modelErrorsFailOneCellAndAreRetried() async throws {
        let out = try temporaryFolder("gen-fail")
        let dataset = try TestMedia.dataset(in: out)
        let settings = Self.settings()
        let broken = Cell(frames: 8, depth: 0.5)
        let failing = ScriptedModel { request in
            if request.frames.count == 9 && request.frames[4].time == MediaTime(value: 7, timescale: 2) && request.prompt.contains("fractal") {
                throw ModelDown()
            }
            return try Self.scripted(request)
        }
        let report = try await NIAHRunner(model: failing, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        let total = settings.cells.count
        #expect(report.cellsComputed == total - 1)
        #expect(report.failed.map { Cell(frames: $0.frames, depth: $0.depth) } == [broken])
        #expect(!FileManager.default.fileExists(atPath: out + "/cells/" + broken.fileName))
        let failed = try JSONDecoder().decode(FailedCell.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/cells/" + broken.failedFileName)))
        #expect(failed.failures == [.init(needle: 0, rotation: 0, error: "HTTP 503 from the server (after 3 retries)")])
        #expect(failed.answers.map(\.predictedText) == ["grey"])
        let entries = try JSONDecoder().decode([AccuracyEntry].self, from: Data(contentsOf: URL(fileURLWithPath: out + "/all_accuracies.json")))
        #expect(entries.count == total - 1)

        let healthy = ScriptedModel(reply: Self.scripted)
        let again = try await NIAHRunner(model: healthy, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(again.cellsComputed == 1 && again.cellsReused == total - 1 && again.failed.isEmpty)
        #expect(healthy.requests.count == 2 && healthy.requests.allSatisfy { $0.frames.count == 9 })
        #expect(again.haystackFramesComputed == 0 && again.haystackFramesCached == 8)
        #expect(FileManager.default.fileExists(atPath: out + "/cells/" + broken.fileName))
        #expect(!FileManager.default.fileExists(atPath: out + "/cells/" + broken.failedFileName))
    }

    /// A model that fails everything (a server down) stops the sweep after three dead cells in a
    /// row instead of recording every cell as failed; a rerun with a working model resumes.
    @Test func aDeadModelStopsTheSweep() async throws {
        let out = try temporaryFolder("gen-dead")
        let dataset = try TestMedia.dataset(in: out)
        let settings = Self.settings()
        let dead = ScriptedModel { _ in throw ModelDown() }
        do {
            _ = try await NIAHRunner(model: dead, settings: settings, logger: quietLogger).runGenerated(
                haystack: TestMedia.haystack, dataset: dataset, out: out)
            Issue.record("a model that fails every request ran the whole sweep")
        } catch let error as NIAHError {
            #expect(error == NIAHError(.tool, "", "the model failed every request of 3 cells in a row (last: HTTP 503 from the server (after 3 retries)); stopped, a rerun resumes"))
        }
        #expect(dead.requests.count == 3 * 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/cells").sorted()
        #expect(files == settings.cells.prefix(3).map(\.failedFileName).sorted())

        let healthy = ScriptedModel(reply: Self.scripted)
        let report = try await NIAHRunner(model: healthy, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(report.cellsComputed == settings.cells.count && report.failed.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/cells").allSatisfy { !$0.contains("failed") })
    }

    /// Teacher forcing and generation do not mix: each entry point refuses the other's settings,
    /// and generation needs the needle as a frame (pixel mode).
    @Test func modesAreRefusedWhereTheyCannotWork() async throws {
        let out = try temporaryFolder("gen-refuse")
        let dataset = try TestMedia.dataset(in: out)
        let model = ScriptedModel(reply: Self.scripted)
        #expect(throws: NIAHError.self) {
            try NIAHRunner(model: model, settings: Self.settings(), logger: quietLogger).run(haystack: TestMedia.haystack, dataset: dataset, out: out)
        }
        var embedding = Self.settings()
        embedding.mode = .embedding
        #expect(throws: NIAHError(.usage, "", "--answer generated sends the needle as a frame of the video: it needs --mode pixel, not embedding")) {
            try embedding.validate()
        }
        var teacher = NIAHRunTests.settings(.pixel)
        teacher.maxNewTokens = 8
        #expect(throws: NIAHError(.usage, "", "--max-new-tokens applies to --answer generated only")) { try teacher.validate() }
        await #expect(throws: NIAHError.self) {
            try await NIAHRunner(model: model, settings: NIAHRunTests.settings(.pixel), logger: quietLogger).runGenerated(
                haystack: TestMedia.haystack, dataset: dataset, out: out)
        }
        #expect(model.requests.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out + "/run.json"))
    }

    /// The real engine through the seam: each recorded answer is what `NativeVisionModel` says
    /// when asked directly with frames decoded by hand; a rerun reuses every cell and asks nothing.
    @Test func nativeEngineThroughTheSeam() async throws {
        let out = try temporaryFolder("gen-native")
        let dataset = try TestMedia.dataset(in: out)
        let loaded = try NVILAModel.load(directory: NIAHRunTests.model, logger: quietLogger)
        let native = NativeVisionModel(model: loaded, identity: "tiny-fp32", displayName: "tiny")
        let settings = Self.settings(minFrames: 2, maxFrames: 4, frameInterval: 2, depthInterval: 0.5, maxNewTokens: 4)
        let first = CountingModel(native)
        let report = try await NIAHRunner(model: first, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(report.cellsComputed == settings.cells.count && report.failed.isEmpty)
        #expect(first.requests.count == 2 * settings.cells.count)

        let haystack = try decodedHaystack(4)
        let needles = [try VideoReader.readImage(path: out + "/needle-a.png"), try VideoReader.readImage(path: out + "/needle-b.png")]
        let questions = try NeedleDataset(path: dataset).questions(rotateChoices: false)
        for cell in [Cell(frames: 4, depth: 0.5), Cell(frames: 2, depth: 1)] {
            let result = try JSONDecoder().decode(CellResult.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/cells/" + cell.fileName)))
            for (k, q) in questions.enumerated() {
                var images = haystack[..<cell.frames].map { $0.image }
                images.insert(needleFrame(needles[k], frameSize: (96, 64)), at: cell.needleIndex)
                let direct = try await native.answer(VisionRequest(
                    media: [.video(images.map { VisionFrame(time: nil, image: $0) })], prompt: q.prompt,
                    generation: GenerationParameters(maxNewTokens: 4, temperature: 0, seed: 24_242_424)))
                let recorded = result.answers[k]
                #expect(recorded.predictedText == direct.text, "cell \(cell), question \(k)")
                #expect(recorded.generation == GenerationRecord(direct), "cell \(cell), question \(k)")
                #expect(recorded.vila == NIAHScoring.vila(predictedText: direct.text, answerText: q.answer))
                #expect(direct.completionTokens > 0 && direct.promptTokens > 0)
            }
        }
        let run = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/run.json")))
        #expect(run.model == ModelIdentity(name: "tiny", fingerprint: "tiny-fp32"))

        let second = CountingModel(native)
        let again = try await NIAHRunner(model: second, settings: settings, logger: quietLogger).runGenerated(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(again.cellsReused == settings.cells.count && again.cellsComputed == 0 && second.requests.isEmpty)
        #expect(again.averageScore == report.averageScore)

        // Another model in the same folder is refused, not mixed in.
        let other = CountingModel(NativeVisionModel(model: loaded, identity: "tiny-bf16", displayName: "tiny"))
        await #expect(throws: NIAHError.self) {
            try await NIAHRunner(model: other, settings: settings, logger: quietLogger).runGenerated(
                haystack: TestMedia.haystack, dataset: dataset, out: out)
        }
        #expect(other.requests.isEmpty)
    }

    /// run.json files written before the answer mode existed load as teacher-forced, and their
    /// folders resume.
    @Test func runRecordsWithoutAnAnswerModeResume() throws {
        let out = try temporaryFolder("gen-old")
        let dataset = try TestMedia.dataset(in: out)
        var settings = NIAHRunTests.settings(.embedding, depthInterval: 1)
        settings.maxFrames = 4
        let engine = try RecordingModel(NIAHRunTests.model)
        let first = try NIAHRunner(engine: engine, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(first.cellsComputed == 2)
        let path = out + "/run.json"
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var old = try #require(json["settings"] as? [String: Any])
        #expect(old["answer"] as? String == "teacher-forced" && old["maxNewTokens"] == nil)
        old["answer"] = nil
        json["settings"] = old
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let decoded = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(decoded.settings == settings && decoded.settings.answer == .teacherForced)

        let again = try NIAHRunner(engine: engine, settings: settings, logger: quietLogger).run(
            haystack: TestMedia.haystack, dataset: dataset, out: out)
        #expect(again.cellsReused == 2 && again.cellsComputed == 0 && engine.predictions.count == 4)
    }
}
