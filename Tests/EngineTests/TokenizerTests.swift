import Foundation
import Testing

@testable import Engine

/// Goldens written by `tools/fixtures/gen_engine_fixtures.py` with HF `tokenizers` /
/// transformers: a tiny BPE trained with Qwen2's exact normaliser, split regex, ByteLevel steps
/// and special tokens, saved in both checkpoint layouts.
enum TokenizerFixtures {
    enum Layout: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case fast = "tokenizer"  // tokenizer.json + tokenizer_config.json
        case slow = "tokenizer-slow"  // vocab.json + merges.txt + added_tokens.json + tokenizer_config.json
        var testDescription: String { rawValue }
    }

    struct Golden: Decodable, Sendable {
        struct Case: Decodable, Sendable, CustomTestStringConvertible {
            let text: String
            let ids: [Int]
            let tokens: [String]
            let decoded: String
            let decodedSkipSpecial: String

            enum CodingKeys: String, CodingKey {
                case text, ids, tokens, decoded, decodedSkipSpecial = "decoded_skip_special"
            }
            var testDescription: String { String(reflecting: String(text.prefix(40))) }
        }
        let bpeVocabSize: Int
        let embeddingRows: Int
        let specialTokens: [String: Int]
        let cases: [Case]

        enum CodingKeys: String, CodingKey {
            case bpeVocabSize = "bpe_vocab_size", embeddingRows = "embedding_rows"
            case specialTokens = "special_tokens", cases
        }
    }

    struct Chat: Decodable, Sendable {
        struct Message: Decodable, Sendable {
            let role: String
            let content: String
        }
        struct Case: Decodable, Sendable, CustomTestStringConvertible {
            let name: String
            let messages: [Message]
            let addGenerationPrompt: Bool
            let text: String
            let ids: [Int]

            enum CodingKeys: String, CodingKey {
                case name, messages, addGenerationPrompt = "add_generation_prompt", text, ids
            }
            var testDescription: String { "\(name) generation=\(addGenerationPrompt)" }
        }
        let chatTemplate: String
        let cases: [Case]

        enum CodingKeys: String, CodingKey {
            case chatTemplate = "chat_template", cases
        }
    }

    static func url(_ name: String) -> URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: url(name)))
    }

    static let golden = Result { try decode(Golden.self, "tokenizer_golden.json") }
    static let chat = Result { try decode(Chat.self, "chat_golden.json") }
    static let fast = Result { try BPETokenizer.load(directory: url(Layout.fast.rawValue).path) }
    static let slow = Result { try BPETokenizer.load(directory: url(Layout.slow.rawValue).path) }

    static func tokenizer(_ layout: Layout) throws -> BPETokenizer {
        try (layout == .fast ? fast : slow).get()
    }

    /// Golden cases as test arguments (empty if the file is unreadable; `goldenFilesLoad` then fails).
    static var goldenCases: [Golden.Case] { (try? golden.get().cases) ?? [] }
    static var chatCases: [Chat.Case] { (try? chat.get().cases) ?? [] }
}

/// Text compared scalar by scalar: `String ==` treats canonically equivalent strings as equal,
/// which would hide a normalisation bug.
func scalars(_ text: String) -> [Unicode.Scalar] { Array(text.unicodeScalars) }

@Suite struct TokenizerGoldenTests {
    typealias Layout = TokenizerFixtures.Layout

    @Test func goldenFilesLoad() throws {
        let golden = try TokenizerFixtures.golden.get()
        #expect(golden.cases.count >= 50)
        #expect(try TokenizerFixtures.chat.get().cases.count >= 7)
    }

    @Test(arguments: Layout.allCases, TokenizerFixtures.goldenCases)
    func encodesLikeReference(layout: Layout, golden: TokenizerFixtures.Golden.Case) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(layout)
        let ids = tokenizer.encode(golden.text)
        #expect(ids == golden.ids)
        #expect(ids.map { tokenizer.token(forID: $0) ?? "?" } == golden.tokens)
    }

    @Test(arguments: Layout.allCases, TokenizerFixtures.goldenCases)
    func decodesLikeReference(layout: Layout, golden: TokenizerFixtures.Golden.Case) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(layout)
        #expect(
            scalars(tokenizer.decode(golden.ids, skipSpecialTokens: false))
                == scalars(golden.decoded))
        #expect(
            scalars(tokenizer.decode(golden.ids, skipSpecialTokens: true))
                == scalars(golden.decodedSkipSpecial))
    }

    /// Streaming never emits text it would later have to take back: after every push, all text
    /// so far is a scalar prefix of the full decode of the ids so far, and at the end it is the
    /// full decode. A chunk ending inside a character would show up as a U+FFFD that the full
    /// decode does not have.
    @Test(arguments: TokenizerFixtures.goldenCases)
    func streamsLikeFullDecode(golden: TokenizerFixtures.Golden.Case) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(.fast)
        for skip in [false, true] {
            var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
            var emitted: [Unicode.Scalar] = []
            for (k, id) in golden.ids.enumerated() {
                emitted += scalars(stream.push(id))
                let full = scalars(
                    tokenizer.decode(Array(golden.ids[...k]), skipSpecialTokens: skip))
                #expect(full.starts(with: emitted), "after id \(k)")
            }
            emitted += scalars(stream.finish())
            #expect(emitted == scalars(skip ? golden.decodedSkipSpecial : golden.decoded))
        }
    }

    @Test(arguments: Layout.allCases)
    func specialTokensAndSizes(layout: Layout) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(layout)
        let golden = try TokenizerFixtures.golden.get()
        for (content, id) in golden.specialTokens {
            #expect(tokenizer.id(forToken: content) == id, "\(content)")
            #expect(tokenizer.token(forID: id) == content)
        }
        #expect(tokenizer.specialTokenIDs == Set(golden.specialTokens.values))
        #expect(tokenizer.eosTokenID == golden.specialTokens["<|im_end|>"])
        #expect(tokenizer.padTokenID == golden.specialTokens["[PAD]"])
        // NVILA's media tokens lie beyond the embedding table: 3 more ids than model rows.
        #expect(tokenizer.vocabularySize == golden.embeddingRows + 3)
        #expect(tokenizer.id(forToken: "Ġ") == tokenizer.encode(" ").first)
        #expect(tokenizer.id(forToken: "no such token") == nil)
    }

    @Test(arguments: Layout.allCases, TokenizerFixtures.chatCases)
    func rendersChatLikeReference(layout: Layout, golden: TokenizerFixtures.Chat.Case) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(layout)
        #expect(tokenizer.chatPrompt.template == .vilaQwen2)
        #expect(tokenizer.chatPrompt.checkpointTemplate == .recognized)
        let messages = golden.messages.map { ChatMessage(role: $0.role, content: $0.content) }
        let text = tokenizer.chatPrompt.render(
            messages, addGenerationPrompt: golden.addGenerationPrompt)
        #expect(scalars(text) == scalars(golden.text))
        #expect(tokenizer.encode(text) == golden.ids)
    }

    @Test func chatTemplateOfGoldenIsVILAs() throws {
        let chat = try TokenizerFixtures.chat.get()
        #expect(chat.chatTemplate == ChatPrompt.Template.vilaQwen2.source)
    }
}

@Suite struct TokenizerBehaviourTests {
    static let tokenizer = TokenizerFixtures.fast

    /// Random strings over a hostile alphabet round-trip through encode and decode, up to NFC
    /// (encoding normalises; byte-level BPE loses nothing else).
    @Test(arguments: 0..<8)
    func randomTextRoundTrips(seed: UInt64) throws {
        let tokenizer = try Self.tokenizer.get()
        let pool: [String] = [
            "a", "Z", "é", "e\u{301}", "A\u{30A}", "\u{212B}", "ſ", "ß", "7", "٣", "½", "Ⅻ", " ",
            "  ", "\t", "\n",
            "\r\n", "\r", "\u{00A0}", "\u{3000}", "\u{0085}", "\u{2028}", "\u{200B}", "\u{200D}",
            "'", "'s", "'LL",
            "’", "\"", "(", "}", "->", "//", "…", "—", "你", "好", "世", "안", "녕", "ស", "្", "វ", "ា",
            "م", "ر",
            "😀", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🎉", "\u{FE0F}", "\u{1F3FB}", "\u{0000}", "\u{007F}", "\u{001C}",
            "<|im_start|>", "<|im_end|>", "<image>", "<vila/video>", "<|endoftext|>", "[PAD]",
            "<imag", "<|im",
            "\u{10FFFF}", "\u{E000}", "\u{0378}",
        ]
        // Knuth's MMIX linear congruential generator: seeded, identical on every machine.
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<200 {
            let text = (0..<next(24)).map { _ in pool[next(pool.count)] }.joined()
            let ids = tokenizer.encode(text)
            let expected = text.precomposedStringWithCanonicalMapping
            #expect(
                scalars(tokenizer.decode(ids)) == scalars(expected), "\(String(reflecting: text))")
        }
    }

    // Performance sanity check (not asserted; tests never time): encoding this 100 KB text took
    // 0.03–0.05 s in a release build (`-c release -Xswiftc -enable-testing`, shared 2-core dev
    // VM), the first encode with an empty merge cache included; the 50 000-letter word 0.03 s.
    // Ad hoc, with a 60k-token BPE trained by HF `tokenizers` on Python sources: 5.9 MB encoded
    // to 1.56 M ids in 0.6 s, id for id as HF; loading its tokenizer.json took 0.6 s.
    @Test func encodesLongTextInOnePass() throws {
        let tokenizer = try Self.tokenizer.get()
        let paragraph = """
            At 00:00:05 a red car enters the frame from the left and stops near the gate. \
            Two people get out; one carries a blue backpack, the other a camera on a tripod.
            你好，世界！今天天气很好。안녕하세요 👨‍👩‍👧‍👦 — they're "here"\t\t(x[i] += 1)\n\n
            """
        let text = String(repeating: paragraph, count: 100_000 / paragraph.utf8.count + 1)
        let ids = tokenizer.encode(text)
        #expect(ids.count > text.utf8.count / 8)
        #expect(
            scalars(tokenizer.decode(ids)) == scalars(text.precomposedStringWithCanonicalMapping))
        // One long word (no split points) exercises the merge queue without quadratic blow-up.
        let word = String(repeating: "a", count: 50_000)
        #expect(tokenizer.decode(tokenizer.encode(word)) == word)
    }

    @Test func unknownIDsAreSkipped() throws {
        let tokenizer = try Self.tokenizer.get()
        let hello = tokenizer.encode("hello")
        let beyond = tokenizer.vocabularySize
        #expect(tokenizer.decode([-1] + hello + [beyond, Int.max]) == "hello")
        #expect(tokenizer.token(forID: beyond) == nil)
        #expect(tokenizer.token(forID: -5) == nil)
        var stream = tokenizer.streamingDecoder()
        let text = ([beyond] + hello + [-1]).map { stream.push($0) }.joined() + stream.finish()
        #expect(text == "hello")
    }

    /// An emoji spans several byte tokens: nothing is emitted until its last byte arrives, and a
    /// stream cut inside it ends in one U+FFFD, as the full decode does.
    @Test func streamingHoldsBackPartialCharacters() throws {
        let tokenizer = try Self.tokenizer.get()
        let bytes = Array("🎬".utf8)
        let ids = bytes.map { tokenizer.id(forToken: String(ByteLevel.scalarForByte[Int($0)]))! }
        var stream = tokenizer.streamingDecoder()
        #expect(ids.dropLast().map { stream.push($0) } == ["", "", ""])
        #expect(stream.push(ids.last!) == "🎬")
        #expect(stream.finish() == "")

        var cut = tokenizer.streamingDecoder()
        #expect(ids.prefix(2).map { cut.push($0) } == ["", ""])
        #expect(cut.finish() == "\u{FFFD}")
        #expect(tokenizer.decode(Array(ids.prefix(2))) == "\u{FFFD}")
    }

    @Test func specialTokensAreMatchedBeforeBPEAndSkippable() throws {
        let tokenizer = try Self.tokenizer.get()
        let imStart = try #require(tokenizer.id(forToken: "<|im_start|>"))
        let video = try #require(tokenizer.id(forToken: "<vila/video>"))
        let ids = tokenizer.encode("<|im_start|>user\n<vila/video>Describe.")
        #expect(ids.first == imStart)
        #expect(ids.filter { $0 == video }.count == 1)
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "user\nDescribe.")
        // A partial special token is ordinary text.
        #expect(!tokenizer.encode("<|im_start").contains(imStart))
    }
}

@Suite struct PreTokenizerTests {
    /// Pieces derived by hand from the regex (branch numbers as in `Qwen2PreTokenizer.pieceEnd`).
    @Test(
        arguments: [
            ("Hello world", ["Hello", " world"]),  // 2, 2 with a leading space
            ("   x", ["  ", " x"]),  // 6 gives the last space back; 2
            ("x   ", ["x", "   "]),  // 6 at the end of text keeps the whole run
            ("a\n\n b", ["a", "\n\n", " b"]),  // 5 ends after the last newline
            ("a \n \n  b", ["a", " \n \n", " ", " b"]),  // 5, then 6 with two spaces
            ("\t\tfoo", ["\t", "\tfoo"]),  // 6, then 2 (a tab may lead a word)
            ("2024", ["2", "0", "2", "4"]),  // 3: one number character per piece
            ("x²½", ["x", "²", "½"]),  // No is a number
            ("don't", ["don", "'t"]),  // 1
            ("X'S'Re'LL", ["X", "'S", "'Re", "'LL"]),  // 1 is case-insensitive
            ("you 're", ["you", " '", "re"]),  // 1 needs the quote first; 4 takes " '"
            ("'ſa", ["'ſ", "a"]),  // case folding: ſ matches s
            ("'x", ["'x"]),  // not a contraction: 2 with the quote leading
            ("((a", ["((", "a"]),  // 4 (2 needs exactly one leading character)
            (" ...\n\nx", [" ...\n\n", "x"]),  // 4 with its leading space and trailing newlines
            ("👨‍👩‍👧", ["👨‍👩‍👧"]),  // emoji and ZWJ are all "other": one piece of scalars
            ("\u{3000}word", ["\u{3000}word"]),  // ideographic space leads a word
            ("a\u{00A0}\u{00A0}b", ["a", "\u{00A0}", "\u{00A0}b"]),
            ("नमस्ते", ["नमस", "्त", "े"]),  // virama (Mn) leads the next letter run; Mc is "other"
        ] as [(String, [String])])
    func splitsLikeTheRegex(text: String, expected: [String]) {
        let scalars = Array(text.unicodeScalars)
        let pieces = Qwen2PreTokenizer.split(scalars).map {
            String(String.UnicodeScalarView(scalars[$0]))
        }
        #expect(
            pieces.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) })
    }
}

/// The flags Qwen's tokens leave off, with the meaning HF gives them
/// (`AddedVocabulary::find_matches`): `lstrip`/`rstrip` swallow neighbouring whitespace,
/// `single_word` refuses matches touching a word character, longer tokens win.
@Suite struct AddedTokenMatcherTests {
    typealias Segment = AddedTokenMatcher.Segment

    static func split(_ text: String, _ tokens: [AddedToken]) -> [String] {
        let bytes = Array(text.utf8)
        return AddedTokenMatcher(tokens, normalize: { $0 }).split(bytes).map {
            switch $0 {
            case .text(let range): return String(decoding: bytes[range], as: UTF8.self)
            case .token(let id): return "#\(id)"
            }
        }
    }

    @Test func matchesLeftmostLongest() {
        let tokens = [
            AddedToken(id: 1, content: "<a>", special: true),
            AddedToken(id: 2, content: "<a><b>", special: true),
        ]
        #expect(Self.split("x<a><b><a>y", tokens) == ["x", "#2", "#1", "y"])
        #expect(Self.split("<a", tokens) == ["<a"])
    }

    @Test func stripsWhitespaceWhenAsked() {
        let left = AddedToken(id: 1, content: "<m>", special: true, lstrip: true)
        #expect(Self.split("a \t<m> b", [left]) == ["a", "#1", " b"])
        let right = AddedToken(id: 1, content: "<m>", special: true, rstrip: true)
        #expect(Self.split("a <m> \u{3000}b", [right]) == ["a ", "#1", "b"])
    }

    @Test func singleWordTokensStayOutsideWords() {
        let token = AddedToken(id: 1, content: "ab", special: false, singleWord: true)
        #expect(Self.split("ab cab abc", [token]) == ["#1", " cab abc"])
        #expect(Self.split("(ab)", [token]) == ["(", "#1", ")"])
    }
}

@Suite struct UTF8RepairTests {
    /// Unicode 15 §3.9, Table 3-8: "U+FFFD for Non-Shortest Form Sequences" and its neighbours —
    /// the standard's own example of maximal-subpart substitution.
    @Test func followsTheStandardsExample() {
        let bytes: [UInt8] = [
            0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64,
        ]
        #expect(
            scalars(UTF8Repair.decode(bytes))
                == scalars("a\u{FFFD}\u{FFFD}\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}d"))
    }

    @Test(
        arguments: [
            ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),  // overlong: C0 starts nothing
            ([0xE0, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),  // E0 needs A0…BF next
            ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),  // surrogate
            ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),  // beyond U+10FFFF
            ([0xF0, 0x9F, 0x8E], "\u{FFFD}"),  // truncated 4-byte sequence: one replacement
            ([0xE2, 0x82, 0x41], "\u{FFFD}A"),
        ] as [([UInt8], String)])
    func replacesMaximalSubparts(bytes: [UInt8], expected: String) {
        #expect(scalars(UTF8Repair.decode(bytes)) == scalars(expected))
    }

    @Test(
        arguments: [
            ([0x61], 0), ([0xF0, 0x9F], 2), ([0xF0, 0x9F, 0x8E], 3), ([0xF0, 0x9F, 0x8E, 0xAC], 0),
            ([0xE0, 0x80], 0),  // can never complete: emit now
            ([0x61, 0xC3], 1), ([0x80], 0), ([0xF5], 0),
        ] as [([UInt8], Int)])
    func holdsBackOnlyCompletableTails(bytes: [UInt8], held: Int) {
        #expect(UTF8Repair.incompleteSuffixLength(bytes) == held)
    }
}

@Suite struct ChatPromptTests {
    @Test func rendersVILAsQwen2Template() {
        let prompt = ChatPrompt(template: .vilaQwen2)
        let text = prompt.render(
            [.user("<vila/video>Describe the video.")], addGenerationPrompt: true)
        #expect(
            text == "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                + "<|im_start|>user\n<vila/video>Describe the video.<|im_end|>\n<|im_start|>assistant\n"
        )
        let withSystem = prompt.render(
            [.system("Be brief."), .user("Hi")], addGenerationPrompt: false)
        #expect(
            withSystem
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    }

    @Test func rendersQwen2InstructTemplate() {
        let prompt = ChatPrompt(template: .qwen2Instruct)
        #expect(
            prompt.render([.user("Hi")], addGenerationPrompt: true)
                == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n")
        #expect(prompt.render([], addGenerationPrompt: true) == "<|im_start|>assistant\n")
    }

    static let vilaFile = """
        {% if messages[0]['role'] != 'system' %}
            {{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}
        {% endif %}

        {% for message in messages if message['content'] is not none %}
            {{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}
        {% endfor %}

        {% if add_generation_prompt %}
            {{ '<|im_start|>assistant\\n' }}
        {% endif %}

        """

    @Test func recognisesTemplatesByRendering() {
        // VILA's loader deletes 4-space runs and newlines: that is the template checkpoints carry.
        let loaded = Self.vilaFile.replacingOccurrences(of: "    ", with: "").replacingOccurrences(
            of: "\n", with: "")
        #expect(loaded == ChatPrompt.Template.vilaQwen2.source)
        #expect(ChatPrompt(chatTemplate: loaded).checkpointTemplate == .recognized)
        // Same template, other layout inside the tags and whitespace control: still recognised.
        let relaid =
            #"{%- if messages[0]['role']!='system'-%}{{'<|im_start|>system\nYou are a helpful assistant<|im_end|>\n'}}{% endif %}{% for message in messages if message['content'] is not none %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#
        #expect(ChatPrompt(chatTemplate: relaid).checkpointTemplate == .recognized)
        // The file as is would render its indentation and newlines: not the same prompt.
        let raw = ChatPrompt(chatTemplate: Self.vilaFile)
        #expect(raw.checkpointTemplate == .unrecognized)
        #expect(raw.template == .vilaQwen2)
        // Qwen2-Instruct's own template, with its varying spacing inside tags.
        let qwen = ChatPrompt.Template.qwen2Instruct.source.replacingOccurrences(
            of: "{{'", with: "{{ '")
        #expect(ChatPrompt(chatTemplate: qwen).template == .qwen2Instruct)
        #expect(
            ChatPrompt(chatTemplate: "{{ messages[0]['content'] }}").checkpointTemplate
                == .unrecognized)
        #expect(ChatPrompt(chatTemplate: nil).checkpointTemplate == .absent)
    }

    @Test func canonicalFormAppliesBlockTrimming() {
        // trim_blocks eats the newline after a block tag, lstrip_blocks the indentation before it.
        #expect(ChatPrompt.canonicalForm("{% if x %}\n  {% endif %}\nA") == "{%ifx%}{%endif%}A")
        #expect(ChatPrompt.canonicalForm("{{ x }}\n{# note #}B") == "{{x}}\nB")
        #expect(ChatPrompt.canonicalForm("A  {%- if x -%}  B") == "A{%ifx%}B")
    }

    @Test(arguments: [
        ("  hi \n", "hi"), ("\u{1C}x\u{1F}", "x"), ("\u{3000}x\u{00A0}", "x"),
        ("\u{200B}x", "\u{200B}x"), ("   ", ""),
    ])
    func stripsLikePython(text: String, expected: String) {
        #expect(ChatPrompt.pythonStripped(text) == expected)
    }
}

@Suite struct TokenizerLoadingTests {
    /// A copy of a fixture folder with one JSON file edited.
    static func editedCopy(
        of layout: TokenizerFixtures.Layout = .fast, file name: String = "tokenizer.json",
        _ edit: (inout [String: Any]) -> Void
    ) throws -> String {
        let source = TokenizerFixtures.url(layout.rawValue)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "densecap-tok-\(UUID())")
        try FileManager.default.copyItem(at: source, to: folder)
        let file = folder.appendingPathComponent(name)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        return folder.path
    }

    /// Without `added_tokens_decoder` (checkpoints saved before transformers 4.34), added tokens
    /// come from `added_tokens.json`; transformers makes special only those the config names
    /// (`eos_token`, `bos_token`, `pad_token`, `additional_special_tokens`, …) and matches the
    /// others in normalised text. (transformers 4.57 loads this copy the same way.)
    @Test func readsLegacyAddedTokens() throws {
        let folder = try Self.editedCopy(of: .slow, file: "tokenizer_config.json") {
            $0["added_tokens_decoder"] = nil
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tokenizer = try BPETokenizer.load(directory: folder)
        let named = ["<|im_start|>", "<|im_end|>", "[BOS]", "[PAD]"].compactMap {
            tokenizer.id(forToken: $0)
        }
        #expect(named.count == 4)
        #expect(tokenizer.specialTokenIDs == Set(named))
        #expect(tokenizer.addedTokens.count == 8)
        #expect(tokenizer.addedTokens.allSatisfy { $0.normalized == !$0.special })
        for golden in try TokenizerFixtures.chat.get().cases {
            #expect(tokenizer.encode(golden.text) == golden.ids)
        }
    }

    /// tokenizers < 0.20 (Qwen2's published tokenizer.json among them) writes each merge as one
    /// "left right" string; newer versions as a two-element array. Both read the same.
    @Test func readsMergesWrittenAsStrings() throws {
        let folder = try Self.editedCopy { json in
            var model = json["model"] as! [String: Any]
            model["merges"] = (model["merges"] as! [[String]]).map { $0.joined(separator: " ") }
            json["model"] = model
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tokenizer = try BPETokenizer.load(directory: folder)
        for golden in TokenizerFixtures.goldenCases {
            #expect(tokenizer.encode(golden.text) == golden.ids)
        }
    }

    @Test func refusesUnknownComponentTypes() throws {
        let folder = try Self.editedCopy { $0["pre_tokenizer"] = ["type": "Whitespace"] }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/tokenizer.json"
        #expect(
            throws: TokenizerError.unsupported(
                file: file, key: "pre_tokenizer.type",
                value: "Whitespace (expected Sequence [Split, ByteLevel])")
        ) {
            try BPETokenizer.load(directory: folder)
        }
        let model = try Self.editedCopy { json in
            var model = json["model"] as! [String: Any]
            model["type"] = "WordPiece"
            json["model"] = model
        }
        defer { try? FileManager.default.removeItem(atPath: model) }
        #expect(
            throws: TokenizerError.unsupported(
                file: model + "/tokenizer.json", key: "model.type", value: "WordPiece")
        ) {
            try BPETokenizer.load(directory: model)
        }
    }

    @Test func refusesOtherSplitPatterns() throws {
        let folder = try Self.editedCopy { json in
            var pre = json["pre_tokenizer"] as! [String: Any]
            var steps = pre["pretokenizers"] as! [[String: Any]]
            steps[0]["pattern"] = ["Regex": "\\s+"]
            pre["pretokenizers"] = steps
            json["pre_tokenizer"] = pre
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(
            throws: TokenizerError.unsupported(
                file: folder + "/tokenizer.json", key: "pre_tokenizer.pretokenizers[0].pattern",
                value: "\\s+")
        ) {
            try BPETokenizer.load(directory: folder)
        }
    }

    @Test func namesMissingFilesAndBadJSON() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent(
            "densecap-tok-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: TokenizerError.missingFiles(directory: empty.path)) {
            try BPETokenizer.load(directory: empty.path)
        }
        try Data("{\"model\": {\"vocab\": 3}}".utf8).write(
            to: empty.appendingPathComponent("tokenizer.json"))
        do {
            _ = try BPETokenizer.load(directory: empty.path)
            Issue.record("loaded a broken tokenizer.json")
        } catch let error as TokenizerError {
            #expect(error.description.hasPrefix(empty.path + "/tokenizer.json: "))
            #expect(!error.description.contains("\n"))
        }
    }
}
