import CaptionWriters
import DenseCore
import Engine
import Foundation
import Logging
import ModelAPI
import VideoIO

/// One question's answer in a cell (teacher-forced or generated), with every reference's verdict.
public struct AnswerRecord: Codable, Equatable, Sendable {
    public var needle: Int
    public var rotation: Int
    /// The answer's ids (teacher-forced only).
    public var answerIDs: [Int]?
    /// The argmax ids at the answer's positions (teacher-forced only).
    public var predictedIDs: [Int]?
    /// Teacher-forced: `predictedIDs` decoded; generated: the generated text.
    public var predictedText: String
    public var longva: Bool
    public var vila: Bool
    public var vnbench: Bool
    /// How the text was generated (generated only).
    public var generation: GenerationRecord?

    func verdict(_ rule: ScoreRule) -> Bool {
        switch rule {
        case .longva: return longva
        case .vila: return vila
        case .vnbench: return vnbench
        }
    }
}

/// What a generated answer cost and why it ended, as the model reported it.
public struct GenerationRecord: Codable, Equatable, Sendable {
    /// `stop`, or `length` when `maxNewTokens` cut the text.
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var completionTokens: Int
    /// The model that answered, as it names itself.
    public var model: String

    init(_ answer: VisionAnswer) {
        finishReason = answer.finishReason
        promptTokens = answer.promptTokens
        completionTokens = answer.completionTokens
        model = answer.model
    }
}

/// One cell's result file (`cells/frame_{N}_depth_{D}.json`): the references' three keys, then
/// what produced them.
public struct CellResult: Codable, Equatable, Sendable {
    public var frames: Int
    public var depthPercent: Double
    public var score: Double
    public var depth: Double
    public var needleIndex: Int
    /// Prompt rows before the answer (the longest question's); generated: the most prompt tokens
    /// the model reported.
    public var promptRows: Int
    /// The prompt plus answer went past the positions the model was trained for (computed
    /// anyway, as the references do). Unknown (absent) when generated: the seam does not say.
    public var beyondContext: Bool?
    public var answers: [AnswerRecord]

    enum CodingKeys: String, CodingKey {
        case frames = "Num. Frame", depthPercent = "Frame Depth", score = "Score"
        case depth, needleIndex, promptRows, beyondContext, answers
    }

    /// Mean over needles of "every question about it right" under `rule`.
    static func score(_ answers: [AnswerRecord], rule: ScoreRule) -> Double {
        let byNeedle = Dictionary(grouping: answers, by: \.needle)
        let right = byNeedle.values.filter { $0.allSatisfy { $0.verdict(rule) } }.count
        return Double(right) / Double(max(byNeedle.count, 1))
    }
}

/// A cell not computed, and why.
public struct RefusedCell: Codable, Equatable, Sendable {
    public var frames: Int
    public var depth: Double
    public var reason: String
}

/// A generated cell whose model call failed (`cells/frame_N_depth_P.failed.json`): what answered
/// and what failed. It has no score, is left out of the outputs and is computed again by the next
/// run (which removes this file once the cell succeeds).
public struct FailedCell: Codable, Equatable, Sendable {
    public struct Failure: Codable, Equatable, Sendable {
        public var needle: Int
        public var rotation: Int
        public var error: String
    }

    public var frames: Int
    public var depth: Double
    public var needleIndex: Int
    public var answers: [AnswerRecord]
    public var failures: [Failure]
}

/// What `run.json` records: enough to reproduce the run and to refuse resuming a different one.
public struct RunRecord: Codable, Equatable, Sendable {
    public struct HaystackRecord: Codable, Equatable, Sendable {
        public var path: String
        public var sha256: String
        public var sampling: String
        public var width: Int
        public var height: Int
        /// Presentation times of the frames used, exact (`num/den` seconds), in order.
        public var framePTS: [String]
    }

    public struct NeedleRecord: Codable, Equatable, Sendable {
        public var index: Int
        public var path: String
        public var sha256: String
        public var prompt: String
        public var answer: String
    }

    public var tool = "densecap niah"
    public var densecapVersion: String
    public var model: ModelIdentity
    public var haystack: HaystackRecord
    public var dataset: String
    public var needles: [NeedleRecord]
    public var seed: UInt64
    public var settings: NIAHSettings
    public var refused: [RefusedCell]

    /// The parts that must match for cells to be reused.
    func sameExperiment(as other: RunRecord) -> String? {
        if settings != other.settings { return "settings" }
        if model != other.model { return "model" }
        if haystack.sha256 != other.haystack.sha256 || haystack.framePTS != other.haystack.framePTS { return "haystack" }
        if needles != other.needles { return "needles" }
        return nil
    }
}

/// What a run did, for the caller's summary and for tests that count the work.
public struct NIAHReport: Sendable {
    public var cellsComputed = 0
    public var cellsReused = 0
    public var refused: [RefusedCell] = []
    /// Generated cells whose model call failed (recorded, computed again by the next run).
    public var failed: [FailedCell] = []
    /// Requests sent through the seam (generated mode).
    public var requests = 0
    public var haystackFramesComputed = 0
    public var haystackFramesCached = 0
    public var forwardPasses = 0
    public var averageScore: Double?
    public var beyondContextCells = 0
    /// Wall time of the haystack frames computed in this run (decode, tower, projector).
    public var haystackSeconds = 0.0
    /// Wall time of the cells computed in this run, all questions included.
    public var cellSeconds = 0.0
}

/// The V-NIAH sweep over one model, haystack and needle dataset into one output folder.
///
/// Two ways to answer (`NIAHSettings.answer`): teacher-forced (`run`, the references' protocol,
/// the in-process NVILA engine and its logits) and generated (`runGenerated`, any
/// `VisionLanguageModel`: the native engine or a remote server, text only).
public final class NIAHRunner {
    /// The teacher-forced model.
    let engine: NeedleModel?
    /// The model behind the seam (generated mode).
    let vision: (any VisionLanguageModel)?
    public let settings: NIAHSettings
    let logger: Logger
    /// Version string recorded in `run.json`.
    public var version = "unknown"
    /// Where the haystack feature cache lives (default: the output folder).
    public var cacheDirectory: String?

    /// The in-process NVILA engine. - Parameters: name: what the user called the model (a folder
    /// or Hub id); directory: its checkpoint folder (fingerprinted)
    public convenience init(model: NVILAModel, name: String, directory: String, settings: NIAHSettings, logger: Logger) {
        self.init(engine: NVILANeedleModel(model: model, name: name, directory: directory), settings: settings, logger: logger)
    }

    init(engine: NeedleModel, settings: NIAHSettings, logger: Logger) {
        self.engine = engine
        self.vision = nil
        self.settings = settings
        self.logger = logger
    }

    /// Generated mode through the seam: `runGenerated` asks `model` and nothing else.
    public init(model: any VisionLanguageModel, settings: NIAHSettings, logger: Logger) {
        self.engine = nil
        self.vision = model
        self.settings = settings
        self.logger = logger
    }

    /// Runs every missing cell teacher-forced, then writes the outputs.
    /// - Parameters:
    ///   - progress: cells done and total, after each cell
    ///   - afterCell: called after each computed cell's file is written (tests stop a run here)
    public func run(
        haystack path: String, dataset datasetPath: String, out: String,
        progress: (Int, Int) -> Void = { _, _ in },
        afterCell: (Cell) throws -> Void = { _ in }
    ) throws -> NIAHReport {
        guard let engine, settings.answer == .teacherForced else {
            throw NIAHError(.usage, "", "teacher forcing needs the in-process engine's logits; a model behind the seam answers with --answer generated")
        }
        let (dataset, haystack, questions) = try prepare(haystack: path, dataset: datasetPath, out: out)
        let answerIDs = questions.map { engine.tokenize($0.answer) }

        // Honest limits, before any work: refuse what cannot fit, warn about what goes past the context.
        var report = NIAHReport()
        let limit = settings.memoryLimit ?? Int(Double(ProcessInfo.processInfo.physicalMemory) * 0.8)
        var plan: [(cell: Cell, rows: Int, beyondContext: Bool)] = []
        for cell in settings.cells {
            let rows = try zip(questions, answerIDs).map { q, a in
                try engine.promptLength(frames: cell.frames + 1, question: q.prompt, mode: settings.mode) + a.count
            }.max() ?? 0
            let peak = engine.peakBytes(rows: rows)
            if peak > limit {
                let reason = "needs about \(gib(peak)) GiB for \(rows) positions, over the \(gib(limit)) GiB limit (--memory-limit)"
                report.refused.append(RefusedCell(frames: cell.frames, depth: cell.depth, reason: reason))
                logger.warning("cell \(cell.frames) frames, depth \(cell.depthPercent): refused: \(reason)")
                continue
            }
            plan.append((cell, rows - (answerIDs.map(\.count).max() ?? 0), rows > engine.contextLength))
        }
        if let over = plan.filter(\.beyondContext).first {
            logger.warning("\(plan.filter(\.beyondContext).count) cells go past the model's \(engine.contextLength) trained positions (first: \(over.cell.frames) frames, \(over.rows) prompt positions); computed anyway as the references do, marked beyondContext")
        }

        // Haystack features once (only as many frames as the largest computed cell needs).
        let framesNeeded = plan.map(\.cell.frames).max() ?? 0
        let store = try FeatureStore(
            path: (cacheDirectory ?? out) + "/haystack-\(settings.mode.rawValue).features",
            key: "\(engine.identity.fingerprint)|\(settings.mode.rawValue)|\(haystack.sha256)|\(haystack.sampling)",
            tokenShape: engine.frameTokenShape)
        try extractHaystack(haystack, frames: framesNeeded, into: store, report: &report, through: "through the tower") { time, image in
            try store.append(time: time, tokens: engine.frameTokens(image, mode: self.settings.mode))
        }
        try writeRunRecord(model: engine.identity, haystack: haystack, store: store, frames: framesNeeded, dataset: dataset,
                           refused: report.refused, out: out)

        // Needles once per run, in the mode's preparation.
        let needleTokens = try dataset.needles.map { n in
            engine.needleTokens(try VideoReader.readImage(path: n.imagePath), mode: settings.mode, frameSize: haystack.displaySize)
        }

        var results: [CellResult] = []
        for (done, item) in plan.enumerated() {
            let cell = item.cell
            if let result = reusableCell(cell, out: out, questions: questions.count) {
                results.append(result)
                report.cellsReused += 1
                progress(done + 1, plan.count)
                continue
            }
            let cellStart = Date()
            let haystackFrames = (0..<cell.frames).lazy.map { store.tokens($0) }
            var answers: [AnswerRecord] = []
            for (q, answer) in zip(questions, answerIDs) {
                let frames = insertNeedle(needleTokens[q.needle], into: haystackFrames, cell: cell)
                let predicted = try engine.predict(frames: frames, question: q.prompt, answer: answer, mode: settings.mode)
                report.forwardPasses += 1
                let text = engine.decode(predicted), answerText = engine.decode(answer)
                answers.append(AnswerRecord(
                    needle: q.needle, rotation: q.rotation, answerIDs: answer, predictedIDs: predicted, predictedText: text,
                    longva: NIAHScoring.longva(predicted: predicted, answer: answer),
                    vila: NIAHScoring.vila(predictedText: text, answerText: answerText),
                    vnbench: NIAHScoring.vnbench(predictedText: text, answer: answerText)))
            }
            let result = CellResult(
                frames: cell.frames, depthPercent: cell.depthPercent, score: CellResult.score(answers, rule: settings.score),
                depth: cell.depth, needleIndex: cell.needleIndex, promptRows: item.rows, beyondContext: item.beyondContext,
                answers: answers)
            try recordCell(result, cellStart: cellStart, out: out, results: &results, report: &report)
            progress(done + 1, plan.count)
            try afterCell(cell)
        }
        return try finish(results, report: report, out: out)
    }

    /// Runs every missing cell by generation through the seam, then writes the outputs.
    ///
    /// Each cell is the haystack's first N sampled frames as decoded (kept once in
    /// `haystack-frames.rgb`, memory-mapped), each with its PTS, and the needle picture resized to
    /// the video's size before frame `int(d × N)` at `needleTime`'s time: one `.video` request per
    /// question with the question as the prompt, greedy (temperature 0, the run's seed,
    /// `maxNewTokens`). The generated text is scored by the text rules (`longva(generatedText:)`,
    /// `vila`, `vnbench`). A cell whose model call fails is recorded in its `.failed.json` and left
    /// for the next run; the other cells go on, unless every request of `deadCellLimit` cells in a
    /// row failed (then it throws `NIAHError.tool`).
    /// - Parameters: as `run`'s (`afterCell` also follows a failed cell's file)
    public func runGenerated(
        haystack path: String, dataset datasetPath: String, out: String,
        progress: (Int, Int) -> Void = { _, _ in },
        afterCell: (Cell) throws -> Void = { _ in }
    ) async throws -> NIAHReport {
        guard let vision, settings.answer == .generated, let maxNewTokens = settings.maxNewTokens else {
            throw NIAHError(.usage, "", "generated mode needs --answer generated and a model behind the seam")
        }
        let (dataset, haystack, questions) = try prepare(haystack: path, dataset: datasetPath, out: out)
        var report = NIAHReport()
        let plan = settings.cells
        let framesNeeded = plan.map(\.frames).max() ?? 0
        let (width, height) = haystack.displaySize
        let store = try FeatureStore(
            path: (cacheDirectory ?? out) + "/haystack-frames.rgb", key: "rgb8|\(haystack.sha256)|\(haystack.sampling)",
            tokenShape: [height, width, 3], pixels: true)
        try extractHaystack(haystack, frames: framesNeeded, into: store, report: &report, through: "decoded") { time, image in
            try store.append(time: time, image: image)
        }
        try writeRunRecord(model: ModelIdentity(name: vision.displayName, fingerprint: vision.identity), haystack: haystack,
                           store: store, frames: framesNeeded, dataset: dataset, refused: [], out: out)

        let needles = try dataset.needles.map { needleFrame(try VideoReader.readImage(path: $0.imagePath), frameSize: haystack.displaySize) }
        let generation = GenerationParameters(maxNewTokens: maxNewTokens, temperature: 0, topP: 1, seed: settings.seed)
        var results: [CellResult] = []
        var deadCells = 0  // cells in a row where every request failed
        for (done, cell) in plan.enumerated() {
            if let result = reusableCell(cell, out: out, questions: questions.count) {
                results.append(result)
                report.cellsReused += 1
                progress(done + 1, plan.count)
                continue
            }
            let cellStart = Date()
            let haystackFrames = (0..<cell.frames).map { VisionFrame(time: store.time($0), image: store.image($0)) }
            let shownAt = needleTime(haystackFrames.map { $0.time! }, at: min(cell.needleIndex, cell.frames))
            let requests = questions.map { q in
                VisionRequest(media: [.video(insertNeedle(VisionFrame(time: shownAt, image: needles[q.needle]), into: haystackFrames, cell: cell))],
                              prompt: q.prompt, generation: generation)
            }
            let replies = await vision.answer(requests)
            report.requests += requests.count
            var answers: [AnswerRecord] = []
            var failures: [FailedCell.Failure] = []
            for (q, reply) in zip(questions, replies) {
                switch reply {
                case .success(let a):
                    answers.append(AnswerRecord(
                        needle: q.needle, rotation: q.rotation, predictedText: a.text,
                        longva: NIAHScoring.longva(generatedText: a.text, answerText: q.answer),
                        vila: NIAHScoring.vila(predictedText: a.text, answerText: q.answer),
                        vnbench: NIAHScoring.vnbench(predictedText: a.text, answer: q.answer),
                        generation: GenerationRecord(a)))
                case .failure(let error):
                    // One line, whatever a server's message holds.
                    let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
                    failures.append(.init(needle: q.needle, rotation: q.rotation, error: line))
                }
            }
            let failedFile = out + "/cells/" + cell.failedFileName
            if failures.isEmpty {
                let result = CellResult(
                    frames: cell.frames, depthPercent: cell.depthPercent, score: CellResult.score(answers, rule: settings.score),
                    depth: cell.depth, needleIndex: cell.needleIndex, promptRows: answers.compactMap(\.generation?.promptTokens).max() ?? 0,
                    beyondContext: nil, answers: answers)
                try recordCell(result, cellStart: cellStart, out: out, results: &results, report: &report)
                try? FileManager.default.removeItem(atPath: failedFile)
            } else {
                let failed = FailedCell(frames: cell.frames, depth: cell.depth, needleIndex: cell.needleIndex, answers: answers, failures: failures)
                try write(try encodeJSON(failed), to: failedFile)
                report.failed.append(failed)
                logger.warning("cell \(cell.frames) frames, depth \(cell.depthPercent): \(failures.count) of \(questions.count) answers failed (first: \(failures[0].error)); recorded in \(failedFile), computed again by the next run")
            }
            deadCells = answers.isEmpty ? deadCells + 1 : 0
            if deadCells == Self.deadCellLimit {
                throw NIAHError(.tool, "", "the model failed every request of \(deadCells) cells in a row (last: \(failures[0].error)); stopped, a rerun resumes")
            }
            progress(done + 1, plan.count)
            try afterCell(cell)
        }
        return try finish(results, report: report, out: out)
    }

    /// Generated mode stops after this many cells in a row whose every request failed (a server
    /// down), rather than record the rest of the sweep as failed.
    static let deadCellLimit = 3

    /// Checks the settings and inputs and makes the output folders. - Returns: the dataset, the
    /// haystack and the questions to ask
    private func prepare(haystack path: String, dataset datasetPath: String, out: String) throws
        -> (NeedleDataset, HaystackInfo, [NeedleQuestion])
    {
        try settings.validate()
        let dataset = try NeedleDataset(path: datasetPath)
        let haystack = try Haystack.inspect(path: path, fps: settings.fps)
        let needed = settings.maxFrames
        if let estimate = Haystack.estimatedFrames(haystack), estimate < needed {
            throw NIAHError(.data, path, "haystack shorter than the sweep: about \(estimate) frames at \(haystack.sampling), --max-frames needs \(needed)")
        }
        try createDirectory(out)
        try createDirectory(out + "/cells")
        return (dataset, haystack, dataset.questions(rotateChoices: settings.rotateChoices))
    }

    /// Fills `store` with the first `frames` sampled haystack frames, `append` storing each.
    private func extractHaystack(
        _ haystack: HaystackInfo, frames: Int, into store: FeatureStore, report: inout NIAHReport, through: String,
        append: (MediaTime, RGBImage) throws -> Void
    ) throws {
        report.haystackFramesCached = min(store.count, frames)
        let extractionStart = Date()
        report.haystackFramesComputed = try Haystack.extract(
            haystack, frames: frames, into: store, logger: logger, append: append,
            progress: { done, total in logger.debug("haystack frame \(done)/\(total)") })
        try store.finish()
        report.haystackSeconds = Date().timeIntervalSince(extractionStart)
        logger.info("haystack: \(frames) frames (\(report.haystackFramesComputed) \(through), \(report.haystackFramesCached) cached)")
    }

    /// Writes `run.json`, refusing an output folder that holds a different experiment.
    private func writeRunRecord(
        model: ModelIdentity, haystack: HaystackInfo, store: FeatureStore, frames: Int, dataset: NeedleDataset,
        refused: [RefusedCell], out: String
    ) throws {
        let record = RunRecord(
            densecapVersion: version, model: model,
            haystack: .init(path: haystack.path, sha256: haystack.sha256, sampling: haystack.sampling.description,
                            width: haystack.displaySize.width, height: haystack.displaySize.height,
                            framePTS: (0..<frames).map { store.time($0).rational.description }),
            dataset: dataset.path,
            needles: dataset.needles.map { .init(index: $0.index, path: $0.path, sha256: $0.imageSHA256, prompt: $0.prompt, answer: $0.answer) },
            seed: settings.seed, settings: settings, refused: refused)
        let runPath = out + "/run.json"
        if let data = FileManager.default.contents(atPath: runPath) {
            guard let previous = try? JSONDecoder().decode(RunRecord.self, from: data) else {
                throw NIAHError(.data, runPath, "not a densecap niah run record; use another --out")
            }
            if let what = previous.sameExperiment(as: record) {
                throw NIAHError(.usage, out, "holds a run with different \(what); use another --out to keep both")
            }
        }
        try write(try encodeJSON(record), to: runPath)
    }

    /// A cell's result file from an earlier run, when whole.
    private func reusableCell(_ cell: Cell, out: String, questions: Int) -> CellResult? {
        guard let data = FileManager.default.contents(atPath: out + "/cells/" + cell.fileName),
              let result = try? JSONDecoder().decode(CellResult.self, from: data),
              result.frames == cell.frames, result.depth == cell.depth, result.answers.count == questions
        else { return nil }
        return result
    }

    /// Writes a computed cell's file and counts it.
    private func recordCell(_ result: CellResult, cellStart: Date, out: String, results: inout [CellResult], report: inout NIAHReport) throws {
        try write(try encodeJSON(result), to: out + "/cells/" + Cell(frames: result.frames, depth: result.depth).fileName)
        results.append(result)
        report.cellsComputed += 1
        report.cellSeconds += Date().timeIntervalSince(cellStart)
        logger.info("cell \(result.frames) frames, depth \(result.depthPercent): score \(result.score)")
    }

    /// Writes the outputs of the cells done. - Returns: the report with the average
    private func finish(_ results: [CellResult], report: NIAHReport, out: String) throws -> NIAHReport {
        var report = report
        report.beyondContextCells = results.filter { $0.beyondContext == true }.count
        let entries = results.map { AccuracyEntry(frames: $0.frames, depthPercent: $0.depthPercent, score: $0.score) }
        report.averageScore = try NIAHOutputs.write(entries, to: out)
        return report
    }

    private func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw NIAHError(.output, path, "cannot create the folder: \(posixReason(error))")
        }
    }
}

func gib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / Double(1 << 30)) }

func encodeJSON(_ value: some Encodable) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value) + Data("\n".utf8)
}

/// `CaptionWriters.writeAtomically` with the error as this module's.
func write(_ data: Data, to path: String) throws {
    do {
        try writeAtomically(data, to: path)
    } catch let error as WriterError {
        throw NIAHError(.output, error.path, error.reason)
    }
}

/// When a cell shows the needle inserted before haystack frame `i` of frames shown at `times`:
/// half-way between its neighbours, so every haystack frame keeps its PTS and the cell stays in
/// time order. Before the first frame the neighbour is the video's start (0: a haystack starting
/// at 0 shows the needle at 0 too, listed first); after the last, the needle comes half the gap
/// before that frame later (half a second with one frame).
func needleTime(_ times: [MediaTime], at i: Int) -> MediaTime {
    let half = Rational(1, 2)
    if times.isEmpty { return .zero }
    if i <= 0 { return MediaTime((min(Rational.zero, times[0].rational) + times[0].rational) * half) }
    if i >= times.count {
        let last = times[times.count - 1].rational
        let gap = times.count >= 2 ? last - times[times.count - 2].rational : Rational(1)
        return MediaTime(last + gap * half)
    }
    return MediaTime((times[i - 1].rational + times[i].rational) * half)
}
