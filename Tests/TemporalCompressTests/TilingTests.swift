import DenseCore
import Foundation
import Testing

@testable import TemporalCompress

/// tiling_golden.json: VILA's candidate lists and chosen grids, computed by the reference in Python.
struct TilingGolden: Decodable {
    struct Order: Decodable {
        let min: Int
        let max: Int
        let order: [[Int]]
    }

    struct S2: Decodable {
        let scales: [Int]
        let max_tiles: Int
        let rows: [[Int]]
    }

    struct Lite: Decodable {
        let min_tiles: Int
        let max_tiles: Int
        let image_size: Int
        let rows: [[Int]]
    }

    let candidate_orders: [Order]
    let dynamic_s2: [S2]
    let dynamic: [Lite]

    static let shared = Result { try JSONDecoder().decode(TilingGolden.self, from: fixtureData("tiling_golden.json")) }
}

@Suite struct DynamicS2PlanTests {
    /// The spec's worked examples (§2.3): grid cols×rows, tower passes, 2×2-projector tokens.
    @Test(arguments: [
        (1920, 1080, 4, 3, 17, 3072), (1080, 1920, 2, 5, 15, 2560), (640, 480, 4, 3, 17, 3072),
        (448, 448, 3, 3, 14, 2304), (1000, 1000, 3, 3, 14, 2304), (4000, 1000, 6, 2, 17, 3072),
    ])
    func specExamples(width: Int, height: Int, cols: Int, rows: Int, passes: Int, tokens: Int) {
        let plan = dynamicS2Plan(width: width, height: height)
        #expect(plan.grid == TileGrid(rows: rows, cols: cols))
        #expect(plan.tileCount == passes)
        #expect(plan.grid.count * 256 == tokens)
    }

    @Test func levelsAreSquashedSquaresThenTheGrid() {
        let plan = dynamicS2Plan(width: 1920, height: 1080)
        #expect(plan.scales == [448, 896, 1344] && plan.tileSize == 448)
        #expect(plan.levels.map { [$0.width, $0.height, $0.grid.rows, $0.grid.cols] } == [[448, 448, 1, 1], [896, 896, 2, 2], [1792, 1344, 3, 4]])
        #expect(plan.levels[1].tiles.map { [$0.x, $0.y] } == [[0, 0], [448, 0], [0, 448], [448, 448]])
        #expect(plan.levels[2].tiles[5] == TileRect(x: 448, y: 448, width: 448, height: 448))
    }

    /// The spec's CPython 3.11 order for 9…12 tiles.
    @Test func candidateOrderOfTheSpec() {
        let order = aspectRatioCandidates(minTiles: 9, maxTiles: 12).map { [$0.cols, $0.rows] }
        #expect(order == [[3, 3], [9, 1], [1, 9], [10, 1], [1, 10], [2, 5], [5, 2], [11, 1], [1, 11], [1, 12], [6, 2], [12, 1], [3, 4], [4, 3], [2, 6]])
    }

    /// CPython's own order for every (min, max) pair with min ≤ 12, max ≤ 32.
    @Test func candidateOrdersMatchCPython() throws {
        let golden = try TilingGolden.shared.get()
        #expect(golden.candidate_orders.count > 300)
        for o in golden.candidate_orders {
            let ours = aspectRatioCandidates(minTiles: o.min, maxTiles: o.max).map { [$0.cols, $0.rows] }
            #expect(ours == o.order, "candidates \(o.min)…\(o.max)")
        }
    }

    /// The reference's choice for ~1,400 sizes under 5 Dynamic-S2 configurations (including max_tiles 9, where CPython's order decides exact ties).
    @Test func gridsMatchTheReference() throws {
        for config in try TilingGolden.shared.get().dynamic_s2 {
            var wrong: [[Int]] = []
            for row in config.rows {
                let plan = dynamicS2Plan(width: row[0], height: row[1], scales: config.scales, maxTiles: config.max_tiles)
                if [plan.grid.cols, plan.grid.rows] != [row[2], row[3]] { wrong.append(row) }
            }
            #expect(config.rows.count > 1000)
            #expect(wrong.isEmpty, "scales \(config.scales) max \(config.max_tiles): \(wrong.count) differ, e.g. \(wrong.prefix(5))")
        }
    }

    @Test func tilesFollowThePlan() {
        var random = SplitMix64(seed: 11)
        let image = random.image(width: 64, height: 40)
        let plan = dynamicS2Plan(width: 64, height: 40, scales: [8, 16, 24])
        let tiles = dynamicS2Tiles(image, plan: plan)
        #expect(tiles.count == plan.tileCount)
        #expect(tiles.allSatisfy { $0.width == 8 && $0.height == 8 })
        #expect(tiles[0] == pillowResize(image, width: 8, height: 8))
        let last = pillowResize(image, width: 8 * plan.grid.cols, height: 8 * plan.grid.rows)
        #expect(tiles[5 + plan.grid.cols] == crop(last, x: 0, y: 8, width: 8, height: 8))
    }
}

@Suite struct DynamicTilePlanTests {
    /// The spec's examples (§2.5): grid cols×rows and tiles including the thumbnail.
    @Test(arguments: [(1920, 1080, 4, 2, 9), (640, 480, 4, 3, 13), (448, 448, 1, 1, 1)])
    func specExamples(width: Int, height: Int, cols: Int, rows: Int, tiles: Int) {
        let plan = dynamicTilePlan(width: width, height: height)
        #expect(plan.grid == TileGrid(rows: rows, cols: cols))
        #expect(plan.tileCount == tiles)
        #expect(plan.thumbnail == (tiles > 1))
    }

    /// The spec's CPython 3.11 order for 1…12 tiles (§2.5).
    @Test func candidateOrderOfTheSpec() {
        let order = aspectRatioCandidates(minTiles: 1, maxTiles: 12).map { "(\($0.cols),\($0.rows))" }.joined(separator: " ")
        #expect(order == "(1,1) (1,2) (2,1) (3,1) (1,3) (2,2) (4,1) (1,4) (5,1) (1,5) (1,6) (6,1) (3,2) (2,3) (7,1) (1,7) "
            + "(4,2) (2,4) (1,8) (8,1) (1,9) (3,3) (9,1) (2,5) (5,2) (10,1) (1,10) (11,1) (1,11) (12,1) (3,4) (4,3) (1,12) (6,2) (2,6)")
    }

    /// Square images climb 1×1 → 2×2 → 3×3 only when the area exceeds half the candidate's pixels.
    @Test(arguments: [(633, 1), (634, 2), (950, 2), (951, 3)])
    func squareTieRule(side: Int, tilesPerSide: Int) {
        #expect(dynamicTilePlan(width: side, height: side).grid == TileGrid(rows: tilesPerSide, cols: tilesPerSide))
    }

    @Test func gridsMatchTheReference() throws {
        for config in try TilingGolden.shared.get().dynamic {
            var wrong: [[Int]] = []
            for row in config.rows {
                let plan = dynamicTilePlan(
                    width: row[0], height: row[1], minTiles: config.min_tiles, maxTiles: config.max_tiles, imageSize: config.image_size)
                if [plan.grid.cols, plan.grid.rows] != [row[2], row[3]] { wrong.append(row) }
            }
            #expect(wrong.isEmpty, "tiles \(config.min_tiles)…\(config.max_tiles) size \(config.image_size): \(wrong.count) differ, e.g. \(wrong.prefix(5))")
        }
    }

    @Test func tilesAreRowMajorThenTheThumbnail() {
        var random = SplitMix64(seed: 12)
        let image = random.image(width: 33, height: 11)
        // 3:1 exactly; 6×2 ties but 363 px is not above half of its 1,200.
        let plan = dynamicTilePlan(width: 33, height: 11, imageSize: 10)
        #expect(plan.grid == TileGrid(rows: 1, cols: 3))
        let tiles = dynamicTiles(image, plan: plan, imageSize: 10)
        let resized = pillowResize(image, width: 30, height: 10)
        #expect(tiles.count == 4)
        #expect(tiles[1] == crop(resized, x: 10, y: 0, width: 10, height: 10))
        #expect(tiles[3] == pillowResize(image, width: 10, height: 10))
        #expect(dynamicTiles(image, plan: dynamicTilePlan(width: 33, height: 11, maxTiles: 1, imageSize: 10), imageSize: 10).count == 1)
    }
}
