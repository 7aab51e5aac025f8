import DenseCore

/// Moves hard cuts found on sampled frames to the exact frame.
///
/// A cut first seen at a sample lies somewhere after the sample before it. The refiner compares
/// every frame in between (the caller decodes them) and puts the cut at the frame with the
/// largest content change from its predecessor.
public struct CutRefiner: Sendable {
    public var weights: ContentWeights

    public init(weights: ContentWeights) { self.weights = weights }

    /// - Parameters:
    ///   - sampleTimes: the times of the frames the detectors saw, ascending.
    ///   - frames: every frame in `[from, through]`, in time order, downscaled as the detectors' were.
    public func refine(
        _ events: inout [Event], sampleTimes: [MediaTime],
        frames: (_ from: MediaTime, _ through: MediaTime) throws -> [(time: MediaTime, image: RGBImage)]
    ) throws {
        for i in events.indices.dropFirst() where events[i].kind == .cut {
            let cut = events[i].start
            // The sample before the cut: the last one earlier than it.
            var lo = 0, hi = sampleTimes.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if sampleTimes[mid] < cut { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { continue }
            var previous: AnalyzedFrame?
            var best: (time: MediaTime, score: Double)?
            for (time, image) in try frames(sampleTimes[lo - 1], cut) {
                let frame = AnalyzedFrame(index: 0, time: time, image: image, edges: weights.edges > 0)
                if let previous {
                    let score = contentScore(previous, frame, weights: weights)
                    if best.map({ score > $0.score }) ?? true { best = (time, score) }
                }
                previous = frame
            }
            guard let best, best.time > events[i - 1].start, best.time < events[i].end else { continue }
            events[i].start = best.time
            events[i - 1].end = best.time
            if events[i - 1].keyframe >= best.time { events[i - 1].keyframe = events[i - 1].start }
        }
    }
}
