import DenseCore
import Foundation
import Logging
import TemporalCompress
import Testing

@testable import Engine

/// NVILA's vision half and the spliced prompt against the reference (transformers' SiglipVisionModel
/// and Qwen2ForCausalLM, Pillow, and VILA's tiling / merging / projector / TSP / splicing at
/// b760c34), on the tiny checkpoints `tools/fixtures/gen_nvila_fixtures.py` writes (see
/// Fixtures/README.md, "NVILA fixtures"). Each stage is fed the reference's own input so a
/// mismatch points at one stage; the end-to-end cases start from the image or frames.
/// Tolerance: 1e-4 of the largest magnitude of the compared tensor, as for the LLM goldens.
@Suite(.serialized) struct NVILAGoldenTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let golden = try! SafetensorsFile(path: fixtures.appendingPathComponent("nvila_golden.safetensors").path)
    nonisolated(unsafe) static let cases: [String: [String: Any]] = {
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("nvila_golden.json"))
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        let list = json["cases"] as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as! String, $0) })
    }()

    nonisolated(unsafe) static var models: [String: NVILAModel] = [:]
    static func model(_ folder: String) throws -> NVILAModel {
        if let m = models[folder] { return m }
        let m = try NVILAModel.load(directory: fixtures.appendingPathComponent(folder).path, logger: silentLogger)
        models[folder] = m
        return m
    }

    static func tensor(_ name: String) throws -> Tensor { try golden.tensor(name) }

    /// U8 `[n, h, w, 3]` (or `[h, w, 3]`) → images.
    static func images(_ name: String) throws -> [RGBImage] {
        let (_, shape, bytes) = try golden.rawBytes(name)
        let (h, w) = (shape[shape.count - 3], shape[shape.count - 2])
        let n = shape.count == 4 ? shape[0] : 1
        return (0..<n).map { RGBImage(width: w, height: h, pixels: Array(bytes[($0 * h * w * 3)..<(($0 + 1) * h * w * 3)])) }
    }

    static func doubles(_ name: String) throws -> [Double] {
        let (dtype, _, bytes) = try golden.rawBytes(name)
        precondition(dtype == .f64)
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }

    static func slice(_ t: Tensor, _ i: Int) -> Tensor {
        let inner = Array(t.shape.dropFirst())
        let n = inner.reduce(1, *)
        return Tensor(shape: inner, scalars: Array(t.scalars[(i * n)..<((i + 1) * n)]))
    }

    static func ids(_ c: [String: Any], _ key: String) -> [Int] { (c[key] as! [NSNumber]).map(\.intValue) }

    // MARK: - Stages

    @Test func towerOnReferencePixels() throws {
        let model = try Self.model("tiny-nvila-s2")
        let tiles = try Self.images("s2.image.tiles.pixels")
        let features = try Self.tensor("s2.image.tower.features")
        for (k, index) in [(0, 0), (1, 16)] {
            let out = model.tower(siglipPixels(tiles[k]))
            #expect(out.shape == [1024, 16])
            expectClose(out, Self.slice(features, index), relative: 1e-4, "tile \(index)")
        }
    }

    @Test func dynamicS2TilesMatchPillow() throws {
        let image = try Self.images("image.input")[0]
        let plan = dynamicS2Plan(width: image.width, height: image.height)
        #expect(plan.grid == TileGrid(rows: 3, cols: 4))
        let tiles = dynamicS2Tiles(image, plan: plan)
        #expect(tiles.count == 17)
        let stored = try Self.images("s2.image.tiles.pixels")
        for (k, index) in [(0, 0), (1, 16)] {
            let diff = zip(tiles[index].pixels, stored[k].pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(diff <= 1, "tile \(index): max difference \(diff) levels")
        }
        let sums = try Self.doubles("s2.image.tiles.normalized_sum")
        for (i, tile) in tiles.enumerated() {
            let sum = siglipPixels(tile).scalars.reduce(0.0) { $0 + Double($1) }
            #expect(abs(sum - sums[i]) < 1e-2 * Double(448 * 448 * 3) / 255, "tile \(i): \(sum) vs \(sums[i])")
        }
    }

    @Test func dynamicS2MergeAndProjector() throws {
        let model = try Self.model("tiny-nvila-s2")
        let image = try Self.images("image.input")[0]
        let plan = dynamicS2Plan(width: image.width, height: image.height)
        let features = try Self.tensor("s2.image.tower.features")
        let tiles = (0..<17).map { Self.slice(features, $0) }
        let blocks = mergeDynamicS2Features(tiles, plan: plan)  // 12 × [1024, 48]
        let merged = chessboardMerge(blocks.map { $0.reshaped([32, 32, 48]) }, rows: 3, cols: 4)
        expectClose(merged, try Self.tensor("s2.image.s2.merged"), relative: 1e-4, "merged")
        let projected = blocks.map { model.projector($0).reshaped([16, 16, 64]) }
        let grid = chessboardMerge(projected, rows: 3, cols: 4).reshaped([3072, 64])
        expectClose(grid, try Self.tensor("s2.image.projector.output"), relative: 1e-4, "grid")
    }

    @Test func framesThroughReplicatedProjector() throws {
        let model = try Self.model("tiny-nvila-s2")
        let features = try Self.tensor("s2.video.tower.features")
        let expected = try Self.tensor("s2.video.projector.output")
        for f in 0..<6 {
            expectClose(model.projectFrame(Self.slice(features, f)), Self.slice(expected, f), relative: 1e-4, "frame \(f)")
        }
    }

    @Test func liteProjector3x3() throws {
        let model = try Self.model("tiny-nvila-lite")
        let features = try Self.tensor("lite.image.tower.features")
        let expected = try Self.tensor("lite.image.projector.output")  // [847, 64]
        for t in 0..<7 {
            let out = model.projectFrame(Self.slice(features, t))
            #expect(out.shape == [121, 64])
            let reference = Tensor(shape: [121, 64], scalars: Array(expected.scalars[(t * 121 * 64)..<((t + 1) * 121 * 64)]))
            expectClose(out, reference, relative: 1e-4, "tile \(t)")
        }
    }

    @Test func tspPooling() throws {
        let model = try Self.model("tiny-nvila-video")
        let projected = try Self.tensor("video.video.projector.output")
        let frames = (0..<6).map { Self.slice(projected, $0) }
        let out = try model.encodeVideo(projected: frames)
        #expect(out.shape == [771, 64])
        expectClose(out, try Self.tensor("video.video.tsp.output"), relative: 1e-4, "tsp output")
    }

    // MARK: - End to end: pixels in, spliced prompt, logits and greedy ids out

    static let endToEnd: [(name: String, folder: String)] = [
        ("s2.image", "tiny-nvila-s2"), ("s2.video", "tiny-nvila-s2"), ("lite.image", "tiny-nvila-lite"),
        ("video.video", "tiny-nvila-video"), ("lite.image", "tiny-nvila-lite-hf"),
    ]

    @Test(arguments: endToEnd)
    func promptLogitsAndGreedy(name: String, folder: String) throws {
        let model = try Self.model(folder)
        let c = Self.cases[name]!
        let media: [Media]
        let text: String
        if name.hasSuffix(".image") {
            media = [.image(try Self.images("image.input")[0])]
            text = "Describe the image."
        } else {
            media = [.video(try Self.images("video.input"))]
            text = "Describe the video."
        }
        #expect(model.userMessage(text: text, media: media) == c["user_content"] as? String)
        #expect(model.promptIDs(userMessage: model.userMessage(text: text, media: media)) == Self.ids(c, "prompt_ids"))
        let prompt = try model.promptEmbeddings(text: text, media: media)
        let expected = try Self.tensor("\(name).prompt.embeddings")
        expectClose(prompt, expected, relative: 1e-4, "\(name) prompt embeddings")
        var cache = KVCache(config: model.llm.config, capacity: prompt.shape[0] + 1)
        let logits = model.llm.forward(prompt, cache: &cache)
        expectClose(logits.reshaped([logits.count]), try Self.tensor("\(name).prompt.logits_last"), relative: 1e-4, "\(name) logits")
        let greedy = Self.ids(c, "greedy_ids")
        let options = GenerationOptions(maxNewTokens: greedy.count, stopTokens: model.stopTokens)
        let out = try model.generate(text: text, media: media, options: options)
        #expect(out == greedy)
    }
}
