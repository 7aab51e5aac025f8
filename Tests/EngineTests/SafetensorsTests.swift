import DenseCore
import Foundation
import Testing

@testable import Engine

/// The error `body` throws, when it is a `WeightError`; nil when it throws nothing (or another type).
private func weightError(_ body: () throws -> Void) -> WeightError? {
    do {
        try body()
        return nil
    } catch let error as WeightError {
        return error
    } catch {
        Issue.record("expected a WeightError, got \(type(of: error)): \(error)")
        return nil
    }
}

private typealias Bytes = SafetensorsBytes

// MARK: - Against the reference writer

/// `Fixtures/safetensors/reference.json`, written by tools/fixtures/gen_safetensors_fixture.py.
private struct ReferenceFixture: Decodable {
    struct Expected: Decodable {
        let dtype: String
        let shape: [Int]
        let f32Bits: [UInt32]?  // the values torch / numpy widen to; nil for non-float dtypes
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case f32Bits = "f32_bits"
        }
    }
    struct File: Decodable {
        let writer: String
        let metadata: [String: String]?
        let tensors: [String: Expected]
    }
    let files: [String: File]

    static func load() throws -> ReferenceFixture {
        let url = try #require(Bundle.module.url(forResource: "reference", withExtension: "json", subdirectory: "Fixtures/safetensors"))
        return try JSONDecoder().decode(ReferenceFixture.self, from: Data(contentsOf: url))
    }

    static func path(_ file: String) throws -> String {
        let name = (file as NSString).deletingPathExtension
        return try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures/safetensors")).path
    }
}

@Suite struct SafetensorsReferenceTests {
    @Test(arguments: ["reference.safetensors", "reference_numpy.safetensors"])
    func readsWhatTheReferenceWrote(fileName: String) throws {
        let expected = try #require(try ReferenceFixture.load().files[fileName])
        let path = try ReferenceFixture.path(fileName)
        let file = try SafetensorsFile(path: path)
        #expect(file.names == expected.tensors.keys.sorted())
        #expect(file.metadata == (expected.metadata ?? [:]))

        for (name, want) in expected.tensors {
            let info = try #require(file.info(name))
            #expect(info.dtype.rawValue == want.dtype, "\(name)")
            #expect(info.shape == want.shape, "\(name)")
            guard let bits = want.f32Bits else {
                #expect(weightError { _ = try file.tensor(name) } == .unsupportedDType(name: name, dtype: want.dtype, file: path))
                continue
            }
            let tensor = try file.tensor(name)
            #expect(tensor.shape == want.shape, "\(name)")
            try #require(tensor.scalars.count == bits.count, "\(name)")
            for (index, (value, wantBits)) in zip(tensor.scalars, bits).enumerated() {
                let reference = Float(bitPattern: wantBits)
                if reference.isNaN {
                    // torch canonicalises every F16 NaN to 0x7FFFFFFF (dropping the sign); only
                    // NaN-ness is portable. Payload and sign are checked exhaustively below.
                    #expect(value.isNaN, "\(name)[\(index)] is \(value), expected NaN")
                } else {
                    #expect(value.bitPattern == wantBits, "\(name)[\(index)] is \(value), expected \(reference)")
                }
            }
        }
    }

    @Test func referenceSpecialsAreCovered() throws {
        // Guards the fixture itself: the F16/BF16 tensors must keep their subnormals, infinities and NaNs.
        let tensors = try ReferenceFixture.load().files["reference.safetensors"]!.tensors
        for name in ["f16.special", "bf16.special"] {
            let values = try #require(tensors[name]?.f32Bits).map { Float(bitPattern: $0) }
            #expect(values.contains { $0.isSubnormal || ($0 != 0 && abs($0) < Float(Float16.leastNormalMagnitude)) })
            #expect(values.contains(.infinity) && values.contains(-.infinity) && values.contains { $0.isNaN })
        }
        #expect(tensors["f32.scalar"]?.shape == [])
        #expect(tensors["f32.empty"]?.shape == [0, 4])
    }

    @Test func referenceFileThroughTheStore() throws {
        let fixture = try ReferenceFixture.load().files["reference.safetensors"]!
        let path = try ReferenceFixture.path("reference.safetensors")
        let store = try WeightStore(files: [path])
        for (name, want) in fixture.tensors where want.f32Bits != nil {
            #expect(try store.tensor(name, shape: want.shape).shape == want.shape)
        }
        #expect(store.unconsumed == ["i64.counts", "u8.bytes"])
        #expect(weightError { try store.assertAllConsumed() } == .unused(["i64.counts", "u8.bytes"]))
        try store.assertAllConsumed(ignoring: ["i64.counts", "u8.bytes"])
        #expect(weightError { _ = try store.tensor("i64.counts", shape: [3]) } == .unsupportedDType(name: "i64.counts", dtype: "I64", file: path))
    }
}

// MARK: - Widening, exhaustively, against a naive decoder

@Suite struct WideningTests {
    /// Decodes a binary16 / bfloat16 pattern by its definition: (-1)^s · 2^(e-bias) · 1.m, or
    /// 2^(1-bias) · 0.m for subnormals. Returns nil for NaN.
    static func naiveDecode(_ bits: UInt16, exponentBits: Int, mantissaBits: Int) -> Float? {
        let sign: Float = bits >> 15 == 1 ? -1 : 1
        let exponent = Int(bits >> mantissaBits) & ((1 << exponentBits) - 1)
        let mantissa = Int(bits) & ((1 << mantissaBits) - 1)
        let bias = (1 << (exponentBits - 1)) - 1
        if exponent == (1 << exponentBits) - 1 { return mantissa == 0 ? sign * .infinity : nil }
        if exponent == 0 { return sign * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: Float(mantissa)) }
        return sign * Float(sign: .plus, exponent: exponent - bias, significand: 1 + Float(mantissa) / Float(1 << mantissaBits))
    }

    static let allPatterns = (0...UInt16.max).flatMap { Bytes.littleEndian($0) }

    enum HalfFormat: String, CaseIterable, Sendable { case f16, bf16 }

    @Test(arguments: HalfFormat.allCases, [false, true])
    func widensEveryPatternAsDefined(format: HalfFormat, unaligned: Bool) {
        let (exponentBits, mantissaBits) = format == .f16 ? (5, 10) : (8, 7)
        let widen = format == .f16 ? SafetensorsFile.widenF16 : SafetensorsFile.widenBF16
        let source = (unaligned ? [0] : []) + Self.allPatterns
        var output = [Float](repeating: 0, count: 65_536)
        source.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer {
                widen(UnsafeRawBufferPointer(rebasing: raw[(unaligned ? 1 : 0)...]), $0)
            }
        }
        var wrong: [String] = []
        for bits in 0...UInt16.max {
            let value = output[Int(bits)]
            let pattern = "0x\(String(bits, radix: 16)) → 0x\(String(value.bitPattern, radix: 16))"
            if let expected = Self.naiveDecode(bits, exponentBits: exponentBits, mantissaBits: mantissaBits) {
                if value.bitPattern != expected.bitPattern { wrong.append("\(pattern), expected \(expected)") }
            } else if !value.isNaN || value.sign != (bits >> 15 == 1 ? .minus : .plus) {
                wrong.append("\(pattern), expected NaN with the same sign")
            } else if format == .bf16, value.bitPattern != UInt32(bits) << 16 {
                wrong.append("\(pattern), expected the payload kept")  // BF16 widening is a shift
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, first: \(wrong.prefix(5))")
    }
}

// MARK: - Header validation

struct CorruptHeaderCase: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let fragment: String  // must appear in the reason
    var testDescription: String { label }

    init(_ label: String, _ bytes: [UInt8], _ fragment: String) {
        (self.label, self.bytes, self.fragment) = (label, bytes, fragment)
    }

    /// One tensor "a" with raw JSON fields, plus `dataBytes` zero bytes of data.
    static func entry(_ fields: String, dataBytes: Int = 8) -> [UInt8] {
        Bytes.file(header: "{\"a\":{\(fields)}}", data: [UInt8](repeating: 0, count: dataBytes))
    }
}

@Suite struct SafetensorsHeaderTests {
    static let corrupt: [CorruptHeaderCase] = [
        .init("file shorter than the length prefix", [8, 0, 0], "too short"),
        .init("empty file", [], "file is 0 bytes"),
        .init("header length above the limit", Bytes.file(header: "{}", declaredLength: 100_000_001), "exceeds the limit"),
        .init("header length UInt64.max", Bytes.file(header: "{}", declaredLength: .max), "exceeds the limit"),
        .init("header length past the end", Bytes.file(header: "{}", declaredLength: 3), "runs past the end of the 10-byte file"),
        .init("empty header", Bytes.file(header: ""), "not valid JSON"),
        .init("not JSON", Bytes.file(header: "{\"a\": nope}"), "not valid JSON"),
        .init("truncated JSON", Bytes.file(header: "{\"a\":{\"dtype\":\"F32\""), "not valid JSON"),
        .init("not UTF-8", Bytes.littleEndian(UInt64(4)) + [0x7B, 0xFF, 0xFE, 0x7D], "not valid JSON"),
        .init("JSON array", Bytes.file(header: "[1,2]"), "not a JSON object"),
        .init("JSON string", Bytes.file(header: "\"x\""), "not a JSON object"),
        .init("entry not an object", Bytes.file(header: "{\"a\":5}"), "tensor \"a\" is not an object"),
        .init("dtype missing", CorruptHeaderCase.entry(#""shape":[2],"data_offsets":[0,8]"#), "tensor \"a\" has no \"dtype\" field"),
        .init("shape missing", CorruptHeaderCase.entry(#""dtype":"F32","data_offsets":[0,8]"#), "tensor \"a\" has no \"shape\" field"),
        .init("offsets missing", CorruptHeaderCase.entry(#""dtype":"F32","shape":[2]"#), "has no \"data_offsets\" field"),
        .init("unknown dtype", CorruptHeaderCase.entry(#""dtype":"F33","shape":[2],"data_offsets":[0,8]"#), "unknown dtype \"F33\""),
        .init("lower-case dtype", CorruptHeaderCase.entry(#""dtype":"f32","shape":[2],"data_offsets":[0,8]"#), "unknown dtype \"f32\""),
        .init("dtype not a string", CorruptHeaderCase.entry(#""dtype":4,"shape":[2],"data_offsets":[0,8]"#), "tensor \"a\" \"dtype\" is not a string"),
        .init("shape not an array", CorruptHeaderCase.entry(#""dtype":"F32","shape":2,"data_offsets":[0,8]"#), "tensor \"a\" \"shape\" is not an array"),
        .init("fractional dimension", CorruptHeaderCase.entry(#""dtype":"F32","shape":[1.5],"data_offsets":[0,8]"#), "tensor \"a\" \"shape\"[0]: 1.5 is not an integer"),
        .init("boolean dimension", CorruptHeaderCase.entry(#""dtype":"F32","shape":[true],"data_offsets":[0,4]"#), "tensor \"a\" \"shape\"[0] is not a number"),
        .init("negative dimension", CorruptHeaderCase.entry(#""dtype":"F32","shape":[-2],"data_offsets":[0,8]"#), "negative dimension"),
        .init("element count overflows", CorruptHeaderCase.entry(#""dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]"#), "overflows"),
        .init("byte count overflows", CorruptHeaderCase.entry(#""dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]"#), "needs more than the file holds"),
        .init("offsets reversed", CorruptHeaderCase.entry(#""dtype":"F32","shape":[2],"data_offsets":[8,0]"#), "expected 0 ≤ begin ≤ end"),
        .init("negative begin", CorruptHeaderCase.entry(#""dtype":"F32","shape":[2],"data_offsets":[-8,0]"#), "expected 0 ≤ begin ≤ end"),
        .init("three offsets", CorruptHeaderCase.entry(#""dtype":"F32","shape":[2],"data_offsets":[0,4,8]"#), "expected [begin, end]"),
        .init("one offset", CorruptHeaderCase.entry(#""dtype":"F32","shape":[0],"data_offsets":[0]"#), "expected [begin, end]"),
        .init("offsets past the data", CorruptHeaderCase.entry(#""dtype":"F32","shape":[4],"data_offsets":[0,16]"#), "beyond the 8 data bytes"),
        .init("dimension beyond Int", CorruptHeaderCase.entry(#""dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]"#), "tensor \"a\" \"shape\"[0]: 1e+20 is not an integer"),
        .init("offset beyond Int", CorruptHeaderCase.entry(#""dtype":"F32","shape":[2],"data_offsets":[0,1e30]"#), "tensor \"a\" \"data_offsets\"[1]"),
        .init("fewer bytes than shape × size", CorruptHeaderCase.entry(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#), "spans 8 bytes, but F32 [3] needs 12 bytes"),
        .init("more bytes than shape × size", CorruptHeaderCase.entry(#""dtype":"F16","shape":[2],"data_offsets":[0,8]"#), "spans 8 bytes, but F16 [2] needs 4 bytes"),
        .init("0-d tensor without its value", CorruptHeaderCase.entry(#""dtype":"BF16","shape":[],"data_offsets":[0,0]"#), "needs 2 bytes"),
        .init("sub-byte dtype not whole bytes", CorruptHeaderCase.entry(#""dtype":"F4","shape":[3],"data_offsets":[0,2]"#), "not whole bytes"),
        .init(
            "overlapping ranges",
            Bytes.file(
                header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                data: .init(repeating: 0, count: 12)),
            "tensors \"a\" and \"b\" overlap at data bytes [4, 8)"),
        .init(
            "the same range twice",
            Bytes.file(
                header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#,
                data: .init(repeating: 0, count: 8)),
            "overlap"),
        .init(
            "a range inside another",
            Bytes.file(
                header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#,
                data: .init(repeating: 0, count: 16)),
            "overlap"),
        .init("metadata value not a string", Bytes.file(header: #"{"__metadata__":{"format":1}}"#), "__metadata__ \"format\" is not a string"),
        .init("metadata not an object", Bytes.file(header: #"{"__metadata__":[1]}"#), "__metadata__ is not an object"),
    ]

    @Test(arguments: corrupt)
    func refusesACorruptHeader(_ testCase: CorruptHeaderCase) throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("bad.safetensors", testCase.bytes)
        guard case .corruptHeader(let file, let reason) = weightError({ _ = try SafetensorsFile(path: path) }) else {
            Issue.record("\(testCase.label): expected corruptHeader")
            return
        }
        #expect(file == path)
        #expect(reason.contains(testCase.fragment), "reason: \(reason)")
        #expect(!reason.contains("\n"))
    }

    @Test func acceptsWhatTheFormatAllows() throws {
        let directory = try TemporaryDirectory()
        // No tensors at all; a header padded with spaces; `__metadata__` set to null.
        for header in ["{}", "{}      ", #"{"__metadata__":null}"#] {
            let file = try SafetensorsFile(path: try directory.write("empty.safetensors", Bytes.file(header: header)))
            #expect(file.names.isEmpty && file.metadata.isEmpty)
        }
        // Empty tensors sharing an offset with a real one (as the reference writer lays them out),
        // a gap between ranges, trailing bytes after the last one, an unknown extra field.
        let header = #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"#
            + #""a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[12,14],"x":1},"#
            + #""__metadata__":{"format":"mlx"}}"#
        let data = [0xFF, 0xFF, 0xFF, 0xFF] + Bytes.f32([1.5]) + [0, 0, 0, 0] + Bytes.bf16([-2]) + [9, 9]
        let file = try SafetensorsFile(path: try directory.write("lenient.safetensors", Bytes.file(header: header, data: data)))
        #expect(file.names == ["a", "b", "e"])
        #expect(file.metadata == ["format": "mlx"])
        #expect(try file.tensor("a") == Tensor(shape: [1], scalars: [1.5]))
        #expect(try file.tensor("b") == Tensor(shape: [1], scalars: [-2]))
        #expect(try file.tensor("e") == Tensor(shape: [0, 3], scalars: []))
    }

    @Test func recordsOtherDTypesButRefusesToLoadThem() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "mixed.safetensors",
            Bytes.file([
                .init(name: "ids", dtype: "I64", shape: [2], data: Bytes.i64([7, -1])),
                .init(name: "w", dtype: "F32", shape: [2], data: Bytes.f32([1, 2])),
                .init(name: "q", dtype: "F8_E4M3", shape: [2, 2], data: [1, 2, 3, 4]),
            ]))
        let file = try SafetensorsFile(path: path)
        #expect(file.info("ids")?.dtype == .i64 && file.info("ids")?.shape == [2])
        #expect(file.info("q")?.dtype == .f8E4M3)
        #expect(weightError { _ = try file.tensor("ids") } == .unsupportedDType(name: "ids", dtype: "I64", file: path))
        #expect(weightError { _ = try file.tensor("q") } == .unsupportedDType(name: "q", dtype: "F8_E4M3", file: path))
        #expect(try file.tensor("w").scalars == [1, 2])
        #expect(weightError { _ = try file.tensor("nope") } == .missing(name: "nope", file: path))
        #expect(file.info("nope") == nil)
    }

    @Test func readsTensorsAtUnalignedOffsets() throws {
        // MLX writes unpadded headers, so data can start at any byte. Pick the U8 prefix length
        // that puts the F32 tensor at an odd absolute offset.
        let directory = try TemporaryDirectory()
        var found: (bytes: [UInt8], f32Offset: Int)?
        for padding in 1...8 {
            let bytes = Bytes.file(
                [
                    .init(name: "pad", dtype: "U8", shape: [padding], data: .init(repeating: 7, count: padding)),
                    .init(name: "f32", dtype: "F32", shape: [2, 2], data: Bytes.f32([1, -2.5, .pi, .leastNormalMagnitude / 8])),
                    .init(name: "f16", dtype: "F16", shape: [3], data: Bytes.f16([1, -0.5, 65504])),
                    .init(name: "bf16", dtype: "BF16", shape: [1, 3], data: Bytes.bf16([1, -2, 0.5])),
                ], alignment: 1)
            let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
            let f32Offset = 8 + headerLength + padding
            if f32Offset % 2 == 1 { found = (bytes, f32Offset); break }
        }
        let (bytes, offset) = try #require(found)
        #expect(offset % 4 != 0 && (offset + 16) % 2 == 1 && (offset + 22) % 2 == 1)  // f16 and bf16 odd too
        let file = try SafetensorsFile(path: try directory.write("mlx.safetensors", bytes))
        #expect(try file.tensor("f32") == Tensor(shape: [2, 2], scalars: [1, -2.5, .pi, .leastNormalMagnitude / 8]))
        #expect(try file.tensor("f16") == Tensor(shape: [3], scalars: [1, -0.5, 65504]))
        #expect(try file.tensor("bf16") == Tensor(shape: [1, 3], scalars: [1, -2, 0.5]))
    }

    @Test func namesTheFileWhenItCannotBeOpened() throws {
        let directory = try TemporaryDirectory()
        let missing = (directory.path as NSString).appendingPathComponent("absent.safetensors")
        #expect(weightError { _ = try SafetensorsFile(path: missing) } == .notFound(path: missing))
        #expect(weightError { _ = try SafetensorsFile(path: directory.path) } == .unreadable(path: directory.path, reason: "not a regular file"))
    }
}

// MARK: - Store, index, scope

@Suite struct WeightStoreTests {
    /// Two shards and an index, laid out like an HF sharded checkpoint.
    static func shardedCheckpoint(in directory: TemporaryDirectory, index: String? = nil) throws {
        try directory.write(
            "model-00001-of-00002.safetensors",
            Bytes.file([
                .init(name: "model.embed_tokens.weight", dtype: "F32", shape: [2, 3], data: Bytes.f32([1, 2, 3, 4, 5, 6])),
                .init(name: "model.layers.0.mlp.up_proj.weight", dtype: "BF16", shape: [2, 2], data: Bytes.bf16([0.5, -1, 2, 4])),
            ]))
        try directory.write(
            "model-00002-of-00002.safetensors",
            Bytes.file(
                [
                    .init(name: "model.layers.1.mlp.up_proj.weight", dtype: "F16", shape: [2, 2], data: Bytes.f16([1, 2, 3, 4])),
                    .init(name: "lm_head.weight", dtype: "F32", shape: [3, 2], data: Bytes.f32([6, 5, 4, 3, 2, 1])),
                ], alignment: 1))
        // A consolidated copy next to the shards must be ignored when an index exists.
        try directory.write(
            "consolidated.safetensors",
            Bytes.file([.init(name: "stray", dtype: "F32", shape: [1], data: Bytes.f32([0]))]))
        try directory.write(
            WeightStore.indexFileName,
            text: index
                ?? """
                {"metadata": {"total_size": 72}, "weight_map": {
                  "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                  "model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
                  "model.layers.1.mlp.up_proj.weight": "model-00002-of-00002.safetensors",
                  "lm_head.weight": "model-00002-of-00002.safetensors"}}
                """)
    }

    @Test func loadsAShardedCheckpointThroughItsIndex() throws {
        let directory = try TemporaryDirectory()
        try Self.shardedCheckpoint(in: directory)
        let store = try WeightStore(directory: directory.path)
        #expect(store.names == [
            "lm_head.weight", "model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight",
        ])
        #expect(!store.contains("stray"))
        #expect(store.shape(of: "lm_head.weight") == [3, 2])
        #expect(store.shape(of: "nope") == nil)

        let model = WeightScope(store).scoped("model")
        #expect(try model("embed_tokens.weight", shape: [2, 3]).scalars == [1, 2, 3, 4, 5, 6])
        for (i, expected) in ([[0.5, -1, 2, 4], [1, 2, 3, 4]] as [[Float]]).enumerated() {
            let layer = model.scoped("layers").scoped("\(i)")
            #expect(try layer.scoped("mlp")("up_proj.weight", shape: [2, 2]).scalars == expected)
        }
        #expect(store.unconsumed == ["lm_head.weight"])
        #expect(weightError { try store.assertAllConsumed() } == .unused(["lm_head.weight"]))
        try store.assertAllConsumed(ignoring: ["lm_head.weight"])
        _ = try store.tensor("lm_head.weight", shape: [3, 2])
        try store.assertAllConsumed()
    }

    @Test(arguments: [
        (#"{"weight_map": {"a": "model-00003-of-00003.safetensors"}}"#, "names shard \"model-00003-of-00003.safetensors\", which does not exist"),
        (#"{"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors"}}"#, "maps tensor \"lm_head.weight\" to \"model-00001-of-00002.safetensors\", which does not hold it"),
        (#"{"weight_map": {"a": "../elsewhere.safetensors"}}"#, "outside the checkpoint directory"),
        (#"{"metadata": {}}"#, "no \"weight_map\" object"),
        (#"{"weight_map": {}}"#, "\"weight_map\" is empty"),
        (#"{"weight_map": {"a": 3}}"#, "maps tensor names to file names"),
        ("not json", "maps tensor names to file names"),
    ])
    func refusesABrokenIndex(index: String, fragment: String) throws {
        let directory = try TemporaryDirectory()
        try Self.shardedCheckpoint(in: directory, index: index)
        let indexPath = (directory.path as NSString).appendingPathComponent(WeightStore.indexFileName)
        guard case .badIndex(let file, let reason) = weightError({ _ = try WeightStore(directory: directory.path) }) else {
            Issue.record("expected badIndex")
            return
        }
        #expect(file == indexPath)
        #expect(reason.contains(fragment), "reason: \(reason)")
    }

    @Test func reportsTensorsAShardHoldsButTheIndexOmits() throws {
        let directory = try TemporaryDirectory()
        try Self.shardedCheckpoint(
            in: directory,
            index: #"{"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}"#)
        let store = try WeightStore(directory: directory.path)
        _ = try store.tensor("model.embed_tokens.weight", shape: [2, 3])
        #expect(store.unconsumed == ["model.layers.0.mlp.up_proj.weight"])
    }

    @Test func loadsEveryFileOfADirectoryWithoutIndex() throws {
        let directory = try TemporaryDirectory()
        try directory.write("model.safetensors", Bytes.file([.init(name: "w", dtype: "BF16", shape: [2], data: Bytes.bf16([1, 2]))]))
        try directory.write("extra.safetensors", Bytes.file([.init(name: "v", dtype: "F16", shape: [1], data: Bytes.f16([3]))]))
        try directory.write("notes.txt", text: "not weights")
        let store = try WeightStore(directory: directory.path)
        #expect(store.location == directory.path)
        #expect(store.names == ["v", "w"])
        #expect(weightError { _ = try store.tensor("u", shape: [1]) } == .missing(name: "u", file: directory.path))
        #expect(
            weightError { _ = try store.tensor("w", shape: [1, 2]) }
                == .shapeMismatch(name: "w", expected: [1, 2], found: [2], file: (directory.path as NSString).appendingPathComponent("model.safetensors")))
        #expect(store.unconsumed == ["v", "w"])  // failed requests consume nothing
    }

    @Test func refusesAmbiguousOrAbsentDirectories() throws {
        let directory = try TemporaryDirectory()
        #expect(weightError { _ = try WeightStore(directory: directory.path) } == .noWeightFiles(directory: directory.path))
        let a = try directory.write("a.safetensors", Bytes.file([.init(name: "w", dtype: "F32", shape: [1], data: Bytes.f32([1]))]))
        let b = try directory.write("b.safetensors", Bytes.file([.init(name: "w", dtype: "F32", shape: [1], data: Bytes.f32([2]))]))
        #expect(weightError { _ = try WeightStore(directory: directory.path) } == .duplicateTensor(name: "w", files: [a, b]))
        #expect(weightError { _ = try WeightStore(files: [a, b]) } == .duplicateTensor(name: "w", files: [a, b]))
        let absent = directory.path + "/absent"
        #expect(weightError { _ = try WeightStore(directory: absent) } == .notFound(path: absent))
        #expect(weightError { _ = try WeightStore(directory: a) } == .unreadable(path: a, reason: "not a directory"))
        // A corrupt shard fails the whole store, naming the shard.
        let bad = try directory.write("c.safetensors", [1, 2, 3])
        guard case .corruptHeader(let file, _) = weightError({ _ = try WeightStore(files: [a, bad]) }) else {
            Issue.record("expected corruptHeader")
            return
        }
        #expect(file == bad)
    }

    @Test func scopesBuildDottedNames() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "m.safetensors",
            Bytes.file([.init(name: "model.layers.3.self_attn.q_proj.weight", dtype: "F32", shape: [1, 2], data: Bytes.f32([1, 2]))]))
        let store = try WeightStore(files: [path])
        let attention = WeightScope(store).scoped("model").scoped("layers").scoped("3").scoped("self_attn")
        #expect(attention.prefix == "model.layers.3.self_attn")
        #expect(attention.fullName("q_proj.weight") == "model.layers.3.self_attn.q_proj.weight")
        #expect(attention.scoped("").prefix == attention.prefix)
        #expect(WeightScope(store, prefix: "model.layers").scoped("3").contains("self_attn.q_proj.weight"))
        #expect(attention.shape(of: "q_proj.weight") == [1, 2])
        #expect(try attention("q_proj.weight", shape: [1, 2]).scalars == [1, 2])
        #expect(weightError { _ = try attention("k_proj.weight", shape: [1, 2]) } == .missing(name: "model.layers.3.self_attn.k_proj.weight", file: path))
    }

    @Test func recordsConsumptionFromManyThreads() throws {
        let directory = try TemporaryDirectory()
        let entries = (0..<64).map { SafetensorsBytes.Entry(name: "t\($0)", dtype: "BF16", shape: [3], data: Bytes.bf16([Float($0), 1, 2])) }
        let store = try WeightStore(files: [try directory.write("many.safetensors", Bytes.file(entries))])
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            _ = try? store.tensor("t\(i)", shape: [3])
        }
        #expect(store.unconsumed.isEmpty)
    }

    @Test func errorMessagesAreOneLowercaseLine() {
        let errors: [WeightError] = [
            .notFound(path: "/m"), .unreadable(path: "/m", reason: "r"), .corruptHeader(file: "/m", reason: "r"),
            .badIndex(file: "/i", reason: "r"), .noWeightFiles(directory: "/d"), .duplicateTensor(name: "a", files: ["/x", "/y"]),
            .missing(name: "a\nb", file: "/m"), .shapeMismatch(name: "a", expected: [1], found: [2], file: "/m"),
            .unsupportedDType(name: "a", dtype: "I64", file: "/m"), .unused(["a"]), .unused((0..<12).map { "t\($0)" }),
        ]
        for error in errors {
            #expect(!error.description.contains("\n"), "\(error)")
            #expect(error.description.first?.isLowercase == true || error.description.first?.isNumber == true, "\(error)")
        }
        #expect(WeightError.shapeMismatch(name: "w", expected: [4, 3], found: [3, 4], file: "/m").description
            == "tensor \"w\" in /m has shape [3, 4], expected [4, 3]")
        #expect(WeightError.unused((0..<12).map { "t\($0)" }).description.hasSuffix("\"t9\" and 2 more"))
        #expect(WeightError.missing(name: "a\nb", file: "/m").description == #"missing tensor "a\nb" in /m"#)
    }
}

// MARK: - Fuzz

@Suite struct SafetensorsFuzzTests {
    static let seed: UInt64 = 0x5AFE_7E45_0125_2024
    static let variants = 10_000

    /// A valid file with every loadable dtype, an I64, an empty tensor and metadata, unpadded
    /// (so tensors start at odd offsets), as header bytes and data bytes.
    static func baseFile() -> (header: [UInt8], data: [UInt8]) {
        let bytes = Bytes.file(
            [
                .init(name: "a.weight", dtype: "F32", shape: [2, 3], data: Bytes.f32([1, 2, 3, 4, 5, 6])),
                .init(name: "b", dtype: "F16", shape: [3], data: Bytes.f16([1, -2, .infinity])),
                .init(name: "c", dtype: "BF16", shape: [2, 2], data: Bytes.bf16([1, 2, 4, 8])),
                .init(name: "d", dtype: "I64", shape: [1], data: Bytes.i64([42])),
                .init(name: "e", dtype: "F32", shape: [0], data: []),
                .init(name: "s", dtype: "F32", shape: [], data: Bytes.f32([7])),
            ], metadata: ["format": "pt"], alignment: 1)
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        return (Array(bytes[8..<(8 + headerLength)]), Array(bytes[(8 + headerLength)...]))
    }

    /// One to three random edits of the header text or of the length prefix.
    static func mutate(_ base: (header: [UInt8], data: [UInt8]), _ random: inout SplitMix64) -> [UInt8] {
        var header = base.header
        var declared: UInt64? = nil  // nil: the true header length
        var truncateTo: Int? = nil
        let interesting = Array("{}[]\":,-.0123456789eE \0\\".utf8)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let at = header.isEmpty ? 0 : Int.random(in: 0..<header.count, using: &random)
            switch Int.random(in: 0..<12, using: &random) {
            case 0 where !header.isEmpty:
                header[at] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !header.isEmpty:
                header[at] = UInt8.random(in: 0...255, using: &random)
            case 2 where !header.isEmpty:
                header[at] = interesting.randomElement(using: &random)!
            case 3 where !header.isEmpty:
                header.removeSubrange(at..<min(header.count, at + Int.random(in: 1...12, using: &random)))
            case 4:
                let insert = (0..<Int.random(in: 1...6, using: &random)).map { _ in interesting.randomElement(using: &random)! }
                header.insert(contentsOf: insert, at: at)
            case 5, 9, 10, 11:  // rewrite a digit: offsets and dimensions move (weighted up)
                if let digit = header.indices.filter({ (48...57).contains(header[$0]) }).randomElement(using: &random) {
                    header[digit] = UInt8.random(in: 48...57, using: &random)
                }
            case 6:  // make a number huge or negative
                if let digit = header.indices.filter({ (48...57).contains(header[$0]) }).randomElement(using: &random) {
                    header.insert(contentsOf: Array((Bool.random(using: &random) ? "-" : "99999999999999999999").utf8), at: digit)
                }
            case 7:
                let choices: [UInt64] = [
                    0, 1, 7, UInt64(header.count) &- 1, UInt64(header.count) + 1, UInt64(header.count + base.data.count),
                    100_000_000, 100_000_001, UInt64(Int.max), .max, random.next(),
                ]
                declared = choices.randomElement(using: &random)
            default:  // 8, or an edit above that found no header byte
                truncateTo = Int.random(in: 0...(8 + header.count + base.data.count), using: &random)
            }
        }
        var bytes = Bytes.littleEndian(declared ?? UInt64(header.count)) + header + base.data
        if let truncateTo, truncateTo < bytes.count { bytes.removeSubrange(truncateTo...) }
        return bytes
    }

    @Test func mutatedHeadersNeverCrash() throws {
        let directory = try TemporaryDirectory()
        let base = Self.baseFile()
        var random = SplitMix64(seed: Self.seed)
        var opened = 0
        var refused = 0
        for variant in 0..<Self.variants {
            let bytes = Self.mutate(base, &random)
            let path = try directory.write("fuzz-\(variant).safetensors", bytes)
            do {
                let file = try SafetensorsFile(path: path)
                opened += 1
                for name in file.names {
                    let info = try #require(file.info(name))
                    do {
                        let tensor = try file.tensor(name)
                        #expect(tensor.shape == info.shape && tensor.count == info.shape.reduce(1, *))
                    } catch let error as WeightError {
                        #expect(!info.dtype.widensToFloat32, "variant \(variant): \(error)")
                    }
                }
            } catch let error as WeightError {
                refused += 1
                #expect(!error.description.contains("\n"), "variant \(variant): \(error)")
            } catch {
                Issue.record("variant \(variant) threw \(type(of: error)), not WeightError: \(error)")
            }
            try FileManager.default.removeItem(atPath: path)
        }
        // Both outcomes must occur, or the mutations are not exercising the validator.
        #expect(opened > 0 && refused > 0, "opened \(opened), refused \(refused)")
    }
}
