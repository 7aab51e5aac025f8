import DenseCore
import Foundation
import Testing

@testable import TemporalCompress

/// resize_cases.json: every Pillow resize the generator made.
struct ResizeCases: Decodable {
    struct Case: Decodable, CustomTestStringConvertible {
        let input: String
        let filter: String
        let width: Int
        let height: Int
        let box: [Float]?
        let tensor: String
        let rows: [Int]?
        let fnv1a64: String
        var testDescription: String { "\(filter) \(input)\(box.map { " box \($0)" } ?? "") → \(width)×\(height)" }
        var resizeBox: ResizeBox? { box.map { ResizeBox(left: $0[0], top: $0[1], right: $0[2], bottom: $0[3]) } }
    }

    struct Tiles: Decodable {
        let cols: Int
        let rows: Int
        let tiles: [String]
    }

    struct VILATiles: Decodable {
        let input: String
        let dynamic_s2: Tiles
        let dynamic: Tiles
    }

    let cases: [Case]
    let vila_tiles: VILATiles

    static func load() throws -> ResizeCases {
        try JSONDecoder().decode(ResizeCases.self, from: fixtureData("resize_cases.json"))
    }
}

extension ResampleFilter {
    init?(name: String) {
        guard let f = Self.allCases.first(where: { "\($0)" == name }) else { return nil }
        self = f
    }
}

@Suite struct PillowResizeTests {
    static let golden = Result { try GoldenFile("resize_golden.safetensors") }
    static let cases = (try? ResizeCases.load().cases) ?? []

    /// Every pixel of every Pillow output: the contract is "within one level"; we also require exact
    /// bytes, which is what the port delivers (the whole-image FNV hash covers outputs stored as rows).
    @Test(arguments: cases)
    func matchesPillow(_ c: ResizeCases.Case) throws {
        let file = try Self.golden.get()
        let filter = try #require(ResampleFilter(name: c.filter))
        let input = try file.image("in.\(c.input)")
        let ours = pillowResize(input, width: c.width, height: c.height, filter: filter, box: c.resizeBox)
        #expect(ours.width == c.width && ours.height == c.height)
        let (_, expected) = try file.bytes(c.tensor)
        let rowBytes = c.width * 3
        let actual = c.rows.map { rows in rows.flatMap { ours.pixels[$0 * rowBytes..<($0 + 1) * rowBytes] } } ?? ours.pixels
        #expect(actual.count == expected.count)
        var differing = 0, worst = 0
        for (a, e) in zip(actual, expected) where a != e {
            differing += 1
            worst = max(worst, abs(Int(a) - Int(e)))
        }
        #expect(worst <= 1, "\(c.testDescription): \(differing) of \(expected.count) bytes differ, by up to \(worst)")
        #expect(differing == 0, "\(c.testDescription): \(differing) of \(expected.count) bytes differ by 1")
        #expect(fnv1a64(ours.pixels) == c.fnv1a64, "\(c.testDescription): whole-image hash differs from Pillow's")
    }

    @Test func fixtureCoversEveryFilterAndTheNVILASizes() {
        #expect(Self.cases.count >= 200)
        #expect(Set(Self.cases.map(\.filter)) == ["bicubic", "bilinear", "box", "nearest"])
        let nvila = Self.cases.filter { $0.input == "mixed500x290" && $0.filter == "bicubic" }.map { "\($0.width)x\($0.height)" }
        #expect(Set(nvila).isSuperset(of: ["448x448", "896x896", "1344x1344", "1792x1344", "1344x896"]))
        #expect(Self.cases.filter { $0.box != nil }.count >= 40)
    }

    /// VILA's own preprocessing of the 500×290 image (Pillow resizes and crops), tile by tile.
    @Test func tilesMatchVILAPreprocessing() throws {
        let reference = try ResizeCases.load().vila_tiles
        let image = try Self.golden.get().image("in.\(reference.input)")
        let s2 = dynamicS2Plan(width: image.width, height: image.height)
        #expect(s2.grid == TileGrid(rows: reference.dynamic_s2.rows, cols: reference.dynamic_s2.cols))
        #expect(dynamicS2Tiles(image, plan: s2).map { fnv1a64($0.pixels) } == reference.dynamic_s2.tiles)
        let lite = dynamicTilePlan(width: image.width, height: image.height)
        #expect(lite.grid == TileGrid(rows: reference.dynamic.rows, cols: reference.dynamic.cols))
        #expect(dynamicTiles(image, plan: lite).map { fnv1a64($0.pixels) } == reference.dynamic.tiles)
    }
}

@Suite struct ResampleTwinTests {
    /// The row-parallel fixed-point kernel against the per-pixel twin on random sizes and images,
    /// both directions per axis, including 1-pixel and unchanged dimensions and a tall image.
    @Test(arguments: ResampleFilter.allCases)
    func fastMatchesNaive(filter: ResampleFilter) {
        var random = SplitMix64(seed: 41)
        var sizes: [(Int, Int, Int, Int)] = [(1, 1, 3, 2), (5, 1, 5, 4), (9, 7, 9, 3), (3, 400, 2, 50), (2, 300, 2, 9), (40, 30, 40, 30)]
        for _ in 0..<24 {
            sizes.append((random.int(1...60), random.int(1...60), random.int(1...90), random.int(1...90)))
        }
        for (w, h, ow, oh) in sizes {
            let image = random.image(width: w, height: h)
            let fast = pillowResize(image, width: ow, height: oh, filter: filter)
            let naive = NaiveReference.resize(image, width: ow, height: oh, filter: filter)
            let same = fast == naive
            #expect(same, "\(filter) \(w)×\(h) → \(ow)×\(oh)")
        }
    }

    /// Source boxes: fractional, integer, crop-shaped, one axis untouched, a tall image.
    @Test(arguments: ResampleFilter.allCases)
    func boxesMatchNaive(filter: ResampleFilter) {
        var random = SplitMix64(seed: 17)
        let image = random.image(width: 37, height: 23)
        let boxes: [(Int, Int, ResizeBox)] = [
            (11, 7, ResizeBox(left: 2.25, top: 1.5, right: 30.75, bottom: 20)), (9, 8, ResizeBox(left: 3, top: 4, right: 12, bottom: 12)),
            (37, 5, ResizeBox(left: 0, top: 2.5, right: 37, bottom: 21)), (50, 23, ResizeBox(left: 1, top: 0, right: 36, bottom: 23)),
            (60, 40, ResizeBox(left: 30, top: 18, right: 37, bottom: 23)), (5, 3, ResizeBox(width: 37, height: 23)),
        ]
        for (w, h, box) in boxes {
            let same = pillowResize(image, width: w, height: h, filter: filter, box: box)
                == NaiveReference.resize(image, width: w, height: h, filter: filter, box: box)
            #expect(same, "\(filter) box \(box) → \(w)×\(h)")
        }
        let tall = random.image(width: 2, height: 300)
        let box = ResizeBox(left: 0.5, top: 7.25, right: 2, bottom: 290)
        let same = pillowResize(tall, width: 3, height: 20, filter: filter, box: box)
            == NaiveReference.resize(tall, width: 3, height: 20, filter: filter, box: box)
        #expect(same, "\(filter) tall with box")
    }

    /// Large enough for the parallel split to cut rows across threads.
    @Test func parallelRowsMatchNaive() {
        var random = SplitMix64(seed: 7)
        let image = random.image(width: 211, height: 157)
        let same = pillowResize(image, width: 448, height: 320) == NaiveReference.resize(image, width: 448, height: 320, filter: .bicubic)
        #expect(same)
    }

    @Test func unchangedSizeIsACopyAndOneAxisPassesAreSkipped() {
        var random = SplitMix64(seed: 3)
        let image = random.image(width: 17, height: 9)
        #expect(pillowResize(image, width: 17, height: 9) == image)
        // Height only: each column is resampled on its own, so a constant row stays constant.
        let flat = RGBImage(width: 4, height: 6, pixels: (0..<72).map { UInt8(($0 / 12) * 40) })
        let squeezed = pillowResize(flat, width: 4, height: 3)
        for y in 0..<3 { #expect(Set((0..<4).map { squeezed[$0, y].0 }).count == 1) }
    }
}

@Suite struct PixelTests {
    @Test func cropCopiesTheRectangleAndFillsOutsideWithBlack() {
        let image = RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0) })
        let inside = crop(image, x: 1, y: 0, width: 2, height: 2)
        #expect(inside.pixels == [3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17])
        let outside = crop(image, x: -1, y: 1, width: 2, height: 2)
        #expect(outside.pixels == [0, 0, 0, 9, 10, 11, 0, 0, 0, 0, 0, 0])
    }

    /// transformers' SiglipImageProcessor output for every byte value, bit for bit.
    @Test func siglipPixelsMatchTheProcessor() throws {
        let file = try GoldenFile("ops_golden.safetensors")
        let (shape, values) = try file.bytes("siglip.in")
        let image = RGBImage(width: shape[1], height: shape[0], pixels: values)
        let expected = try file.tensor("siglip.out")
        let ours = siglipPixels(image)
        #expect(ours.shape == expected.shape)
        #expect(ours.scalars.map(\.bitPattern) == expected.scalars.map(\.bitPattern))
        #expect(ours.scalars[0] == -1 && ours.scalars[255] == 1)
    }
}
