import DenseCore
import Foundation
import Logging
import ModelAPI

/// The NVILA engine behind the `VisionLanguageModel` seam: prompts are built as the reference
/// builds them (`promptEmbeddings`), answers decoded greedily or sampled by `generate`, and several
/// requests decoded as one batch (the same ids as one at a time).
///
/// Video frames that carry `prepared` projected tokens (`[S, H]`, `projectFrame`'s output: the
/// caption job's frame cache) skip the tower; frames with only pixels go through it.
public final class NativeVisionModel: VisionLanguageModel {
    public let model: NVILAModel
    public let identity: String
    public let displayName: String
    /// Requests decoded together by `answer(_ requests:)`.
    public let concurrency: Int
    /// Runs the model's work one request (or batch) at a time, off Swift's cooperative threads:
    /// the engine's kernels keep every core busy.
    private let lane = DispatchQueue(label: "densecap.native-model")
    /// Where a prompt longer than the model's trained positions is reported.
    private let logger: Logger?

    public init(model: NVILAModel, identity: String, displayName: String, batch: Int = 4, logger: Logger? = nil) {
        self.model = model
        self.identity = identity
        self.displayName = displayName
        self.concurrency = max(1, batch)
        self.logger = logger
    }

    public var defaultVideoFrames: Int { model.config.numVideoFrames }

    /// The engine's media for a request's. Frames with prepared tokens keep them; others are
    /// projected here (or tiled when `videoDetail` > 1).
    func media(_ request: VisionRequest) throws -> [Media] {
        try request.media.map { item in
            switch item {
            case .image(let image):
                return .image(image)
            case .video(let frames):
                guard !frames.isEmpty else { throw MediaError.emptyVideo }
                if frames.allSatisfy({ $0.prepared is Tensor }) {
                    return .videoTokens(frames.map { $0.prepared as! Tensor })
                }
                let images = try frames.map { frame -> RGBImage in
                    guard let image = frame.image else { throw VisionModelError.frameWithoutPixels(time: frame.time) }
                    return image
                }
                let tiles = request.videoDetail ?? 1
                return tiles > 1 ? .detailedVideo(images, maxTiles: tiles) : .video(images)
            }
        }
    }

    /// A request's prompt embeddings (`[L, H]`), with a warning when L plus the answer's budget
    /// goes past the positions the model was trained for (computed anyway, as transformers does).
    func prompt(_ request: VisionRequest) throws -> Tensor {
        let prompt = try model.promptEmbeddings(text: request.prompt, media: try media(request), system: request.system)
        let budget = request.generation.maxNewTokens
        if model.llm.exceedsContext(promptLength: prompt.shape[0], maxNewTokens: budget) {
            logger?.warning("\(prompt.shape[0]) prompt embeddings + \(budget) new tokens exceed the \(model.llm.config.maxPositionEmbeddings) positions the model was trained for; answers may degrade")
        }
        return prompt
    }

    func options(_ g: GenerationParameters) -> GenerationOptions {
        GenerationOptions(maxNewTokens: g.maxNewTokens, temperature: g.temperature, topP: g.topP, seed: g.seed,
                          stopTokens: model.stopTokens)
    }

    /// The answer text VILA gives for generated ids: decoded skipping special tokens, stripped.
    func answer(ids: [Int], promptTokens: Int, generation: GenerationParameters) -> VisionAnswer {
        let stopped = ids.last.map { model.stopTokens.contains($0) } ?? false
        return VisionAnswer(
            text: model.tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines),
            finishReason: !stopped && ids.count >= generation.maxNewTokens ? .length : .stop,
            promptTokens: promptTokens, completionTokens: ids.count, model: displayName)
    }

    public func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        try await onLane {
            let prompt = try self.prompt(request)
            var stream = TrimmedStream(decoder: self.model.tokenizer.streamingDecoder(skipSpecialTokens: true))
            let ids = try self.model.llm.generate(prompt: prompt, options: self.options(request.generation),
                                                  allowed: self.model.llm.vocabularyRows) { id in
                if let onText { onText(stream.push(id)) }
                return true
            }
            if let onText { onText(stream.finish()) }
            return self.answer(ids: ids, promptTokens: prompt.shape[0], generation: request.generation)
        }
    }

    /// Requests with the same sampling settings are decoded as one batch; the rest one by one.
    public func answer(_ requests: [VisionRequest]) async -> [Result<VisionAnswer, any Error>] {
        var results = [Result<VisionAnswer, any Error>?](repeating: nil, count: requests.count)
        var prompts: [Int: Tensor] = [:]
        for (i, r) in requests.enumerated() {
            do {
                prompts[i] = try await onLane { try self.prompt(r) }
            } catch { results[i] = .failure(error) }
        }
        let groups = Dictionary(grouping: prompts.keys.sorted()) { requests[$0].generation }
        for (generation, members) in groups.sorted(by: { $0.value[0] < $1.value[0] }) {
            for start in stride(from: 0, to: members.count, by: concurrency) {
                let batch = Array(members[start..<min(members.count, start + concurrency)])
                let batchPrompts = batch.map { prompts[$0]! }
                do {
                    let ids = try await onLane {
                        try self.model.llm.generateBatch(prompts: batchPrompts, options: self.options(generation),
                                                         allowed: self.model.llm.vocabularyRows, maxBatch: batch.count)
                    }
                    for (k, i) in batch.enumerated() {
                        results[i] = .success(answer(ids: ids[k], promptTokens: prompts[i]!.shape[0], generation: generation))
                    }
                } catch {
                    for i in batch { results[i] = .failure(error) }
                }
            }
        }
        return results.map { $0! }
    }

    private func onLane<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            lane.async { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// What went wrong between a request and a model, before generation.
public enum VisionModelError: Error, CustomStringConvertible, Equatable {
    case frameWithoutPixels(time: MediaTime?)

    public var description: String {
        switch self {
        case .frameWithoutPixels(let t): return "a video frame\(t.map { " at \($0.secondsString) s" } ?? "") has neither pixels nor prepared tokens"
        }
    }
}

/// Streamed text whose concatenation equals the stripped answer: leading whitespace is dropped,
/// trailing whitespace held until more text follows it.
struct TrimmedStream {
    var decoder: StreamingDecoder
    private var started = false
    private var held = ""

    init(decoder: StreamingDecoder) { self.decoder = decoder }

    mutating func push(_ id: Int) -> String { emit(decoder.push(id)) }

    /// The rest; trailing whitespace is dropped.
    mutating func finish() -> String {
        let rest = emit(decoder.finish())
        held = ""
        return rest
    }

    private mutating func emit(_ piece: String) -> String {
        var text = piece
        if !started {
            text = String(text.drop { $0.isWhitespace || $0.isNewline })
            if text.isEmpty { return "" }
            started = true
        }
        let body = text.reversed().drop { $0.isWhitespace || $0.isNewline }
        let trailing = String(text.suffix(text.count - body.count))
        let out = held + String(body.reversed())
        if body.isEmpty {
            held += trailing
            return ""
        }
        held = trailing
        return out
    }
}
