import DenseCore
import Foundation
import Testing

@testable import Engine

/// Model files come from anywhere: mutated config.json files (seeded, 10,000 across the four
/// config files of an NVILA checkpoint, plus whole-checkpoint loads) must give a typed one-line
/// error or a model, never a crash or a hang. The safetensors headers have their own 10,000
/// variants (`SafetensorsFuzzTests`).
@Suite(.serialized) struct UntrustedConfigTests {
    static let seed: UInt64 = 0xC0F1_6000_0014_2026
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let checkpoint = fixtures.appendingPathComponent("tiny-nvila-lite").path
    static let configs = ["config.json", "llm/config.json", "vision_tower/config.json", "mm_projector/config.json"]

    /// One to three random edits of JSON text: bit flips, interesting bytes, deletions, insertions,
    /// digits rewritten, numbers made huge or negative, truncation.
    static func mutate(_ text: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = text
        let interesting = Array("{}[]\":,-.0123456789eE truefalsnul\0\\".utf8)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<9, using: &random) {
            case 0 where !bytes.isEmpty: bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !bytes.isEmpty: bytes[at] = interesting.randomElement(using: &random)!
            case 2 where !bytes.isEmpty: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &random)))
            case 3: bytes.insert(contentsOf: (0..<Int.random(in: 1...6, using: &random)).map { _ in interesting.randomElement(using: &random)! }, at: at)
            case 4, 5, 6:
                if let digit = bytes.indices.filter({ (48...57).contains(bytes[$0]) }).randomElement(using: &random) {
                    let replacement = ["0", "-1", "99999999999", "1e30", "3.5", "\"7\"", "null", String(UInt8.random(in: 0...9, using: &random))]
                    bytes.replaceSubrange(digit...digit, with: Array(replacement.randomElement(using: &random)!.utf8))
                }
            case 7: bytes.removeSubrange(Int.random(in: 0...bytes.count, using: &random)...)
            default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
            }
        }
        return bytes
    }

    static func isTypedOneLine(_ error: any Error) -> Bool {
        let typed = error is ConfigError || error is WeightError || error is MediaError || error is TokenizerError
        return typed && !"\(error)".contains("\n") && !"\(error)".isEmpty
    }

    @Test func tenThousandMutatedConfigsParseOrFailTyped() throws {
        let directory = try TemporaryDirectory()
        var random = SplitMix64(seed: Self.seed)
        var parsed = 0, refused = 0
        for variant in 0..<10_000 {
            let name = Self.configs[variant % Self.configs.count]
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.checkpoint + "/" + name)))
            let path = try directory.write("config.json", Self.mutate(original, &random))
            do {
                switch name {
                case "config.json": _ = try NVILAConfig(json: try readJSON(path))
                case "llm/config.json": try decodeConfig(Qwen2Config.self, path).validate()
                case "vision_tower/config.json": try decodeConfig(SiglipVisionConfig.self, path).validate()
                default:
                    guard let type = try readJSON(path)["mm_projector_type"] as? String else {
                        throw ConfigError(key: "mm_projector_type", value: path, reason: "missing")
                    }
                    _ = try ProjectorType(configValue: type)
                }
                parsed += 1
            } catch {
                refused += 1
                #expect(Self.isTypedOneLine(error), "variant \(variant) (\(name)): \(type(of: error)) \(error)")
            }
        }
        #expect(parsed > 100 && refused > 100, "parsed \(parsed), refused \(refused)")
    }

    /// Whole checkpoints with one mutated config each, loaded strictly.
    @Test func mutatedCheckpointsLoadOrFailTyped() throws {
        var random = SplitMix64(seed: Self.seed ^ 1)
        var loaded = 0, refused = 0
        for variant in 0..<120 {
            let directory = try TemporaryDirectory()
            let copy = directory.path + "/ckpt"
            try FileManager.default.copyItem(atPath: Self.checkpoint, toPath: copy)
            let name = Self.configs[variant % Self.configs.count]
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: copy + "/" + name)))
            try Data(Self.mutate(original, &random)).write(to: URL(fileURLWithPath: copy + "/" + name))
            do {
                _ = try NVILAModel.load(directory: copy, logger: silentLogger)
                loaded += 1
            } catch {
                refused += 1
                #expect(Self.isTypedOneLine(error), "variant \(variant) (\(name)): \(type(of: error)) \(error)")
            }
        }
        #expect(loaded > 0 && refused > 0, "loaded \(loaded), refused \(refused)")
    }

    /// Strict by default: a stray tensor refuses the checkpoint, naming it; the flag loads it.
    @Test func extraTensorsAreRefusedUnlessAllowed() throws {
        let directory = try TemporaryDirectory()
        let copy = directory.path + "/ckpt"
        try FileManager.default.copyItem(atPath: Self.checkpoint, toPath: copy)
        let extra = SafetensorsBytes.file([.init(name: "stray.weight", dtype: "F32", shape: [2], data: SafetensorsBytes.f32([1, 2]))])
        try Data(extra).write(to: URL(fileURLWithPath: copy + "/mm_projector/extra.safetensors"))
        #expect {
            _ = try NVILAModel.load(directory: copy, logger: silentLogger)
        } throws: { error in
            guard case .unused(let names, _) = error as? WeightError else { return false }
            return names == ["stray.weight"] && "\(error)".contains("--allow-extra-tensors")
        }
        _ = try NVILAModel.load(directory: copy, logger: silentLogger, allowExtraTensors: true)
        try Data(extra).write(to: URL(fileURLWithPath: copy + "/llm/extra.safetensors"))
        #expect(throws: WeightError.self) { _ = try Qwen2Model.load(directory: copy + "/llm", logger: silentLogger) }
        _ = try Qwen2Model.load(directory: copy + "/llm", logger: silentLogger, allowExtraTensors: true)
    }
}
