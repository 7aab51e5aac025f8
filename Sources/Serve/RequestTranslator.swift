import DenseCore
import FrameSampler
import Foundation
import Logging
import ModelAPI
import TemporalCompress
import VideoIO

#if canImport(Glibc)
    import Glibc
#endif

/// A chat request as the model sees it, and how to answer it.
struct TranslatedRequest: Sendable {
    var vision: VisionRequest
    var stream: Bool
    var includeUsage: Bool
    /// Pictures the request shows (images plus video frames).
    var pictures: Int
}

/// Turns an OpenAI chat request into the prompt the CLI would build: the user's text parts joined
/// (by newlines) as the prompt, images and videos in order as media, system messages as the
/// system prompt. Sampling fields absent from the request take the CLI's defaults (greedy, 256
/// new tokens).
struct RequestTranslator: Sendable {
    let settings: ServeSettings
    let served: ServedModel
    let logger: Logger

    static let defaultMaxTokens = 256

    func translate(_ r: ChatCompletionRequest) throws -> TranslatedRequest {
        if let name = r.model, !name.isEmpty, name != served.name { throw APIError.unknownModel(name, served: served.name) }
        if let n = r.n, n != 1 { throw APIError.unsupported("n = \(n): this server returns one choice per request", param: "n") }
        if let stop = r.stop, !stop.values.isEmpty {
            throw APIError.unsupported("stop sequences are not supported (the model stops at its own end-of-turn token)", param: "stop")
        }
        let maxTokens = r.maxCompletionTokens ?? r.maxTokens ?? Self.defaultMaxTokens
        guard maxTokens >= 1 else {
            throw APIError.malformed("max_completion_tokens must be at least 1", param: r.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens")
        }
        let temperature = r.temperature ?? 0
        guard temperature >= 0 && temperature <= 2 && temperature.isFinite else { throw APIError.malformed("temperature must be in [0, 2]", param: "temperature") }
        let topP = r.topP ?? 1
        guard topP > 0 && topP <= 1 else { throw APIError.malformed("top_p must be in (0, 1]", param: "top_p") }
        let generation = GenerationParameters(maxNewTokens: maxTokens, temperature: temperature, topP: topP,
                                              seed: UInt64(bitPattern: r.seed ?? 0))

        guard !r.messages.isEmpty else { throw APIError.malformed("messages must not be empty", param: "messages") }
        var system: [String] = []
        var texts: [String] = []
        var media: [VisionMedia] = []
        var pictures = 0
        for (m, message) in r.messages.enumerated() {
            let param = "messages[\(m)]"
            switch message.role {
            case "system", "developer":
                switch message.content {
                case .text(let text)?: system.append(text)
                case .parts(let parts)?:
                    for (p, part) in parts.enumerated() {
                        guard part.type == "text", let text = part.text else {
                            throw APIError.unsupported("a system message holds text only", param: "\(param).content[\(p)]")
                        }
                        system.append(text)
                    }
                case nil: break
                }
            case "user":
                switch message.content {
                case .text(let text)?: texts.append(text)
                case .parts(let parts)?:
                    for (p, part) in parts.enumerated() {
                        let partParam = "\(param).content[\(p)]"
                        switch part.type {
                        case "text":
                            guard let text = part.text else { throw APIError.malformed("\(partParam): a text part needs 'text'", param: partParam) }
                            texts.append(text)
                        case "image_url":
                            guard let url = part.imageURL?.url else {
                                throw APIError.malformed("\(partParam): an image_url part needs 'image_url.url'", param: partParam)
                            }
                            try count(&pictures, adding: 1, param: partParam)
                            media.append(.image(try image(url, param: "\(partParam).image_url")))
                        case "video_url":
                            guard let url = part.videoURL?.url else {
                                throw APIError.malformed("\(partParam): a video_url part needs 'video_url.url'", param: partParam)
                            }
                            let frames = try video(url, frames: part.frames, fps: part.fps, already: pictures, param: partParam)
                            try count(&pictures, adding: frames.count, param: partParam)
                            media.append(.video(frames))
                        default:
                            throw APIError.unsupported("\(partParam): content type '\(part.type)' is not supported (text, image_url, video_url)",
                                                       param: "\(partParam).type")
                        }
                    }
                case nil: throw APIError.malformed("\(param): a user message needs content", param: "\(param).content")
                }
            case "assistant", "tool", "function":
                throw APIError.unsupported("\(param): role '\(message.role)': this server answers single-turn requests (system and user messages)",
                                           param: "\(param).role")
            default:
                throw APIError.malformed("\(param): unknown role '\(message.role)'", param: "\(param).role")
            }
        }
        guard !texts.isEmpty || !media.isEmpty else { throw APIError.malformed("no user message with content", param: "messages") }
        let vision = VisionRequest(media: media, prompt: texts.joined(separator: "\n"),
                                   system: system.isEmpty ? nil : system.joined(separator: "\n"),
                                   generation: generation, videoDetail: served.videoDetail)
        return TranslatedRequest(vision: vision, stream: r.stream ?? false, includeUsage: r.streamOptions?.includeUsage ?? false,
                                 pictures: pictures)
    }

    private func count(_ pictures: inout Int, adding n: Int, param: String) throws {
        pictures += n
        if pictures > settings.maxFrames {
            throw APIError.tooLarge("\(param): the request shows more than \(settings.maxFrames) pictures (images plus video frames)",
                                    param: param, code: "too_many_frames")
        }
    }

    // MARK: - Images

    private func image(_ url: String, param: String) throws -> RGBImage {
        if url.hasPrefix("data:") {
            let data = try DataURL(url, param: param)
            guard data.type == "image" else {
                throw APIError.unsupported("\(param): an image_url holds image/jpeg, image/png or image/webp, not \(data.type)/\(data.subtype)", param: param)
            }
            guard let encoding = ImageEncoding(mediaSubtype: data.subtype) else {
                throw APIError.unsupported("\(param): image/\(data.subtype) is not supported (jpeg, png, webp)", param: param)
            }
            guard data.payloads.count == 1, let bytes = Data(base64Encoded: String(data.payloads[0])) else {
                throw APIError.undecodable("\(param): the data URL's payload is not base64", param: param)
            }
            return try decode(bytes, encoding: encoding, param: param)
        }
        let path = try allowedFile(url, param: param)
        do {
            return try VideoReader.readImage(path: path)
        } catch let error as VideoError {
            throw APIError.undecodable("\(param): \(error.reason)", param: param)
        }
    }

    /// Decodes with the encoding the bytes themselves announce (as Pillow, which vLLM and SGLang
    /// use, opens a picture), the label's when they announce none of the three: clients label
    /// every frame of a list `video/jpeg` whatever it holds.
    private func decode(_ bytes: Data, encoding: ImageEncoding, param: String) throws -> RGBImage {
        do {
            return try VideoReader.decodeImage(bytes, encoding: ImageEncoding(sniffing: bytes) ?? encoding, name: param)
        } catch let error as VideoError {
            throw APIError.undecodable(error.description, param: param)
        }
    }

    // MARK: - Videos

    /// A frame list (`data:video/jpeg;base64,<frame>,<frame>,…`, vLLM's form) or a video file
    /// under an allowed folder, sampled as VILA's server does (`frames` uniform, or at `fps`
    /// keeping the first `frames`).
    private func video(_ url: String, frames: Int?, fps: Double?, already: Int, param: String) throws -> [VisionFrame] {
        if let frames, frames < 1 { throw APIError.malformed("\(param).frames must be at least 1", param: "\(param).frames") }
        let limit = settings.maxFrames - already
        let urlParam = "\(param).video_url"
        if url.hasPrefix("data:") {
            let data = try DataURL(url, param: urlParam)
            guard data.type == "video", let encoding = ImageEncoding(mediaSubtype: data.subtype) else {
                throw APIError.unsupported(
                    "\(urlParam): a video data URL is a frame list, data:video/jpeg;base64,<frame>,<frame>,… (or video/png, video/webp); send a video file as a file:// URL under an allowed folder",
                    param: urlParam)
            }
            guard data.payloads.count <= limit else {
                throw APIError.tooLarge("\(urlParam): \(data.payloads.count) frames exceed the limit of \(settings.maxFrames) pictures",
                                        param: urlParam, code: "too_many_frames")
            }
            return try data.payloads.enumerated().map { i, payload in
                guard let bytes = Data(base64Encoded: String(payload)) else {
                    throw APIError.undecodable("\(urlParam): frame \(i) is not base64", param: urlParam)
                }
                return VisionFrame(time: nil, image: try decode(bytes, encoding: encoding, param: "\(urlParam) frame \(i)"))
            }
        }
        let path = try allowedFile(url, param: urlParam)
        if let frames, frames > limit {
            throw APIError.tooLarge("\(param).frames = \(frames) exceeds the limit of \(settings.maxFrames) pictures",
                                    param: "\(param).frames", code: "too_many_frames")
        }
        let policy: SamplingPolicy
        if let fps {
            guard fps > 0, let rate = Rational(parsing: "\(fps)"), rate > .zero else {
                throw APIError.malformed("\(param).fps must be a positive number", param: "\(param).fps")
            }
            policy = .rate(rate)
        } else {
            policy = .count(frames ?? served.model.defaultVideoFrames)
        }
        // VILA clamps a rate to the first `frames` samples; without `frames` the limit is the server's.
        let keep = fps != nil ? (frames ?? limit + 1) : .max
        do {
            let reader = try VideoReader(path: path)
            let sampler = try FrameSampler(reader: reader, policy: policy, logger: logger)
            var out: [VisionFrame] = []
            while out.count < keep, let sample = try sampler.next() {
                if out.count == limit {
                    throw APIError.tooLarge("\(urlParam): sampling at \(fps ?? 0) fps gives more than \(limit) frames; set 'frames' or a lower 'fps'",
                                            param: urlParam, code: "too_many_frames")
                }
                let frame = try reader.image(from: sample.frame, size: OutputSize())
                let image = served.videoTile.map { pillowResize(frame, width: $0, height: $0) } ?? frame
                out.append(VisionFrame(time: sample.time, image: image))
            }
            guard !out.isEmpty else { throw APIError.undecodable("\(urlParam): no frame could be decoded", param: urlParam) }
            return out
        } catch let error as VideoError {
            throw APIError.undecodable("\(urlParam): \(error.reason)", param: urlParam)
        }
    }

    // MARK: - Files

    /// The real path a `file://` URL names, when it lies inside an allowed folder.
    private func allowedFile(_ url: String, param: String) throws -> String {
        guard url.lowercased().hasPrefix("file://") else {
            let scheme = url.split(separator: ":", maxSplits: 1).first.map(String.init) ?? url
            throw APIError.unsupported("\(param): \(scheme) URLs are not fetched; send a data URL, or a file:// URL under a folder the server allows",
                                       param: param)
        }
        guard let parsed = URL(string: url), parsed.host == nil || parsed.host == "" || parsed.host == "localhost" else {
            throw APIError.malformed("\(param): not a local file URL", param: param)
        }
        guard !settings.allowedFolders.isEmpty else {
            throw APIError.forbiddenFile("\(param): file URLs are refused: the server allows no folder (--allow-folder)", param: param)
        }
        let path = parsed.path
        let roots = settings.allowedFolders.flatMap { folder in
            [realPath(folder), URL(fileURLWithPath: folder).standardized.path].compactMap { $0 }.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        }
        func inside(_ p: String) -> Bool { roots.contains { p.hasPrefix($0) } }
        // A missing file is reported as missing only inside the folders: outside them nothing is told.
        guard let real = realPath(path) else {
            if inside(URL(fileURLWithPath: path).standardized.path) { throw APIError.malformed("\(param): \(path): no such file", param: param) }
            throw APIError.forbiddenFile("\(param): \(path) is outside the folders the server allows", param: param)
        }
        guard inside(real) else { throw APIError.forbiddenFile("\(param): \(path) is outside the folders the server allows", param: param) }
        return real
    }

    private func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// `data:<type>/<subtype>[;params];base64,<payload>[,<payload>…]` — several payloads make vLLM's
/// video frame list.
struct DataURL {
    var type: String
    var subtype: String
    var payloads: [Substring]

    init(_ url: String, param: String) throws {
        guard let comma = url.firstIndex(of: ",") else { throw APIError.malformed("\(param): a data URL needs a ',' before its payload", param: param) }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        let fields = header.split(separator: ";")
        guard fields.last == "base64", let mime = fields.first, let slash = mime.firstIndex(of: "/") else {
            throw APIError.malformed("\(param): expected data:<type>/<subtype>;base64,…", param: param)
        }
        type = String(mime[..<slash])
        subtype = String(mime[mime.index(after: slash)...])
        payloads = url[url.index(after: comma)...].split(separator: ",", omittingEmptySubsequences: false)
    }
}
