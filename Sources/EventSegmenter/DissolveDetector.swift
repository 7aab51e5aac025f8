import DenseCore

/// Gradual transitions: a window of frames that is a linear blend of its two ends.
///
/// For the newest frame t and the frame a = t − `span` frames back, every frame i between them is
/// projected on the line from a to t in brightness-free signature space (zero mean, unit norm,
/// so a lighting change moves nothing): αᵢ = ⟨fᵢ − fₐ, fₜ − fₐ⟩ / |fₜ − fₐ|². A dissolve is a
/// window whose ends differ (|fₜ − fₐ| ≥ `minimumDistance`), whose frames all sit close to the
/// line (residual ≤ `maximumResidual` × |fₜ − fₐ|), whose α rises steadily (no step above
/// `maximumStep`: that would be a hard cut, the content detectors' job), that has at least two
/// frames inside the blend, and whose change is spread over the picture (a tenth of the cells
/// carry at most half of it: an object crossing a still scene is local). Camera motion and moving objects are not blends and fail the residual
/// test. The boundary is the first frame with α ≥ ½; overlapping windows that pass report once,
/// for the window whose ends differ most.
public final class DissolveDetector: FrameDetector {
    public let name = "dissolve"
    public let span: Int
    public let minimumDistance: Float
    public let maximumResidual: Float
    public let maximumStep: Float
    private var window: [AnalyzedFrame] = []
    private var best: Boundary?

    /// - Parameter span: window length in frames (the longest dissolve seen whole; longer ones are
    ///   still found, as blends of blends).
    public init(span: Int, minimumDistance: Float = 0.7, maximumResidual: Float = 0.3, maximumStep: Float = 0.6) {
        precondition(span >= 3, "dissolve span \(span) < 3 frames")
        self.span = span
        self.minimumDistance = minimumDistance
        self.maximumResidual = maximumResidual
        self.maximumStep = maximumStep
    }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        window.append(frame)
        if window.count > span + 1 { window.removeFirst() }
        guard window.count == span + 1 else { return [] }
        if let found = test(window) {
            if best == nil || found.score > best!.score { best = found }
            return []
        }
        return flush()
    }

    public func finish() -> [Boundary] {
        window.removeAll()
        return flush()
    }

    private func flush() -> [Boundary] {
        defer { best = nil }
        return best.map { [$0] } ?? []
    }

    /// The dissolve this window shows, if it is one.
    func test(_ frames: [AnalyzedFrame]) -> Boundary? {
        let a = frames.first!.signature, t = frames.last!.signature
        guard !a.isEmpty, !t.isEmpty else { return nil }
        var d = [Float](repeating: 0, count: a.count)
        var dd: Float = 0
        for k in a.indices {
            d[k] = t[k] - a[k]
            dd += d[k] * d[k]
        }
        let distance = dd.squareRoot()
        guard distance >= minimumDistance else { return nil }
        // A new shot changes the whole picture; an object moving over a still, low-contrast
        // scene changes a few cells a lot. Half the change in a tenth of the cells is local.
        let squares = d.map { $0 * $0 }.sorted(by: >)
        guard squares.prefix(max(1, squares.count / 10)).reduce(0, +) <= 0.5 * dd else { return nil }
        var alphas: [Float] = [0]
        var worst: Float = 0
        for f in frames.dropFirst().dropLast() {
            let s = f.signature
            guard !s.isEmpty else { return nil }
            var dot: Float = 0
            for k in a.indices { dot += (s[k] - a[k]) * d[k] }
            let alpha = dot / dd
            var r: Float = 0
            for k in a.indices {
                let e = s[k] - a[k] - alpha * d[k]
                r += e * e
            }
            worst = max(worst, r.squareRoot() / distance)
            alphas.append(alpha)
        }
        alphas.append(1)
        guard worst <= maximumResidual else { return nil }
        var inside = 0
        for k in 1..<alphas.count {
            let step = alphas[k] - alphas[k - 1]
            guard step <= maximumStep, step >= -0.15 else { return nil }
            if alphas[k] > 0.15, alphas[k] < 0.85 { inside += 1 }
        }
        guard inside >= 2 else { return nil }
        let middle = alphas.firstIndex { $0 >= 0.5 }!
        let first = alphas.firstIndex { $0 > 0.15 }!
        let last = alphas.lastIndex { $0 < 0.85 }!
        let strength = Double(distance / minimumDistance) * Double(1 - worst / maximumResidual / 2)
        // Barely past the distance and near the residual limit: a zoom or a slow pan, not a blend.
        guard strength >= 0.8 else { return nil }
        return Boundary(time: frames[middle].time, kind: .dissolve, confidence: confidence(strength: strength),
                        score: Double(distance), transitionStart: frames[first].time,
                        transitionEnd: frames[last].time, detector: name)
    }
}
