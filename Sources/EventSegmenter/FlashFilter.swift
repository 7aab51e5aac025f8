import DenseCore

/// Content-aware flash suppression.
///
/// A camera flash (or a muzzle flash, a lightning strike) makes a few frames jump away and then
/// return to what was there before; PySceneDetect's FlashFilter only enforces a minimum scene
/// length. Here a candidate boundary is held until `window` after its transition has passed; if
/// any frame in that window is back near the last frame before the transition (content score at
/// most `returnFraction` of the jump), the candidate is a flash and is dropped, together with the
/// candidates inside the flash (the jump back). Everything else is released unchanged, in time
/// order, `window` late.
public final class FlashFilter {
    public let window: MediaTime
    public let returnFraction: Double
    private let weights: ContentWeights

    private struct Pending {
        var boundary: Boundary
        let before: AnalyzedFrame?
        let jump: Double
        var returnedAt: MediaTime?
    }
    private var pending: [Pending] = []
    /// Recent flashes (first frame of the jump, frame that returned): candidates reported late
    /// inside one are part of it.
    private var flashes: [(from: MediaTime, to: MediaTime)] = []
    /// Recent frames, oldest first, to look up the frame before a transition that was reported late.
    private var history: [AnalyzedFrame] = []
    private let historyLength: Int

    public init(window: MediaTime, returnFraction: Double = 0.4, historyLength: Int = 64, weights: ContentWeights = .standard) {
        self.window = window
        self.returnFraction = returnFraction
        self.historyLength = historyLength
        self.weights = weights
    }

    /// Adds a candidate; frames up to and including the current one must have been `observe`d.
    public func submit(_ boundary: Boundary) {
        if flashes.contains(where: { boundary.time >= $0.from && boundary.time <= $0.to }) { return }
        let before = history.last { $0.time < boundary.transitionStart }
        let first = history.first { $0.time >= boundary.time }
        let jump = before.flatMap { b in first.map { contentScore(b, $0, weights: weights) } } ?? 0
        var p = Pending(boundary: boundary, before: before, jump: jump)
        if let before, jump > 0 {
            for f in history where f.time > boundary.transitionEnd && f.time <= boundary.transitionEnd + window {
                if contentScore(before, f, weights: weights) <= returnFraction * jump {
                    p.returnedAt = f.time
                    break
                }
            }
        }
        let at = pending.firstIndex { boundary.time < $0.boundary.time } ?? pending.count
        pending.insert(p, at: at)
    }

    /// Takes the next frame; returns the candidates whose window has passed and that were no flash.
    public func observe(_ frame: AnalyzedFrame) -> [Boundary] {
        history.append(frame)
        if history.count > historyLength { history.removeFirst() }
        for i in pending.indices where pending[i].returnedAt == nil {
            let p = pending[i]
            guard let before = p.before, p.jump > 0, frame.time > p.boundary.transitionEnd,
                frame.time <= p.boundary.transitionEnd + window
            else { continue }
            if contentScore(before, frame, weights: weights) <= returnFraction * p.jump { pending[i].returnedAt = frame.time }
        }
        return release { $0.boundary.transitionEnd + window < frame.time }
    }

    /// Releases everything still held (the end of the stream: a flash needs a frame to return to).
    public func finish() -> [Boundary] { release { _ in true } }

    private func release(_ due: (Pending) -> Bool) -> [Boundary] {
        var out: [Boundary] = []
        while let p = pending.first, due(p) {
            pending.removeFirst()
            if let back = p.returnedAt {
                pending.removeAll { $0.boundary.time <= back }
                flashes.append((p.boundary.time, back))
                if flashes.count > 16 { flashes.removeFirst() }
                continue
            }
            out.append(p.boundary)
        }
        return out
    }
}
