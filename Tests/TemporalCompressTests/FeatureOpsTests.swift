import DenseCore
import Foundation
import Testing

@testable import TemporalCompress

/// PyTorch goldens (ops_golden.safetensors) for each op, tolerance 1e-5 relative (+1e-6 absolute
/// for values near zero), and the naive twins.
@Suite struct FeatureOpsGoldenTests {
    static let file = Result { try GoldenFile("ops_golden.safetensors") }

    static func names(_ prefix: String) -> [String] {
        ((try? file.get().names) ?? []).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".in") }.map { String($0.dropLast(3)) }
    }

    /// `area.HxWxC.to.hxw`: F.interpolate(mode="area").
    @Test(arguments: names("area."))
    func areaResizeMatchesTorch(_ name: String) throws {
        let file = try Self.file.get()
        let target = name.split(separator: ".").last!.split(separator: "x").map { Int($0)! }
        let x = try file.tensor("\(name).in")
        let ours = areaResize(x, height: target[0], width: target[1])
        expectClose(ours, try file.tensor("\(name).out"), name)
        expectClose(ours, NaiveReference.areaResize(x, height: target[0], width: target[1]), rtol: 1e-6, name + " vs naive")
    }

    /// `s2c.kK.sS`: flat_square (k = 2) / flat_square_3x3 (k = 3) on an S×S grid — exact copies.
    @Test(arguments: names("s2c."))
    func spaceToChannelMatchesVILA(_ name: String) throws {
        let file = try Self.file.get()
        let k = Int(name.split(separator: ".")[1].dropFirst())!
        let x = try file.tensor("\(name).in")
        let ours = spaceToChannel(x, factor: k)
        #expect(ours == (try file.tensor("\(name).out")), "\(name)")
        #expect(ours == NaiveReference.spaceToChannel(x, factor: k), "\(name) vs naive")
    }

    /// `tsp.T…nl…H…t…h…w…`: TSP pooling; cases with T mod t ≠ 0 hold the reference pool applied to
    /// the tail group by itself (what we do where the reference errors).
    @Test(arguments: names("tsp."))
    func temporalPoolMatchesTSP(_ name: String) throws {
        let file = try Self.file.get()
        let sizes = name.split(separator: ".").last!
        let digits = sizes.split(whereSeparator: { !$0.isNumber }).map { Int($0)! }
        let size = PoolSize(t: digits[0], h: digits[1], w: digits[2])
        let x = try file.tensor("\(name).in")
        let ours = temporalPool(x, size: size)
        expectClose(ours, try file.tensor("\(name).out"), name)
        expectClose(ours, NaiveReference.temporalPool(x, size: size), rtol: 1e-6, name + " vs naive")
    }

    /// `s2merge.rRcC.CC`: merge_features_for_dynamic_s2 + split_chessboard on 5 + R·C tiles.
    @Test(arguments: names("s2merge."))
    func dynamicS2MergeMatchesVILA(_ name: String) throws {
        let file = try Self.file.get()
        let parts = name.split(separator: ".")[1].split(whereSeparator: { !$0.isNumber }).map { Int($0)! }
        let (rows, cols) = (parts[0], parts[1])
        let x = try file.tensor("\(name).in")
        let (count, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        let tiles = (0..<count).map { Tensor(shape: [n, c], scalars: Array(x.scalars[$0 * n * c..<($0 + 1) * n * c])) }
        let plan = DynamicS2Plan(
            scales: [448, 896, 1344], grid: TileGrid(rows: rows, cols: cols),
            levels: [
                ScaleLevel(width: 448, height: 448, grid: TileGrid(rows: 1, cols: 1), tileSize: 448),
                ScaleLevel(width: 896, height: 896, grid: TileGrid(rows: 2, cols: 2), tileSize: 448),
                ScaleLevel(width: 448 * cols, height: 448 * rows, grid: TileGrid(rows: rows, cols: cols), tileSize: 448),
            ])
        let blocks = mergeDynamicS2Features(tiles, plan: plan)
        let expected = try file.tensor("\(name).out")
        #expect(blocks.count == rows * cols)
        let joined = Tensor(shape: [blocks.count] + (blocks.first?.shape ?? []), scalars: blocks.flatMap(\.scalars))
        expectClose(joined, expected, name)
    }

    /// `projmerge.rRcC.sS.HH`: the projected blocks merged into one row-major token sequence.
    @Test(arguments: names("projmerge."))
    func projectedBlocksMergeLikeVILA(_ name: String) throws {
        let file = try Self.file.get()
        let parts = name.split(separator: ".")[1].split(whereSeparator: { !$0.isNumber }).map { Int($0)! }
        let x = try file.tensor("\(name).in")
        let (count, n, h) = (x.shape[0], x.shape[1], x.shape[2])
        let blocks = (0..<count).map { Tensor(shape: [n, h], scalars: Array(x.scalars[$0 * n * h..<($0 + 1) * n * h])) }
        #expect(mergeProjectedBlocks(blocks, grid: TileGrid(rows: parts[0], cols: parts[1])) == (try file.tensor("\(name).out")))
    }

    @Test func fixtureHasEveryOp() {
        #expect(Self.names("area.").count >= 6)
        #expect(Self.names("s2c.").count == 16)
        #expect(Self.names("tsp.").count >= 6)
        #expect(Self.names("s2merge.").count == 2)
        #expect(Self.names("projmerge.").count == 2)
    }
}

@Suite struct FeatureOpsTests {
    /// Values that name their position: (row, column, channel) → r·100 + c·10 + ch.
    static func labelled(_ h: Int, _ w: Int, _ c: Int) -> Tensor {
        Tensor(shape: [h, w, c], scalars: (0..<h * w * c).map { Float(($0 / (w * c)) * 100 + (($0 / c) % w) * 10 + $0 % c) })
    }

    @Test func chessboardMergePlacesBlocksRowMajor() {
        let blocks = (0..<6).map { b in Tensor(shape: [1, 2, 1], scalars: [Float(b * 10), Float(b * 10 + 1)]) }
        let merged = chessboardMerge(blocks, rows: 2, cols: 3)
        #expect(merged.shape == [2, 6, 1])
        #expect(merged.scalars == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51])
        #expect(chessboardSplit(merged, rows: 2, cols: 3) == blocks)
    }

    @Test func chessboardSplitInvertsMerge() {
        var random = SplitMix64(seed: 5)
        let x = random.tensor([12, 20, 3])
        for (rows, cols) in [(1, 1), (3, 4), (2, 5), (12, 1)] {
            #expect(chessboardMerge(chessboardSplit(x, rows: rows, cols: cols), rows: rows, cols: cols) == x)
        }
    }

    @Test func areaResizeHandChecked() {
        // 2×2 → 1×1 averages; 1×2 → 1×3 upsamples with windows [0,1) [0,2) [1,2).
        let x = Tensor(shape: [2, 2, 1], scalars: [1, 2, 3, 6])
        #expect(areaResize(x, height: 1, width: 1).scalars == [3])
        let row = Tensor(shape: [1, 2, 1], scalars: [2, 4])
        #expect(areaResize(row, height: 1, width: 3).scalars == [2, 3, 4])
        // Integer upsampling replicates.
        #expect(areaResize(row, height: 2, width: 4).scalars == [2, 2, 4, 4, 2, 2, 4, 4])
    }

    @Test func areaResizeMatchesNaiveOnRandomShapes() {
        var random = SplitMix64(seed: 9)
        for _ in 0..<20 {
            let x = random.tensor([random.int(1...40), random.int(1...40), random.int(1...5)])
            let (h, w) = (random.int(1...70), random.int(1...70))
            expectClose(areaResize(x, height: h, width: w), NaiveReference.areaResize(x, height: h, width: w), rtol: 1e-6, "\(x.shape) → \(h)×\(w)")
        }
    }

    @Test func replicateChannelsRepeatsEachRow() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect(replicateChannels(x, times: 3) == Tensor(shape: [2, 6], scalars: [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]))
    }

    /// Spec §4: the 3×3 token at (1, 0) holds rows 3–5 × columns 0–2 as r0c0, r0c1, r0c2, r1c0, ….
    @Test func spaceToChannelOrderAndPadding() {
        let x = Self.labelled(7, 7, 1).reshaped([49, 1])
        let k3 = spaceToChannel(x, factor: 3)
        #expect(k3.shape == [9, 9])
        #expect(Array(k3.scalars[27..<36]) == [300, 310, 320, 400, 410, 420, 500, 510, 520])
        // Token (2, 2) covers row/column 6 and the zero padding.
        #expect(Array(k3.scalars[72..<81]) == [660, 0, 0, 0, 0, 0, 0, 0, 0])
        let k2 = spaceToChannel(x, factor: 2)
        #expect(k2.shape == [16, 4])
        #expect(Array(k2.scalars[0..<4]) == [0, 10, 100, 110])
        #expect(Array(k2.scalars[60..<64]) == [660, 0, 0, 0])
        // NVILA's shapes: 32×32 → 16×16 (2×2) and 11×11 (3×3).
        #expect(spaceToChannel(Tensor(zeros: [1024, 2]), factor: 2).shape == [256, 8])
        #expect(spaceToChannel(Tensor(zeros: [1024, 2]), factor: 3).shape == [121, 18])
    }

    @Test(arguments: [2, 3])
    func spaceToChannelMatchesNaive(k: Int) {
        var random = SplitMix64(seed: UInt64(k))
        for s in 1...13 {
            let x = random.tensor([s * s, 3])
            #expect(spaceToChannel(x, factor: k) == NaiveReference.spaceToChannel(x, factor: k), "s \(s)")
        }
    }

    /// Tail rule: 5 frames with t = 2 → groups {0, 1}, {2, 3}, {4}; the last is frame 4 alone.
    @Test func temporalPoolAveragesTheTailOverItsOwnLength() {
        let x = Tensor(shape: [5, 1, 1], scalars: [1, 3, 5, 7, 100])
        #expect(temporalPool(x, size: PoolSize(t: 2, h: 1, w: 1)).scalars == [2, 6, 100])
        #expect(temporalPool(x, size: PoolSize(t: 8, h: 1, w: 1)).scalars == [23.2])
        // Spatial 2×2 on a 2×2 grid: one token, the mean of four.
        let grid = Tensor(shape: [1, 4, 1], scalars: [1, 2, 3, 6])
        #expect(temporalPool(grid, size: PoolSize(t: 1, h: 2, w: 2)).scalars == [3])
    }

    @Test func temporalPoolMatchesNaiveOnRandomShapes() {
        var random = SplitMix64(seed: 21)
        for (frames, side, hidden, t, h, w) in [(9, 4, 3, 4, 2, 1), (16, 6, 2, 8, 3, 2), (1, 2, 5, 3, 1, 1), (7, 8, 2, 7, 4, 8)] {
            let x = random.tensor([frames, side * side, hidden])
            let size = PoolSize(t: t, h: h, w: w)
            #expect(temporalPool(x, size: size).shape == [(frames + t - 1) / t, (side / h) * (side / w), hidden])
            expectClose(temporalPool(x, size: size), NaiveReference.temporalPool(x, size: size), rtol: 1e-6, "\(x.shape) \(size)")
        }
    }

    @Test func poolSizeValidation() {
        #expect(throws: Never.self) { try PoolSize(t: 8, h: 1, w: 1).validate(tokensPerFrame: 256) }
        #expect(throws: PoolSizeError.spatialDoesNotDivide(PoolSize(t: 1, h: 3, w: 1), side: 16)) {
            try PoolSize(t: 1, h: 3, w: 1).validate(tokensPerFrame: 256)
        }
        #expect(throws: PoolSizeError.notSquare(250)) { try PoolSize(t: 1, h: 1, w: 1).validate(tokensPerFrame: 250) }
        #expect(throws: PoolSizeError.notPositive(PoolSize(t: 0, h: 1, w: 1))) { try PoolSize(t: 0, h: 1, w: 1).validate(tokensPerFrame: 4) }
    }

    /// The merge's scale-0 slice is the single 448 tile replicated over the grid (area upsampling by
    /// integer factors), and the last scale's slice is its own tile.
    @Test func dynamicS2MergeSlices() {
        var random = SplitMix64(seed: 8)
        let plan = dynamicS2Plan(width: 64, height: 40, scales: [8, 16, 24])  // 4×3 grid, 4×4 token tiles below
        let tiles = (0..<plan.tileCount).map { _ in random.tensor([16, 2]) }
        let blocks = mergeDynamicS2Features(tiles, plan: plan)
        #expect(blocks.count == 12 && blocks.allSatisfy { $0.shape == [16, 6] })
        // Block 5 = grid (1, 1); its own tile is tiles[5 + 5]; scale 0 is 4×4 tokens spread over a 12×16 map.
        for token in 0..<16 {
            #expect(Array(blocks[5].scalars[token * 6 + 4..<token * 6 + 6]) == Array(tiles[10].scalars[token * 2..<token * 2 + 2]))
            let (y, x) = (4 + token / 4, 4 + token % 4)
            let source = (y * 4 / 12) * 4 + x * 4 / 16
            #expect(Array(blocks[5].scalars[token * 6..<token * 6 + 2]) == Array(tiles[0].scalars[source * 2..<source * 2 + 2]))
        }
    }
}
