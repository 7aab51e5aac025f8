import Foundation
import ModelAPI

// The answers of `POST /chat/completions`: one JSON object, or server-sent events whose `data:`
// lines are chunks (`choices[0].delta.content` pieces, a `finish_reason`, a last chunk with
// `usage` and no choices) ending with `data: [DONE]`.

/// `content` as servers send it: a string, null, or a list of parts of which the text ones count.
struct MessageText: Decodable {
    let text: String?

    private struct Part: Decodable {
        let type: String?
        let text: String?
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            text = nil
        } else if let s = try? c.decode(String.self) {
            text = s
        } else {
            let parts = try c.decode([Part].self)
            text = parts.filter { $0.type == nil || $0.type == "text" }.compactMap(\.text).joined()
        }
    }
}

struct Usage: Decodable {
    let prompt_tokens: Int?
    let completion_tokens: Int?
}

/// A chat completion or one streamed chunk of it (fields as the API names them).
struct ChatCompletion: Decodable {
    struct Message: Decodable {
        let content: MessageText?
    }

    struct Choice: Decodable {
        let message: Message?
        let delta: Message?
        let finish_reason: String?
    }

    let model: String?
    let choices: [Choice]?
    let usage: Usage?
    /// An error sent inside a stream (vLLM, SGLang) or with a success status.
    let error: APIErrorBody.Detail?
}

/// OpenAI's error body, `{"error": {"message": …, "type": …, "code": …}}`, and the shapes
/// servers use besides it: vLLM's older `{"object": "error", "message": …}` and FastAPI's
/// `{"detail": …}`.
struct APIErrorBody: Decodable {
    struct Detail: Decodable {
        let message: String?
        let code: Int?

        private enum Keys: String, CodingKey { case message, code }

        init(from decoder: Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                message = text
                code = nil
                return
            }
            let c = try decoder.container(keyedBy: Keys.self)
            message = try? c.decodeIfPresent(String.self, forKey: .message)
            // `code` is a number on some servers and a string ("rate_limit_exceeded") on OpenAI.
            code = (try? c.decodeIfPresent(Int.self, forKey: .code)) ?? nil
        }
    }

    let error: Detail?
    let message: String?
    let detail: MessageOrList?

    struct MessageOrList: Decodable {
        let text: String
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                text = s
            } else if let data = try? JSONEncoder().encode(c.decode(JSONValue.self)) {
                text = String(decoding: data, as: UTF8.self)
            } else {
                text = "?"
            }
        }
    }

    /// The server's message in an error response body, else its first line(s) of text.
    static func message(in body: [UInt8]) -> String? {
        if let parsed = try? JSONDecoder().decode(APIErrorBody.self, from: Data(body)),
            let message = parsed.error?.message ?? parsed.message ?? parsed.detail?.text
        {
            return message
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// Any JSON value (to show an unexpected `detail` as text).
enum JSONValue: Codable {
    case string(String), number(Double), bool(Bool), null, array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let v = try? c.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? c.decode(Double.self) {
            self = .number(v)
        } else if let v = try? c.decode(String.self) {
            self = .string(v)
        } else if let v = try? c.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let v): try c.encode(v)
        case .number(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .null: try c.encodeNil()
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}

/// What the API's `finish_reason` means here: `length` is a truncated answer; `stop` and every
/// other reason (`content_filter`, a server's own) end it as complete.
func finishReason(_ text: String?) -> FinishReason {
    text == "length" ? .length : .stop
}

/// Why a response body is not an answer.
struct MalformedResponse: Error {
    let message: String
}

/// The answer in a non-streamed chat completion body.
func parseCompletion(_ body: [UInt8], requestedModel: String) throws -> VisionAnswer {
    let completion: ChatCompletion
    do {
        completion = try JSONDecoder().decode(ChatCompletion.self, from: Data(body))
    } catch {
        throw MalformedResponse(message: "not a chat completion (\(describe(error)))")
    }
    if let error = completion.error, completion.choices == nil {
        throw MalformedResponse(message: "an error with a success status: \(error.message ?? "no message")")
    }
    guard let choice = completion.choices?.first else { throw MalformedResponse(message: "no choices in the answer") }
    guard let message = choice.message else { throw MalformedResponse(message: "the first choice has no message") }
    return VisionAnswer(
        text: message.content?.text ?? "", finishReason: finishReason(choice.finish_reason),
        promptTokens: completion.usage?.prompt_tokens ?? 0, completionTokens: completion.usage?.completion_tokens ?? 0,
        model: completion.model ?? requestedModel)
}

/// A decoding error on one line.
func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let c): "invalid JSON" + (c.underlyingError.map { ": \($0.localizedDescription)" } ?? "")
    case DecodingError.keyNotFound(let key, let c): "missing \(path(c.codingPath + [key]))"
    case DecodingError.typeMismatch(let type, let c): "\(path(c.codingPath)) is not \(type)"
    case DecodingError.valueNotFound(let type, let c): "\(path(c.codingPath)) is null, expected \(type)"
    default: "\(error)"
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
}

/// Reads server-sent events as they arrive and gathers the streamed answer.
struct StreamAccumulator {
    private var buffer: [UInt8] = []
    private(set) var text = ""
    private(set) var finish: String?
    private(set) var usage: Usage?
    private(set) var model: String?
    /// `data: [DONE]` arrived.
    private(set) var done = false
    /// The error object a server sent in the stream, if any.
    private(set) var streamError: APIErrorBody.Detail?

    /// Feeds bytes; returns the text pieces they complete, in order.
    mutating func push(_ bytes: some Sequence<UInt8>) throws -> [String] {
        buffer.append(contentsOf: bytes)
        var pieces: [String] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            var line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if let piece = try handle(line) { pieces.append(piece) }
        }
        return pieces
    }

    /// The rest of the stream when it ends without a last newline.
    mutating func finishStream() throws -> [String] {
        guard !buffer.isEmpty else { return [] }
        let line = buffer
        buffer = []
        return try handle(line).map { [$0] } ?? []
    }

    private mutating func handle(_ line: [UInt8]) throws -> String? {
        // Only `data:` lines carry chunks; comments (`:`), `event:`, `id:` and blank lines do not.
        guard line.starts(with: Array("data:".utf8)), !done else { return nil }
        var payload = line.dropFirst(5)
        if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
        if payload.elementsEqual("[DONE]".utf8) {
            done = true
            return nil
        }
        let chunk: ChatCompletion
        do {
            chunk = try JSONDecoder().decode(ChatCompletion.self, from: Data(payload))
        } catch {
            throw MalformedResponse(message: "a streamed chunk is not JSON (\(describe(error)))")
        }
        if let error = chunk.error {
            streamError = error
            done = true
            return nil
        }
        if let m = chunk.model { model = m }
        if let u = chunk.usage { usage = u }
        guard let choice = chunk.choices?.first else { return nil }
        if let reason = choice.finish_reason { finish = reason }
        let piece = choice.delta?.content?.text ?? choice.message?.content?.text ?? ""
        guard !piece.isEmpty else { return nil }
        text += piece
        return piece
    }

    /// The answer once the stream ended.
    func answer(requestedModel: String) -> VisionAnswer {
        VisionAnswer(
            text: text, finishReason: finishReason(finish), promptTokens: usage?.prompt_tokens ?? 0,
            completionTokens: usage?.completion_tokens ?? 0, model: model ?? requestedModel)
    }
}
