import DenseCore
import Foundation

/// Why an event starts where it does.
public enum BoundaryKind: String, Sendable, Codable, CaseIterable {
    /// The first event of the stream.
    case start
    /// A hard cut: one frame to the next.
    case cut
    /// A fade to or from black or white.
    case fade
    /// A gradual cross-dissolve between two shots.
    case dissolve
    /// Motion starting or stopping in a static-camera scene.
    case motion
    /// The per-frame embeddings moved away from the running event.
    case semantic
    /// No detector fired: the event was split at the maximum event length.
    case split

    /// Which kind wins when candidates of several kinds are fused into one boundary (a fade or
    /// a dissolve outranks the cuts its frames cause: the dissolve test rejects hard cuts itself).
    var precedence: Int {
        switch self {
        case .fade: 6
        case .dissolve: 5
        case .cut: 4
        case .semantic: 3
        case .motion: 2
        case .split: 1
        case .start: 0
        }
    }
}

/// One detector's decision that a new event starts at `time`.
public struct Boundary: Sendable, Equatable, CustomStringConvertible {
    /// First frame of the new event (for fades and dissolves, the middle of the transition).
    public var time: MediaTime
    public var kind: BoundaryKind
    /// 0…1: how sure the detector is.
    public var confidence: Double
    /// The detector's raw score at the decision (content score, ratio, novelty, …).
    public var score: Double
    /// For transitions, the first and last frame that belong to it; both `time` for a cut.
    public var transitionStart: MediaTime
    public var transitionEnd: MediaTime
    /// The detector that decided it.
    public var detector: String

    public init(
        time: MediaTime, kind: BoundaryKind, confidence: Double, score: Double,
        transitionStart: MediaTime? = nil, transitionEnd: MediaTime? = nil, detector: String
    ) {
        self.time = time
        self.kind = kind
        self.confidence = min(1, max(0, confidence))
        self.score = score
        self.transitionStart = transitionStart ?? time
        self.transitionEnd = transitionEnd ?? time
        self.detector = detector
    }

    public var description: String {
        "\(kind.rawValue)@\(time.secondsString)(\(detector), c=\(String(format: "%.2f", confidence)))"
    }
}

/// Maps how far a score passed its threshold (`strength` = score / threshold ≥ 1) to a
/// confidence: 0.5 just at the threshold, 1 at three times it.
func confidence(strength: Double) -> Double {
    min(1, max(0, 0.5 + 0.25 * (strength - 1)))
}

/// A stretch of the video between two boundaries: what gets captioned.
public struct Event: Sendable, Equatable {
    public var start: MediaTime
    /// Exclusive end: the next event's start, or the end of the stream.
    public var end: MediaTime
    /// The frame that best represents the event (the peak of motion for motion events, else
    /// the frame nearest the middle); always the time of a frame the segmenter saw.
    public var keyframe: MediaTime
    /// How sure the boundary that opens this event is (1 for the first event).
    public var confidence: Double
    /// The kind of boundary that opens this event.
    public var kind: BoundaryKind
    /// Nothing moved during the event (motion energy stayed below the detector's threshold).
    public var isStatic: Bool
    /// With gating on: a static stretch that a captioner may skip.
    public var skippable: Bool
    /// Filled by the captioning pipeline.
    public var caption: String?
    /// The frames the captioner used, filled by the pipeline.
    public var frameTimes: [MediaTime]
    /// How the caption was generated (model, seed, usage, why it ended), filled by the pipeline.
    public var generation: CaptionGeneration?

    public init(
        start: MediaTime, end: MediaTime, keyframe: MediaTime, confidence: Double, kind: BoundaryKind,
        isStatic: Bool = false, skippable: Bool = false, caption: String? = nil, frameTimes: [MediaTime] = []
    ) {
        self.start = start
        self.end = end
        self.keyframe = keyframe
        self.confidence = confidence
        self.kind = kind
        self.isStatic = isStatic
        self.skippable = skippable
        self.caption = caption
        self.frameTimes = frameTimes
    }

    public var duration: MediaTime { end - start }
}

/// How one caption came to be: the model that answered, the seed, the usage and why generation
/// ended (`length`: cut at the token limit, so the caption is truncated).
public struct CaptionGeneration: Codable, Equatable, Sendable {
    public var model: String
    public var seed: UInt64
    public var promptTokens: Int
    public var completionTokens: Int
    /// `stop` or `length`, as the OpenAI API says it.
    public var finishReason: String

    public init(model: String, seed: UInt64, promptTokens: Int, completionTokens: Int, finishReason: String) {
        self.model = model
        self.seed = seed
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.finishReason = finishReason
    }

    public var truncated: Bool { finishReason == "length" }
}
