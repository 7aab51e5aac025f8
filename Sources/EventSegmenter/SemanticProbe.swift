import DenseCore

/// Semantic changes inside an event, found from a few frame embeddings instead of all of them.
///
/// The event's model-rate grid `g₀ … gₙ₋₁` is probed at both ends; when their embeddings differ
/// (cosine distance ≥ `threshold`), the interval is bisected — the middle frame is embedded and
/// each half whose ends still differ is searched again — down to two neighbouring grid frames,
/// and the boundary goes at the later one. When neither half differs although the whole does (a
/// slow drift), the boundary goes at the middle. So a change costs about log₂ n embeddings, and
/// an event whose ends agree costs two (its first and last frames, which its caption uses anyway).
/// A change that returns to the start before the end (A→B→A with no probe inside B) is not seen;
/// the every-frame mode (`SemanticNoveltyDetector` on every grid frame) sees it.
public struct SemanticProbe: Sendable {
    public var threshold: Double
    /// No boundary closer than this to the event's ends or to another boundary.
    public var minimumLength: MediaTime

    public init(threshold: Double, minimumLength: MediaTime) {
        self.threshold = threshold
        self.minimumLength = minimumLength
    }

    /// - Parameters:
    ///   - count: grid frames in the event (n).
    ///   - start, end: the event's span; boundaries stay `minimumLength` inside it.
    ///   - embed: the decoded time and the embedding `[dim]` of grid frame i; called at most once
    ///     per index.
    /// - Returns: `.semantic` boundaries at decoded frame times, in time order.
    public func boundaries(
        count: Int, start: MediaTime, end: MediaTime, embed: (Int) throws -> (time: MediaTime, embedding: [Float])
    ) throws -> [Boundary] {
        guard count >= 2 else { return [] }
        var known: [Int: (time: MediaTime, embedding: [Float])] = [:]
        func at(_ i: Int) throws -> (time: MediaTime, embedding: [Float]) {
            if let k = known[i] { return k }
            let k = try embed(i)
            known[i] = k
            return k
        }
        var found: [Boundary] = []
        func report(_ i: Int, distance: Double) throws {
            let t = try at(i).time
            guard t - start >= minimumLength, end - t >= minimumLength,
                found.allSatisfy({ abs(($0.time - t).rational) >= minimumLength.rational })
            else { return }
            found.append(Boundary(time: t, kind: .semantic, confidence: confidence(strength: distance / threshold),
                                  score: distance, detector: "semantic"))
        }
        func search(_ lo: Int, _ hi: Int, _ distance: Double) throws {
            if hi - lo <= 1 { return try report(hi, distance: distance) }
            let mid = (lo + hi) / 2
            let left = cosineDistance(try at(lo).embedding, try at(mid).embedding)
            let right = cosineDistance(try at(mid).embedding, try at(hi).embedding)
            if left >= threshold { try search(lo, mid, left) }
            if right >= threshold { try search(mid, hi, right) }
            if left < threshold && right < threshold { try report(mid, distance: distance) }
        }
        let whole = cosineDistance(try at(0).embedding, try at(count - 1).embedding)
        if whole >= threshold { try search(0, count - 1, whole) }
        return found.sorted { $0.time < $1.time }
    }
}

/// 1 − cos(a, b); 0 when either vector is zero. - Precondition: equal lengths.
public func cosineDistance(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "cosineDistance: \(a.count) vs \(b.count) values")
    var dot = 0.0, aa = 0.0, bb = 0.0
    for i in a.indices {
        dot += Double(a[i]) * Double(b[i])
        aa += Double(a[i]) * Double(a[i])
        bb += Double(b[i]) * Double(b[i])
    }
    guard aa > 0, bb > 0 else { return 0 }
    return 1 - dot / (aa.squareRoot() * bb.squareRoot())
}
