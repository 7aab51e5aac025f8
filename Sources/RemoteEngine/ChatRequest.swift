import DenseCore
import Foundation
import ModelAPI
import TemporalCompress
import VideoIO

// The request body of `POST {endpoint}/chat/completions`, built from a `VisionRequest`: an
// optional system message, then one user message whose content parts are the media in order and
// the prompt text last; sampling is always sent, so no server's own defaults decide an answer.

/// One part of a user message's content.
enum ContentPart: Encodable, Equatable {
    case text(String)
    case imageURL(String)
    case videoURL(String)

    private struct URLValue: Encodable { let url: String }
    private enum Keys: String, CodingKey { case type, text, image_url, video_url }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .text(let text):
            try c.encode("text", forKey: .type)
            try c.encode(text, forKey: .text)
        case .imageURL(let url):
            try c.encode("image_url", forKey: .type)
            try c.encode(URLValue(url: url), forKey: .image_url)
        case .videoURL(let url):
            try c.encode("video_url", forKey: .type)
            try c.encode(URLValue(url: url), forKey: .video_url)
        }
    }
}

struct ChatMessage: Encodable {
    enum Content: Encodable {
        case text(String)
        case parts([ContentPart])

        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .text(let text): try c.encode(text)
            case .parts(let parts): try c.encode(parts)
            }
        }
    }

    let role: String
    let content: Content
}

struct ChatRequestBody: Encodable {
    struct StreamOptions: Encodable { let include_usage: Bool }

    let model: String
    let messages: [ChatMessage]
    let temperature: Double
    let top_p: Double
    let seed: UInt64
    let max_completion_tokens: Int
    let max_tokens: Int?
    let stream: Bool?
    let stream_options: StreamOptions?
}

/// `data:<mime>;base64,<bytes>`.
public func dataURL(mimeType: String, bytes: some Collection<UInt8>) -> String {
    "data:\(mimeType);base64," + Data(bytes).base64EncodedString()
}

/// Turns pictures into what the settings send: shrunk to `imageSize` on the long side, encoded.
struct FrameEncoder {
    let settings: RemoteEngineSettings
    private let encoder: ImageEncoder

    init(settings: RemoteEngineSettings) {
        self.settings = settings
        encoder = ImageEncoder(format: settings.frameFormat == .png ? .png : .jpeg(quality: settings.jpegQuality))
    }

    var mimeType: String { settings.frameFormat == .png ? "image/png" : "image/jpeg" }

    /// The size an image is sent at: its long side at most `limit`, the short side rounded to keep
    /// the aspect (at least 1).
    static func sentSize(width: Int, height: Int, limit: Int?) -> (width: Int, height: Int) {
        guard let limit, max(width, height) > limit else { return (width, height) }
        let scale = Double(limit) / Double(max(width, height))
        return width >= height
            ? (limit, max(1, Int((Double(height) * scale).rounded())))
            : (max(1, Int((Double(width) * scale).rounded())), limit)
    }

    /// The encoded file of `image` at its sent size (Pillow's antialiased bicubic when shrinking,
    /// the bytes a Python client's `image.resize(size)` would send).
    func encode(_ image: RGBImage) throws -> [UInt8] {
        let size = Self.sentSize(width: image.width, height: image.height, limit: settings.imageSize)
        let sent = size == (image.width, image.height) ? image : pillowResize(image, width: size.width, height: size.height)
        return try encoder.encode(sent)
    }
}

/// The caption of a frame's `image_url` part: "Frame at 12.345 s:" (exact milliseconds,
/// truncated), or its 1-based position when the time is unknown.
func frameLabel(_ frame: VisionFrame, index: Int) -> String {
    frame.time.map { "Frame at \($0.secondsString) s:" } ?? "Frame \(index + 1):"
}

/// The user message's parts for `request`: media in order, then the prompt.
func contentParts(_ request: VisionRequest, settings: RemoteEngineSettings) throws -> [ContentPart] {
    let frames = FrameEncoder(settings: settings)
    var parts: [ContentPart] = []
    for item in request.media {
        switch item {
        case .image(let image):
            parts.append(.imageURL(dataURL(mimeType: frames.mimeType, bytes: try frames.encode(image))))
        case .video(let video):
            guard !video.isEmpty else { throw RequestBuildError("a video with no frames") }
            let images = try video.map { frame -> RGBImage in
                guard let image = frame.image else {
                    throw RequestBuildError(
                        "the frame at \(frame.time?.secondsString ?? "?") s has no pixels (a remote model needs images)")
                }
                return image
            }
            switch settings.transport {
            case .imageURL:
                for (i, (frame, image)) in zip(video, images).enumerated() {
                    parts.append(.text(frameLabel(frame, index: i)))
                    parts.append(.imageURL(dataURL(mimeType: frames.mimeType, bytes: try frames.encode(image))))
                }
            case .videoURL:
                // vLLM's frame list: one data URL whose payload is the frames' base64, comma-separated.
                // vLLM knows it only as video/jpeg; it opens each frame with PIL, which reads PNG too.
                let list = try images.map { Data(try frames.encode($0)).base64EncodedString() }.joined(separator: ",")
                parts.append(.videoURL("data:video/jpeg;base64," + list))
            }
        }
    }
    parts.append(.text(request.prompt))
    return parts
}

/// The JSON body for `request` (`stream` asks for server-sent events with a usage chunk).
func chatRequestBody(_ request: VisionRequest, settings: RemoteEngineSettings, stream: Bool) throws -> Data {
    var messages: [ChatMessage] = []
    if let system = request.system { messages.append(ChatMessage(role: "system", content: .text(system))) }
    messages.append(ChatMessage(role: "user", content: .parts(try contentParts(request, settings: settings))))
    let g = request.generation
    let body = ChatRequestBody(
        model: settings.model, messages: messages, temperature: decimal(g.temperature), top_p: decimal(g.topP), seed: g.seed,
        max_completion_tokens: g.maxNewTokens, max_tokens: settings.legacyMaxTokens ? g.maxNewTokens : nil,
        stream: stream ? true : nil, stream_options: stream ? .init(include_usage: true) : nil)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(body)
}

/// The Double with the Float's shortest decimal form: 0.7 goes out as `0.7`, as a Python client
/// sends it, not as `0.699999988079071`.
func decimal(_ value: Float) -> Double {
    Double("\(value)") ?? Double(value)
}

struct RequestBuildError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
