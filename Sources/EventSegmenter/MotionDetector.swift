import DenseCore
import Foundation

/// Motion energy for static-camera footage: a person entering is an event, a lighting change is not.
///
/// Each frame's luma grid (block means, at most 64 wide) is mapped onto the background's
/// brightness by a least-squares gain and offset (so a global lighting change cancels out) and
/// compared with a background that
/// follows the scene with time constant `adaptation`; pixels further than the noise floor
/// (`pixelThreshold`, or four times the mean difference of quiet frames when noisier) are foreground. Energy is
/// the foreground fraction. Activity starts when energy stays at or above `onFraction` for
/// `minimumActive`, and ends when it stays below `offFraction` for `quietAfter`. Boundaries
/// (kind `.motion`) are reported at the start of activity that follows at least `quietBefore` of
/// quiet (so a film's moving shots, never quiet that long, report nothing) and at the end of such
/// activity. A frame where most of the picture changes (a cut, a camera move) resets the background.
public final class MotionDetector: FrameDetector {
    public struct Configuration: Sendable, Equatable, Codable {
        public var pixelThreshold: Float = 14
        public var onFraction: Double = 0.004
        public var offFraction: Double = 0.002
        public var minimumActive: Double = 0.4
        public var quietBefore: Double = 10
        public var quietAfter: Double = 2
        /// Seconds for the background to follow a lasting change.
        public var adaptation: Double = 4
        /// Energy above which the whole picture changed: reset, no motion event.
        public var resetFraction: Double = 0.4
        public init() {}
    }

    public let name = "motion"
    public let configuration: Configuration
    /// Energy (foreground fraction, 0…1) of the last frame.
    public private(set) var lastEnergy = 0.0
    private var background: [Float] = []
    private var lastTime: MediaTime?
    private var quietSince: MediaTime?
    private var activeSince: MediaTime?
    /// Start of activity that qualified (followed enough quiet) and was reported.
    private var reported = false
    private var activeCandidate: MediaTime?
    private var quietCandidate: MediaTime?
    private var peak = 0.0
    /// Mean |difference| of recent quiet frames (sensor noise, compression), once known.
    private var noise: Float?

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        let c = configuration
        defer { lastTime = frame.time }
        let grid = frame.grid
        guard background.count == grid.count, let last = lastTime else {
            background = grid
            quietSince = frame.time
            return []
        }
        let dt = max(0, (frame.time - last).seconds)
        // Brightness normalisation: the least-squares gain and offset that map this frame onto the
        // background, so a lighting change (gain, offset or both) leaves nothing behind. Fitted
        // twice: the second time without the pixels the first fit calls foreground, so a bright
        // person does not tilt the fit (and, through the update, leave a ghost behind).
        var (gain, offset) = brightnessFit(grid, excluding: nil)
        var meanDiff: Float = 0
        for k in grid.indices { meanDiff += abs(gain * grid[k] + offset - background[k]) }
        meanDiff /= Float(grid.count)
        // The noise floor comes from quiet frames only: a frame full of change must not raise
        // its own threshold.
        let threshold = max(c.pixelThreshold, 4 * (noise ?? meanDiff))
        let outliers = grid.indices.map { abs(gain * grid[$0] + offset - background[$0]) > threshold }
        if outliers.contains(true) { (gain, offset) = brightnessFit(grid, excluding: outliers) }
        var foreground = 0
        let beta = Float(1 - exp(-dt / c.adaptation))
        for k in grid.indices {
            let v = gain * grid[k] + offset
            let isForeground = abs(v - background[k]) > threshold
            if isForeground { foreground += 1 }
            // Foreground follows ten times slower, so a parked car becomes background eventually
            // while a passing person does not smear into it.
            background[k] += (isForeground ? beta / 10 : beta) * (v - background[k])
        }
        let energy = Double(foreground) / Double(grid.count)
        lastEnergy = energy
        if energy < c.offFraction { noise = noise.map { 0.9 * $0 + 0.1 * meanDiff } ?? meanDiff }
        if energy >= c.resetFraction || Double(meanDiff) > 40 {
            reset(to: grid)
            return []
        }
        var out: [Boundary] = []
        if activeSince == nil {
            if energy >= c.onFraction {
                let start = activeCandidate ?? frame.time
                activeCandidate = start
                peak = max(peak, energy)
                if (frame.time - start).seconds >= c.minimumActive {
                    activeSince = start
                    quietCandidate = nil
                    if let q = quietSince, (start - q).seconds >= c.quietBefore {
                        reported = true
                        out.append(Boundary(time: start, kind: .motion, confidence: confidence(strength: peak / c.onFraction / 2),
                                            score: peak, detector: name))
                    }
                    quietSince = nil
                }
            } else {
                activeCandidate = nil
                peak = 0
                if quietSince == nil { quietSince = frame.time }
            }
        } else {
            peak = max(peak, energy)
            if energy < c.offFraction {
                let quiet = quietCandidate ?? frame.time
                quietCandidate = quiet
                if (frame.time - quiet).seconds >= c.quietAfter {
                    if reported {
                        out.append(Boundary(time: quiet, kind: .motion, confidence: confidence(strength: peak / c.onFraction / 2),
                                            score: peak, detector: name))
                    }
                    activeSince = nil
                    activeCandidate = nil
                    reported = false
                    quietSince = quiet
                    peak = 0
                }
            } else {
                quietCandidate = nil
            }
        }
        return out
    }

    public func finish() -> [Boundary] { [] }

    /// Gain and offset minimising Σ (gain·gridₖ + offset − backgroundₖ)² over the cells not excluded.
    private func brightnessFit(_ grid: [Float], excluding: [Bool]?) -> (gain: Float, offset: Float) {
        var n: Float = 0, meanB: Float = 0, meanF: Float = 0
        for k in grid.indices where !(excluding?[k] ?? false) {
            meanB += background[k]
            meanF += grid[k]
            n += 1
        }
        guard n > 0 else { return (1, 0) }
        meanB /= n
        meanF /= n
        var covariance: Float = 0, variance: Float = 0
        for k in grid.indices where !(excluding?[k] ?? false) {
            covariance += (grid[k] - meanF) * (background[k] - meanB)
            variance += (grid[k] - meanF) * (grid[k] - meanF)
        }
        let gain = variance > n ? min(3, max(0.33, covariance / variance)) : 1
        return (gain, meanB - gain * meanF)
    }

    /// Forgets the scene: after a cut the background is the new picture and quiet starts over
    /// (the segmenter calls it when another detector finds a boundary).
    public func reset() {
        if !background.isEmpty { reset(to: background) }
    }

    private func reset(to grid: [Float]) {
        background = grid
        quietSince = nil
        activeCandidate = nil
        quietCandidate = nil
        activeSince = nil
        reported = false
        peak = 0
    }
}
