import DenseCore

/// Which detectors run and how they are tuned.
///
/// Codable: its encoding is part of the settings that outputs record and resume compares.
public struct SegmenterConfiguration: Sendable, Equatable, Codable {
    public enum Detector: String, Sendable, CaseIterable, Codable, Comparable {
        case content, histogram, adaptive, fade, dissolve, motion

        public static func < (a: Detector, b: Detector) -> Bool { a.rawValue < b.rawValue }
    }

    /// The default set: adaptive cuts, fades, dissolves and motion in still scenes.
    @SortedWhenEncoded public var detectors: Set<Detector> = [.adaptive, .content, .fade, .dissolve, .motion]
    /// The rate frames arrive at (frames per second), to turn seconds into frame counts.
    public var frameRate: Double = 4
    /// ContentDetector's threshold; in the default set it catches cuts the adaptive ratio misses
    /// because the neighbourhood moves, so it sits higher than PySceneDetect's 27.
    public var contentThreshold: Double = 45
    public var histogramThreshold: Double = 0.5
    public var adaptiveRatio: Double = 3
    public var adaptiveMinimumScore: Double = 15
    public var adaptiveWindow: Int = 2
    public var weights: ContentWeights = .standard
    public var fadeBlackLevel: Double = 16
    public var fadeWhiteLevel: Double = 240
    /// The longest dissolve seen whole, in seconds.
    public var dissolveSpan: Double = 1.5
    public var motion = MotionDetector.Configuration()
    /// Cosine distance between frame embeddings that makes a semantic boundary.
    public var semanticThreshold: Double = 0.25
    /// Still camera or film; `.auto` decides from the first seconds (`EventSegmenter.footage`).
    public var footage: FootageMode = .auto
    /// Where motion counts (everywhere by default).
    public var regions = MotionRegions()
    /// Flash suppression window in seconds (0: off).
    public var flashWindow: Double = 0.5
    public var fuser = FuserConfiguration()

    public init() {}

    /// Whether frames carry a motion energy (the motion detector runs): without it no event can
    /// be called static.
    public var measuresMotion: Bool { detectors.contains(.motion) }

    /// Still-camera footage (surveillance): motion events after a second of quiet, gating on.
    public static var staticCamera: SegmenterConfiguration {
        var c = SegmenterConfiguration()
        c.footage = .still
        c.fuser.gating = true
        return c
    }
}

/// The pixel-level segmenter: frames in, events out.
///
/// Feed frames in time order with `process`; read `events(end:)` once at the end. Each frame is
/// analysed once (`AnalyzedFrame`) and shown to every enabled detector; cut and fade candidates go
/// through the `FlashFilter`; `EventFuser` turns the rest into events. Embeddings, when a vision
/// model computes them, go to `process(embedding:at:)` and add semantic boundaries. Memory: a few
/// dozen analysed frames plus 24 bytes per frame for the fuser.
public final class EventSegmenter {
    public let configuration: SegmenterConfiguration
    public private(set) var frameCount = 0
    /// Candidates released so far (before fusion).
    public private(set) var candidates: [Boundary] = []
    private var detectors: [FrameDetector] = []
    private var content: ContentDetector?
    private var adaptive: AdaptiveDetector?
    private var previous: AnalyzedFrame?
    private let motion: MotionDetector?
    private let semantic: SemanticNoveltyDetector
    /// Embeddings wait here until `events`: only then are the pixel boundaries that reset the
    /// running mean all known (the adaptive detector and the flash filter release theirs late).
    private var embeddings: [(time: MediaTime, embedding: [Float])] = []
    private var finished = false
    private let flash: FlashFilter?
    private var records: [FrameRecord] = []
    private var lastTime: MediaTime?

    /// - Parameter sourceSize: the display size of the video, which pixel regions are given in
    ///   (default: the size of the frames handed in).
    public init(configuration: SegmenterConfiguration = SegmenterConfiguration(), sourceSize: (width: Int, height: Int)? = nil) {
        self.configuration = configuration
        let c = configuration
        let frames = { (seconds: Double) in max(1, Int((seconds * c.frameRate).rounded())) }
        // Content and adaptive share one content score per frame (`process`).
        if c.detectors.contains(.content) { content = ContentDetector(threshold: c.contentThreshold, weights: c.weights) }
        if c.detectors.contains(.histogram) { detectors.append(HistogramDetector(threshold: c.histogramThreshold)) }
        if c.detectors.contains(.adaptive) {
            adaptive = AdaptiveDetector(ratio: c.adaptiveRatio, minimumScore: c.adaptiveMinimumScore,
                                        window: c.adaptiveWindow, weights: c.weights)
        }
        if c.detectors.contains(.fade) {
            detectors.append(FadeDetector(blackLevel: c.fadeBlackLevel, whiteLevel: c.fadeWhiteLevel))
        }
        if c.detectors.contains(.dissolve) { detectors.append(DissolveDetector(span: max(3, frames(c.dissolveSpan)))) }
        motion = c.detectors.contains(.motion)
            ? MotionDetector(configuration: c.motion, footage: c.footage, regions: c.regions, sourceSize: sourceSize) : nil
        if let motion { detectors.append(motion) }
        semantic = SemanticNoveltyDetector(threshold: c.semanticThreshold)
        flash = c.flashWindow > 0
            ? FlashFilter(window: MediaTime(Rational(Int64((c.flashWindow * 1000).rounded()), 1000)),
                          historyLength: max(8, frames(c.flashWindow) + frames(c.dissolveSpan) + 4), weights: c.weights)
            : nil
    }

    /// The footage mode used: what `configuration.footage` asked for, or for `.auto` what the motion
    /// detector decided from the first seconds (`.film` until then, and without the motion detector).
    public var footage: FootageMode {
        if let decided = motion?.footage { return decided }
        return configuration.footage == .still ? .still : .film
    }

    /// Burned-in overlays (clocks, timecodes) the motion detector found and ignored, as fractions
    /// of the picture.
    public var overlays: [OverlayBox] { motion?.overlays ?? [] }

    /// Whether the edge channel is needed (analyse frames with `edges: true` then).
    public var needsEdges: Bool { configuration.weights.edges > 0 }

    /// Analyses and processes one frame.
    /// - Parameter image: `[height, width, 3]`, downscaled by the caller (about 256 wide).
    public func process(_ image: RGBImage, at time: MediaTime) throws {
        try process(AnalyzedFrame(index: frameCount, time: time, image: image, edges: needsEdges))
    }

    public func process(_ frame: AnalyzedFrame) throws {
        if let lastTime, frame.time <= lastTime { throw SegmenterError.outOfOrder(time: frame.time, previous: lastTime) }
        lastTime = frame.time
        frameCount += 1
        var found: [Boundary] = []
        if let previous, content != nil || adaptive != nil {
            let score = contentScore(previous, frame, weights: configuration.weights)
            if let content { found += content.decide(frame.time, score) }
            if let adaptive { found += adaptive.push(frame.time, score) }
        }
        previous = frame
        for d in detectors { found += d.process(frame) }
        records.append(FrameRecord(time: frame.time, energy: motion?.lastEnergy))
        route(found, frame: frame)
    }

    /// A per-frame embedding `[dim]` (the vision tower's pooled features) at a frame's time.
    /// Kept until `events`, which runs the novelty detector over them in time order.
    public func process(embedding: [Float], at time: MediaTime) throws {
        if let last = embeddings.last?.time, time <= last { throw SegmenterError.outOfOrder(time: time, previous: last) }
        embeddings.append((time, embedding))
    }

    /// A boundary found elsewhere (a caller's own detector).
    public func add(_ boundary: Boundary) { candidates.append(boundary) }

    /// Flushes the detectors and returns the events covering `[first frame, end)`.
    /// - Parameter end: the end of the stream; default the last frame's time plus the typical
    ///   frame interval.
    ///   - extra: boundaries found after the frames (semantic probes), fused with the rest.
    /// Can be called again (with other `extra` boundaries); no frame may follow the first call.
    public func events(end: MediaTime? = nil, adding extra: [Boundary] = []) throws -> [Event] {
        try finish()
        guard let first = records.first else { return [] }
        let stop = end ?? defaultEnd
        let accepted = EventFuser.fuse(allCandidates(start: first.time, end: stop) + extra, start: first.time, end: stop,
                                       configuration: configuration.fuser)
        return EventFuser.events(boundaries: accepted, frames: records, end: stop, configuration: configuration.fuser)
    }

    /// The boundaries the events start at, after fusion (call after `events`).
    public func fusedBoundaries(end: MediaTime) -> [Boundary] {
        guard let first = records.first else { return [] }
        return EventFuser.fuse(allCandidates(start: first.time, end: end), start: first.time, end: end,
                               configuration: configuration.fuser)
    }

    /// The candidates plus the motion detector's activities, padded and filtered (`MotionEvents`).
    private func allCandidates(start: MediaTime, end: MediaTime) -> [Boundary] {
        guard let motion else { return candidates }
        let m = configuration.motion
        return candidates + MotionEvents.boundaries(
            motion.activities, pre: m.pre, post: m.post, minimumEvent: m.minimumEvent, onFraction: m.onFraction,
            start: start, end: end)
    }

    /// Flushes the detectors, then runs the novelty detector over the embeddings. Its running
    /// mean restarts at every pixel-level boundary an embedding has passed, so it never spans a
    /// cut, whatever order frames and embeddings came in.
    private func finish() throws {
        guard !finished else { return }
        finished = true
        var found: [Boundary] = adaptive?.finish() ?? []
        for d in detectors { found += d.finish() }
        route(found, frame: nil)
        if let flash { candidates += flash.finish() }
        let resets = candidates.filter { $0.kind != .semantic && $0.kind != .motion }.map(\.time).sorted()
        var since: MediaTime?
        for (time, embedding) in embeddings {
            if let since, resets.contains(where: { $0 > since && $0 <= time }) { semantic.reset() }
            since = time
            if let b = try semantic.process(embedding: embedding, at: time) { candidates.append(b) }
        }
    }

    private var defaultEnd: MediaTime {
        guard let last = records.last else { return .zero }
        guard records.count >= 2 else { return last.time + MediaTime(Rational(1, 1000)) }
        return last.time + (last.time - records[records.count - 2].time)
    }

    private func route(_ found: [Boundary], frame: AnalyzedFrame?) {
        let flashable = found.filter { $0.kind == .cut || $0.kind == .fade }
        // The motion detector's own boundaries come back padded from its activities (`allCandidates`).
        var accepted = found.filter { $0.kind != .cut && $0.kind != .fade && !($0.kind == .motion && $0.detector == "motion") }
        if let flash {
            if let frame { accepted += flash.observe(frame) }
            for b in flashable { flash.submit(b) }
        } else {
            accepted += flashable
        }
        // In still footage a cut that a lighting change explains is no boundary (lights switched
        // on, the camera's day/night switch, an exposure jump). Fades (real darkness) and
        // dissolves (brightness-free already) stay.
        if let motion, motion.footage == .still {
            let slack = MediaTime(value: Int64((1000 / max(configuration.frameRate, 0.1)).rounded()), timescale: 1000)
            accepted.removeAll {
                $0.kind == .cut && motion.lightingChanged(from: $0.transitionStart - slack, to: $0.transitionEnd + slack)
            }
        }
        candidates += accepted
        // A new shot: the still-scene background starts over.
        if accepted.contains(where: { $0.kind != .motion }) { motion?.reset() }
    }
}

/// A set whose encoding is its sorted elements: a `Set`'s own order changes from process to
/// process (hash seeding), and settings encodings must be byte-stable to compare.
@propertyWrapper
public struct SortedWhenEncoded<Element: Hashable & Comparable & Codable & Sendable>: Codable, Equatable, Sendable {
    public var wrappedValue: Set<Element>

    public init(wrappedValue: Set<Element>) { self.wrappedValue = wrappedValue }

    public init(from decoder: Decoder) throws { wrappedValue = Set(try [Element](from: decoder)) }

    public func encode(to encoder: Encoder) throws { try wrappedValue.sorted().encode(to: encoder) }
}
