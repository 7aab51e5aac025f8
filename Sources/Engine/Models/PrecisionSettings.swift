import DenseCore
import Foundation

/// The arithmetic of each part of an NVILA model (`--precision`). Recorded in outputs like every
/// setting, so `auto` is resolved to concrete precisions when parsed.
public struct PrecisionSettings: Codable, Equatable, Sendable, CustomStringConvertible {
    public var tower: Precision
    public var projector: Precision
    public var llm: Precision

    public init(tower: Precision = .fp32, projector: Precision = .fp32, llm: Precision = .fp32) {
        self.tower = tower
        self.projector = projector
        self.llm = llm
    }

    /// Every part in `precision`.
    public init(all precision: Precision) {
        self.init(tower: precision, projector: precision, llm: precision)
    }

    /// The exact path (the default).
    public static let fp32 = PrecisionSettings()

    /// What `auto` picks on this CPU: the tower and projector in bf16 where the CPU has native bf16
    /// dot products (compute-bound: twice the products per instruction), else fp32; the LLM in
    /// int8 where the CPU has AVX-512 VNNI or AVX2 (decode is bound by reading the weights: int8
    /// halves the bytes of bf16), else fp32.
    public static func auto(bf16Native: Bool = LowPrecisionKernels.bf16Native,
                            int8Kernel: Int = LowPrecisionKernels.int8Kernel) -> PrecisionSettings {
        let vision: Precision = bf16Native ? .bf16 : .fp32
        return PrecisionSettings(tower: vision, projector: vision, llm: int8Kernel >= 1 ? .int8 : .fp32)
    }

    /// Parses `fp32`, `bf16`, `int8`, `auto`, or per part `tower=bf16,projector=fp32,llm=int8`
    /// (parts not named stay fp32).
    public init(parsing text: String) throws {
        let value = text.trimmingCharacters(in: .whitespaces).lowercased()
        if value == "auto" {
            self = .auto()
            return
        }
        if let precision = Precision(rawValue: value) {
            self.init(all: precision)
            return
        }
        self.init()
        guard !value.isEmpty else { throw PrecisionError(text: text) }
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let precision = Precision(rawValue: pair[1]) else {
                throw PrecisionError(text: text)
            }
            switch pair[0] {
            case "tower", "vision": tower = precision
            case "projector": projector = precision
            case "llm": llm = precision
            default: throw PrecisionError(text: text)
            }
        }
    }

    /// `tower=bf16,projector=bf16,llm=int8`.
    public var description: String { "tower=\(tower.rawValue),projector=\(projector.rawValue),llm=\(llm.rawValue)" }
}

/// A `--precision` value that is not one of the forms `PrecisionSettings(parsing:)` takes.
public struct PrecisionError: Error, CustomStringConvertible, Equatable {
    public let text: String
    public var description: String {
        "precision '\(text)': expected fp32, bf16, int8, auto, or parts like tower=bf16,projector=fp32,llm=int8"
    }
}
