import DenseCore

// Tensor operations of NVILA's scale-then-compress (NVlabs/VILA@b760c34):
// - llava/model/llava_arch.py: merge_chessboard, split_chessboard, merge_features_for_dynamic_s2
//   (F.interpolate mode="area", channel concat), the `repeat` for images without a block size;
// - llava/model/multimodal_projector/base_projector.py: flat_square (2×2) and flat_square_3x3;
// - llava/model/encoders/video/tsp.py: the TSP reshape-and-mean pooling.
// Feature maps are `[height, width, channels]` row-major (token n of a 32×32 map is row n / 32,
// column n % 32), i.e. PyTorch's `b c h w` permuted to channels-last, which is how the projector
// consumes them. Naive twins live in `NaiveReference`.

// MARK: - Chessboard

/// Places `blocks` (row-major, `rows × cols` of them, each `[h, w, C]`) side by side:
/// block (i, j) fills rows `i·h…`, columns `j·w…` (`merge_chessboard`).
/// - Returns: `[rows·h, cols·w, C]`
public func chessboardMerge(_ blocks: [Tensor], rows: Int, cols: Int) -> Tensor {
    precondition(blocks.count == rows * cols && !blocks.isEmpty, "chessboardMerge: \(blocks.count) blocks for \(rows)×\(cols)")
    let shape = blocks[0].shape
    precondition(shape.count == 3 && blocks.allSatisfy { $0.shape == shape }, "chessboardMerge: block shapes \(blocks.map(\.shape))")
    let (h, w, c) = (shape[0], shape[1], shape[2])
    var out = Tensor(uninitialized: [rows * h, cols * w, c])
    let line = w * c, outLine = cols * w * c
    out.scalars.withUnsafeMutableBufferPointer { dst in
        for (index, block) in blocks.enumerated() {
            let (i, j) = (index / cols, index % cols)
            block.scalars.withUnsafeBufferPointer { src in
                for y in 0..<h {
                    (dst.baseAddress! + (i * h + y) * outLine + j * line).update(from: src.baseAddress! + y * line, count: line)
                }
            }
        }
    }
    return out
}

/// The inverse of `chessboardMerge` (`split_chessboard`): `[H, W, C]` → `rows·cols` blocks of
/// `[H/rows, W/cols, C]`, row-major.
public func chessboardSplit(_ x: Tensor, rows: Int, cols: Int) -> [Tensor] {
    precondition(x.rank == 3 && rows > 0 && cols > 0 && x.shape[0] % rows == 0 && x.shape[1] % cols == 0,
        "chessboardSplit: \(x.shape) into \(rows)×\(cols)")
    let (h, w, c) = (x.shape[0] / rows, x.shape[1] / cols, x.shape[2])
    let line = w * c, inLine = x.shape[1] * c
    return x.scalars.withUnsafeBufferPointer { src in
        (0..<rows * cols).map { index in
            let (i, j) = (index / cols, index % cols)
            var block = Tensor(uninitialized: [h, w, c])
            block.scalars.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    (dst.baseAddress! + y * line).update(from: src.baseAddress! + (i * h + y) * inLine + j * line, count: line)
                }
            }
            return block
        }
    }
}

// MARK: - Area interpolation

/// `F.interpolate(x, size, mode="area")`, i.e. adaptive average pooling: output cell (y, x) is the
/// mean of input rows `[⌊y·H/h⌋, ⌈(y+1)·H/h⌉)` × columns `[⌊x·W/w⌋, ⌈(x+1)·W/w⌉)`. Works for
/// up- and downsampling (upsampling by an integer factor replicates).
/// - Parameter x: `[H, W, C]`
/// - Returns: `[height, width, C]`
public func areaResize(_ x: Tensor, height: Int, width: Int) -> Tensor {
    precondition(x.rank == 3 && height > 0 && width > 0 && x.shape[0] > 0 && x.shape[1] > 0,
        "areaResize: \(x.shape) to \(height)×\(width)")
    let (inH, inW, c) = (x.shape[0], x.shape[1], x.shape[2])
    if inH == height && inW == width { return x }
    let xs = (0..<width).map { poolWindow($0, inSize: inW, outSize: width) }
    var out = Tensor(uninitialized: [height, width, c])
    x.scalars.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            Numerics.parallelFor(height, costPerItem: width * c * 4) { range in
                for y in range {
                    let rowsIn = poolWindow(y, inSize: inH, outSize: height)
                    for (xo, colsIn) in xs.enumerated() {
                        let cell = dst.baseAddress! + (y * width + xo) * c
                        cell.update(repeating: 0, count: c)
                        for yi in rowsIn {
                            for xi in colsIn {
                                let v = src.baseAddress! + (yi * inW + xi) * c
                                for k in 0..<c { cell[k] += v[k] }
                            }
                        }
                        let count = Float(rowsIn.count * colsIn.count)
                        for k in 0..<c { cell[k] /= count }
                    }
                }
            }
        }
    }
    return out
}

/// Adaptive pooling's window of output `i` (PyTorch `start_index` / `end_index`).
@inline(__always)
func poolWindow(_ i: Int, inSize: Int, outSize: Int) -> Range<Int> {
    (i * inSize) / outSize..<((i + 1) * inSize + outSize - 1) / outSize
}

// MARK: - Dynamic-S2 merge

/// `merge_features_for_dynamic_s2` followed by `split_chessboard` (spec §2.4): for each scale the
/// tiles are chessboard-merged, area-resized to the last scale's map `(s·rows, s·cols)`,
/// concatenated along channels in scale order `[448 | 896 | 1344]`, and split back into the last
/// scale's `rows·cols` blocks, row-major.
/// - Parameter tiles: tower outputs in `dynamicS2Tiles` order, each `[s², C]` (s×s grid row-major;
///   s = 32 for SigLIP at 448)
/// - Returns: `plan.grid.count` blocks, each `[s², scales·C]`
public func mergeDynamicS2Features(_ tiles: [Tensor], plan: DynamicS2Plan) -> [Tensor] {
    precondition(tiles.count == plan.tileCount, "mergeDynamicS2Features: \(tiles.count) tiles for a plan of \(plan.tileCount)")
    precondition(tiles.allSatisfy { $0.rank == 2 && $0.shape == tiles[0].shape }, "mergeDynamicS2Features: tile shapes \(tiles.map(\.shape))")
    let (n, c) = (tiles[0].shape[0], tiles[0].shape[1])
    let side = squareSide(n, "mergeDynamicS2Features")
    let grid = plan.grid
    let (height, width) = (side * grid.rows, side * grid.cols)
    let scaleCount = plan.levels.count
    // Output blocks written in place: block (i, j), cell (y, x) takes scale k at channels k·C….
    var blocks = (0..<grid.count).map { _ in Tensor(uninitialized: [n, scaleCount * c]) }
    var start = 0
    for (k, level) in plan.levels.enumerated() {
        let maps = tiles[start..<start + level.grid.count].map { $0.reshaped([side, side, c]) }
        start += level.grid.count
        let merged = areaResize(chessboardMerge(maps, rows: level.grid.rows, cols: level.grid.cols), height: height, width: width)
        merged.scalars.withUnsafeBufferPointer { src in
            for b in 0..<grid.count {
                let (i, j) = (b / grid.cols, b % grid.cols)
                blocks[b].scalars.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<side {
                        for x in 0..<side {
                            let from = src.baseAddress! + ((i * side + y) * width + j * side + x) * c
                            (dst.baseAddress! + (y * side + x) * scaleCount * c + k * c).update(from: from, count: c)
                        }
                    }
                }
            }
        }
    }
    return blocks
}

/// The projected blocks of one Dynamic-S2 image → its token sequence (`encode_images` after the
/// projector: `merge_chessboard`, then `1 c h w -> (h w) c`). Tokens run row-major over the *whole*
/// (s·rows)×(s·cols) grid, not block after block (spec §2.4 step 5).
/// - Parameter blocks: `grid.count` projector outputs in block order, each `[s², H]` (s×s row-major)
/// - Returns: `[grid.count · s², H]`
public func mergeProjectedBlocks(_ blocks: [Tensor], grid: TileGrid) -> Tensor {
    precondition(blocks.count == grid.count && blocks.allSatisfy { $0.rank == 2 && $0.shape == blocks[0].shape },
        "mergeProjectedBlocks: \(blocks.map(\.shape)) for a \(grid) grid")
    let (n, h) = (blocks[0].shape[0], blocks[0].shape[1])
    let side = squareSide(n, "mergeProjectedBlocks")
    let merged = chessboardMerge(blocks.map { $0.reshaped([side, side, h]) }, rows: grid.rows, cols: grid.cols)
    return merged.reshaped([grid.count * n, h])
}

/// `[F | F | … | F]` (`times` copies along channels): NVILA's S2 models feed an image without a
/// block size (video frames, several images) as one tile repeated for every scale (torch
/// `repeat(1, len(scales), 1, 1)`).
/// - Parameter x: `[N, C]`
/// - Returns: `[N, times·C]`
public func replicateChannels(_ x: Tensor, times: Int) -> Tensor {
    precondition(x.rank == 2 && times > 0, "replicateChannels: \(x.shape) × \(times)")
    let (n, c) = (x.shape[0], x.shape[1])
    var out = Tensor(uninitialized: [n, times * c])
    x.scalars.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            for row in 0..<n {
                for t in 0..<times {
                    (dst.baseAddress! + (row * times + t) * c).update(from: src.baseAddress! + row * c, count: c)
                }
            }
        }
    }
    return out
}

// MARK: - Space to channel

/// The projectors' downsample block (`flat_square` for k = 2, `flat_square_3x3` for k = 3, spec §4):
/// the s×s grid is zero-padded at the bottom and right to s' (k = 2: s + 1 when s is odd; k = 3: the
/// next multiple of 3), then each k×k square becomes one token whose channels are its cells
/// concatenated row by row (dy outer, dx inner).
/// - Parameter x: `[s², C]`, row-major s×s grid
/// - Returns: `[(s'/k)², k²·C]`, row-major (s'/k)×(s'/k) grid
public func spaceToChannel(_ x: Tensor, factor k: Int) -> Tensor {
    precondition(x.rank == 2 && (k == 2 || k == 3), "spaceToChannel: \(x.shape) with factor \(k) (VILA has 2 and 3)")
    let (n, c) = (x.shape[0], x.shape[1])
    let s = squareSide(n, "spaceToChannel")
    // k = 2 pads by one row/column at most; for s even that is already a multiple of 2, so both
    // rules are "round s up to a multiple of k".
    let outSide = (s + k - 1) / k
    var out = Tensor(zeros: [outSide * outSide, k * k * c])
    x.scalars.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            for i in 0..<outSide {
                for j in 0..<outSide {
                    for dy in 0..<k {
                        let row = k * i + dy
                        guard row < s else { continue }
                        for dx in 0..<k {
                            let col = k * j + dx
                            guard col < s else { continue }
                            let to = dst.baseAddress! + (i * outSide + j) * k * k * c + (dy * k + dx) * c
                            to.update(from: src.baseAddress! + (row * s + col) * c, count: c)
                        }
                    }
                }
            }
        }
    }
    return out
}

// MARK: - Temporal pooling

/// A TSP pool size from the checkpoint's `video_encoder.pool_sizes`: `t` frames × `h` rows × `w`
/// columns of projected tokens averaged into one.
public struct PoolSize: Sendable, Equatable {
    public let t: Int
    public let h: Int
    public let w: Int

    public init(t: Int, h: Int, w: Int) {
        self.t = t
        self.h = h
        self.w = w
    }

    /// Checks the sizes against a frame of `tokensPerFrame` tokens (an nl×nl grid); the engine calls
    /// this when it loads a checkpoint, so `temporalPool` can only meet valid sizes.
    public func validate(tokensPerFrame: Int) throws(PoolSizeError) {
        guard t > 0, h > 0, w > 0 else { throw .notPositive(self) }
        guard let side = exactSquareRoot(tokensPerFrame) else { throw .notSquare(tokensPerFrame) }
        guard side % h == 0, side % w == 0 else { throw .spatialDoesNotDivide(self, side: side) }
    }
}

/// Why a TSP pool size cannot apply to a checkpoint's frames.
public enum PoolSizeError: Error, Equatable, CustomStringConvertible {
    case notPositive(PoolSize)
    case notSquare(Int)
    case spatialDoesNotDivide(PoolSize, side: Int)

    public var description: String {
        switch self {
        case .notPositive(let p): "pool size (\(p.t), \(p.h), \(p.w)) must be positive"
        case .notSquare(let n): "\(n) tokens per frame is not a square grid"
        case .spatialDoesNotDivide(let p, let side):
            "pool size (\(p.t), \(p.h), \(p.w)) does not divide the \(side)×\(side) token grid"
        }
    }
}

/// TSP pooling (`TSPVideoEncoder._process_features`, one pool size): non-overlapping groups of `t`
/// consecutive frames and h×w token squares are averaged — first over time, then rows, then
/// columns, like the reference's successive `mean`s.
///
/// Divergence: the reference reshapes with `view(-1, t)` and fails when T is not a multiple of t. We
/// average the tail group over its own length (T mod t frames), so no frame is dropped and a short
/// video still gets pooled tokens.
///
/// - Parameter x: `[T, nl², H]` (projected tokens per frame, nl×nl grid row-major)
/// - Returns: `[⌈T/t⌉, (nl/h)·(nl/w), H]`
/// - Precondition: `h` and `w` divide nl. A precondition, not a throw: the sizes come from the
///   checkpoint and `PoolSize.validate(tokensPerFrame:)` rejects bad ones when it is loaded.
public func temporalPool(_ x: Tensor, size: PoolSize) -> Tensor {
    precondition(x.rank == 3 && x.shape[0] > 0, "temporalPool: input \(x.shape) must be [T, S, H] with T > 0")
    precondition((try? size.validate(tokensPerFrame: x.shape[1])) != nil,
        "temporalPool: pool size \(size) does not fit frames of \(x.shape[1]) tokens")
    let (frames, tokens, hidden) = (x.shape[0], x.shape[1], x.shape[2])
    let side = squareSide(tokens, "temporalPool")
    let (outRows, outCols) = (side / size.h, side / size.w)
    let groups = (frames + size.t - 1) / size.t
    var out = Tensor(uninitialized: [groups, outRows * outCols, hidden])
    x.scalars.withUnsafeBufferPointer { src in
        out.scalars.withUnsafeMutableBufferPointer { dst in
            Numerics.parallelFor(groups, costPerItem: size.t * tokens * hidden) { range in
                var timeMean = [Float](repeating: 0, count: tokens * hidden)
                var rowMean = [Float](repeating: 0, count: outRows * side * hidden)
                for g in range {
                    let first = g * size.t
                    let count = min(size.t, frames - first)
                    // Time: [nl², H] mean of `count` frames.
                    timeMean.withUnsafeMutableBufferPointer { tm in
                        tm.update(repeating: 0)
                        for f in first..<first + count {
                            let frame = src.baseAddress! + f * tokens * hidden
                            for i in 0..<tokens * hidden { tm[i] += frame[i] }
                        }
                        let scale = Float(count)
                        for i in 0..<tokens * hidden { tm[i] /= scale }
                    }
                    // Rows: [nl/h, nl, H].
                    rowMean.withUnsafeMutableBufferPointer { rm in
                        rm.update(repeating: 0)
                        for r in 0..<outRows {
                            for dy in 0..<size.h {
                                let line = (r * size.h + dy) * side * hidden
                                for i in 0..<side * hidden { rm[r * side * hidden + i] += timeMean[line + i] }
                            }
                        }
                        let scale = Float(size.h)
                        for i in 0..<rm.count { rm[i] /= scale }
                    }
                    // Columns: [nl/h, nl/w, H].
                    let group = dst.baseAddress! + g * outRows * outCols * hidden
                    for r in 0..<outRows {
                        for col in 0..<outCols {
                            let cell = group + (r * outCols + col) * hidden
                            cell.update(repeating: 0, count: hidden)
                            for dx in 0..<size.w {
                                let from = (r * side + col * size.w + dx) * hidden
                                for i in 0..<hidden { cell[i] += rowMean[from + i] }
                            }
                            let scale = Float(size.w)
                            for i in 0..<hidden { cell[i] /= scale }
                        }
                    }
                }
            }
        }
    }
    return out
}

// MARK: - Helpers

/// √n when n is a perfect square.
func exactSquareRoot(_ n: Int) -> Int? {
    guard n >= 0 else { return nil }
    var r = Int(Double(n).squareRoot())
    while r * r > n { r -= 1 }
    while (r + 1) * (r + 1) <= n { r += 1 }
    return r * r == n ? r : nil
}

func squareSide(_ n: Int, _ caller: String) -> Int {
    guard let side = exactSquareRoot(n) else { preconditionFailure("\(caller): \(n) tokens is not a square grid") }
    return side
}
