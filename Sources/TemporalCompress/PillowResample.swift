import DenseCore

// A port of Pillow's `Image.resize` for 8-bit RGB (src/libImaging/Resample.c `ImagingResample`,
// src/libImaging/Geometry.c `ImagingScaleAffine` for NEAREST, src/PIL/Image.py `Image.resize`), as
// of Pillow 13.0.0. NVILA resizes every tile with `image.resize((w, h))` — BICUBIC, no
// `reducing_gap` — so its pixels are exactly these bytes, and the vision features follow them.
//
// The algorithm, per axis: each output sample `i` has centre `(i + 0.5) · scale` in input
// coordinates (`scale = in / out`); the filter (support 2 for bicubic, 1 bilinear, ½ box) is
// stretched by `max(scale, 1)` — that is the antialiasing when shrinking — and its taps over
// `[⌊centre − support + ½⌋, ⌊centre + support + ½⌋)`, clamped to the image, are normalised to sum 1
// in Double, then rounded to 22-bit fixed point (`PRECISION_BITS = 32 − 8 − 2`). The horizontal
// pass runs first and is clipped to UInt8, then the vertical pass reads those bytes — unless the
// height shrinks by more than twice what the width shrinks, when the vertical pass runs first
// (Pillow 13; 12.2–12.3 instead had a "taller than 100× its width" rule in Image.py, ≤ 12.1
// neither). An axis whose size does not change is not resampled at all. A source `box` shifts the centres
// (`left + (i + 0.5) · scale`, `scale = (right − left) / out`), limits the horizontal pass to the
// rows the vertical taps read, and an integer box of the output's size is a plain crop.

/// Pillow's resampling filters that NVILA's pipeline can meet (BICUBIC is the one it uses).
public enum ResampleFilter: Sendable, CaseIterable {
    case bicubic, bilinear, box, nearest
}

/// The source region of a resize (Pillow's `box`): `(left, top, right, bottom)` in source pixels,
/// fractions allowed; Pillow passes it to C as Float32, so it is Float here.
public struct ResizeBox: Sendable, Equatable {
    public let left: Float
    public let top: Float
    public let right: Float
    public let bottom: Float

    public init(left: Float, top: Float, right: Float, bottom: Float) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    /// The whole of a `width × height` image.
    public init(width: Int, height: Int) {
        self.init(left: 0, top: 0, right: Float(width), bottom: Float(height))
    }
}

/// `image.resize((width, height), filter, box)` of Pillow, byte for byte (`reducing_gap` is None,
/// Pillow's default: no `reduce()` pre-step).
/// - Parameter box: the source region (default: the whole image); must lie inside the image.
/// - Returns: `[height, width, 3]`; an unchanged size of the whole image returns it (Pillow copies).
public func pillowResize(
    _ image: RGBImage, width: Int, height: Int, filter: ResampleFilter = .bicubic, box: ResizeBox? = nil
) -> RGBImage {
    precondition(width > 0 && height > 0, "pillowResize: target \(width)×\(height) must be positive")
    let whole = ResizeBox(width: image.width, height: image.height)
    let box = box ?? whole
    precondition(
        box.left >= 0 && box.top >= 0 && box.right <= Float(image.width) && box.bottom <= Float(image.height)
            && box.right >= box.left && box.bottom >= box.top,
        "pillowResize: box \(box) outside the \(image.width)×\(image.height) image")
    // Image.py `resize`.
    if width == image.width && height == image.height && box == whole { return image }
    return imagingResize(image, width: width, height: height, filter: filter, box: box)
}

/// Pillow 13's pass order (`ImagingResampleInner`): the vertical pass runs first, over every
/// column, when the height shrinks by more than twice what the width shrinks; otherwise the
/// horizontal pass runs first over the rows the vertical taps read.
func verticalPassFirst(from input: (width: Int, height: Int), to output: (width: Int, height: Int)) -> Bool {
    let (dh, dw) = (input.height - output.height, input.width - output.width)
    return dh > 0 && dh > dw * 2
}

/// `_resize` of _imaging.c and `ImagingResampleInner` of Resample.c.
private func imagingResize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, box: ResizeBox) -> RGBImage {
    // An integer box of exactly the output size is a crop.
    if box.left == box.left.rounded(.towardZero) && box.right - box.left == Float(width)
        && box.top == box.top.rounded(.towardZero) && box.bottom - box.top == Float(height)
    {
        return crop(image, x: Int(box.left), y: Int(box.top), width: width, height: height)
    }
    if filter == .nearest { return nearestResize(image, width: width, height: height, box: box) }
    // A pass runs only when its axis changes (note Pillow compares the box's far edge with the
    // *output* size).
    let horizontal = width != image.width || box.left != 0 || box.right != Float(width)
    let vertical = height != image.height || box.top != 0 || box.bottom != Float(height)
    var verticalTable = CoefficientTable(inSize: image.height, from: box.top, to: box.bottom, outSize: height, filter: filter)
    var current = image
    if verticalPassFirst(from: (image.width, image.height), to: (width, height)) {
        if vertical { current = resampleVertical(current, table: verticalTable) }
        if horizontal {
            let table = CoefficientTable(inSize: image.width, from: box.left, to: box.right, outSize: width, filter: filter)
            current = resampleHorizontal(current, rows: 0..<height, table: table)
        }
        return current
    }
    if horizontal {
        // Only the source rows the vertical taps read get a horizontal pass.
        let rows = verticalTable.usedRange
        let table = CoefficientTable(inSize: image.width, from: box.left, to: box.right, outSize: width, filter: filter)
        current = resampleHorizontal(image, rows: rows, table: table)
        verticalTable = verticalTable.shifted(by: -rows.lowerBound)
    }
    if vertical { current = resampleVertical(current, table: verticalTable) }
    return current
}

/// `image.crop((x, y, x + width, y + height))` of Pillow: the rectangle may leave the image; what
/// lies outside is black.
public func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int) -> RGBImage {
    precondition(width > 0 && height > 0, "crop: size \(width)×\(height) must be positive")
    var out = [UInt8](repeating: 0, count: width * height * 3)
    let x0 = max(x, 0), x1 = min(x + width, image.width)
    guard x0 < x1 else { return RGBImage(width: width, height: height, pixels: out) }
    image.pixels.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for row in max(y, 0)..<max(max(y, 0), min(y + height, image.height)) {
                let s = (row * image.width + x0) * 3
                let d = ((row - y) * width + (x0 - x)) * 3
                dst.baseAddress!.advanced(by: d).update(from: src.baseAddress!.advanced(by: s), count: (x1 - x0) * 3)
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

/// SigLIP's pixel normalisation as transformers' `SiglipImageProcessor` computes it (no resize):
/// `rescale` multiplies the bytes by 1/255 in Double and rounds to Float32, `normalize` computes
/// `(x − 0.5) / 0.5` in Float32. ≈ `u8 / 127.5 − 1`, but bit-exact with the processor.
/// - Returns: `[3, height, width]` (CHW).
public func siglipPixels(_ image: RGBImage) -> Tensor {
    // The same 256 values serve every pixel.
    let table: [Float] = (0..<256).map { (Float(Double($0) * (1.0 / 255.0)) - 0.5) / 0.5 }
    let plane = image.width * image.height
    var out = Tensor(uninitialized: [3, image.height, image.width])
    image.pixels.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            for i in 0..<plane {
                dst[i] = table[Int(src[3 * i])]
                dst[plane + i] = table[Int(src[3 * i + 1])]
                dst[2 * plane + i] = table[Int(src[3 * i + 2])]
            }
        }
    }
    return out
}

// MARK: - Coefficients (Resample.c precompute_coeffs, normalize_coeffs_8bpc)

/// Fixed-point bits of the coefficients: 8 bits for the result and 2 for over/undershoot in an Int32.
let precisionBits = 22

extension ResampleFilter {
    /// Half-width of the kernel at scale 1.
    var support: Double {
        switch self {
        case .bicubic: 2
        case .bilinear: 1
        case .box, .nearest: 0.5
        }
    }

    /// The kernel, written with Pillow's operation order (bicubic with a = −0.5).
    func weight(_ x: Double) -> Double {
        switch self {
        case .bicubic:
            let a = -0.5
            let x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .box, .nearest:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        }
    }
}

/// The taps of one output sample: `weights[i]` multiplies input `first + i`.
struct FilterTaps {
    var first: Int
    var weights: [Int32]
}

/// Pillow's taps for output sample `index` of a resample of the source span `[from, to)` (of an
/// axis `inSize` long) to `outSize` samples.
func filterTaps(index: Int, inSize: Int, from: Float = 0, to: Float? = nil, outSize: Int, filter: ResampleFilter) -> FilterTaps {
    // Pillow computes `in1 − in0` in Float and the rest in Double.
    let to = to ?? Float(inSize)
    let scale = Double(to - from) / Double(outSize)
    let filterScale = max(scale, 1)
    let support = filter.support * filterScale
    let inverseScale = 1 / filterScale
    let center = Double(from) + (Double(index) + 0.5) * scale
    // C's (int) cast truncates toward zero; both bounds are clamped to the image afterwards.
    let lower = max(Int(center - support + 0.5), 0)
    let upper = min(Int(center + support + 0.5), inSize)
    var weights = [Double]()
    weights.reserveCapacity(max(upper - lower, 0))
    var total = 0.0
    for x in lower..<max(upper, lower) {
        let w = filter.weight((Double(x) - center + 0.5) * inverseScale)
        weights.append(w)
        total += w
    }
    if total != 0 { weights = weights.map { $0 / total } }
    let one = Double(1 << precisionBits)
    let fixed = weights.map { Int32($0 < 0 ? -0.5 + $0 * one : 0.5 + $0 * one) }
    return FilterTaps(first: lower, weights: fixed)
}

/// Every output sample's taps along one axis, packed `[outSize, width]` with zeros past each
/// sample's own count.
struct CoefficientTable {
    var first: [Int]
    var count: [Int]
    var width: Int
    var weights: [Int32]

    init(inSize: Int, from: Float, to: Float, outSize: Int, filter: ResampleFilter) {
        let taps = (0..<outSize).map { filterTaps(index: $0, inSize: inSize, from: from, to: to, outSize: outSize, filter: filter) }
        width = max(1, taps.map(\.weights.count).max() ?? 1)
        first = taps.map(\.first)
        count = taps.map(\.weights.count)
        weights = [Int32](repeating: 0, count: outSize * width)
        for (i, t) in taps.enumerated() {
            for (j, w) in t.weights.enumerated() { weights[i * width + j] = w }
        }
    }

    /// The input samples any output reads: `[first[0], first[last] + count[last])`.
    var usedRange: Range<Int> {
        guard let lo = first.first, let hi = first.last, let n = count.last else { return 0..<0 }
        return lo..<max(lo, hi + n)
    }

    func shifted(by delta: Int) -> CoefficientTable {
        var copy = self
        copy.first = first.map { $0 + delta }
        return copy
    }
}

/// `clip8`: the accumulated sum (with its ½ rounding term) back to a byte.
@inline(__always)
func clip8(_ sum: Int32) -> UInt8 {
    let v = sum >> Int32(precisionBits)
    return v < 0 ? 0 : v > 255 ? 255 : UInt8(v)
}

// MARK: - Passes

/// Horizontal pass over source `rows`: `[rows.count, table outputs, 3]`.
private func resampleHorizontal(_ image: RGBImage, rows: Range<Int>, table: CoefficientTable) -> RGBImage {
    let width = table.first.count
    let height = rows.count
    var out = [UInt8](repeating: 0, count: width * height * 3)
    let k = table.width
    image.pixels.withUnsafeBufferPointer { src in
        table.weights.withUnsafeBufferPointer { weights in
            out.withUnsafeMutableBufferPointer { dst in
                Numerics.parallelFor(height, costPerItem: width * k * 3) { range in
                    for y in range {
                        let line = src.baseAddress! + (rows.lowerBound + y) * image.width * 3
                        let outLine = dst.baseAddress! + y * width * 3
                        for x in 0..<width {
                            let taps = weights.baseAddress! + x * k
                            let base = line + table.first[x] * 3
                            var s0: Int32 = 1 << Int32(precisionBits - 1)
                            var s1 = s0, s2 = s0
                            for i in 0..<table.count[x] {
                                let w = taps[i]
                                s0 &+= Int32(base[3 * i]) &* w
                                s1 &+= Int32(base[3 * i + 1]) &* w
                                s2 &+= Int32(base[3 * i + 2]) &* w
                            }
                            outLine[3 * x] = clip8(s0)
                            outLine[3 * x + 1] = clip8(s1)
                            outLine[3 * x + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

/// Vertical pass: output row `y` sums input rows `table.first[y]…` (already relative to `image`).
private func resampleVertical(_ image: RGBImage, table: CoefficientTable) -> RGBImage {
    let height = table.first.count
    let rowLength = image.width * 3
    var out = [UInt8](repeating: 0, count: rowLength * height)
    let k = table.width
    image.pixels.withUnsafeBufferPointer { src in
        table.weights.withUnsafeBufferPointer { weights in
            out.withUnsafeMutableBufferPointer { dst in
                Numerics.parallelFor(height, costPerItem: rowLength * k) { range in
                    // One row of accumulators, filled tap by tap so the inner loop is contiguous.
                    var sums = [Int32](repeating: 0, count: rowLength)
                    sums.withUnsafeMutableBufferPointer { acc in
                        for y in range {
                            acc.update(repeating: 1 << Int32(precisionBits - 1))
                            for i in 0..<table.count[y] {
                                let w = weights[y * k + i]
                                let line = src.baseAddress! + (table.first[y] + i) * rowLength
                                for j in 0..<rowLength { acc[j] &+= Int32(line[j]) &* w }
                            }
                            let outLine = dst.baseAddress! + y * rowLength
                            for j in 0..<rowLength { outLine[j] = clip8(acc[j]) }
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: image.width, height: height, pixels: out)
}

/// NEAREST (Geometry.c `ImagingScaleAffine`): source coordinate `⌊x₀ + i·a⌋` where
/// `a = (right − left) / width`, `x₀ = left + a/2`, and the position is *accumulated* in Double
/// (`xo += a`), exactly as Pillow steps it. Samples that land outside the image stay black.
private func nearestResize(_ image: RGBImage, width: Int, height: Int, box: ResizeBox) -> RGBImage {
    let xs = nearestIndices(inSize: image.width, from: box.left, to: box.right, outSize: width)
    let ys = nearestIndices(inSize: image.height, from: box.top, to: box.bottom, outSize: height)
    var out = [UInt8](repeating: 0, count: width * height * 3)
    for (y, sy) in ys.enumerated() where sy >= 0 {
        for (x, sx) in xs.enumerated() where sx >= 0 {
            let s = (sy * image.width + sx) * 3, d = (y * width + x) * 3
            out[d] = image.pixels[s]
            out[d + 1] = image.pixels[s + 1]
            out[d + 2] = image.pixels[s + 2]
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

/// Source index per output index for NEAREST; −1 where Pillow leaves the (zero-filled) output alone.
func nearestIndices(inSize: Int, from: Float, to: Float, outSize: Int) -> [Int] {
    let step = Double(to - from) / Double(outSize)
    var position = Double(from) + step * 0.5
    var indices: [Int] = []
    indices.reserveCapacity(outSize)
    for _ in 0..<outSize {
        // Geometry.c COORD: negative positions are −1, others truncate.
        let i = position < 0 ? -1 : Int(position)
        indices.append(i < inSize ? i : -1)
        position += step
    }
    return indices
}
