import DenseCore

/// Novelty of per-frame embeddings (the vision tower's pooled features) against the event so far.
///
/// Novelty is the cosine distance 1 − cos(eₜ, m) between a frame's embedding and the running mean
/// m of the current event's (L2-normalised) embeddings. A boundary (kind `.semantic`) is reported
/// where novelty reaches `threshold` once the event has `minimumFrames` frames; the mean then
/// restarts from the new frame. `reset()` restarts it too (the segmenter calls it at boundaries
/// other detectors found, so one event's mean never spans a cut).
public final class SemanticNoveltyDetector {
    public let name = "semantic"
    public let threshold: Double
    public let minimumFrames: Int
    /// Novelty of the last embedding (0 for the first of an event).
    public private(set) var lastNovelty = 0.0
    private var sum: [Double] = []
    private var count = 0

    public init(threshold: Double = 0.25, minimumFrames: Int = 2) {
        self.threshold = threshold
        self.minimumFrames = minimumFrames
    }

    public func reset() {
        sum = []
        count = 0
    }

    /// - Parameter embedding: `[dim]`, any scale (it is normalised here).
    public func process(embedding: [Float], at time: MediaTime) throws -> Boundary? {
        var norm = 0.0
        for v in embedding { norm += Double(v) * Double(v) }
        norm = norm.squareRoot()
        guard norm > 0, norm.isFinite else { throw SegmenterError.badEmbedding(time: time, reason: "zero or non-finite norm") }
        if !sum.isEmpty, sum.count != embedding.count {
            throw SegmenterError.badEmbedding(time: time, reason: "dimension \(embedding.count), expected \(sum.count)")
        }
        let unit = embedding.map { Double($0) / norm }
        defer {
            if sum.isEmpty { sum = unit } else { for k in sum.indices { sum[k] += unit[k] } }
            count += 1
        }
        guard count > 0 else {
            lastNovelty = 0
            return nil
        }
        var dot = 0.0, mm = 0.0
        for k in unit.indices {
            dot += unit[k] * sum[k]
            mm += sum[k] * sum[k]
        }
        lastNovelty = mm > 0 ? 1 - dot / mm.squareRoot() : 0
        guard count >= minimumFrames, lastNovelty >= threshold else { return nil }
        sum = []
        count = 0
        return Boundary(time: time, kind: .semantic, confidence: confidence(strength: lastNovelty / threshold),
                        score: lastNovelty, detector: name)
    }

    /// Boundaries of a whole sequence.
    /// - Parameter embeddings: `[frames, dim]`, one row per time in `times`.
    public func boundaries(embeddings: Tensor, times: [MediaTime]) throws -> [Boundary] {
        precondition(embeddings.rank == 2 && embeddings.shape[0] == times.count,
            "embeddings \(embeddings.shape) for \(times.count) times")
        let dim = embeddings.shape[1]
        return try times.indices.compactMap { i in
            try process(embedding: Array(embeddings.scalars[(i * dim)..<((i + 1) * dim)]), at: times[i])
        }
    }

    /// Boundaries of a whole sequence given as rows.
    public func boundaries(embeddings: [[Float]], times: [MediaTime]) throws -> [Boundary] {
        precondition(embeddings.count == times.count, "\(embeddings.count) embeddings for \(times.count) times")
        return try zip(embeddings, times).compactMap { try process(embedding: $0, at: $1) }
    }
}

/// Errors the segmenter throws on input it cannot use.
public enum SegmenterError: Error, Equatable, CustomStringConvertible {
    case badEmbedding(time: MediaTime, reason: String)
    case outOfOrder(time: MediaTime, previous: MediaTime)

    public var description: String {
        switch self {
        case .badEmbedding(let t, let r): "embedding at \(t.secondsString) s: \(r)"
        case .outOfOrder(let t, let p): "frame at \(t.secondsString) s after one at \(p.secondsString) s: frames must come in time order"
        }
    }
}
