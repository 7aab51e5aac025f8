import Foundation

// MARK: - Loading

extension BPETokenizer {
    /// Loads the tokenizer of a checkpoint's `llm/` folder.
    ///
    /// Reads `tokenizer.json` when present, else `vocab.json` + `merges.txt` (the files
    /// `Qwen2Tokenizer` reads, with Qwen2's fixed NFC normaliser and split regex). Added tokens come
    /// from `tokenizer.json`'s `added_tokens` plus `tokenizer_config.json`'s `added_tokens_decoder`,
    /// or — for old checkpoints without the latter — from `added_tokens.json`, special when named
    /// in `tokenizer_config.json` / `special_tokens_map.json`, as transformers does. The chat
    /// template comes from `chat_template.jinja` or `tokenizer_config.json`.
    /// - Throws: `TokenizerError` naming the file and key.
    public static func load(directory: String) throws -> BPETokenizer {
        let folder = URL(fileURLWithPath: directory, isDirectory: true)
        let files = TokenizerFolder(folder)
        let config =
            try files.decodeIfPresent(TokenizerConfig.self, "tokenizer_config.json")
            ?? TokenizerConfig()
        let specialTokensMap =
            try files.decodeIfPresent(TokenizerConfig.self, "special_tokens_map.json")
            ?? TokenizerConfig()

        var components: Components
        if files.exists("tokenizer.json") {
            components = try fastComponents(files)
        } else if files.exists("vocab.json") && files.exists("merges.txt") {
            components = try slowComponents(files, config: config)
        } else {
            throw TokenizerError.missingFiles(directory: directory)
        }
        components.configSource = files.path("tokenizer_config.json")

        // transformers: `added_tokens_decoder` is authoritative; without it, `added_tokens.json`
        // (legacy) with `special` = named as a special token in the config or the special map.
        if let decoder = config.addedTokensDecoder {
            for (key, entry) in decoder.sorted(by: { $0.key < $1.key }) {
                guard let id = Int(key) else {
                    throw TokenizerError.invalidValue(
                        file: components.configSource, key: "added_tokens_decoder.\(key)",
                        reason: "not an integer id")
                }
                try merge(
                    entry.addedToken(id: id), into: &components.addedTokens,
                    source: components.configSource, key: "added_tokens_decoder.\(key)")
            }
        } else if let legacy = try files.decodeIfPresent([String: Int].self, "added_tokens.json") {
            let specials = config.specialTokenContents.union(specialTokensMap.specialTokenContents)
            for (content, id) in legacy.sorted(by: { $0.value < $1.value }) {
                let special = specials.contains(content)
                try merge(
                    AddedToken(id: id, content: content, special: special, normalized: !special),
                    into: &components.addedTokens, source: files.path("added_tokens.json"),
                    key: content)
            }
        }

        // Qwen2Tokenizer's defaults: eos and pad are <|endoftext|> unless the config says otherwise.
        let qwenDefault = "<|endoftext|>"
        func named(_ value: TokenizerConfig.SpecialToken?) -> String? {
            switch value {
            case .none:
                return components.vocabulary[qwenDefault] != nil
                    || components.addedTokens.contains { $0.content == qwenDefault }
                    ? qwenDefault : nil
            case .some(.null): return nil
            case .some(.token(let content)): return content
            }
        }
        components.eosToken = named(config.eosToken ?? specialTokensMap.eosToken)
        components.padToken = named(config.padToken ?? specialTokensMap.padToken)
        if files.exists("chat_template.jinja") {
            components.chatTemplate = try files.text("chat_template.jinja")
        } else {
            components.chatTemplate = try config.defaultChatTemplate(file: components.configSource)
        }
        return try BPETokenizer(components)
    }

    /// Adds a token unless the same id already holds the same content; a different content under
    /// one id is an error (the files disagree).
    private static func merge(
        _ token: AddedToken, into tokens: inout [AddedToken], source: String, key: String
    )
        throws
    {
        guard (0..<Int(Int32.max)).contains(token.id) else {
            throw TokenizerError.invalidValue(
                file: source, key: key, reason: "id \(token.id) out of range")
        }
        if let existing = tokens.first(where: { $0.id == token.id }) {
            guard existing.content == token.content else {
                throw TokenizerError.invalidValue(
                    file: source, key: key,
                    reason: "id \(token.id) is \(existing.content) elsewhere, here \(token.content)"
                )
            }
            return
        }
        tokens.append(token)
    }

    /// `tokenizer.json`: checks that every component is the one Qwen2 uses.
    private static func fastComponents(_ files: TokenizerFolder) throws -> Components {
        let file = files.path("tokenizer.json")
        let json = try files.decode(TokenizerJSON.self, "tokenizer.json")

        let normalizers =
            json.normalizer.map { $0.type == "Sequence" ? $0.normalizers ?? [] : [$0] } ?? []
        for (i, normalizer) in normalizers.enumerated() where normalizer.type != "NFC" {
            let key =
                json.normalizer?.type == "Sequence"
                ? "normalizer.normalizers[\(i)].type" : "normalizer.type"
            throw TokenizerError.unsupported(file: file, key: key, value: normalizer.type ?? "null")
        }

        guard let pre = json.preTokenizer else {
            throw TokenizerError.unsupported(file: file, key: "pre_tokenizer", value: "null")
        }
        guard pre.type == "Sequence", let steps = pre.pretokenizers, steps.count == 2 else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.type",
                value: "\(pre.type ?? "null") (expected Sequence [Split, ByteLevel])")
        }
        let split = steps[0]
        guard split.type == "Split" else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.pretokenizers[0].type", value: split.type ?? "null")
        }
        guard split.pattern?.regex == Qwen2PreTokenizer.pattern else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.pretokenizers[0].pattern",
                value: split.pattern?.regex ?? split.pattern?.string ?? "null")
        }
        guard split.behavior == "Isolated", split.invert != true else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.pretokenizers[0].behavior",
                value: "\(split.behavior ?? "null") invert=\(split.invert ?? false)")
        }
        let byteLevel = steps[1]
        guard byteLevel.type == "ByteLevel" else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.pretokenizers[1].type",
                value: byteLevel.type ?? "null")
        }
        guard byteLevel.addPrefixSpace != true, byteLevel.useRegex != true else {
            throw TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.pretokenizers[1]",
                value:
                    "add_prefix_space=\(byteLevel.addPrefixSpace ?? false) use_regex=\(byteLevel.useRegex ?? true)"
            )
        }

        if let post = json.postProcessor {
            let steps = post.type == "Sequence" ? post.processors ?? [] : [post]
            // ByteLevel post-processing only adjusts offsets; anything else would add tokens.
            if let other = steps.first(where: { $0.type != "ByteLevel" }) {
                throw TokenizerError.unsupported(
                    file: file, key: "post_processor.type", value: other.type ?? "null")
            }
        }
        guard json.decoder?.type == "ByteLevel" else {
            throw TokenizerError.unsupported(
                file: file, key: "decoder.type", value: json.decoder?.type ?? "null")
        }

        let model = json.model
        if let type = model.type, type != "BPE" {
            throw TokenizerError.unsupported(file: file, key: "model.type", value: type)
        }
        if let dropout = model.dropout, dropout > 0 {
            throw TokenizerError.unsupported(file: file, key: "model.dropout", value: "\(dropout)")
        }
        if let prefix = model.continuingSubwordPrefix, !prefix.isEmpty {
            throw TokenizerError.unsupported(
                file: file, key: "model.continuing_subword_prefix", value: prefix)
        }
        if let suffix = model.endOfWordSuffix, !suffix.isEmpty {
            throw TokenizerError.unsupported(
                file: file, key: "model.end_of_word_suffix", value: suffix)
        }
        if model.byteFallback == true {
            throw TokenizerError.unsupported(file: file, key: "model.byte_fallback", value: "true")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(model.merges.entries.count)
        for (i, parts) in model.merges.entries.enumerated() {
            guard parts.count == 2 else {
                throw TokenizerError.invalidValue(
                    file: file, key: "model.merges[\(i)]",
                    reason: "expected two tokens, found \(parts)")
            }
            merges.append((parts[0], parts[1]))
        }
        var addedTokens: [AddedToken] = []
        for (i, token) in (json.addedTokens ?? []).enumerated() {
            guard let id = token.id else {
                throw TokenizerError.missingKey(file: file, key: "added_tokens[\(i)].id")
            }
            try merge(
                token.addedToken(id: id), into: &addedTokens, source: file,
                key: "added_tokens[\(i)]")
        }
        return Components(
            vocabulary: model.vocab, merges: merges, mergesSource: file, addedTokens: addedTokens,
            normalizesNFC: !normalizers.isEmpty, unknownToken: model.unkToken,
            fuseUnknown: model.fuseUnk ?? false, ignoreMerges: model.ignoreMerges ?? false,
            eosToken: nil, padToken: nil, chatTemplate: nil,
            vocabularySource: file + " model.vocab",
            configSource: "")
    }

    /// `vocab.json` + `merges.txt`, read as `Qwen2Tokenizer` reads them.
    private static func slowComponents(_ files: TokenizerFolder, config: TokenizerConfig) throws
        -> Components
    {
        let configFile = files.path("tokenizer_config.json")
        if let tokenizerClass = config.tokenizerClass,
            !["Qwen2Tokenizer", "Qwen2TokenizerFast"].contains(tokenizerClass)
        {
            throw TokenizerError.unsupported(
                file: configFile, key: "tokenizer_class", value: tokenizerClass)
        }
        if config.addPrefixSpace == true {
            throw TokenizerError.unsupported(
                file: configFile, key: "add_prefix_space", value: "true")
        }
        let vocabulary = try files.decode([String: Int].self, "vocab.json")
        let mergesFile = files.path("merges.txt")
        // Qwen2Tokenizer: skip a "#version:" first line and blank lines, split each line on
        // whitespace. Byte-level tokens never contain whitespace, so ASCII whitespace suffices.
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        var merges: [(String, String)] = []
        for (number, line) in try files.data("merges.txt").split(
            separator: 0x0A, omittingEmptySubsequences: false
        )
        .enumerated() {
            let parts = line.split(whereSeparator: isSpace)
            if parts.isEmpty || (number == 0 && line.starts(with: Array("#version:".utf8))) {
                continue
            }
            guard parts.count == 2 else {
                throw TokenizerError.invalidValue(
                    file: mergesFile, key: "line \(number + 1)",
                    reason: "expected two tokens, found \(String(decoding: line, as: UTF8.self))")
            }
            merges.append(
                (
                    String(decoding: parts[0], as: UTF8.self),
                    String(decoding: parts[1], as: UTF8.self)
                ))
        }
        return Components(
            vocabulary: vocabulary, merges: merges, mergesSource: mergesFile, addedTokens: [],
            normalizesNFC: true, unknownToken: nil, fuseUnknown: false, ignoreMerges: false,
            eosToken: nil, padToken: nil, chatTemplate: nil,
            vocabularySource: files.path("vocab.json"),
            configSource: "")
    }
}

// MARK: - Files

/// The tokenizer files of one folder, with errors that name the file.
struct TokenizerFolder {
    let folder: URL

    init(_ folder: URL) { self.folder = folder }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    func data(_ name: String) throws -> Data {
        do {
            return try Data(contentsOf: folder.appendingPathComponent(name))
        } catch {
            throw TokenizerError.unreadable(file: path(name), reason: error.localizedDescription)
        }
    }

    func text(_ name: String) throws -> String {
        guard let text = String(data: try data(name), encoding: .utf8) else {
            throw TokenizerError.unreadable(file: path(name), reason: "not UTF-8")
        }
        return text
    }

    func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let bytes = try data(name)
        do {
            return try JSONDecoder().decode(type, from: bytes)
        } catch let error as DecodingError {
            throw TokenizerError.invalidValue(
                file: path(name), key: Self.keyPath(error), reason: Self.reason(error))
        } catch {
            throw TokenizerError.unreadable(file: path(name), reason: "\(error)")
        }
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, _ name: String) throws -> T? {
        exists(name) ? try decode(type, name) : nil
    }

    private static func keyPath(_ error: DecodingError) -> String {
        let path: [CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context),
            .dataCorrupted(let context):
            path = context.codingPath
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
        @unknown default:
            path = []
        }
        let joined = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return joined.isEmpty ? "(top level)" : String(joined.drop { $0 == "." })
    }

    private static func reason(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, _): return "expected \(type)"
        case .valueNotFound(let type, _): return "expected \(type), found null"
        case .keyNotFound: return "missing"
        case .dataCorrupted(let context):
            return context.debugDescription.split(separator: "\n").first.map(String.init)
                ?? "invalid JSON"
        @unknown default: return "invalid"
        }
    }
}

// MARK: - File formats

/// The parts of `tokenizer.json` densecap reads.
struct TokenizerJSON: Decodable {
    let addedTokens: [AddedTokenJSON]?
    let normalizer: Component?
    let preTokenizer: Component?
    let postProcessor: Component?
    let decoder: Component?
    let model: Model

    enum CodingKeys: String, CodingKey {
        case addedTokens = "added_tokens"
        case normalizer
        case preTokenizer = "pre_tokenizer"
        case postProcessor = "post_processor"
        case decoder, model
    }

    /// One node of the normalizer / pre-tokenizer / post-processor / decoder trees, with the
    /// options of every type densecap understands.
    struct Component: Decodable {
        let type: String?
        let normalizers: [Component]?
        let pretokenizers: [Component]?
        let processors: [Component]?
        let pattern: Pattern?
        let behavior: String?
        let invert: Bool?
        let addPrefixSpace: Bool?
        let useRegex: Bool?

        enum CodingKeys: String, CodingKey {
            case type, normalizers, pretokenizers, processors, pattern, behavior, invert
            case addPrefixSpace = "add_prefix_space"
            case useRegex = "use_regex"
        }
    }

    /// `{"Regex": "…"}` or `{"String": "…"}`.
    struct Pattern: Decodable {
        let regex: String?
        let string: String?

        enum CodingKeys: String, CodingKey {
            case regex = "Regex"
            case string = "String"
        }
    }

    struct Model: Decodable {
        let type: String?
        let vocab: [String: Int]
        let merges: MergeList
        let dropout: Double?
        let unkToken: String?
        let continuingSubwordPrefix: String?
        let endOfWordSuffix: String?
        let fuseUnk: Bool?
        let byteFallback: Bool?
        let ignoreMerges: Bool?

        enum CodingKeys: String, CodingKey {
            case type, vocab, merges, dropout
            case unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case endOfWordSuffix = "end_of_word_suffix"
            case fuseUnk = "fuse_unk"
            case byteFallback = "byte_fallback"
            case ignoreMerges = "ignore_merges"
        }
    }

    /// The merges, written `"a b"` (tokenizers < 0.20) or `["a", "b"]`. Decoded as one array of
    /// either form: trying each entry both ways would cost a thrown error per merge (seconds
    /// for Qwen2's 151k merges).
    struct MergeList: Decodable {
        /// Each entry split into its parts; a well-formed merge has exactly two.
        let entries: [[String]]

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let lines = try? container.decode([String].self) {
                entries = lines.map {
                    $0.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                }
            } else {
                entries = try container.decode([[String]].self)
            }
        }
    }
}

/// An added token as `tokenizer.json` (`added_tokens`) and `tokenizer_config.json`
/// (`added_tokens_decoder`) spell it; missing flags take HF's defaults.
struct AddedTokenJSON: Decodable {
    let id: Int?
    let content: String
    let singleWord: Bool?
    let lstrip: Bool?
    let rstrip: Bool?
    let normalized: Bool?
    let special: Bool?

    enum CodingKeys: String, CodingKey {
        case id, content
        case singleWord = "single_word"
        case lstrip, rstrip, normalized, special
    }

    func addedToken(id: Int) -> AddedToken {
        let special = special ?? false
        return AddedToken(
            id: id, content: content, special: special, singleWord: singleWord ?? false,
            lstrip: lstrip ?? false,
            rstrip: rstrip ?? false, normalized: normalized ?? !special)
    }
}

/// The parts of `tokenizer_config.json` (and `special_tokens_map.json`, which has the same
/// special-token keys) densecap reads.
struct TokenizerConfig: Decodable {
    /// A special-token entry: a string, an `AddedToken` object, or an explicit null.
    enum SpecialToken: Decodable, Equatable {
        case null
        case token(String)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let content = try? container.decode(String.self) {
                self = .token(content)
            } else {
                self = .token(try container.decode(AddedTokenJSON.self).content)
            }
        }

        var content: String? { if case .token(let content) = self { content } else { nil } }
    }

    /// `chat_template`: one string, or a list of named templates (transformers ≥ 4.40).
    enum ChatTemplateField: Decodable {
        case single(String)
        case named([NamedTemplate])

        struct NamedTemplate: Decodable {
            let name: String
            let template: String
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .single(text)
            } else {
                self = .named(try container.decode([NamedTemplate].self))
            }
        }
    }

    var eosToken: SpecialToken?
    var padToken: SpecialToken?
    var bosToken: SpecialToken?
    var unkToken: SpecialToken?
    var additionalSpecialTokens: [SpecialToken]?
    var addedTokensDecoder: [String: AddedTokenJSON]?
    var chatTemplate: ChatTemplateField?
    var tokenizerClass: String?
    var addPrefixSpace: Bool?

    enum CodingKeys: String, CodingKey {
        case eosToken = "eos_token"
        case padToken = "pad_token"
        case bosToken = "bos_token"
        case unkToken = "unk_token"
        case additionalSpecialTokens = "additional_special_tokens"
        case addedTokensDecoder = "added_tokens_decoder"
        case chatTemplate = "chat_template"
        case tokenizerClass = "tokenizer_class"
        case addPrefixSpace = "add_prefix_space"
    }

    init() {}

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // A key present with null is `.null` (no such token), an absent key nil (default).
        func special(_ key: CodingKeys) throws -> SpecialToken? {
            guard container.contains(key) else { return nil }
            return try container.decodeNil(forKey: key)
                ? .null : container.decode(SpecialToken.self, forKey: key)
        }
        eosToken = try special(.eosToken)
        padToken = try special(.padToken)
        bosToken = try special(.bosToken)
        unkToken = try special(.unkToken)
        additionalSpecialTokens = try container.decodeIfPresent(
            [SpecialToken].self, forKey: .additionalSpecialTokens)
        addedTokensDecoder = try container.decodeIfPresent(
            [String: AddedTokenJSON].self, forKey: .addedTokensDecoder)
        chatTemplate = try container.decodeIfPresent(ChatTemplateField.self, forKey: .chatTemplate)
        tokenizerClass = try container.decodeIfPresent(String.self, forKey: .tokenizerClass)
        addPrefixSpace = try container.decodeIfPresent(Bool.self, forKey: .addPrefixSpace)
    }

    /// Contents named by the special-token keys: what makes a legacy `added_tokens.json` entry special.
    var specialTokenContents: Set<String> {
        let named = [eosToken, padToken, bosToken, unkToken].compactMap { $0?.content }
        return Set(named + (additionalSpecialTokens ?? []).compactMap(\.content))
    }

    /// The template `apply_chat_template` uses by default: the only one, or the one named "default".
    func defaultChatTemplate(file: String) throws -> String? {
        switch chatTemplate {
        case .none: return nil
        case .single(let text): return text
        case .named(let templates):
            guard let chosen = templates.first(where: { $0.name == "default" }) else {
                throw TokenizerError.invalidValue(
                    file: file, key: "chat_template", reason: "no template named \"default\"")
            }
            return chosen.template
        }
    }
}
