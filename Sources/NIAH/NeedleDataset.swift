import Crypto
import Foundation

/// One needle of LongVA's `needle_datasets/dataset.json`: an image, a question, its answer.
public struct Needle: Sendable, Equatable {
    /// Position in the dataset (the references' needle index, `{index}.pt`).
    public var index: Int
    /// The image path as written in the file (relative to the file).
    public var path: String
    /// The image path resolved against the dataset's folder.
    public var imagePath: String
    public var prompt: String
    public var answer: String
    /// sha256 of the image file: the needle's identity in `run.json`.
    public var imageSHA256: String
}

/// One question asked about a needle: the dataset's own, or one rotation of its options.
public struct NeedleQuestion: Sendable, Equatable {
    public var needle: Int
    /// 0 for the dataset's wording; k for the options shifted by k.
    public var rotation: Int
    public var prompt: String
    public var answer: String
}

/// LongVA's needle dataset: a JSON list of `{"path", "prompt", "answer"}`, image paths relative
/// to the file.
public struct NeedleDataset: Sendable, Equatable {
    public var path: String
    public var needles: [Needle]

    private struct Entry: Decodable {
        var path: String
        var prompt: String
        var answer: String
    }

    /// Reads and checks the file: it must hold at least one needle and every image must exist.
    /// - Throws: `NIAHError` `.missing` for the file or an image, `.data` for bad or empty JSON.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NIAHError(.missing, path, "cannot read the needle dataset")
        }
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: data)
        } catch {
            throw NIAHError(.data, path, "not a needle dataset (a JSON list of {\"path\", \"prompt\", \"answer\"})")
        }
        guard !entries.isEmpty else { throw NIAHError(.data, path, "the needle dataset is empty") }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        needles = try entries.enumerated().map { i, e in
            let image = e.path.hasPrefix("/") ? e.path : folder.appendingPathComponent(e.path).standardized.path
            guard let bytes = FileManager.default.contents(atPath: image) else {
                throw NIAHError(.missing, path, "needle \(i): image \(e.path) not found (looked at \(image))")
            }
            guard !e.answer.isEmpty else { throw NIAHError(.data, path, "needle \(i): empty answer") }
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            return Needle(index: i, path: e.path, imagePath: image, prompt: e.prompt, answer: e.answer, imageSHA256: digest)
        }
    }

    /// The questions of a run: one per needle, or with `rotateChoices` one per rotation of each
    /// multiple-choice needle's options (VNBench asks 4 "tries" of each question).
    public func questions(rotateChoices: Bool) -> [NeedleQuestion] {
        needles.flatMap { n -> [NeedleQuestion] in
            guard rotateChoices, let choice = MultipleChoice(prompt: n.prompt, answer: n.answer) else {
                return [NeedleQuestion(needle: n.index, rotation: 0, prompt: n.prompt, answer: n.answer)]
            }
            return (0..<choice.options.count).map { k in
                let (prompt, answer) = choice.rotated(by: k)
                return NeedleQuestion(needle: n.index, rotation: k, prompt: prompt, answer: answer)
            }
        }
    }
}

/// A multiple-choice prompt in the datasets' shape: option lines `A. …`, `B. …`, … in order,
/// the answer one of their letters.
struct MultipleChoice {
    var lines: [String]
    /// Indices into `lines` of the option lines, in letter order.
    var optionLines: [Int]
    var options: [String]
    var answerIndex: Int

    static let letters = Array("ABCDEFGHIJ")

    init?(prompt: String, answer: String) {
        lines = prompt.components(separatedBy: "\n")
        optionLines = []
        options = []
        for (i, line) in lines.enumerated() {
            let letter = Self.letters[min(options.count, Self.letters.count - 1)]
            if line.hasPrefix("\(letter). ") {
                optionLines.append(i)
                options.append(String(line.dropFirst(3)))
            }
        }
        let trimmed = answer.trimmingCharacters(in: .whitespaces)
        guard options.count >= 2, trimmed.count == 1, let a = Self.letters.firstIndex(of: Character(trimmed)), a < options.count,
              optionLines == Array(optionLines[0]..<optionLines[0] + options.count)
        else { return nil }
        answerIndex = a
    }

    /// The prompt with option k moved to letter (k + shift) mod count, and the answer's new letter.
    func rotated(by shift: Int) -> (prompt: String, answer: String) {
        let n = options.count
        var out = lines
        for (slot, line) in optionLines.enumerated() {
            out[line] = "\(Self.letters[slot]). \(options[((slot - shift) % n + n) % n])"
        }
        return (out.joined(separator: "\n"), String(Self.letters[(answerIndex + shift) % n]))
    }
}
