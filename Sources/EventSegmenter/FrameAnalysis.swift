import CKernels
import DenseCore

/// What every pixel-level detector reads from one frame, computed once per frame.
///
/// The caller hands in a small frame (the CLI asks swscale for a width of about 256, as
/// PySceneDetect's automatic downscale does); everything here is O(pixels) and allocation-light.
public struct AnalyzedFrame: Sendable {
    /// 0-based position in the stream of frames given to the segmenter.
    public let index: Int
    /// Exact presentation time of the frame.
    public let time: MediaTime
    public let width: Int
    public let height: Int
    /// `[height, width]` planes in OpenCV's 8-bit HSV convention: H in 0…179, S and V in 0…255.
    public let hue: [UInt8]
    public let saturation: [UInt8]
    public let value: [UInt8]
    /// `[height, width]` BT.601 luma, 0…255.
    public let luma: [UInt8]
    /// `[height, width]` edge map (0 or 1): gradient magnitude above a threshold, dilated once.
    /// Empty unless edges were asked for.
    public let edges: [UInt8]
    /// Mean luma, 0…255.
    public let meanLuma: Double
    /// `[lumaBins]` luma histogram, normalised to sum 1.
    public let lumaHistogram: [Float]
    /// `[gridHeight, gridWidth]` block means of luma, for the motion detector (at most 64 wide).
    public let grid: [Float]
    public let gridWidth: Int
    public let gridHeight: Int
    /// `[16 × 9]` block means of luma, zero mean and unit norm (empty for a flat frame): the
    /// brightness-free signature the dissolve test projects.
    public let signature: [Float]

    public static let lumaBins = 64
    public static let signatureSize = (width: 16, height: 9)

    /// - Parameter image: `[height, width, 3]` RGB, already downscaled by the caller.
    public init(index: Int, time: MediaTime, image: RGBImage, edges wantEdges: Bool = false) {
        self.index = index
        self.time = time
        width = image.width
        height = image.height
        let n = width * height
        var h = [UInt8](repeating: 0, count: n)
        var s = [UInt8](repeating: 0, count: n)
        var v = [UInt8](repeating: 0, count: n)
        var y = [UInt8](repeating: 0, count: n)
        var counts = [UInt32](repeating: 0, count: Self.lumaBins)
        let lumaSum = analyzeRGB(image.pixels, hue: &h, saturation: &s, value: &v, luma: &y, histogram: &counts)
        let histogram = counts.map { Float($0) / Float(n) }
        hue = h
        saturation = s
        value = v
        luma = y
        meanLuma = Double(lumaSum) / Double(n)
        lumaHistogram = histogram
        edges = wantEdges ? edgeMap(y, width: width, height: height) : []
        let block = max(1, (width + 63) / 64)
        gridWidth = max(1, width / block)
        gridHeight = max(1, height / block)
        grid = blockMeans(y, width: width, height: height, gridWidth: gridWidth, gridHeight: gridHeight)
        // The signature averages the grid (≥ 16×9 cells when the frame is ≥ 64 wide) rather than
        // the pixels again: one pass over the frame is enough.
        var sig = blockMeans(
            grid, width: gridWidth, height: gridHeight, gridWidth: Self.signatureSize.width,
            gridHeight: Self.signatureSize.height)
        let mean = sig.reduce(0, +) / Float(sig.count)
        var norm: Float = 0
        for i in sig.indices {
            sig[i] -= mean
            norm += sig[i] * sig[i]
        }
        norm = norm.squareRoot()
        // A flat frame (black, white, one colour) has no shape to compare: fades handle those.
        let flat = norm < 2 * Float(sig.count).squareRoot()
        signature = flat ? [] : sig.map { $0 / norm }
    }
}

/// The per-pixel pass of frame analysis in C (vectorised; `dc_analyze_rgb`, tested equal to `hsv` on
/// every RGB triple): `rgb` is `[n, 3]`, the planes `[n]`, `histogram` `[lumaBins]` counts of luma / 4.
/// Returns the sum of the luma plane.
func analyzeRGB(
    _ rgb: [UInt8], hue: inout [UInt8], saturation: inout [UInt8], value: inout [UInt8], luma: inout [UInt8],
    histogram: inout [UInt32]
) -> Int {
    let n = rgb.count / 3
    precondition(hue.count == n && saturation.count == n && value.count == n && luma.count == n
        && histogram.count == AnalyzedFrame.lumaBins, "planes of \(n) pixels and \(AnalyzedFrame.lumaBins) bins")
    return rgb.withUnsafeBufferPointer { px in
        hue.withUnsafeMutableBufferPointer { hp in
            saturation.withUnsafeMutableBufferPointer { sp in
                value.withUnsafeMutableBufferPointer { vp in
                    luma.withUnsafeMutableBufferPointer { yp in
                        histogram.withUnsafeMutableBufferPointer { hist in
                            Int(dc_analyze_rgb(
                                px.baseAddress, n, hp.baseAddress, sp.baseAddress, vp.baseAddress, yp.baseAddress,
                                hist.baseAddress))
                        }
                    }
                }
            }
        }
    }
}

/// `hsv` with selects instead of branches, the form `dc_analyze_rgb` vectorises; tested equal to it.
@inline(__always)
func hsvBranchless(_ r: Int, _ g: Int, _ b: Int, reciprocals inv: UnsafeBufferPointer<Int>) -> (UInt8, UInt8, UInt8) {
    let mx = max(r, g, b), mn = min(r, g, b)
    let delta = mx &- mn
    let isR = mx == r, isG = mx == g
    let numerator = isR ? g &- b : (isG ? b &- r : r &- g)
    let base = isR ? 0 : (isG ? 60 : 120)
    // Truncate toward zero, as OpenCV's float-to-int of hue does: divide the magnitude.
    let sign = numerator >> 63
    let quotient = (((numerator ^ sign) &- sign) &* 30 &* inv[delta]) >> 24
    var h = base &+ ((quotient ^ sign) &- sign)
    h &+= (h >> 63) & 180
    h = delta == 0 ? 0 : min(h, 179)
    let s = (255 &* delta &* inv[mx] &+ (1 << 23)) >> 24
    return (UInt8(truncatingIfNeeded: h), UInt8(truncatingIfNeeded: min(s, 255)), UInt8(truncatingIfNeeded: mx))
}

/// ⌈2²⁴/d⌉ for d in 1…255 (index 0 unused): per-pixel HSV in fixed point, without division
/// (exact for the quotients HSV needs: numerators below 2¹⁶, so the error stays under 2⁻⁸).
private let reciprocals: [Int] = (0..<256).map { $0 == 0 ? 0 : (1 << 24) / $0 + 1 }

/// OpenCV's `COLOR_RGB2HSV` for 8-bit images: H = hue°/2, S = 255·(max−min)/max, V = max
/// (H truncated toward zero, S rounded: within one level of OpenCV's integer path).
func hsv(_ r: Int, _ g: Int, _ b: Int) -> (UInt8, UInt8, UInt8) {
    reciprocals.withUnsafeBufferPointer { hsv(r, g, b, reciprocals: $0) }
}

@inline(__always)
func hsv(_ r: Int, _ g: Int, _ b: Int, reciprocals inv: UnsafeBufferPointer<Int>) -> (UInt8, UInt8, UInt8) {
    let mx = max(r, g, b), mn = min(r, g, b)
    let delta = mx - mn
    if delta == 0 { return (0, 0, UInt8(truncatingIfNeeded: mx)) }
    let s = (255 &* delta &* inv[mx] &+ (1 << 23)) >> 24
    let scale = 30 &* inv[delta]
    let numerator: Int, base: Int
    if mx == r {
        (numerator, base) = (g &- b, 0)
    } else if mx == g {
        (numerator, base) = (b &- r, 60)
    } else {
        (numerator, base) = (r &- g, 120)
    }
    let quotient = (abs(numerator) &* scale) >> 24
    var h = base &+ (numerator < 0 ? -quotient : quotient)
    if h < 0 { h &+= 180 }
    return (UInt8(truncatingIfNeeded: min(h, 179)), UInt8(truncatingIfNeeded: min(s, 255)), UInt8(truncatingIfNeeded: mx))
}

/// `[gridHeight, gridWidth]` means of `[height, width]` luma over equal blocks (the remainder
/// rows and columns go to the last block).
func blockMeans<T: BinaryInteger>(_ y: [T], width: Int, height: Int, gridWidth: Int, gridHeight: Int) -> [Float] {
    var sums = [Float](repeating: 0, count: gridWidth * gridHeight)
    var counts = [Float](repeating: 0, count: gridWidth * gridHeight)
    let column = (0..<width).map { min(gridWidth - 1, $0 * gridWidth / width) }
    var rowSums = [Int](repeating: 0, count: gridWidth)
    var rowCounts = [Int](repeating: 0, count: gridWidth)
    for col in 0..<width { rowCounts[column[col]] += 1 }
    y.withUnsafeBufferPointer { p in
        column.withUnsafeBufferPointer { cx in
            rowSums.withUnsafeMutableBufferPointer { acc in
                for row in 0..<height {
                    let gy = min(gridHeight - 1, row * gridHeight / height)
                    for k in 0..<gridWidth { acc[k] = 0 }
                    let base = row * width
                    for col in 0..<width { acc[cx[col]] &+= Int(truncatingIfNeeded: p[base + col]) }
                    for k in 0..<gridWidth {
                        sums[gy * gridWidth + k] += Float(acc[k])
                        counts[gy * gridWidth + k] += Float(rowCounts[k])
                    }
                }
            }
        }
    }
    for i in sums.indices { sums[i] /= max(1, counts[i]) }
    return sums
}

/// The same over a Float grid.
func blockMeans(_ y: [Float], width: Int, height: Int, gridWidth: Int, gridHeight: Int) -> [Float] {
    var sums = [Float](repeating: 0, count: gridWidth * gridHeight)
    var counts = [Float](repeating: 0, count: gridWidth * gridHeight)
    for row in 0..<height {
        let gy = min(gridHeight - 1, row * gridHeight / height)
        for col in 0..<width {
            let k = gy * gridWidth + min(gridWidth - 1, col * gridWidth / width)
            sums[k] += y[row * width + col]
            counts[k] += 1
        }
    }
    for i in sums.indices { sums[i] /= max(1, counts[i]) }
    return sums
}

/// Edges as ContentDetector's Canny step would mark them, without hysteresis: Sobel magnitude
/// above a threshold tied to the frame's median luma, dilated by one pixel. `[height, width]`, 0/1.
func edgeMap(_ y: [UInt8], width: Int, height: Int) -> [UInt8] {
    var marks = [UInt8](repeating: 0, count: width * height)
    guard width >= 3, height >= 3 else { return marks }
    var sorted = y
    sorted.sort()
    let median = Int(sorted[sorted.count / 2])
    // PySceneDetect: Canny(low = 0.67·median, high = 1.33·median) on the Sobel gradient (a step
    // of height h has gradient 4h); we use the high bound.
    let threshold = max(16, 4 * median / 3)
    let t2 = threshold * threshold
    y.withUnsafeBufferPointer { p in
        for row in 1..<(height - 1) {
            for col in 1..<(width - 1) {
                let i = row * width + col
                let a = Int(p[i - width - 1]), b = Int(p[i - width]), c = Int(p[i - width + 1])
                let d = Int(p[i - 1]), f = Int(p[i + 1])
                let g = Int(p[i + width - 1]), h = Int(p[i + width]), k = Int(p[i + width + 1])
                let gx = (c + 2 * f + k) - (a + 2 * d + g)
                let gy = (g + 2 * h + k) - (a + 2 * b + c)
                if gx * gx + gy * gy > t2 { marks[i] = 1 }
            }
        }
    }
    var dilated = marks
    for row in 0..<height {
        for col in 0..<width where marks[row * width + col] == 1 {
            for dy in -1...1 {
                for dx in -1...1 {
                    let r = row + dy, c = col + dx
                    if r >= 0, r < height, c >= 0, c < width { dilated[r * width + c] = 1 }
                }
            }
        }
    }
    return dilated
}

// MARK: - Frame distances

/// Mean absolute difference of two equally sized planes.
func meanAbsoluteDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
    precondition(a.count == b.count, "planes of \(a.count) and \(b.count) pixels")
    guard !a.isEmpty else { return 0 }
    var total = 0
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            // Blocks of 4096 fit a UInt32 sum of differences, which vectorises.
            var start = 0
            while start < pa.count {
                let end = min(pa.count, start + 4096)
                var block: UInt32 = 0
                for i in start..<end {
                    let x = Int16(pa[i]) &- Int16(pb[i])
                    block &+= UInt32(truncatingIfNeeded: x < 0 ? 0 &- x : x)
                }
                total += Int(block)
                start = end
            }
        }
    }
    return Double(total) / Double(a.count)
}

/// Weights of ContentDetector's score: the weighted mean of the per-channel mean differences.
public struct ContentWeights: Sendable, Equatable, Codable {
    public var hue: Double
    public var saturation: Double
    public var value: Double
    public var edges: Double

    public init(hue: Double = 1, saturation: Double = 1, value: Double = 1, edges: Double = 0) {
        self.hue = hue
        self.saturation = saturation
        self.value = value
        self.edges = edges
    }

    /// PySceneDetect's defaults (edges off).
    public static let standard = ContentWeights()
}

/// ContentDetector's frame score: Σ wᵢ·mean|Δchannelᵢ| / Σ wᵢ, each channel on 0…255
/// (edges count 255 per changed pixel). Frames of different sizes score 255.
public func contentScore(_ a: AnalyzedFrame, _ b: AnalyzedFrame, weights: ContentWeights = .standard) -> Double {
    guard a.width == b.width, a.height == b.height else { return 255 }
    var total = 0.0, weight = 0.0
    if weights.hue > 0 {
        total += weights.hue * meanAbsoluteDifference(a.hue, b.hue)
        weight += weights.hue
    }
    if weights.saturation > 0 {
        total += weights.saturation * meanAbsoluteDifference(a.saturation, b.saturation)
        weight += weights.saturation
    }
    if weights.value > 0 {
        total += weights.value * meanAbsoluteDifference(a.value, b.value)
        weight += weights.value
    }
    if weights.edges > 0, !a.edges.isEmpty, !b.edges.isEmpty {
        total += weights.edges * 255 * meanAbsoluteDifference(a.edges, b.edges)
        weight += weights.edges
    }
    return weight > 0 ? total / weight : 0
}

/// 1 − Pearson correlation of the two luma histograms (OpenCV's `HISTCMP_CORREL`), in 0…2.
public func histogramDistance(_ a: AnalyzedFrame, _ b: AnalyzedFrame) -> Double {
    let x = a.lumaHistogram, y = b.lumaHistogram
    let n = Double(x.count)
    let mx = Double(x.reduce(0, +)) / n, my = Double(y.reduce(0, +)) / n
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in x.indices {
        let dx = Double(x[i]) - mx, dy = Double(y[i]) - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    }
    let denominator = (sxx * syy).squareRoot()
    return denominator > 0 ? 1 - sxy / denominator : (sxx == syy ? 0 : 1)
}
