/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user" or "assistant".
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage {
        .init(role: "system", content: content)
    }
    public static func user(_ content: String) -> ChatMessage {
        .init(role: "user", content: content)
    }
    public static func assistant(_ content: String) -> ChatMessage {
        .init(role: "assistant", content: content)
    }
}

/// Renders conversations into the ChatML prompt the checkpoint's chat template produces:
///
///     <|im_start|>system\nYou are a helpful assistant<|im_end|>\n
///     <|im_start|>user\n{content}<|im_end|>\n
///     <|im_start|>assistant\n
///
/// densecap has no Jinja engine. It recognises the templates NVILA checkpoints carry by
/// comparing the checkpoint's `chat_template` with them in a canonical form (whitespace inside
/// tags removed, Jinja's whitespace control and transformers' `trim_blocks`/`lstrip_blocks`
/// applied), so a template that differs only in layout is still recognised and one that would
/// render differently is not.
///
/// When the checkpoint's template is missing or not recognised, the prompt is still rendered
/// with VILA's qwen2 template — what NVILA's training scripts pass (`--chat_template qwen2`) —
/// and `checkpointTemplate` says so; callers should warn, since the model may expect another
/// format.
public struct ChatPrompt: Sendable {
    /// The templates densecap renders natively.
    public enum Template: String, Sendable, CaseIterable {
        /// NVlabs/VILA `llava/model/language_model/chat_templates/qwen2.jinja` (b760c34) as VILA
        /// installs it: each 4-space indent and newline removed. System prompt without a period.
        case vilaQwen2
        /// The ChatML template of Qwen2-*-Instruct's `tokenizer_config.json`. System prompt with a
        /// period, inserted only before a first non-system message.
        case qwen2Instruct

        /// The template's Jinja source, exactly as it appears in `tokenizer_config.json`.
        public var source: String {
            switch self {
            case .vilaQwen2:
                return
                    #"{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' }}{% endif %}{% for message in messages if message['content'] is not none %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#
            case .qwen2Instruct:
                return
                    #"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#
            }
        }

        public var defaultSystemPrompt: String {
            switch self {
            case .vilaQwen2: return "You are a helpful assistant"
            case .qwen2Instruct: return "You are a helpful assistant."
            }
        }
    }

    /// How the checkpoint's `chat_template` relates to what `render` produces.
    public enum CheckpointTemplate: Sendable, Equatable {
        /// It renders exactly like `template`.
        case recognized
        /// The checkpoint has none; `render` uses VILA's qwen2 template.
        case absent
        /// It is not one densecap knows; `render` uses VILA's qwen2 template.
        case unrecognized
    }

    public let template: Template
    public let checkpointTemplate: CheckpointTemplate

    /// Chooses the renderer for a checkpoint's `chat_template` (nil when it has none).
    public init(chatTemplate: String?) {
        guard let chatTemplate else {
            self.init(template: .vilaQwen2, checkpointTemplate: .absent)
            return
        }
        let canonical = Self.canonicalForm(chatTemplate)
        if let known = Template.allCases.first(where: { Self.canonicalForm($0.source) == canonical }
        ) {
            self.init(template: known, checkpointTemplate: .recognized)
        } else {
            self.init(template: .vilaQwen2, checkpointTemplate: .unrecognized)
        }
    }

    public init(template: Template, checkpointTemplate: CheckpointTemplate = .recognized) {
        self.template = template
        self.checkpointTemplate = checkpointTemplate
    }

    /// The prompt text, as `tokenizer.apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt:)` renders it with `template`. Contents are used verbatim; VILA
    /// strips each message first (`tokenize_conversation`), for which see `pythonStripped`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        let needsSystem = messages.first?.role != "system"
        switch template {
        case .vilaQwen2:
            // With no messages at all Jinja fails on `messages[0]`; a system turn is the kinder answer.
            if needsSystem { text += turn(role: "system", content: template.defaultSystemPrompt) }
        case .qwen2Instruct:
            // Inserted inside the loop, on its first iteration: no messages, no system turn.
            if needsSystem && !messages.isEmpty {
                text += turn(role: "system", content: template.defaultSystemPrompt)
            }
        }
        for message in messages { text += turn(role: message.role, content: message.content) }
        if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        return text
    }

    private func turn(role: String, content: String) -> String {
        "<|im_start|>" + role + "\n" + content + "<|im_end|>\n"
    }

    /// Python's `str.strip()`: removes leading and trailing characters `str.isspace()` accepts
    /// (bidirectional class WS, B or S, or category Zs — U+001C…U+001F included, unlike Swift's
    /// `isWhitespace`). VILA strips user messages before templating and generated text after.
    public static func pythonStripped(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isPythonSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isPythonSpace($0) })!
        return String(scalars[first...last])
    }

    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
            0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    // MARK: - Template comparison

    /// A form of a Jinja template in which two templates are equal when transformers renders
    /// them alike: whitespace inside `{{ }}` / `{% %}` outside string literals is dropped,
    /// comments are dropped, `-` whitespace control is applied to the neighbouring text, and so
    /// are `trim_blocks` (first newline after a block tag removed) and `lstrip_blocks` (spaces
    /// and tabs from the start of a line to a block tag removed), which transformers enables.
    static func canonicalForm(_ template: String) -> String {
        struct Tag {
            var kind: Character  // "{" expression, "%" statement, "#" comment
            var body = ""
            var left: Character?  // "-" strips all whitespace before, "+" disables lstrip_blocks
            var right: Character?  // "-" strips all whitespace after, "+" disables trim_blocks
        }
        // texts[i] precedes tags[i]; texts.count == tags.count + 1.
        var texts: [String] = []
        var tags: [Tag] = []
        let chars = Array(template)
        var index = 0
        var text = ""
        lexing: while index < chars.count {
            guard index + 1 < chars.count, chars[index] == "{", "{%#".contains(chars[index + 1])
            else {
                text.append(chars[index])
                index += 1
                continue
            }
            var tag = Tag(kind: chars[index + 1])
            let closer: Character = tag.kind == "{" ? "}" : tag.kind
            var cursor = index + 2
            if cursor < chars.count, chars[cursor] == "-" || chars[cursor] == "+" {
                tag.left = chars[cursor]
                cursor += 1
            }
            var quote: Character?
            while true {
                guard cursor < chars.count else {  // unterminated: not a tag, keep it as text
                    text.append(contentsOf: chars[index...])
                    break lexing
                }
                let c = chars[cursor]
                if let open = quote {
                    tag.body.append(c)
                    if c == "\\", cursor + 1 < chars.count {
                        tag.body.append(chars[cursor + 1])
                        cursor += 1
                    } else if c == open {
                        quote = nil
                    }
                } else if tag.kind != "#", c == "'" || c == "\"" {
                    quote = c
                    tag.body.append(c)
                } else if c == closer, cursor + 1 < chars.count, chars[cursor + 1] == "}" {
                    break
                } else if !c.isWhitespace {
                    tag.body.append(c)
                }
                cursor += 1
            }
            if let last = tag.body.last, last == "-" || last == "+" {
                tag.right = last
                tag.body.removeLast()
            }
            texts.append(text)
            text = ""
            tags.append(tag)
            index = cursor + 2
        }
        texts.append(text)

        // Left sides first: lstrip_blocks looks at the source line, before trim_blocks removes
        // the newline that starts it.
        for (i, tag) in tags.enumerated() {
            if tag.left == "-" {
                texts[i] = String(texts[i].reversed().drop(while: \.isWhitespace).reversed())
            } else if tag.kind != "{", tag.left == nil {  // lstrip_blocks, when the tag starts its line
                let kept = String(
                    texts[i].reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
                if kept.hasSuffix("\n") || (i == 0 && kept.isEmpty) { texts[i] = kept }
            }
        }
        for (i, tag) in tags.enumerated() {
            if tag.right == "-" {
                texts[i + 1] = String(texts[i + 1].drop(while: \.isWhitespace))
            } else if tag.kind != "{", tag.right == nil, let first = texts[i + 1].first,
                first == "\n" || first == "\r\n"
            {
                texts[i + 1].removeFirst()  // trim_blocks
            }
        }
        var result = texts[0]
        for (tag, following) in zip(tags, texts.dropFirst()) {
            if tag.kind != "#" {  // comments render nothing
                result +=
                    "{" + String(tag.kind) + tag.body + (tag.kind == "{" ? "}" : String(tag.kind))
                    + "}"
            }
            result += following
        }
        return result
    }
}
