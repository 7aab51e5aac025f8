import DenseCore

/// How boundaries become events.
public struct FuserConfiguration: Sendable, Equatable, Codable {
    /// No event shorter than this (PySceneDetect's min_scene_len is 15 frames, 0.5 s at 30 fps).
    public var minimumLength: MediaTime = MediaTime(value: 1, timescale: 2)
    /// Events longer than this are split into equal parts at frame times (nil: never).
    public var maximumLength: MediaTime? = MediaTime(seconds: 60)
    /// With gating on, a long static event (at least `skippableLength`) is never split: it is
    /// kept whole and marked skippable. Shorter still events stay ordinary events.
    public var gating = false
    /// The shortest still stretch that gating marks skippable.
    public var skippableLength: MediaTime = MediaTime(seconds: 10)
    /// Motion energy (foreground fraction) at or below which a frame counts as still.
    public var staticEnergy: Double = 0.004

    public init() {}
}

/// What the fuser needs of each frame after the detectors have seen it.
public struct FrameRecord: Sendable, Equatable {
    public var time: MediaTime
    /// Motion energy, 0…1; nil when the motion detector is off (nothing is known to be still).
    public var energy: Double?

    public init(time: MediaTime, energy: Double?) {
        self.time = time
        self.energy = energy
    }
}

/// Fuses candidate boundaries into events: pure functions, table-tested.
public enum EventFuser {
    /// Candidates of all detectors → accepted boundaries, in time order.
    ///
    /// Candidates whose transitions (a cut's is its frame; a fade's its dark frames) come closer
    /// than `minimumLength` form one cluster, so the cuts at both ends of a fade's black frames
    /// join the fade. A cluster becomes one boundary at the
    /// time of its highest-precedence kind (fade > dissolve > cut > semantic > motion), with the
    /// noisy-or of the detectors' confidences (one detector per name counts, at its best).
    /// Clusters are then accepted strongest first, each at least `minimumLength` from every
    /// accepted one and from the stream's start and end.
    public static func fuse(_ candidates: [Boundary], start: MediaTime, end: MediaTime, configuration: FuserConfiguration)
        -> [Boundary]
    {
        let sorted = candidates.sorted { ($0.transitionStart, $0.time) < ($1.transitionStart, $1.time) }
        var clusters: [[Boundary]] = []
        var clusterEnd = MediaTime.zero
        for c in sorted {
            if !clusters.isEmpty, c.transitionStart - clusterEnd < configuration.minimumLength {
                clusters[clusters.count - 1].append(c)
                clusterEnd = max(clusterEnd, c.transitionEnd)
            } else {
                clusters.append([c])
                clusterEnd = c.transitionEnd
            }
        }
        let merged = clusters.map(merge)
        var accepted: [Boundary] = []
        for b in merged.sorted(by: { ($0.confidence, $1.time) > ($1.confidence, $0.time) }) {
            guard b.time - start >= configuration.minimumLength, end - b.time >= configuration.minimumLength,
                accepted.allSatisfy({ abs(($0.time - b.time).rational) >= configuration.minimumLength.rational })
            else { continue }
            accepted.append(b)
        }
        return accepted.sorted { $0.time < $1.time }
    }

    static func merge(_ cluster: [Boundary]) -> Boundary {
        var lead = cluster[0]
        for b in cluster.dropFirst()
        where (b.kind.precedence, b.confidence) > (lead.kind.precedence, lead.confidence) { lead = b }
        var best: [String: Double] = [:]
        for b in cluster { best[b.detector] = max(best[b.detector] ?? 0, b.confidence) }
        var miss = 1.0
        for c in best.values { miss *= 1 - c }
        lead.confidence = 1 - miss
        lead.transitionStart = cluster.map(\.transitionStart).min()!
        lead.transitionEnd = cluster.map(\.transitionEnd).max()!
        if best.count > 1 { lead.detector = best.keys.sorted().joined(separator: "+") }
        return lead
    }

    /// Accepted boundaries → events covering `[frames.first.time, end)`.
    ///
    /// - Parameter frames: every frame the detectors saw, in time order (non-empty).
    public static func events(boundaries: [Boundary], frames: [FrameRecord], end: MediaTime,
                              configuration: FuserConfiguration) -> [Event] {
        guard let first = frames.first else { return [] }
        var starts: [(MediaTime, BoundaryKind, Double)] = [(first.time, .start, 1)]
        for b in boundaries where b.time > first.time && b.time < end { starts.append((b.time, b.kind, b.confidence)) }
        var events: [Event] = []
        var cursor = 0
        for (i, s) in starts.enumerated() {
            let stop = i + 1 < starts.count ? starts[i + 1].0 : end
            while cursor < frames.count, frames[cursor].time < s.0 { cursor += 1 }
            var upto = cursor
            while upto < frames.count, frames[upto].time < stop { upto += 1 }
            let inside = frames[cursor..<upto]
            cursor = upto
            // The first frame of an event carries the change that opened it.
            let isStatic = isStill(inside.dropFirst(), configuration.staticEnergy)
            var event = Event(start: s.0, end: stop, keyframe: s.0, confidence: s.2, kind: s.1, isStatic: isStatic)
            let gated = configuration.gating && isStatic && event.duration >= configuration.skippableLength
            if let maximum = configuration.maximumLength, maximum.rational > .zero, event.duration > maximum {
                if gated {
                    event.skippable = true
                    event.keyframe = keyframe(inside, start: s.0, end: stop, kind: s.1)
                    events.append(event)
                } else {
                    events += split(event, frames: inside, maximum: maximum, staticEnergy: configuration.staticEnergy)
                }
                continue
            }
            event.skippable = gated
            event.keyframe = keyframe(inside, start: s.0, end: stop, kind: s.1)
            events.append(event)
        }
        return events
    }

    /// The peak of motion for motion events, else the frame nearest the middle.
    static func keyframe(_ frames: ArraySlice<FrameRecord>, start: MediaTime, end: MediaTime, kind: BoundaryKind) -> MediaTime {
        guard !frames.isEmpty else { return start }
        if kind == .motion, let peak = frames.max(by: { ($0.energy ?? 0) < ($1.energy ?? 0) }), (peak.energy ?? 0) > 0 {
            return peak.time
        }
        let middle = start.rational + (end.rational - start.rational) / Rational(2)
        return frames.min { abs(($0.time.rational - middle).doubleValue) < abs(($1.time.rational - middle).doubleValue) }!.time
    }

    /// Splits `event` into ⌈duration / maximum⌉ parts of equal length, each starting at a frame.
    static func split(_ event: Event, frames: ArraySlice<FrameRecord>, maximum: MediaTime, staticEnergy: Double) -> [Event] {
        let duration = event.duration.rational
        let parts = Int((duration / maximum.rational).floor) + ((duration / maximum.rational).denominator == 1 ? 0 : 1)
        var cuts: [MediaTime] = [event.start]
        for k in 1..<max(1, parts) {
            let target = event.start.rational + duration * Rational(Int64(k), Int64(parts))
            if let f = frames.first(where: { $0.time.rational >= target }), f.time > cuts.last!, f.time < event.end {
                cuts.append(f.time)
            }
        }
        return cuts.enumerated().map { i, s in
            let stop = i + 1 < cuts.count ? cuts[i + 1] : event.end
            let inside = frames.filter { $0.time >= s && $0.time < stop }
            return Event(start: s, end: stop, keyframe: keyframe(inside[...], start: s, end: stop, kind: i == 0 ? event.kind : .split),
                         confidence: i == 0 ? event.confidence : 0, kind: i == 0 ? event.kind : .split,
                         isStatic: event.isStatic || isStill(inside.dropFirst(), staticEnergy))
        }
    }
}

/// Every frame's motion energy is known and at most `threshold` (frames without a motion
/// measurement are never still).
func isStill<C: Collection<FrameRecord>>(_ frames: C, _ threshold: Double) -> Bool {
    frames.allSatisfy { $0.energy.map { $0 <= threshold } ?? false }
}

func abs(_ r: Rational) -> Rational { r < .zero ? Rational.zero - r : r }
