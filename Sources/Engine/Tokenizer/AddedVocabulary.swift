import Foundation

/// A token added on top of the BPE vocabulary (`<|im_start|>`, `<vila/video>`, …), with the flags
/// of HF's `AddedToken`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    /// Skipped by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool
    /// Matched only when not inside a word (`\w` on neither side).
    public var singleWord: Bool
    /// Swallows the whitespace on its left / right.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Matched in the normalised (NFC) text rather than the raw text.
    public var normalized: Bool

    public init(
        id: Int, content: String, special: Bool, singleWord: Bool = false, lstrip: Bool = false,
        rstrip: Bool = false, normalized: Bool = false
    ) {
        self.id = id
        self.content = content
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
    }
}

/// Finds added tokens in text before the text reaches the pre-tokenizer, as HF `tokenizers`'
/// `AddedVocabulary` does (`tokenizers/src/tokenizer/added_vocabulary.rs`, @3ba8ad00): tokens
/// with `normalized == false` are matched in the raw text, the others in the NFC pieces between
/// those matches; both searches are leftmost-longest.
struct AddedTokenMatcher: Sendable {
    /// A byte trie over the tokens' UTF-8: node 0 is the root.
    private var children: [[UInt8: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]  // index into `tokens`, or -1
    private var firstBytes = [Bool](repeating: false, count: 256)
    private var tokens: [AddedToken] = []

    init(_ tokens: [AddedToken], normalize: (String) -> String) {
        for token in tokens where !token.content.isEmpty {
            let pattern = Array((token.normalized ? normalize(token.content) : token.content).utf8)
            var node = 0
            for byte in pattern {
                if let child = children[node][byte] {
                    node = Int(child)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            terminal[node] = Int32(self.tokens.count)
            firstBytes[Int(pattern[0])] = true
            self.tokens.append(token)
        }
    }

    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    /// Splits UTF-8 text into added tokens and the text between them.
    /// - Parameter text: UTF-8 bytes of valid text.
    /// - Returns: segments in order; `.text` ranges are never empty.
    func split(_ text: [UInt8]) -> [Segment] {
        var segments: [Segment] = []
        var consumed = 0  // HF's `start_offset`: end of the last emitted token
        var position = 0
        while position < text.count {
            guard firstBytes[Int(text[position])],
                let (token, end) = longestMatch(text, at: position)
            else {
                position += 1
                continue
            }
            var start = position
            var stop = end
            position = end
            if token.singleWord {
                let wordBefore =
                    start > 0 && Self.isWordCharacter(Self.scalar(endingAt: start, in: text))
                let wordAfter =
                    stop < text.count
                    && Self.isWordCharacter(Self.scalar(startingAt: stop, in: text))
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > 0,
                    Self.scalar(endingAt: newStart, in: text).properties.isWhitespace
                {
                    newStart -= Self.scalarLength(endingAt: newStart, in: text)
                }
                start = max(newStart, consumed)
            }
            if token.rstrip {
                while stop < text.count,
                    Self.scalar(startingAt: stop, in: text).properties.isWhitespace
                {
                    stop += Self.scalarLength(startingAt: stop, in: text)
                }
            }
            // HF would emit a token overlapping the whitespace an `rstrip` neighbour swallowed and
            // duplicate that text; no real vocabulary has a token starting with whitespace, and
            // dropping the overlapping match is the only consistent reading.
            if start < consumed { continue }
            if consumed < start { segments.append(.text(consumed..<start)) }
            segments.append(.token(token.id))
            consumed = stop
        }
        if consumed < text.count { segments.append(.text(consumed..<text.count)) }
        return segments
    }

    private func longestMatch(_ text: [UInt8], at start: Int) -> (AddedToken, Int)? {
        var node = 0
        var best: (AddedToken, Int)?
        var index = start
        while index < text.count, let child = children[node][text[index]] {
            node = Int(child)
            index += 1
            if terminal[node] >= 0 { best = (tokens[Int(terminal[node])], index) }
        }
        return best
    }

    // MARK: - UTF-8 helpers (the text is valid UTF-8; matches begin and end on scalar boundaries)

    /// `\w` of the Rust `regex` crate: Alphabetic, marks, decimal numbers, connector punctuation,
    /// Join_Control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return false
        }
    }

    static func scalarLength(startingAt index: Int, in text: [UInt8]) -> Int {
        let lead = text[index]
        return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    static func scalarLength(endingAt end: Int, in text: [UInt8]) -> Int {
        var start = end - 1
        while start > 0, text[start] & 0xC0 == 0x80 { start -= 1 }
        return end - start
    }

    static func scalar(startingAt index: Int, in text: [UInt8]) -> Unicode.Scalar {
        let length = scalarLength(startingAt: index, in: text)
        return String(decoding: text[index..<(index + length)], as: UTF8.self).unicodeScalars.first!
    }

    static func scalar(endingAt end: Int, in text: [UInt8]) -> Unicode.Scalar {
        scalar(startingAt: end - scalarLength(endingAt: end, in: text), in: text)
    }
}
