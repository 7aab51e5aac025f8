import DenseCore

/// A boundary detector in PySceneDetect's shape: frames go in one at a time, in time order;
/// each call returns the boundaries decided so far (a detector with look-ahead reports a
/// boundary a few frames after it), and `finish` flushes what is still pending.
public protocol FrameDetector: AnyObject {
    /// Short name recorded on each boundary ("content", "adaptive", …).
    var name: String { get }
    func process(_ frame: AnalyzedFrame) -> [Boundary]
    func finish() -> [Boundary]
}

// MARK: - Content

/// PySceneDetect's ContentDetector: a cut where the HSV (and optionally edge) difference to
/// the previous frame reaches `threshold` (0…255; PySceneDetect's default 27).
public final class ContentDetector: FrameDetector {
    public let name = "content"
    public let threshold: Double
    public let weights: ContentWeights
    /// Score of the last frame against the one before it.
    public private(set) var lastScore = 0.0
    private var previous: AnalyzedFrame?

    public init(threshold: Double = 27, weights: ContentWeights = .standard) {
        self.threshold = threshold
        self.weights = weights
    }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        defer { previous = frame }
        guard let previous else { return [] }
        return decide(frame.time, contentScore(previous, frame, weights: weights))
    }

    /// Decides on a score computed elsewhere (the segmenter shares one content score per frame).
    func decide(_ time: MediaTime, _ score: Double) -> [Boundary] {
        lastScore = score
        guard score >= threshold else { return [] }
        return [Boundary(time: time, kind: .cut, confidence: confidence(strength: score / threshold),
                         score: score, detector: name)]
    }

    public func finish() -> [Boundary] { [] }
}

// MARK: - Histogram

/// PySceneDetect's HistogramDetector: a cut where the luma histograms of consecutive frames
/// correlate poorly (distance = 1 − correlation ≥ `threshold`).
public final class HistogramDetector: FrameDetector {
    public let name = "histogram"
    public let threshold: Double
    private var previous: AnalyzedFrame?

    public init(threshold: Double = 0.5) { self.threshold = threshold }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        defer { previous = frame }
        guard let previous else { return [] }
        let d = histogramDistance(previous, frame)
        guard d >= threshold else { return [] }
        return [Boundary(time: frame.time, kind: .cut, confidence: confidence(strength: d / threshold), score: d,
                         detector: name)]
    }

    public func finish() -> [Boundary] { [] }
}

// MARK: - Adaptive

/// PySceneDetect's AdaptiveDetector: frame t is a cut when its content score is at least
/// `ratio` times the mean score of the `window` frames on each side of it, and at least
/// `minimumScore`. Fast motion raises the whole neighbourhood and so does not cut; a cut in a
/// still scene stands out. Decisions come `window` frames late.
public final class AdaptiveDetector: FrameDetector {
    public let name = "adaptive"
    public let ratio: Double
    public let minimumScore: Double
    public let window: Int
    public let weights: ContentWeights
    private var previous: AnalyzedFrame?
    /// (time, score) of the last 2·window + 1 frames; the decision is for the middle one.
    private var scores: [(time: MediaTime, score: Double)] = []

    public init(ratio: Double = 3, minimumScore: Double = 15, window: Int = 2, weights: ContentWeights = .standard) {
        precondition(window >= 1, "adaptive window \(window) < 1")
        self.ratio = ratio
        self.minimumScore = minimumScore
        self.window = window
        self.weights = weights
    }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        defer { previous = frame }
        guard let previous else { return [] }
        return push(frame.time, contentScore(previous, frame, weights: weights))
    }

    /// Feeds a score computed elsewhere (the segmenter shares one content score per frame).
    func push(_ time: MediaTime, _ score: Double) -> [Boundary] {
        scores.append((time, score))
        guard scores.count > 2 * window else { return [] }
        if scores.count > 2 * window + 1 { scores.removeFirst() }
        return decide(at: window)
    }

    public func finish() -> [Boundary] {
        // The last `window` frames have fewer neighbours after them: judge them on what there is.
        var out: [Boundary] = []
        let firstUndecided = scores.count > 2 * window ? window + 1 : 0
        if firstUndecided < scores.count {
            for i in firstUndecided..<scores.count where scores.count > 1 { out += decide(at: i) }
        }
        scores.removeAll()
        return out
    }

    private func decide(at i: Int) -> [Boundary] {
        let target = scores[i].score
        guard target >= minimumScore else { return [] }
        let lo = max(0, i - window), hi = min(scores.count - 1, i + window)
        var sum = 0.0, n = 0
        for j in lo...hi where j != i {
            sum += scores[j].score
            n += 1
        }
        let mean = n > 0 ? sum / Double(n) : 0
        let r = mean > 1e-5 ? target / mean : 255
        guard r >= ratio else { return [] }
        let strength = max(r / ratio, target / (2 * minimumScore))
        return [Boundary(time: scores[i].time, kind: .cut, confidence: confidence(strength: strength), score: r,
                         detector: name)]
    }
}

// MARK: - Fade

/// Fades to and from black or white, from the mean luma: a stretch of frames darker than
/// `blackLevel` (or brighter than `whiteLevel`) between normal frames is one transition, and the
/// boundary is its middle frame (PySceneDetect's ThresholdDetector with fade bias 0). A stream that
/// starts in black has no boundary there; one that ends in black gets one where the black begins.
public final class FadeDetector: FrameDetector {
    public let name = "fade"
    public let blackLevel: Double
    public let whiteLevel: Double
    private var seenNormal = false
    /// Times of the current black or white stretch.
    private var stretch: [MediaTime] = []
    private var stretchAfterNormal = false
    private var stretchIsBlack = true
    private var extreme = 0.0

    public init(blackLevel: Double = 16, whiteLevel: Double = 240) {
        self.blackLevel = blackLevel
        self.whiteLevel = whiteLevel
    }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        let black = frame.meanLuma < blackLevel, white = frame.meanLuma > whiteLevel
        if black || white {
            if stretch.isEmpty {
                stretchAfterNormal = seenNormal
                stretchIsBlack = black
                extreme = frame.meanLuma
            }
            stretch.append(frame.time)
            extreme = stretchIsBlack ? min(extreme, frame.meanLuma) : max(extreme, frame.meanLuma)
            return []
        }
        seenNormal = true
        guard !stretch.isEmpty else { return [] }
        defer { stretch = [] }
        guard stretchAfterNormal else { return [] }
        let depth = stretchIsBlack ? (blackLevel - extreme) / blackLevel : (extreme - whiteLevel) / (255 - whiteLevel)
        return [Boundary(time: stretch[stretch.count / 2], kind: .fade, confidence: 0.5 + 0.5 * max(0, min(1, depth)),
                         score: extreme, transitionStart: stretch.first!, transitionEnd: stretch.last!,
                         detector: name)]
    }

    /// A stream that fades out to black (or white) and stays there ends with a last, dark event:
    /// a boundary at its first dark frame (PySceneDetect's ThresholdDetector adds the same
    /// "final scene"); the fuser drops it when it is shorter than the minimum event length.
    public func finish() -> [Boundary] {
        defer { stretch = [] }
        guard stretchAfterNormal, stretch.count >= 2 else { return [] }
        return [Boundary(time: stretch[0], kind: .fade, confidence: 0.5, score: extreme, transitionStart: stretch[0],
                         transitionEnd: stretch[0], detector: name)]
    }
}
