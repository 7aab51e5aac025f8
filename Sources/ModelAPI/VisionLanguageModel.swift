import DenseCore
import Foundation

// The seam between densecap's jobs and a vision-language model. The caption job, `ask`,
// `describe`, the NIAH harness and `serve` speak only this; the native NVILA engine
// (`Engine.NativeVisionModel`) and the OpenAI-compatible client (`RemoteEngine`) implement it.

/// One frame of a video handed to a model: the time it shows, and its pixels or a form the model
/// prepared earlier (the native engine's projected tokens from its frame cache). A model uses
/// `prepared` when it knows the type, the image otherwise.
public struct VisionFrame: @unchecked Sendable {
    /// Presentation time in the source video (stated to remote models in the prompt).
    public var time: MediaTime?
    public var image: RGBImage?
    /// Model-specific precomputed form (the native engine's `[S, H]` projected tokens).
    public var prepared: Any?

    public init(time: MediaTime?, image: RGBImage?, prepared: Any? = nil) {
        self.time = time
        self.image = image
        self.prepared = prepared
    }
}

/// What a prompt shows the model, in order.
public enum VisionMedia: Sendable {
    /// A still picture: tiled as the model tiles single images.
    case image(RGBImage)
    /// One video's frames in time order.
    case video([VisionFrame])
}

/// The sampling settings every request carries (and every remote request sends).
public struct GenerationParameters: Codable, Equatable, Hashable, Sendable {
    public var maxNewTokens: Int
    /// 0 is greedy.
    public var temperature: Float
    public var topP: Float
    public var seed: UInt64

    public init(maxNewTokens: Int = 256, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }
}

/// One question: media, prompt, optional system message and sampling.
public struct VisionRequest: Sendable {
    public var media: [VisionMedia]
    public var prompt: String
    public var system: String?
    public var generation: GenerationParameters
    /// Tiles per video frame (the reference's `video_max_tiles`); nil: the model's own default.
    /// Models that cannot tile frames ignore it.
    public var videoDetail: Int?

    public init(media: [VisionMedia], prompt: String, system: String? = nil, generation: GenerationParameters = .init(),
                videoDetail: Int? = nil) {
        self.media = media
        self.prompt = prompt
        self.system = system
        self.generation = generation
        self.videoDetail = videoDetail
    }
}

/// Why generation ended, as the OpenAI API says it.
public enum FinishReason: String, Codable, Equatable, Sendable {
    /// A stop token (or the server's own stop).
    case stop
    /// `maxNewTokens` reached: the text is truncated.
    case length
}

/// A model's answer with its usage.
public struct VisionAnswer: Codable, Equatable, Sendable {
    public var text: String
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var completionTokens: Int
    /// The model that answered, as it names itself (a remote server's `model` field).
    public var model: String

    public init(text: String, finishReason: FinishReason, promptTokens: Int, completionTokens: Int, model: String) {
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.model = model
    }
}

/// A vision-language model, local or behind an API.
public protocol VisionLanguageModel: AnyObject, Sendable {
    /// What outputs record and resume compares: a checkpoint's content identity (and precision),
    /// or a remote endpoint's model name.
    var identity: String { get }
    /// The name to show and record as "model".
    var displayName: String { get }
    /// Frames per video when the caller does not choose (a checkpoint's `num_video_frames`).
    var defaultVideoFrames: Int { get }
    /// Requests worth answering together: the native engine's decode batch, a remote client's
    /// requests in flight.
    var concurrency: Int { get }

    /// One answer; `onText` receives the text as it is generated (pieces whose concatenation is
    /// the answer), when the model can stream.
    func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer

    /// Answers in request order, each its own success or failure; at most `concurrency` at once.
    func answer(_ requests: [VisionRequest]) async -> [Result<VisionAnswer, any Error>]
}

extension VisionLanguageModel {
    public func answer(_ request: VisionRequest) async throws -> VisionAnswer {
        try await answer(request, onText: nil)
    }

    /// Requests `concurrency` at a time through `answer(_:onText:)`.
    public func answer(_ requests: [VisionRequest]) async -> [Result<VisionAnswer, any Error>] {
        await boundedMap(requests, limit: concurrency) { request in
            do { return .success(try await self.answer(request, onText: nil)) } catch { return .failure(error) }
        }
    }
}

/// `transform` over `items` with at most `limit` running at once; results in input order.
public func boundedMap<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ transform: @escaping @Sendable (T) async -> R) async -> [R] {
    await withTaskGroup(of: (Int, R).self) { group in
        var results = [R?](repeating: nil, count: items.count)
        var next = 0
        for _ in 0..<min(max(1, limit), items.count) {
            let i = next
            group.addTask { (i, await transform(items[i])) }
            next += 1
        }
        for await (i, r) in group {
            results[i] = r
            if next < items.count {
                let j = next
                group.addTask { (j, await transform(items[j])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}
