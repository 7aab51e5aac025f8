import Foundation

/// How densecap reaches a vision-language model served behind the OpenAI chat API (vLLM, SGLang,
/// llama.cpp's server, `densecap serve`, OpenAI itself). Recorded in outputs like every other
/// settings value; the API key is not part of it (only the name of the variable that holds it).
public struct RemoteEngineSettings: Codable, Equatable, Sendable {
    /// How a video's frames travel in the user message.
    public enum Transport: String, Codable, Sendable, CaseIterable {
        /// One `image_url` part per frame, each after a text part stating its time
        /// ("Frame at 12.345 s:"): every server that takes images understands it.
        case imageURL = "image_url"
        /// One `video_url` part per video holding vLLM's frame list
        /// (`data:video/jpeg;base64,<frame>,<frame>,…`); no per-frame text, so the prompt is the
        /// native engine's.
        case videoURL = "video_url"
    }

    /// How each frame is encoded.
    public enum FrameFormat: String, Codable, Sendable, CaseIterable {
        case jpeg
        /// Lossless, and several times larger.
        case png
    }

    /// The API's base URL including the version, e.g. `http://127.0.0.1:8000/v1`; requests go to
    /// `{endpoint}/chat/completions`.
    public var endpoint: String
    /// The model name the server knows (`model` in every request).
    public var model: String
    /// The environment variable that holds the API key (sent as `Authorization: Bearer …`). The
    /// key itself is never stored, logged or recorded.
    public var apiKeyVariable = "OPENAI_API_KEY"
    public var transport = Transport.imageURL
    public var frameFormat = FrameFormat.jpeg
    /// Frames and images larger than this on their long side are shrunk to it (aspect kept,
    /// Pillow's antialiased bicubic); nil sends them as decoded. Never enlarges.
    public var imageSize: Int? = 448
    /// JPEG quality 1…100 (libjpeg's scale).
    public var jpegQuality = 90
    /// Requests in flight at most (across all callers of one model).
    public var parallel = 4
    /// How long one try may take, from sending the request to the end of the answer.
    public var timeoutSeconds: Double = 600
    /// Tries after the first for connection errors, timeouts, 408, 409, 429 and ≥ 500.
    public var maxRetries = 2
    /// Also send the output cap as the deprecated `max_tokens` (beside `max_completion_tokens`,
    /// always sent): llama.cpp's server read only `max_tokens` before February 2026 and generates
    /// without bound when it is missing; vLLM and SGLang take `max_completion_tokens or
    /// max_tokens`, so the equal pair changes nothing there. Turn off for APIs that reject
    /// `max_tokens` (OpenAI's reasoning models).
    public var legacyMaxTokens = true

    public init(endpoint: String, model: String) {
        self.endpoint = endpoint
        self.model = model
    }

    /// What changes answers, for outputs and resume to compare: endpoint, model, transport, frame
    /// encoding and size. Parallelism, timeouts and retries do not change an answer.
    public var identity: String {
        let quality = frameFormat == .jpeg ? "-q\(jpegQuality)" : ""
        return "openai:\(normalizedEndpoint)#\(model)|\(transport.rawValue)|\(frameFormat.rawValue)\(quality)|"
            + (imageSize.map { "\($0)px" } ?? "native")
    }

    /// The endpoint without trailing slashes.
    public var normalizedEndpoint: String {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        return e
    }

    /// `{endpoint}/chat/completions`.
    public var chatCompletionsURL: String { normalizedEndpoint + "/chat/completions" }

    /// The API key from `apiKeyVariable` in `environment`; nil when unset or empty.
    public func apiKey(from environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let key = environment[apiKeyVariable], !key.isEmpty else { return nil }
        return key
    }

    /// Throws for settings no request could be made with.
    public func validate() throws {
        func invalid(_ reason: String) -> RemoteEngineError {
            RemoteEngineError(endpoint: endpoint, reason: .invalidSettings(reason), tries: 0)
        }
        guard let url = URL(string: normalizedEndpoint), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", url.host != nil
        else { throw invalid("the endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1") }
        guard !model.isEmpty else { throw invalid("no model name (the server's name for it)") }
        guard apiKeyVariable.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !apiKeyVariable.isEmpty else {
            throw invalid("API key variable \"\(apiKeyVariable)\" is not an environment variable name")
        }
        if let imageSize, imageSize < 1 || imageSize > 16384 { throw invalid("image size \(imageSize) is not in 1…16384") }
        guard (1...100).contains(jpegQuality) else { throw invalid("JPEG quality \(jpegQuality) is not in 1…100") }
        guard parallel >= 1 else { throw invalid("parallel must be at least 1, got \(parallel)") }
        guard timeoutSeconds > 0, timeoutSeconds.isFinite else { throw invalid("timeout must be positive seconds") }
        guard maxRetries >= 0 else { throw invalid("max retries must be 0 or more, got \(maxRetries)") }
    }
}
