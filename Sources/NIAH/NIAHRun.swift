import CaptionWriters
import DenseCore
import Engine
import Foundation
import Logging
import VideoIO

/// One question's teacher-forced answer in a cell, with every reference's verdict.
public struct AnswerRecord: Codable, Equatable, Sendable {
    public var needle: Int
    public var rotation: Int
    public var answerIDs: [Int]
    public var predictedIDs: [Int]
    public var predictedText: String
    public var longva: Bool
    public var vila: Bool
    public var vnbench: Bool

    func verdict(_ rule: ScoreRule) -> Bool {
        switch rule {
        case .longva: return longva
        case .vila: return vila
        case .vnbench: return vnbench
        }
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
    /// Prompt rows before the answer (the longest question's).
    public var promptRows: Int
    /// The prompt plus answer went past the positions the model was trained for (computed
    /// anyway, as the references do).
    public var beyondContext: Bool
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
public final class NIAHRunner {
    let engine: NeedleModel
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
        self.settings = settings
        self.logger = logger
    }

    /// Runs every missing cell, then writes the outputs.
    /// - Parameters:
    ///   - progress: cells done and total, after each cell
    ///   - afterCell: called after each computed cell's file is written (tests stop a run here)
    public func run(
        haystack path: String, dataset datasetPath: String, out: String,
        progress: (Int, Int) -> Void = { _, _ in },
        afterCell: (Cell) throws -> Void = { _ in }
    ) throws -> NIAHReport {
        try settings.validate()
        let dataset = try NeedleDataset(path: datasetPath)
        let haystack = try Haystack.inspect(path: path, fps: settings.fps)
        let needed = settings.maxFrames
        if let estimate = Haystack.estimatedFrames(haystack), estimate < needed {
            throw NIAHError(.data, path, "haystack shorter than the sweep: about \(estimate) frames at \(haystack.sampling), --max-frames needs \(needed)")
        }
        let questions = dataset.questions(rotateChoices: settings.rotateChoices)
        let answerIDs = questions.map { engine.tokenize($0.answer) }
        try createDirectory(out)
        try createDirectory(out + "/cells")

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
        report.haystackFramesCached = min(store.count, framesNeeded)
        let extractionStart = Date()
        report.haystackFramesComputed = try Haystack.extract(
            haystack, frames: framesNeeded, into: store, logger: logger,
            tokens: { engine.frameTokens($0, mode: settings.mode) },
            progress: { done, total in logger.debug("haystack frame \(done)/\(total)") })
        try store.finish()
        report.haystackSeconds = Date().timeIntervalSince(extractionStart)
        logger.info("haystack: \(framesNeeded) frames (\(report.haystackFramesComputed) through the tower, \(report.haystackFramesCached) cached)")

        let record = RunRecord(
            densecapVersion: version, model: engine.identity,
            haystack: .init(path: path, sha256: haystack.sha256, sampling: haystack.sampling.description,
                            width: haystack.displaySize.width, height: haystack.displaySize.height,
                            framePTS: (0..<framesNeeded).map { store.time($0).rational.description }),
            dataset: datasetPath,
            needles: dataset.needles.map { .init(index: $0.index, path: $0.path, sha256: $0.imageSHA256, prompt: $0.prompt, answer: $0.answer) },
            seed: settings.seed, settings: settings, refused: report.refused)
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

        // Needles once per run, in the mode's preparation.
        let needleTokens = try dataset.needles.map { n in
            engine.needleTokens(try loadImage(n.imagePath), mode: settings.mode, frameSize: haystack.displaySize)
        }

        var results: [CellResult] = []
        for (done, item) in plan.enumerated() {
            let cell = item.cell
            let file = out + "/cells/" + cell.fileName
            if let data = FileManager.default.contents(atPath: file), let result = try? JSONDecoder().decode(CellResult.self, from: data),
               result.frames == cell.frames, result.depth == cell.depth, result.answers.count == questions.count {
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
            try write(try encodeJSON(result), to: file)
            results.append(result)
            report.cellsComputed += 1
            report.cellSeconds += Date().timeIntervalSince(cellStart)
            logger.info("cell \(cell.frames) frames, depth \(cell.depthPercent): score \(result.score)")
            progress(done + 1, plan.count)
            try afterCell(cell)
        }
        report.beyondContextCells = results.filter(\.beyondContext).count
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

/// The first picture of an image file (any format FFmpeg decodes), upright as displayed.
func loadImage(_ path: String) throws -> RGBImage {
    let reader = try VideoReader(path: path)
    guard let frame = try reader.nextFrame() else { throw NIAHError(.data, path, "no picture could be decoded") }
    return try reader.image(from: frame)
}
