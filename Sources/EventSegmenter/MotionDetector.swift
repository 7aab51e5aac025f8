import DenseCore
import Foundation

/// How readily small or faint motion counts (the trade-off between missed objects and false alarms).
public enum MotionSensitivity: String, Sendable, Codable, CaseIterable {
    /// Ignores swaying foliage, water, rain and small distant objects; misses faint small ones.
    case low
    /// The default: a person at 20 m on a 1080p camera counts; foliage and rain do not.
    case medium
    /// Finds small, low-contrast objects; foliage and heavy rain may raise events.
    case high

    /// A cell must differ from the background by this many times its own typical wobble.
    var deviationFactor: Float {
        switch self {
        case .low: 5
        case .medium: 3.5
        case .high: 2.5
        }
    }

    /// Smallest group of touching moving cells (of the ≤ 64-wide analysis grid) that counts.
    var minimumCells: Int {
        switch self {
        case .low: 6
        case .medium: 3
        case .high: 1
        }
    }

    /// Scales the fixed difference threshold.
    var thresholdScale: Float {
        switch self {
        case .low: 1.3
        case .medium: 1
        case .high: 0.75
        }
    }
}

/// What kind of footage a file is, for the motion detector and the fuser.
public enum FootageMode: String, Sendable, Codable, CaseIterable {
    /// Decide from the first seconds: `still` when most of the picture stays put.
    case auto
    /// Edited or hand-held footage: motion counts only after long quiet, nothing is skippable.
    case film
    /// A fixed camera (surveillance): motion events after a second of quiet, still stretches skippable.
    case still
}

/// One stretch of motion the detector reported: `[start, end)`, `end` nil while it lasts.
public struct MotionActivity: Sendable, Equatable {
    public var start: MediaTime
    public var end: MediaTime?
    /// Highest energy during the stretch.
    public var peak: Double

    public init(start: MediaTime, end: MediaTime?, peak: Double) {
        self.start = start
        self.end = end
        self.peak = peak
    }
}

/// Motion energy for static-camera footage: an object travelling through the scene is an event;
/// a lighting change, a burned-in clock, swaying foliage or rain is not.
///
/// Per frame, on the luma grid (block means, at most 64 wide):
/// 1. **Lighting.** The grid is mapped onto the background by a monotone tone curve (quantiles of
///    the cells that look like background, fitted twice so an object does not tilt it): any global
///    brightness, contrast, gamma or exposure change, clipping included, cancels. What remains is
///    corrected by the median residual of coarse tiles (a lamp lighting one part of the room).
/// 2. **Foreground.** A cell is foreground when its residual passes the larger of `pixelThreshold`,
///    four times the noise of quiet frames, and `sensitivity`'s multiple of the cell's own running
///    deviation (foliage, water and rain cells learn a high threshold; a person crossing them does
///    not go unseen when it contrasts more than they wobble).
/// 3. **Travel.** A group of touching foreground cells counts only while it keeps changing: its
///    cells changed against the previous frame in two frames within 0.9 s (or 1.5 frame
///    intervals). A one-off step (a light switched on in one corner, a digit of a clock that
///    changes once, a parked car) never counts; a moving object changes its edges frame after
///    frame, and its motion is dated from its first frame.
/// 4. **Overlays.** Cells that changed in nearly every second for the last several seconds, in a
///    small box near the top or bottom edge (a burned-in clock, a timecode), become an overlay:
///    excluded from then on and listed in `overlays`.
/// 5. **Regions.** Only cells watched by the `MotionRegions` count; groups of touching counted cells
///    smaller than `sensitivity`'s minimum are dropped (rain, sensor noise).
///
/// Energy is the counted fraction of the watched cells. Activity starts when energy stays at or
/// above `onFraction` for `minimumActive`, and ends when it stays below `offFraction` for
/// `quietAfter`. Boundaries (kind `.motion`) are reported at the start of activity that follows at
/// least `quietBefore` of quiet (1 s for still footage; a film's moving shots, never quiet that long,
/// report nothing) and at its end; nothing starts in the first `learning` seconds, while the
/// thresholds and overlays are learnt. A frame where most of the picture changes (a cut, a camera
/// move) resets the background.
public final class MotionDetector: FrameDetector {
    public struct Configuration: Sendable, Equatable, Codable {
        public var pixelThreshold: Float = 14
        public var onFraction: Double = 0.004
        public var offFraction: Double = 0.002
        public var minimumActive: Double = 0.4
        /// Quiet needed before motion counts in film footage (still footage: `stillQuietBefore`).
        public var quietBefore: Double = 10
        public var stillQuietBefore: Double = 1
        public var quietAfter: Double = 2
        /// Seconds for the background to follow a lasting change.
        public var adaptation: Double = 4
        /// Energy above which the whole picture changed: reset, no motion event.
        public var resetFraction: Double = 0.4
        public var sensitivity: MotionSensitivity = .medium
        /// Find burned-in overlays (clocks, timecodes) and ignore them.
        public var findOverlays = true
        /// Seconds at the start of a shot in which no motion starts (thresholds and overlays are learnt).
        public var learning: Double = 6
        /// Seconds looked at to tell still footage from film (`FootageMode.auto`).
        public var probe: Double = 3
        /// Seconds added before each motion event's start and after its end (DVR-Scan's
        /// time-before and time-post).
        public var pre: Double = 0
        public var post: Double = 0
        /// Motion shorter than this (seconds, before padding) is dropped.
        public var minimumEvent: Double = 0
        public init() {}
    }

    public let name = "motion"
    public let configuration: Configuration
    public let regions: MotionRegions
    /// The footage mode asked for; `footage` is what it resolved to.
    public let requestedFootage: FootageMode
    /// `.still` or `.film` once decided (at once unless `.auto`, after `probe` seconds then).
    public private(set) var footage: FootageMode?
    /// Energy (counted fraction of the watched cells, 0…1) of the last frame.
    public private(set) var lastEnergy = 0.0
    /// Motion reported so far.
    public private(set) var activities: [MotionActivity] = []
    /// Burned-in overlays found so far, as fractions of the picture.
    public private(set) var overlays: [OverlayBox] = []
    /// The last frames whose change from the frame before was mostly a global lighting change.
    public private(set) var lightingChanges: [MediaTime] = []

    private let sourceSize: (width: Int, height: Int)?
    private var gridWidth = 0, gridHeight = 0
    private var background: [Float] = []
    /// Running deviation of each cell's residual: its own wobble.
    private var deviation: [Float] = []
    private var previousMapped: [Float] = []
    private var previousGrid: [Float] = []
    private var previousSignature: [Float] = []
    private var previousForeground: [Bool] = []
    /// Times of each cell's last two changes against the previous frame.
    private var lastChange: [Double] = []
    private var priorChange: [Double] = []
    /// Bit i: the cell changed in the i-th last overlay bucket (bit 0: the current one).
    private var bucketBits: [UInt8] = []
    private var bucket = 0
    private var watched: [Bool] = []
    private var overlayCells: [Bool] = []
    private var firstTime: MediaTime?
    private var shotStart: MediaTime?
    private var probeFrames = 0
    private var probeForeground = 0.0
    private var probeChange = 0.0
    private var lastTime: MediaTime?
    private var quietSince: MediaTime?
    private var activeSince: MediaTime?
    private var reported = false
    private var activeCandidate: MediaTime?
    private var quietCandidate: MediaTime?
    private var peak = 0.0
    /// Energy of the last frame's foreground that changed in that frame only.
    private var lastPending = 0.0
    /// Running mean energy of quiet frames (rain, noise): raises the on and off thresholds.
    private var clutter = 0.0
    private var blipSince: MediaTime?
    /// Mean |residual| of recent quiet frames (sensor noise, compression), once known.
    private var noise: Float?
    /// How the per-frame fits sort (tests swap in the naive twin, `comparisonSort`).
    var sortKernel: (inout [Float]) -> Void = radixSort

    /// - Parameters:
    ///   - sourceSize: the picture size pixel regions are given in (default: the analysed frames').
    public init(configuration: Configuration = Configuration(), footage: FootageMode = .film,
                regions: MotionRegions = MotionRegions(), sourceSize: (width: Int, height: Int)? = nil) {
        self.configuration = configuration
        self.regions = regions
        self.sourceSize = sourceSize
        requestedFootage = footage
        self.footage = footage == .auto ? nil : footage
    }

    private var quietBefore: Double {
        footage == .still ? min(configuration.quietBefore, configuration.stillQuietBefore) : configuration.quietBefore
    }

    public func process(_ frame: AnalyzedFrame) -> [Boundary] {
        let c = configuration
        defer { lastTime = frame.time }
        let grid = frame.grid
        let now = frame.time.seconds
        guard background.count == grid.count, let last = lastTime else {
            start(frame)
            return []
        }
        let n = grid.count
        let dt = max(0, (frame.time - last).seconds)
        let learning = (frame.time - (shotStart ?? frame.time)).seconds < c.learning
        let usable = (0..<n).map { !overlayCells[$0] && !previousForeground[$0] }
        // Lighting: tone curve fitted on the cells that look like background, then again without the
        // cells the first fit leaves far off.
        var mapped = toneMap(grid, use: usable)
        let firstThreshold = max(c.pixelThreshold * c.sensitivity.thresholdScale, 4 * (noise ?? 0))
        var refit = usable
        for k in 0..<n where abs(mapped[k] - background[k]) > firstThreshold { refit[k] = false }
        mapped = toneMap(grid, use: refit)
        var residual = (0..<n).map { mapped[$0] - background[$0] }
        subtractTileMedians(&residual, use: refit)
        var meanResidual: Float = 0
        for r in residual { meanResidual += abs(r) }
        meanResidual /= Float(n)
        let global = max(c.pixelThreshold * c.sensitivity.thresholdScale, 4 * (noise ?? meanResidual))
        let factor = c.sensitivity.deviationFactor
        var raw = [Bool](repeating: false, count: n)
        var counted = [Bool](repeating: false, count: n)
        var rawCount = 0
        let hold = max(0.9, 1.5 * dt)
        let newBucket = Int(now / max(1, 2 * dt))
        if newBucket != bucket {
            let shift = min(8, max(0, newBucket - bucket))
            for k in 0..<n { bucketBits[k] = shift >= 8 ? 0 : bucketBits[k] << UInt8(shift) }
            bucket = newBucket
            // Completed buckets only, before this frame's foreground: an overlay found now is
            // ignored from this frame on.
            if c.findOverlays { findOverlays() }
        }
        // A frame whose change the tone curve explains (most of it): lighting, not a new shot.
        var rawChange: Float = 0, mappedChange: Float = 0
        for k in 0..<n {
            rawChange += abs(grid[k] - previousGrid[k])
            mappedChange += abs(mapped[k] - previousMapped[k])
        }
        // The picture keeps its shape (brightness-free signatures correlate): a flat frame, a fade
        // to black or a new shot is no lighting change, however well a tone curve maps it.
        var shape: Float = 0
        if frame.signature.count == previousSignature.count {
            for i in frame.signature.indices { shape += frame.signature[i] * previousSignature[i] }
        }
        let lighting = rawChange > 2.5 * Float(n) && mappedChange < rawChange / 2 && shape >= 0.8
        previousSignature = frame.signature
        if lighting {
            lightingChanges.append(frame.time)
            if lightingChanges.count > 64 { lightingChanges.removeFirst() }
        }
        // Overlay ticks: a fixed threshold on the frame itself (a ticking cell's own threshold grows
        // with its wobble), outside lighting changes.
        let tick = max(2 * c.pixelThreshold, 6 * (noise ?? 0))
        let alphaDeviation = Float(1 - exp(-dt / (learning ? 1 : 8)))
        for k in 0..<n {
            if !lighting, abs(grid[k] - previousGrid[k]) > tick { bucketBits[k] |= 1 }
            let threshold = max(global, factor * deviation[k])
            let r = abs(residual[k])
            raw[k] = r > threshold
            if raw[k] { rawCount += 1 }
            if abs(mapped[k] - previousMapped[k]) > threshold {
                priorChange[k] = lastChange[k]
                lastChange[k] = now
            }
            counted[k] = raw[k] && watched[k] && !overlayCells[k]
            deviation[k] += alphaDeviation * (min(r, threshold) - deviation[k])
        }
        let (kept, pending) = travelling(counted, now: now, hold: hold, minimum: c.sensitivity.minimumCells)
        let watchedCount = (0..<n).reduce(0) { $0 + (watched[$1] && !overlayCells[$1] ? 1 : 0) }
        let energy = watchedCount > 0 ? Double(kept) / Double(watchedCount) : 0
        let pendingEnergy = watchedCount > 0 ? Double(pending) / Double(watchedCount) : 0
        defer { lastPending = learning ? 0 : pendingEnergy }
        let beta = Float(1 - exp(-dt / c.adaptation))
        for k in 0..<n {
            // Foreground follows ten times slower, so a parked car becomes background eventually
            // while a passing person does not smear into it.
            background[k] += (raw[k] ? beta / 10 : beta) * (mapped[k] - background[k])
        }
        let rawFraction = Double(rawCount) / Double(n)
        if footage == nil {
            // A moving camera changes most of the picture from frame to frame: the upper quartile
            // of the cells' change (an object covers less than a quarter of a still scene), against
            // the foreground threshold (so heavy noise or rain is no camera move).
            var change = (0..<n).map { abs(mapped[$0] - previousMapped[$0]) }
            sortKernel(&change)
            probeFrames += 1
            probeForeground += rawFraction
            probeChange += Double(change[3 * n / 4] / global)
            if (frame.time - firstTime!).seconds >= c.probe {
                let frames = Double(probeFrames)
                footage = probeForeground / frames <= 0.1 && probeChange / frames <= 0.5 ? .still : .film
            }
        }
        previousGrid = grid
        previousMapped = mapped
        previousForeground = raw
        if energy < c.offFraction { noise = noise.map { 0.9 * $0 + 0.1 * meanResidual } ?? meanResidual }
        if rawFraction >= c.resetFraction || meanResidual > 40 {
            if footage == nil { probeForeground += 1 }
            reset(to: grid)
            return []
        }
        let out = advance(frame.time, energy: learning ? 0 : energy, previous: last, dt: dt)
        // What the fuser sees: energy while motion is active, 0 in quiet stretches (clutter that
        // never became motion does not make a stretch non-static).
        lastEnergy = activeSince != nil ? energy : 0
        return out
    }

    /// The activity state machine: energy in, boundaries out. Motion whose first frame was pending
    /// (it changed then, and travels from this frame on) starts at `previous`.
    private func advance(_ time: MediaTime, energy: Double, previous: MediaTime, dt: Double) -> [Boundary] {
        let c = configuration
        var out: [Boundary] = []
        // Rain, snow and noise leave isolated small groups: the thresholds rise with their level.
        let on = max(c.onFraction, 4 * clutter), off = max(c.offFraction, 3 * clutter)
        if activeSince == nil {
            clutter += (1 - exp(-dt / 10)) * (min(energy, 2 * on) - clutter)
            if energy >= on {
                let start = activeCandidate ?? (lastPending >= on ? previous : time)
                activeCandidate = start
                peak = max(peak, energy)
                if (time - start).seconds >= c.minimumActive {
                    activeSince = start
                    quietCandidate = nil
                    if let q = quietSince, (start - q).seconds >= quietBefore {
                        reported = true
                        activities.append(MotionActivity(start: start, end: nil, peak: peak))
                        out.append(Boundary(time: start, kind: .motion, confidence: confidence(strength: peak / c.onFraction / 2),
                                            score: peak, detector: name))
                    }
                    quietSince = nil
                }
            } else {
                activeCandidate = nil
                peak = 0
                if quietSince == nil { quietSince = time }
            }
        } else {
            peak = max(peak, energy)
            if reported { activities[activities.count - 1].peak = peak }
            if energy < off {
                blipSince = nil
                let quiet = quietCandidate ?? time
                quietCandidate = quiet
                if (time - quiet).seconds >= c.quietAfter {
                    if reported {
                        activities[activities.count - 1].end = quiet
                        out.append(Boundary(time: quiet, kind: .motion, confidence: confidence(strength: peak / c.onFraction / 2),
                                            score: peak, detector: name))
                    }
                    activeSince = nil
                    activeCandidate = nil
                    reported = false
                    quietSince = quiet
                    peak = 0
                }
            } else if quietCandidate != nil {
                // One frame of clutter does not end the quiet; motion lasting two frames does.
                if let b = blipSince, time > b {
                    quietCandidate = nil
                    blipSince = nil
                } else {
                    blipSince = blipSince ?? time
                }
            }
        }
        return out
    }

    public func finish() -> [Boundary] { [] }

    private func start(_ frame: AnalyzedFrame) {
        let n = frame.grid.count
        gridWidth = frame.gridWidth
        gridHeight = frame.gridHeight
        background = frame.grid
        previousMapped = frame.grid
        previousGrid = frame.grid
        previousSignature = frame.signature
        previousForeground = [Bool](repeating: false, count: n)
        deviation = [Float](repeating: 0, count: n)
        lastChange = [Double](repeating: -.infinity, count: n)
        priorChange = lastChange
        bucketBits = [UInt8](repeating: 0, count: n)
        overlayCells = [Bool](repeating: false, count: n)
        overlays = []
        let size = sourceSize ?? (frame.width, frame.height)
        watched = regions.watchedCells(gridWidth: gridWidth, gridHeight: gridHeight,
                                       sourceWidth: size.width, sourceHeight: size.height)
        firstTime = firstTime ?? frame.time
        shotStart = frame.time
        quietSince = frame.time
    }

    /// The grid mapped onto the background's brightness: a monotone piecewise-linear curve through
    /// 33 matching quantiles of the `use` cells of both (identity when fewer than 16 cells are usable).
    private func toneMap(_ grid: [Float], use: [Bool]) -> [Float] {
        var f: [Float] = [], b: [Float] = []
        f.reserveCapacity(grid.count)
        b.reserveCapacity(grid.count)
        for k in grid.indices where use[k] {
            f.append(grid[k])
            b.append(background[k])
        }
        guard f.count >= 16 else { return grid }
        sortKernel(&f)
        sortKernel(&b)
        let knots = 32
        var xs: [Float] = [], ys: [Float] = []
        for q in 0...knots {
            let i = q * (f.count - 1) / knots
            if let x = xs.last, f[i] - x < 0.5 {
                ys[ys.count - 1] = max(ys[ys.count - 1], b[i])
                continue
            }
            xs.append(f[i])
            ys.append(b[i])
        }
        if xs.count < 2 {
            let offset = ys[0] - xs[0]
            return grid.map { $0 + offset }
        }
        return grid.map { v in
            if v <= xs[0] { return ys[0] + v - xs[0] }
            if v >= xs[xs.count - 1] { return ys[ys.count - 1] + v - xs[xs.count - 1] }
            var lo = 0, hi = xs.count - 1
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if xs[mid] <= v { lo = mid } else { hi = mid }
            }
            let t = (v - xs[lo]) / (xs[hi] - xs[lo])
            return ys[lo] + t * (ys[hi] - ys[lo])
        }
    }

    /// Subtracts from each cell the median residual of its tile (about a quarter of the width
    /// square) over the `use` cells: lighting that changed in one part of the picture.
    private func subtractTileMedians(_ residual: inout [Float], use: [Bool]) {
        let side = max(4, gridWidth / 4)
        let tilesX = max(1, (gridWidth + side / 2) / side), tilesY = max(1, (gridHeight + side / 2) / side)
        guard tilesX * tilesY > 1 else { return }
        for ty in 0..<tilesY {
            let y0 = ty * gridHeight / tilesY, y1 = (ty + 1) * gridHeight / tilesY
            for tx in 0..<tilesX {
                let x0 = tx * gridWidth / tilesX, x1 = (tx + 1) * gridWidth / tilesX
                var values: [Float] = []
                for y in y0..<y1 {
                    for x in x0..<x1 where use[y * gridWidth + x] { values.append(residual[y * gridWidth + x]) }
                }
                guard values.count >= 8 else { continue }
                sortKernel(&values)
                let median = values[values.count / 2]
                for y in y0..<y1 {
                    for x in x0..<x1 { residual[y * gridWidth + x] -= median }
                }
            }
        }
    }

    /// Cells of foreground groups (8-connected, at least `minimum` cells) that travel: their cells
    /// changed against the previous frame in at least two frames within `hold` seconds. A group
    /// that changed in this frame only is `pending` (it travels if it changes again next frame).
    private func travelling(_ foreground: [Bool], now: Double, hold: Double, minimum: Int) -> (kept: Int, pending: Int) {
        var kept = 0, pending = 0
        for group in components(foreground) where group.count >= minimum {
            var first: Double?, moving = false
            for k in group {
                for t in [lastChange[k], priorChange[k]] where now - t <= hold {
                    if let f = first, f != t {
                        moving = true
                        break
                    }
                    first = t
                }
                if moving { break }
            }
            if moving { kept += group.count } else if first == now { pending += group.count }
        }
        return (kept, pending)
    }

    /// 8-connected groups of set cells, each as its cell indices.
    private func components(_ set: [Bool]) -> [[Int]] {
        var seen = [Bool](repeating: false, count: set.count)
        var groups: [[Int]] = []
        for s in set.indices where set[s] && !seen[s] {
            var group: [Int] = [s]
            seen[s] = true
            var i = 0
            while i < group.count {
                let k = group[i]
                i += 1
                let x = k % gridWidth, y = k / gridWidth
                for dy in -1...1 {
                    for dx in -1...1 {
                        let xx = x + dx, yy = y + dy
                        guard xx >= 0, xx < gridWidth, yy >= 0, yy < gridHeight else { continue }
                        let j = yy * gridWidth + xx
                        if set[j] && !seen[j] {
                            seen[j] = true
                            group.append(j)
                        }
                    }
                }
            }
            groups.append(group)
        }
        return groups
    }

    /// Ticking cells (changed in at least 5 of the last 6 whole buckets of a second or more) that
    /// form a small group near the top or bottom edge become an overlay (its box plus one cell).
    private func findOverlays() {
        var ticking = [Bool](repeating: false, count: bucketBits.count)
        var any = false
        for k in bucketBits.indices where !overlayCells[k] && ((bucketBits[k] >> 1) & 0x3F).nonzeroBitCount >= 5 {
            ticking[k] = true
            any = true
        }
        guard any else { return }
        // Digits of one clock are a cell or two apart: join them before grouping.
        var joined = ticking
        for k in ticking.indices where ticking[k] {
            let x = k % gridWidth, y = k / gridWidth
            for dx in -2...2 where x + dx >= 0 && x + dx < gridWidth { joined[y * gridWidth + x + dx] = true }
        }
        for group in components(joined) {
            let xs = group.map { $0 % gridWidth }, ys = group.map { $0 / gridWidth }
            let x0 = max(0, xs.min()! - 1), x1 = min(gridWidth - 1, xs.max()! + 1)
            let y0 = max(0, ys.min()! - 1), y1 = min(gridHeight - 1, ys.max()! + 1)
            let area = (x1 - x0 + 1) * (y1 - y0 + 1)
            let nearEdge = Double(y0) < 0.2 * Double(gridHeight) || Double(y1 + 1) > 0.8 * Double(gridHeight)
            guard nearEdge, Double(area) <= 0.06 * Double(gridWidth * gridHeight), Double(y1 - y0 + 1) <= 0.2 * Double(gridHeight)
            else { continue }
            for y in y0...y1 {
                for x in x0...x1 { overlayCells[y * gridWidth + x] = true }
            }
            overlays.append(OverlayBox(
                x: Double(x0) / Double(gridWidth), y: Double(y0) / Double(gridHeight),
                width: Double(x1 - x0 + 1) / Double(gridWidth), height: Double(y1 - y0 + 1) / Double(gridHeight)))
        }
        mergeOverlayBoxes()
    }

    /// Joins overlapping or touching boxes, so one clock is listed once.
    private func mergeOverlayBoxes() {
        var boxes = overlays
        var merged = true
        let eps = 1e-9
        while merged {
            merged = false
            outer: for i in boxes.indices {
                for j in boxes.indices where j > i {
                    let a = boxes[i], b = boxes[j]
                    if a.x <= b.x + b.width + eps, b.x <= a.x + a.width + eps, a.y <= b.y + b.height + eps, b.y <= a.y + a.height + eps {
                        let x0 = min(a.x, b.x), y0 = min(a.y, b.y)
                        let x1 = max(a.x + a.width, b.x + b.width), y1 = max(a.y + a.height, b.y + b.height)
                        boxes[i] = OverlayBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                        boxes.remove(at: j)
                        merged = true
                        break outer
                    }
                }
            }
        }
        overlays = boxes
    }

    /// Whether a lighting change (and nothing else) happened at a frame within `[from, to]`.
    public func lightingChanged(from: MediaTime, to: MediaTime) -> Bool {
        lightingChanges.contains { $0 >= from && $0 <= to }
    }

    /// Forgets the scene: after a cut the background is the new picture and quiet starts over
    /// (the segmenter calls it when another detector finds a boundary). Overlays and each cell's
    /// learnt wobble stay: they belong to the camera, not the shot.
    public func reset() {
        if !background.isEmpty { reset(to: background) }
    }

    private func reset(to grid: [Float]) {
        background = grid
        previousMapped = grid
        previousGrid = grid
        previousForeground = [Bool](repeating: false, count: grid.count)
        quietSince = nil
        activeCandidate = nil
        quietCandidate = nil
        if reported, let t = lastTime, activities.last?.end == nil { activities[activities.count - 1].end = t }
        activeSince = nil
        reported = false
        blipSince = nil
        peak = 0
    }
}

/// Turns motion activities into boundaries with padding and a minimum length: pure, table-tested.
public enum MotionEvents {
    /// Activities shorter than `minimumEvent` (seconds) are dropped; the rest start `pre` earlier
    /// (never before `start`) and end `post` later (never after `end`); stretches that then touch
    /// or overlap become one. Each stretch gives a `.motion` boundary at its start and at its end.
    public static func boundaries(_ activities: [MotionActivity], pre: Double, post: Double, minimumEvent: Double,
                                  onFraction: Double, start: MediaTime, end: MediaTime) -> [Boundary] {
        let milliseconds = { (s: Double) in MediaTime(value: Int64((s * 1000).rounded()), timescale: 1000) }
        var spans: [(start: MediaTime, end: MediaTime?, peak: Double)] = []
        for a in activities {
            if let e = a.end, (e - a.start).seconds < minimumEvent { continue }
            if a.end == nil, (end - a.start).seconds < minimumEvent { continue }
            let s = max(start, a.start - milliseconds(pre))
            let e = a.end.map { min(end, $0 + milliseconds(post)) }
            if let last = spans.last, let lastEnd = last.end, s <= lastEnd {
                spans[spans.count - 1].end = e.map { max(lastEnd, $0) }
                spans[spans.count - 1].peak = max(last.peak, a.peak)
            } else {
                spans.append((s, e, a.peak))
            }
        }
        var out: [Boundary] = []
        for span in spans {
            let c = confidence(strength: span.peak / onFraction / 2)
            out.append(Boundary(time: span.start, kind: .motion, confidence: c, score: span.peak, detector: "motion"))
            if let e = span.end, e < end {
                out.append(Boundary(time: e, kind: .motion, confidence: c, score: span.peak, detector: "motion"))
            }
        }
        return out
    }
}
