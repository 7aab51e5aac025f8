import DenseCore
import Foundation
import Testing

/// The bytes of a file in Tests/TemporalCompressTests/Fixtures (tools/fixtures/gen_temporal_fixtures.py).
func fixtureData(_ name: String) throws -> Data {
    let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try Data(contentsOf: url.appendingPathComponent(name))
}

/// A reference-written safetensors file, read just enough for the goldens: U8 and F32 tensors.
struct GoldenFile {
    private struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }

    private let entries: [String: Entry]
    private let body: Data

    init(_ name: String) throws {
        let data = try fixtureData(name)
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any] ?? [:]
        header["__metadata__"] = nil
        entries = try JSONDecoder().decode([String: Entry].self, from: JSONSerialization.data(withJSONObject: header))
        body = data.subdata(in: 8 + headerLength..<data.count)
    }

    var names: [String] { entries.keys.sorted() }

    private func entry(_ name: String, dtype: String) throws -> (Entry, Data) {
        let e = try #require(entries[name], "fixture tensor \(name) missing — rerun tools/fixtures/gen_temporal_fixtures.py")
        #expect(e.dtype == dtype, "\(name) is \(e.dtype)")
        return (e, body.subdata(in: e.data_offsets[0]..<e.data_offsets[1]))
    }

    func bytes(_ name: String) throws -> (shape: [Int], values: [UInt8]) {
        let (e, data) = try entry(name, dtype: "U8")
        return (e.shape, [UInt8](data))
    }

    func tensor(_ name: String) throws -> Tensor {
        let (e, data) = try entry(name, dtype: "F32")
        let values = data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        return Tensor(shape: e.shape, scalars: values)
    }

    /// A U8 `[h, w, 3]` tensor as an image.
    func image(_ name: String) throws -> RGBImage {
        let (shape, values) = try bytes(name)
        return RGBImage(width: shape[1], height: shape[0], pixels: values)
    }
}

/// FNV-1a 64 of `bytes`, as the generator hashes the outputs it does not store whole.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// |a − e| ≤ atol + rtol·|e| elementwise; on failure names the worst element and the first ones.
func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6, _ what: String) {
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs \(expected.shape)")
    guard actual.shape == expected.shape else { return }
    var bad: [Int] = []
    var worst: (index: Int, diff: Float) = (0, 0)
    for i in actual.scalars.indices {
        let d = abs(actual.scalars[i] - expected.scalars[i])
        if !(d <= atol + rtol * abs(expected.scalars[i])) { bad.append(i) }
        if d > worst.diff || d.isNaN { worst = (i, d) }
    }
    let first = bad.prefix(5).map { "[\($0)] \(actual.scalars[$0]) vs \(expected.scalars[$0])" }
    #expect(bad.isEmpty, "\(what): \(bad.count) of \(actual.count) differ; worst |Δ| \(worst.diff) at \(worst.index); \(first)")
}

/// Seeded test inputs.
extension SplitMix64 {
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func float() -> Float { Float(nextUnit() * 2 - 1) }

    mutating func image(width: Int, height: Int) -> RGBImage {
        RGBImage(width: width, height: height, pixels: (0..<width * height * 3).map { _ in UInt8(truncatingIfNeeded: next()) })
    }

    mutating func tensor(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in float() })
    }
}
