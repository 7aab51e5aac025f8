import Foundation
import ModelAPI

// The part of OpenAI's chat-completions API that `serve` speaks (and vLLM's / VILA's video
// extensions). Unknown fields are ignored, as OpenAI-compatible servers do.

/// `POST /v1/chat/completions`'s body.
struct ChatCompletionRequest: Decodable, Sendable {
    var model: String?
    var messages: [ChatMessage]
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Float?
    var topP: Float?
    var seed: Int64?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var stop: StopSequences?

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    /// `stop` as a string or a list of strings.
    struct StopSequences: Decodable, Sendable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(String.self) { values = [one] } else { values = try c.decode([String].self) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, seed, stream, n, stop
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case topP = "top_p"
        case streamOptions = "stream_options"
    }
}

struct ChatMessage: Decodable, Sendable {
    var role: String
    var content: MessageContent?
}

/// A message's content: a string, or a list of typed parts.
enum MessageContent: Decodable, Sendable {
    case text(String)
    case parts([ContentPart])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try c.decode([ContentPart].self))
        }
    }
}

/// One part: `text`, `image_url` or `video_url` (with VILA's `frames`/`fps` beside it).
struct ContentPart: Decodable, Sendable {
    var type: String
    var text: String?
    var imageURL: MediaURL?
    var videoURL: MediaURL?
    /// VILA's server: how many frames to sample from a video file.
    var frames: Int?
    /// VILA's server: sample at this rate (frames per second), at most `frames` of them.
    var fps: Double?

    enum CodingKeys: String, CodingKey {
        case type, text, frames, fps
        case imageURL = "image_url"
        case videoURL = "video_url"
    }
}

/// `{"url": "...", "detail": "..."}`, or the bare URL string some clients send.
struct MediaURL: Decodable, Sendable {
    var url: String

    enum CodingKeys: String, CodingKey { case url }

    init(from decoder: any Decoder) throws {
        if let c = try? decoder.singleValueContainer(), let url = try? c.decode(String.self) {
            self.url = url
        } else {
            self.url = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .url)
        }
    }
}

/// The field path of a decoding error, as OpenAI's `param` names it (`messages[0].content`).
func parameterPath(_ path: [any CodingKey]) -> String? {
    var out = ""
    for key in path {
        if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
    }
    return out.isEmpty ? nil : out
}

/// A decoding error as one line and the field it names.
func describeDecodingError(_ error: any Error) -> (message: String, param: String?) {
    switch error as? DecodingError {
    case .typeMismatch(let type, let context)?:
        return ("\(parameterPath(context.codingPath) ?? "body"): expected \(type)", parameterPath(context.codingPath))
    case .valueNotFound(let type, let context)?:
        return ("\(parameterPath(context.codingPath) ?? "body"): expected \(type), found null", parameterPath(context.codingPath))
    case .keyNotFound(let key, let context)?:
        let path = parameterPath(context.codingPath + [key])
        return ("\(path ?? key.stringValue): required field missing", path)
    case .dataCorrupted(let context)?:
        let underlying = (context.underlyingError as NSError?)?.localizedDescription
        return ("request body is not valid JSON\(parameterPath(context.codingPath).map { " at \($0)" } ?? ""): \(underlying ?? context.debugDescription)",
                parameterPath(context.codingPath))
    default:
        return ("request body is not valid JSON: \(error)", nil)
    }
}

// MARK: - Responses

/// The JSON `serve` answers with, built as dictionaries: OpenAI's explicit nulls
/// (`finish_reason: null` in chunks) matter to strict clients.
enum ChatResponse {
    static func usage(_ a: VisionAnswer) -> [String: Any] {
        ["prompt_tokens": a.promptTokens, "completion_tokens": a.completionTokens, "total_tokens": a.promptTokens + a.completionTokens]
    }

    static func completion(id: String, created: Int, model: String, answer: VisionAnswer) -> [String: Any] {
        [
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [[
                "index": 0,
                "message": ["role": "assistant", "content": answer.text] as [String: Any],
                "finish_reason": answer.finishReason.rawValue,
                "logprobs": NSNull(),
            ] as [String: Any]],
            "usage": usage(answer),
        ]
    }

    /// One streamed chunk: a delta (`role`/`content`), or the finish reason, or (with no choice)
    /// the usage.
    static func chunk(id: String, created: Int, model: String, delta: [String: Any]?, finishReason: String?,
                      usage: [String: Any]?, includeUsage: Bool) -> [String: Any] {
        var chunk: [String: Any] = ["id": id, "object": "chat.completion.chunk", "created": created, "model": model]
        if let delta {
            chunk["choices"] = [["index": 0, "delta": delta, "finish_reason": finishReason as Any? ?? NSNull(), "logprobs": NSNull()] as [String: Any]]
        } else {
            chunk["choices"] = [Any]()
        }
        if includeUsage { chunk["usage"] = usage as Any? ?? NSNull() }
        return chunk
    }

    static func json(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}
