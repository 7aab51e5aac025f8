import DenseCore

/// Naive twins of this module's fast paths: one output element at a time, straight from the
/// definition, for the tests to hold the fast code against.
enum NaiveReference {
    /// Pillow's resize computed per output pixel: the horizontal pass's bytes for the source rows a
    /// pixel needs are recomputed on the spot from `filterTaps`, then the vertical sum; same fixed
    /// point and clipping, same box, pass skipping, crop shortcut and pass order.
    static func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, box: ResizeBox? = nil) -> RGBImage {
        let whole = ResizeBox(width: image.width, height: image.height)
        let box = box ?? whole
        if width == image.width && height == image.height && box == whole { return image }
        if filter != .nearest && !isCrop(box, width: width, height: height)
            && verticalPassFirst(from: (image.width, image.height), to: (width, height))
        {
            // The vertical pass alone over every column, then the horizontal pass alone.
            let rows = region(image, width: image.width, height: height, filter: filter,
                box: ResizeBox(left: 0, top: box.top, right: Float(image.width), bottom: box.bottom))
            return region(rows, width: width, height: height, filter: filter,
                box: ResizeBox(left: box.left, top: 0, right: box.right, bottom: Float(height)))
        }
        return region(image, width: width, height: height, filter: filter, box: box)
    }

    static func isCrop(_ box: ResizeBox, width: Int, height: Int) -> Bool {
        box.left == box.left.rounded(.towardZero) && box.right - box.left == Float(width)
            && box.top == box.top.rounded(.towardZero) && box.bottom - box.top == Float(height)
    }

    private static func region(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, box: ResizeBox) -> RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        if box.left == box.left.rounded(.towardZero) && box.right - box.left == Float(width)
            && box.top == box.top.rounded(.towardZero) && box.bottom - box.top == Float(height)
        {
            for y in 0..<height {
                for x in 0..<width {
                    let (sx, sy) = (Int(box.left) + x, Int(box.top) + y)
                    guard sx < image.width && sy < image.height else { continue }
                    for c in 0..<3 { out[(y * width + x) * 3 + c] = image.pixels[(sy * image.width + sx) * 3 + c] }
                }
            }
            return RGBImage(width: width, height: height, pixels: out)
        }
        if filter == .nearest {
            // Pillow steps the source position by repeated addition (`xo += a`), which is not always
            // the closed form at exact integers, so the twin adds i times too.
            func source(_ i: Int, _ inSize: Int, _ from: Float, _ to: Float, _ outSize: Int) -> Int {
                let step = Double(to - from) / Double(outSize)
                var position = Double(from) + step * 0.5
                for _ in 0..<i { position += step }
                return position < 0 || Int(position) >= inSize ? -1 : Int(position)
            }
            for y in 0..<height {
                for x in 0..<width {
                    let sx = source(x, image.width, box.left, box.right, width)
                    let sy = source(y, image.height, box.top, box.bottom, height)
                    guard sx >= 0 && sy >= 0 else { continue }
                    for c in 0..<3 { out[(y * width + x) * 3 + c] = image.pixels[(sy * image.width + sx) * 3 + c] }
                }
            }
            return RGBImage(width: width, height: height, pixels: out)
        }
        let horizontal = width != image.width || box.left != 0 || box.right != Float(width)
        let vertical = height != image.height || box.top != 0 || box.bottom != Float(height)
        func source(_ x: Int, _ y: Int, _ c: Int) -> Int { Int(image.pixels[(y * image.width + x) * 3 + c]) }
        func along(_ taps: FilterTaps, _ value: (Int) -> Int) -> UInt8 {
            var sum = 1 << (precisionBits - 1)
            for (i, w) in taps.weights.enumerated() { sum += value(taps.first + i) * Int(w) }
            return clip8(Int32(sum))
        }
        let columnTaps = (0..<width).map {
            filterTaps(index: $0, inSize: image.width, from: box.left, to: box.right, outSize: width, filter: filter)
        }
        for y in 0..<height {
            let ty = vertical
                ? filterTaps(index: y, inSize: image.height, from: box.top, to: box.bottom, outSize: height, filter: filter) : nil
            for x in 0..<width {
                let tx = horizontal ? columnTaps[x] : nil
                for c in 0..<3 {
                    // The horizontal pass's byte at (x, row), then the vertical sum over rows.
                    let across: (Int) -> Int = { row in
                        tx.map { Int(along($0) { source($0, row, c) }) } ?? source(x, row, c)
                    }
                    out[(y * width + x) * 3 + c] = ty.map { along($0, across) } ?? UInt8(across(y))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Adaptive average pooling, one output value at a time in Double. `[H, W, C]` → `[h, w, C]`.
    static func areaResize(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (inH, inW, c) = (x.shape[0], x.shape[1], x.shape[2])
        var out = Tensor(zeros: [height, width, c])
        for y in 0..<height {
            let y0 = Int((Double(y * inH) / Double(height)).rounded(.down))
            let y1 = Int((Double((y + 1) * inH) / Double(height)).rounded(.up))
            for xo in 0..<width {
                let x0 = Int((Double(xo * inW) / Double(width)).rounded(.down))
                let x1 = Int((Double((xo + 1) * inW) / Double(width)).rounded(.up))
                for k in 0..<c {
                    var sum = 0.0
                    for yi in y0..<y1 { for xi in x0..<x1 { sum += Double(x.scalars[(yi * inW + xi) * c + k]) } }
                    out.scalars[(y * width + xo) * c + k] = Float(sum / Double((y1 - y0) * (x1 - x0)))
                }
            }
        }
        return out
    }

    /// Space to channel by its index formula: output (token (i, j), channel (dy·k + dx)·C + ch) is
    /// input (k·i + dy, k·j + dx, ch), or 0 in the padding.
    static func spaceToChannel(_ x: Tensor, factor k: Int) -> Tensor {
        let c = x.shape[1]
        let s = exactSquareRoot(x.shape[0])!
        let padded = k == 2 ? s + s % 2 : (s % 3 == 0 ? s : s + 3 - s % 3)
        let side = padded / k
        var out = Tensor(zeros: [side * side, k * k * c])
        for token in 0..<side * side {
            for channel in 0..<k * k * c {
                let (i, j) = (token / side, token % side)
                let (dy, dx, ch) = (channel / (k * c), (channel / c) % k, channel % c)
                let (row, col) = (k * i + dy, k * j + dx)
                if row < s && col < s { out.scalars[token * k * k * c + channel] = x.scalars[(row * s + col) * c + ch] }
            }
        }
        return out
    }

    /// TSP pooling as one mean over each t×h×w box (tail box: its own frames), in Double.
    static func temporalPool(_ x: Tensor, size: PoolSize) -> Tensor {
        let (frames, tokens, hidden) = (x.shape[0], x.shape[1], x.shape[2])
        let side = exactSquareRoot(tokens)!
        let (rows, cols) = (side / size.h, side / size.w)
        let groups = (frames + size.t - 1) / size.t
        var out = Tensor(zeros: [groups, rows * cols, hidden])
        for g in 0..<groups {
            let span = g * size.t..<min(frames, (g + 1) * size.t)
            for r in 0..<rows {
                for col in 0..<cols {
                    for e in 0..<hidden {
                        var sum = 0.0
                        for f in span {
                            for dy in 0..<size.h {
                                for dx in 0..<size.w {
                                    let token = (r * size.h + dy) * side + col * size.w + dx
                                    sum += Double(x.scalars[(f * tokens + token) * hidden + e])
                                }
                            }
                        }
                        out.scalars[(g * rows * cols + r * cols + col) * hidden + e] =
                            Float(sum / Double(span.count * size.h * size.w))
                    }
                }
            }
        }
        return out
    }
}
