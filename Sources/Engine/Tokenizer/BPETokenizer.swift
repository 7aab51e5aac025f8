import Foundation

/// Qwen2's byte-level BPE tokenizer, loaded from a checkpoint's `llm/` folder and producing the
/// same ids as HF `tokenizers` (and transformers' `Qwen2Tokenizer[Fast]`).
///
/// Pipeline, as in `tokenizer.json`: added tokens are cut out of the raw text first (never split,
/// never normalised unless flagged `normalized`); the rest is NFC-normalised, split by Qwen2's
/// regex (`Qwen2PreTokenizer`), spelled in GPT-2's byte alphabet and merged by BPE. No BOS or EOS
/// is added: Qwen adds none. Decoding maps ids back to bytes and repairs ill-formed UTF-8 with
/// U+FFFD as HF does.
///
/// Component layout follows huggingface/swift-transformers (`Tokenizers/*`), restricted to what
/// Qwen2 needs; any other component `type` in `tokenizer.json` is refused with an error.
public final class BPETokenizer: Sendable {
    // MARK: - Configuration

    /// The `eos_token` of `tokenizer_config.json` (`<|im_end|>` in NVILA and Qwen2-Instruct);
    /// `<|endoftext|>`, `Qwen2Tokenizer`'s default, when the config names none; nil when it says
    /// `null`. Same rules for `padTokenID`.
    public let eosTokenID: Int?
    public let padTokenID: Int?
    /// Ids of added tokens flagged `special` (skipped by `decode(_:skipSpecialTokens: true)`).
    public let specialTokenIDs: Set<Int>
    /// All added tokens, by id.
    public let addedTokens: [AddedToken]
    /// One more than the largest id the tokenizer knows: the embedding rows every id it can
    /// produce needs (`len(tokenizer)` in transformers when ids are contiguous). Larger than the
    /// model's `vocab_size` when tokens were added after training (NVILA's media tokens).
    public let vocabularySize: Int
    /// The checkpoint's chat template and the ChatML renderer chosen for it.
    public let chatPrompt: ChatPrompt

    let model: BPEModel
    let normalizesNFC: Bool
    let rawTokenMatcher: AddedTokenMatcher
    let normalizedTokenMatcher: AddedTokenMatcher

    // Decoding tables, indexed by id (count == vocabularySize).
    private let tokenStrings: [String?]
    private let decodeStarts: [Int32]  // bytes of id i: decodeBlob[decodeStarts[i]..<decodeStarts[i+1]]
    private let decodeBlob: [UInt8]
    /// Ids whose token string is a special added token's content: HF skips by string.
    private let skippedWhenSkippingSpecial: [Bool]
    private let addedIDsByContent: [[UInt8]: Int]
    private let modelIDsByNonByteLevelToken: [[UInt8]: Int]

    /// Everything a tokenizer is made of, as read from the checkpoint files.
    struct Components {
        var vocabulary: [String: Int]
        /// Pairs in rank order (line order); later duplicates override earlier ones, as in HF.
        var merges: [(String, String)]
        var mergesSource: String
        var addedTokens: [AddedToken]
        var normalizesNFC: Bool
        var unknownToken: String?
        var fuseUnknown: Bool
        var ignoreMerges: Bool
        var eosToken: String?
        var padToken: String?
        var chatTemplate: String?
        /// File and key the vocabulary came from, for error messages.
        var vocabularySource: String
        var configSource: String
    }

    init(_ components: Components) throws {
        var idsByBytes: [[UInt8]: Int32] = [:]
        idsByBytes.reserveCapacity(components.vocabulary.count)
        var nonByteLevel: [[UInt8]: Int] = [:]
        var largestID = -1
        for (token, id) in components.vocabulary {
            guard (0..<Int(Int32.max)).contains(id) else {
                throw TokenizerError.invalidValue(
                    file: components.vocabularySource, key: token, reason: "id \(id) out of range")
            }
            largestID = max(largestID, id)
            if let bytes = ByteLevel.bytesIfByteLevel(token) {
                idsByBytes[bytes] = Int32(id)
            } else {
                nonByteLevel[Array(token.utf8)] = id
            }
        }
        for token in components.addedTokens { largestID = max(largestID, token.id) }

        var merges: [UInt64: BPEModel.Merge] = [:]
        merges.reserveCapacity(components.merges.count)
        for (rank, (left, right)) in components.merges.enumerated() {
            func id(of token: String) throws -> Int32 {
                guard let id = components.vocabulary[token] else {
                    throw TokenizerError.invalidValue(
                        file: components.mergesSource, key: "merge \(rank + 1) (\(left) \(right))",
                        reason: "token \(token) is not in the vocabulary")
                }
                return Int32(id)
            }
            let key = BPEModel.pairKey(try id(of: left), try id(of: right))
            merges[key] = .init(rank: Int32(rank), newID: try id(of: left + right))
        }
        var unknownID: Int32?
        if let unknown = components.unknownToken {
            guard let id = components.vocabulary[unknown] else {
                throw TokenizerError.invalidValue(
                    file: components.vocabularySource, key: "unk_token",
                    reason: "\(unknown) is not in the vocabulary")
            }
            unknownID = Int32(id)
        }
        model = BPEModel(
            idsByBytes: idsByBytes, merges: merges, unknownID: unknownID,
            fuseUnknown: components.fuseUnknown, ignoreMerges: components.ignoreMerges)
        normalizesNFC = components.normalizesNFC

        let added = components.addedTokens.sorted { $0.id < $1.id }
        addedTokens = added
        specialTokenIDs = Set(added.filter(\.special).map(\.id))
        let nfcOn = components.normalizesNFC
        let normalize = { (text: String) in nfcOn ? BPETokenizer.nfc(text) : text }
        rawTokenMatcher = AddedTokenMatcher(added.filter { !$0.normalized }, normalize: normalize)
        normalizedTokenMatcher = AddedTokenMatcher(added.filter(\.normalized), normalize: normalize)
        let addedByContent = Dictionary(added.map { (Array($0.content.utf8), $0.id) }) { first, _ in
            first
        }
        addedIDsByContent = addedByContent
        modelIDsByNonByteLevelToken = nonByteLevel

        // Decoding tables. HF decodes an added token from its content — normalised, when flagged
        // `normalized` — and any other id from the model vocabulary; it skips "special" ids by
        // comparing the token *string* with the special tokens' contents.
        vocabularySize = largestID + 1
        var strings = [String?](repeating: nil, count: vocabularySize)
        for (token, id) in components.vocabulary {
            if let other = strings[id] {
                throw TokenizerError.invalidValue(
                    file: components.vocabularySource, key: token,
                    reason: "id \(id) is also used by \(other)")
            }
            strings[id] = token
        }
        var decodedStrings = strings
        for token in added {
            strings[token.id] = token.content
            decodedStrings[token.id] = token.normalized ? normalize(token.content) : token.content
        }
        let specialContents = Set(added.filter(\.special).map { Array($0.content.utf8) })
        var starts: [Int32] = [0]
        var blob: [UInt8] = []
        var skipped = [Bool](repeating: false, count: vocabularySize)
        starts.reserveCapacity(vocabularySize + 1)
        for id in 0..<vocabularySize {
            if let token = decodedStrings[id] {
                blob.append(contentsOf: ByteLevel.decodedBytes(ofToken: token))
                skipped[id] = specialContents.contains(Array(token.utf8))
            }
            starts.append(Int32(blob.count))
        }
        tokenStrings = strings
        decodeStarts = starts
        decodeBlob = blob
        skippedWhenSkippingSpecial = skipped

        func lookUp(_ token: String?, key: String) throws -> Int? {
            guard let token else { return nil }
            guard
                let id = BPETokenizer.id(
                    forToken: token, added: addedByContent, byteLevel: idsByBytes,
                    other: nonByteLevel)
            else {
                throw TokenizerError.invalidValue(
                    file: components.configSource, key: key,
                    reason: "\(token) is not in the vocabulary")
            }
            return id
        }
        eosTokenID = try lookUp(components.eosToken, key: "eos_token")
        padTokenID = try lookUp(components.padToken, key: "pad_token")
        chatPrompt = ChatPrompt(chatTemplate: components.chatTemplate)
    }

    // MARK: - Vocabulary

    /// The id of a token, spelled as in the vocabulary files ("Ġthe", "<|im_end|>").
    /// Ids that end a ChatML answer: the eos token, `<|im_end|>` and `<|endoftext|>` (what VILA's
    /// `infer_stop_tokens` and Qwen2's generation config stop on).
    public var stopTokenIDs: Set<Int> {
        var stops = Set(eosTokenID.map { [$0] } ?? [])
        for token in ["<|im_end|>", "<|endoftext|>"] { if let id = id(forToken: token) { stops.insert(id) } }
        return stops
    }

    public func id(forToken token: String) -> Int? {
        Self.id(
            forToken: token, added: addedIDsByContent, byteLevel: model.idsByBytes,
            other: modelIDsByNonByteLevelToken)
    }

    private static func id(
        forToken token: String, added: [[UInt8]: Int], byteLevel: [[UInt8]: Int32],
        other: [[UInt8]: Int]
    ) -> Int? {
        if let id = added[Array(token.utf8)] { return id }
        if let bytes = ByteLevel.bytesIfByteLevel(token), let id = byteLevel[bytes] {
            return Int(id)
        }
        return other[Array(token.utf8)]
    }

    /// The token an id stands for, as spelled in the vocabulary files; nil for unknown ids.
    public func token(forID id: Int) -> String? {
        tokenStrings.indices.contains(id) ? tokenStrings[id] : nil
    }

    // MARK: - Encoding

    /// Token ids of `text`, exactly as HF's `tokenizer.encode(text, add_special_tokens=False)`
    /// (Qwen adds no special tokens either way). Added tokens in the text are recognised.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3)
        let raw = Array(text.utf8)
        for segment in rawTokenMatcher.split(raw) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                let normalized = normalizesNFC ? Self.nfc(raw[range]) : Array(raw[range])
                for inner in normalizedTokenMatcher.split(normalized) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let range): encodeOrdinary(normalized[range], into: &ids)
                    }
                }
            }
        }
        return ids
    }

    /// Pre-tokenizes and merges normalised text that holds no added token.
    private func encodeOrdinary(_ utf8: ArraySlice<UInt8>, into ids: inout [Int]) {
        let text = String(decoding: utf8, as: UTF8.self)
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = [utf8.startIndex]  // UTF-8 offset of each scalar, then the end
        scalars.reserveCapacity(utf8.count)
        offsets.reserveCapacity(utf8.count + 1)
        for scalar in text.unicodeScalars {
            scalars.append(scalar)
            offsets.append(offsets[offsets.count - 1] + UTF8.width(scalar))
        }
        for piece in Qwen2PreTokenizer.split(scalars) {
            model.tokenize(utf8[offsets[piece.lowerBound]..<offsets[piece.upperBound]], into: &ids)
        }
    }

    /// Unicode NFC, the normalizer of Qwen2's `tokenizer.json` (and of `Qwen2Tokenizer`).
    static func nfc(_ text: String) -> String {
        // Below U+0300 every character is NFC-stable (NFC_Quick_Check = Yes) and none composes.
        if text.utf8.allSatisfy({ $0 < 0xCC }) { return text }
        return text.precomposedStringWithCanonicalMapping
    }

    static func nfc(_ utf8: ArraySlice<UInt8>) -> [UInt8] {
        if utf8.allSatisfy({ $0 < 0xCC }) { return Array(utf8) }
        return Array(
            String(decoding: utf8, as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)
    }

    // MARK: - Decoding

    /// Text of `ids`, exactly as HF's `tokenizer.decode(ids, skip_special_tokens:)`: the bytes of
    /// every token, joined, then read as UTF-8 with U+FFFD for ill-formed parts (a sequence cut
    /// off by the end of `ids` included). Ids the tokenizer does not know — a model row beyond the
    /// tokenizer, a negative number — are skipped, as HF skips them.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
        return UTF8Repair.decode(bytes)
    }

    /// A decoder for ids that arrive one at a time.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard id >= 0, id < vocabularySize, tokenStrings[id] != nil else { return }
        if skipSpecialTokens && skippedWhenSkippingSpecial[id] { return }
        bytes.append(contentsOf: decodeBlob[Int(decodeStarts[id])..<Int(decodeStarts[id + 1])])
    }
}
