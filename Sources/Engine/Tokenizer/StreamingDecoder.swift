/// Turns generated ids into text as they arrive, emitting only whole characters.
///
/// A character can span several byte-level tokens (an emoji is often 2–4), so a token's text is
/// not always printable by itself. The decoder keeps the bytes of an unfinished UTF-8 sequence
/// until the tokens that complete it arrive; everything else is emitted at once. Ill-formed
/// bytes become U+FFFD exactly where `decode` puts them, so the concatenation of every `push`
/// and the final `finish` equals `tokenizer.decode(allIDs)`.
///
/// ```swift
/// var stream = tokenizer.streamingDecoder(skipSpecialTokens: true)
/// for id in generated { print(stream.push(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    public let tokenizer: BPETokenizer
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: BPETokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text that became complete (often "", never half a character).
    /// Ids the tokenizer does not know are skipped, as in `decode`.
    public mutating func push(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending)
        let held = UTF8Repair.incompleteSuffixLength(pending)
        guard pending.count > held else { return "" }
        let text = UTF8Repair.decode(pending[..<(pending.count - held)])
        pending.removeFirst(pending.count - held)
        return text
    }

    /// Ends the stream: whatever is still held (an unfinished sequence) as U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return UTF8Repair.decode(pending)
    }
}
