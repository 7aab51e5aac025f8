/// Qwen2's pre-tokenizer: the `Split` regex below with behaviour "Isolated", followed by
/// ByteLevel (no prefix space, no second regex). Only this pattern is implemented; a tokenizer
/// asking for any other is refused at load time.
///
/// Instead of a regex engine this is a hand-written scanner with exactly the semantics of the
/// Oniguruma engine HF `tokenizers` uses (leftmost-first alternation, greedy quantifiers with
/// backtracking, the `(?!\S)` look-ahead). It runs over Unicode *scalars*, as the regex does —
/// never over grapheme clusters, which would glue a ZWJ emoji or a combining mark to its base.
///
/// Classes, as the regex sees them:
/// - `\p{L}` letter: general category L* (Lu Ll Lt Lm Lo);
/// - `\p{N}` number: general category N* (Nd Nl No) — "²", "½", "Ⅻ" included;
/// - `\s` whitespace: the Unicode White_Space property (U+0009–000D, 0020, 0085, 00A0, 1680,
///   2000–200A, 2028, 2029, 202F, 205F, 3000); ZWJ, ZWSP and U+001C–001F are *not* whitespace;
/// - `[\r\n]`: just U+000D and U+000A (both also whitespace);
/// - other: everything else (punctuation, symbols, marks, emoji, ZWJ, controls, unassigned).
enum Qwen2PreTokenizer {
    /// The pattern Qwen2's `tokenizer.json` carries and `Qwen2Tokenizer.PRETOKENIZE_REGEX` hard-codes.
    static let pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    enum CharClass: UInt8 {
        case letter, number, newline, space, other
        var isWhitespace: Bool { self == .newline || self == .space }
    }

    static func classify(_ scalar: Unicode.Scalar) -> CharClass {
        if scalar.value < 0x80 { return asciiClasses[Int(scalar.value)] }
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    private static let asciiClasses: [CharClass] = (0..<0x80).map { (value: UInt32) -> CharClass in
        switch value {
        case 0x0A, 0x0D: return .newline
        case 0x09, 0x0B, 0x0C, 0x20: return .space
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }

    /// Splits a text into the pieces the regex's `find_iter` yields. Every scalar belongs to
    /// exactly one piece: some alternative matches at every position (a letter starts branch 2,
    /// a number branch 3, "other" branch 4, whitespace branch 5, 6 or 7), so there are no gaps.
    /// - Parameter scalars: the normalised text.
    /// - Returns: consecutive, non-empty ranges of scalar indices covering `scalars`.
    static func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(classify)
        var pieces: [Range<Int>] = []
        pieces.reserveCapacity(scalars.count / 3 + 1)
        var start = 0
        while start < scalars.count {
            let end = pieceEnd(from: start, scalars: scalars, classes: classes)
            pieces.append(start..<end)
            start = end
        }
        return pieces
    }

    /// End (exclusive) of the match that starts at `p`; the branches are tried in the regex's
    /// order and the first that matches wins, as in a backtracking engine.
    static func pieceEnd(from p: Int, scalars: [Unicode.Scalar], classes: [CharClass]) -> Int {
        let n = scalars.count
        let c0 = classes[p]

        // 1. `(?i:'s|'t|'re|'ve|'m|'ll|'d)`: ASCII apostrophe + contraction, any case. Case-
        //    insensitive matching folds "ſ" (U+017F) to "s" as well.
        if scalars[p] == "'", p + 1 < n {
            switch folded(scalars[p + 1]) {
            case "s", "t", "m", "d": return p + 2
            case "r", "v": if p + 2 < n, folded(scalars[p + 2]) == "e" { return p + 3 }
            case "l": if p + 2 < n, folded(scalars[p + 2]) == "l" { return p + 3 }
            default: break
            }
        }

        // 2. `[^\r\n\p{L}\p{N}]?\p{L}+`: a letter run, optionally led by one character that is not
        //    a newline, letter or number (a space, tab, quote, "¿" …). Greedy to the run's end.
        if c0 == .letter { return letterRunEnd(from: p + 1, classes: classes) }
        if c0 != .newline, c0 != .number, p + 1 < n, classes[p + 1] == .letter {
            return letterRunEnd(from: p + 2, classes: classes)
        }

        // 3. `\p{N}`: exactly one number character ("2024" is four pieces).
        if c0 == .number { return p + 1 }

        // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`: a run of "other" characters, optionally led by one
        //    U+0020 (no other space), then any trailing CR/LF run. Nothing after it can fail, so
        //    the greedy runs are final.
        var q = p
        if scalars[p] == " ", p + 1 < n, classes[p + 1] == .other { q = p + 1 }
        if classes[q] == .other {
            while q < n, classes[q] == .other { q += 1 }
            while q < n, classes[q] == .newline { q += 1 }
            return q
        }

        // Only whitespace starts can get here: letters took 2, numbers 3, "other" 4.
        var runEnd = p
        while runEnd < n, classes[runEnd].isWhitespace { runEnd += 1 }

        // 5. `\s*[\r\n]+`: `\s*` first takes the whole whitespace run, then gives characters back
        //    until `[\r\n]+` can match; the first success ends right after the run's *last* CR/LF.
        if let lastNewline = (p..<runEnd).last(where: { classes[$0] == .newline }) {
            return lastNewline + 1
        }

        // 6. `\s+(?!\S)`: the whole run when it ends the text; otherwise the run minus its last
        //    character (which is whitespace, so the look-ahead holds) — that character then leads
        //    the next word via branch 2 (" word") or stands alone. Needs two characters.
        if runEnd == n { return n }
        if runEnd - p >= 2 { return runEnd - 1 }

        // 7. `\s+`: a single whitespace character before a non-space.
        return runEnd
    }

    private static func letterRunEnd(from start: Int, classes: [CharClass]) -> Int {
        var end = start
        while end < classes.count, classes[end] == .letter { end += 1 }
        return end
    }

    /// Simple case folding, restricted to what the contraction branch can meet.
    private static func folded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x41...0x5A: return Unicode.Scalar(scalar.value + 0x20)!
        case 0x17F: return "s"  // LATIN SMALL LETTER LONG S folds to "s"
        default: return scalar
        }
    }
}
