import DenseCore
import Foundation

// The V-NIAH protocol of LongVA (`vision_niah/eval_vision_niah.py` at f1d3a89) and its NVlabs/VILA
// port (`llava/eval/vision_niah_vila/eval_vision_niah.py` at b760c34): a sweep of haystack lengths
// N × needle depths d, the needle inserted before haystack frame `int(d × N)` (N + 1 frames in
// all), each needle's answer teacher-forced after its question (or, in generated mode, the
// model's greedy answer through the `VisionLanguageModel` seam, scored on its text).

/// How the needle reaches the model.
public enum NeedleMode: String, Codable, Sendable, CaseIterable {
    /// The needle image's projected tokens spliced between the haystack frames' tokens, frames
    /// flattened with no separators inside the reference's `qwen2` prompt template; both the
    /// haystack frames and the needle are padded to a square first (`image_aspect_ratio = "pad"`),
    /// as the references' embedding scripts force. For parity with published numbers.
    case embedding
    /// The needle image becomes a frame of the stream (resized to the video's display size) and
    /// goes through the checkpoint's whole video path: its image mode, tower, projector, video
    /// encoder (per-frame "\n" or TSP temporal pooling) and its own chat template. What real
    /// inference sees (VILA issue #194).
    case pixel
}

/// Which of the references' verdicts makes a cell's score.
public enum ScoreRule: String, Codable, Sendable, CaseIterable {
    /// LongVA: the teacher-forced argmax ids equal the answer ids (generated: the text begins
    /// with the answer, `NIAHScoring.longva(generatedText:answerText:)`).
    case longva
    /// VILA: the argmax ids decoded, spaces removed and lower-cased, equal the answer so treated.
    case vila
    /// VNBench: the decoded prediction cut at the first "." and reduced to the first of A/B/C/D
    /// it contains (in that priority), equal to the answer letter.
    case vnbench
}

/// How an answer is obtained from the model.
public enum AnswerMode: String, Codable, Sendable, CaseIterable {
    /// The references' way: the answer teacher-forced after the question, the argmax ids at its
    /// positions kept. Needs the model's logits: the in-process NVILA engine only.
    case teacherForced = "teacher-forced"
    /// Greedy generation through the `VisionLanguageModel` seam (the native engine or a remote
    /// server): the cell's frames as one video, the question as the prompt, the generated text
    /// scored by the text rules.
    case generated
}

/// Everything that changes a run's numbers; recorded in `run.json` and compared on resume.
public struct NIAHSettings: Codable, Equatable, Sendable {
    public var minFrames = 20
    public var maxFrames = 300
    public var frameInterval = 20
    /// Depth step Δ: depths are `np.arange(0, 1 + Δ, Δ)`, as the references compute them.
    public var depthInterval = 0.1
    /// Frames per second sampled from the haystack; nil: the references' rule, every
    /// `round(avg_fps)`-th decoded frame (1 fps).
    public var fps: Rational?
    public var mode: NeedleMode = .embedding
    public var score: ScoreRule = .longva
    /// VNBench-style: every multiple-choice needle is asked once per rotation of its options and
    /// counts only if every rotation is right.
    public var rotateChoices = false
    /// The references' seed (24242424). Teacher forcing draws nothing at random; recorded so a
    /// run states it.
    public var seed: UInt64 = 24_242_424
    /// Bytes a cell may need at its peak; cells estimated above it are refused up front (nil:
    /// 80 % of the machine's physical memory).
    public var memoryLimit: Int?
    /// Teacher-forced (the references) or generated (through the seam). Absent from run.json
    /// files written before it existed: those runs were teacher-forced.
    public var answer: AnswerMode = .teacherForced
    /// Generated mode's `max_new_tokens` (nil when teacher-forced).
    public var maxNewTokens: Int?

    /// Generated mode's default `maxNewTokens`: the datasets' answers are an option letter or a
    /// word or short phrase; 32 tokens leave room for a model that adds a sentence, so the text
    /// rules, not truncation, decide.
    public static let defaultMaxNewTokens = 32

    public init() {}

    enum CodingKeys: String, CodingKey {
        case minFrames, maxFrames, frameInterval, depthInterval, fps, mode, score, rotateChoices, seed, memoryLimit, answer, maxNewTokens
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        minFrames = try c.decode(Int.self, forKey: .minFrames)
        maxFrames = try c.decode(Int.self, forKey: .maxFrames)
        frameInterval = try c.decode(Int.self, forKey: .frameInterval)
        depthInterval = try c.decode(Double.self, forKey: .depthInterval)
        fps = try c.decodeIfPresent(Rational.self, forKey: .fps)
        mode = try c.decode(NeedleMode.self, forKey: .mode)
        score = try c.decode(ScoreRule.self, forKey: .score)
        rotateChoices = try c.decode(Bool.self, forKey: .rotateChoices)
        seed = try c.decode(UInt64.self, forKey: .seed)
        memoryLimit = try c.decodeIfPresent(Int.self, forKey: .memoryLimit)
        answer = try c.decodeIfPresent(AnswerMode.self, forKey: .answer) ?? .teacherForced
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens)
    }

    /// Haystack lengths: `range(min, max + 1, interval)`.
    public var frameCounts: [Int] { Array(stride(from: minFrames, through: maxFrames, by: frameInterval)) }

    /// Depths as `np.arange(0, 1 + Δ, Δ)` gives them: `ceil((1 + Δ) / Δ)` values `k × Δ` (so a Δ
    /// that does not divide 1 overshoots past 1, as in the references).
    public var depths: [Double] {
        let count = Int(((1 + depthInterval) / depthInterval).rounded(.up))
        return (0..<count).map { Double($0) * depthInterval }
    }

    /// Every cell in the references' order (frame counts outer, depths inner).
    public var cells: [Cell] {
        frameCounts.flatMap { n in depths.map { Cell(frames: n, depth: $0) } }
    }

    /// Checks the sweep itself (not the inputs).
    public func validate() throws {
        guard minFrames > 0 else { throw NIAHError(.usage, "", "--min-frames must be positive") }
        guard maxFrames >= minFrames else { throw NIAHError(.usage, "", "--max-frames must be at least --min-frames") }
        guard frameInterval > 0 else { throw NIAHError(.usage, "", "--frame-interval must be positive") }
        guard depthInterval >= 0.0001, depthInterval <= 1 else { throw NIAHError(.usage, "", "--depth-interval must be in [0.0001, 1]") }
        if let fps, fps <= .zero { throw NIAHError(.usage, "", "--fps must be positive") }
        switch answer {
        case .teacherForced:
            guard maxNewTokens == nil else { throw NIAHError(.usage, "", "--max-new-tokens applies to --answer generated only") }
        case .generated:
            guard mode == .pixel else {
                throw NIAHError(.usage, "", "--answer generated sends the needle as a frame of the video: it needs --mode pixel, not \(mode.rawValue)")
            }
            guard let maxNewTokens, maxNewTokens > 0 else { throw NIAHError(.usage, "", "--max-new-tokens must be positive") }
        }
    }
}

/// One point of the sweep: N haystack frames, the needle at depth d.
public struct Cell: Sendable, Equatable, Hashable {
    public var frames: Int
    public var depth: Double

    public init(frames: Int, depth: Double) {
        self.frames = frames
        self.depth = depth
    }

    /// Where the needle goes: `int(depth × num_frames)`, before that haystack frame.
    public var needleIndex: Int { Int(depth * Double(frames)) }

    /// `round(depth × 100, -1)`: the "Frame Depth" the references report (Python rounds half to even).
    public var depthPercent: Double { ((depth * 100) / 10).rounded(.toNearestOrEven) * 10 }

    /// The per-cell file name: `frame_{N}_depth_{P}.json`, P the depth percent to 6 significant
    /// digits. (The VILA port's `int(depth × 100)` makes two cells one file for Δ = 0.01: 0.28
    /// and 0.29 both give 28.)
    public var fileName: String { "frame_\(frames)_depth_\(String(format: "%g", depth * 100)).json" }

    /// Where a generated cell whose model call failed is recorded: `frame_{N}_depth_{P}.failed.json`.
    public var failedFileName: String { "frame_\(frames)_depth_\(String(format: "%g", depth * 100)).failed.json" }
}

/// The frame sequence of a cell: `haystack[:i] + [needle] + haystack[i:N]`, i = `int(d × N)`.
/// - Returns: N + 1 items, the needle at `cell.needleIndex` (clamped to N for depths past 1).
public func insertNeedle<T>(_ needle: T, into haystack: some Collection<T>, cell: Cell) -> [T] {
    let frames = Array(haystack.prefix(cell.frames))
    let i = min(cell.needleIndex, frames.count)
    return Array(frames[..<i]) + [needle] + Array(frames[i...])
}

/// What went wrong, with the exit status the CLI gives it.
public struct NIAHError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Bad flags or settings (64).
        case usage
        /// An input is not what it should be: empty dataset, short haystack, bad JSON (65).
        case data
        /// An input file is missing or unreadable (66).
        case missing
        /// An output cannot be written (73).
        case output
        /// A tool the run needs failed: the ffmpeg CLI, or the model on every request (1).
        case tool
    }

    public let kind: Kind
    public let path: String
    public let reason: String

    public init(_ kind: Kind, _ path: String, _ reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}
