import DenseCore
import Engine
import Foundation
import TemporalCompress

/// What the teacher-forced sweep asks of a model: the in-process NVILA engine (frame tokens are
/// computed once and cached, so only `predict` runs per cell). Generated mode asks any
/// `VisionLanguageModel` instead (`NIAHRunner.runGenerated`), remote servers included.
protocol NeedleModel {
    /// Recorded in `run.json` (and compared on resume).
    var identity: ModelIdentity { get }
    /// Rows and width of one frame's projected tokens: `[S, H]`.
    var frameTokenShape: [Int] { get }
    /// Positions the model was trained for.
    var contextLength: Int { get }
    /// Projected tokens of one picture prepared as `mode` prepares haystack frames. - Returns: `[S, H]`
    func frameTokens(_ image: RGBImage, mode: NeedleMode) -> Tensor
    /// The needle image as `mode` shows it, given the haystack's display size. - Returns: `[S, H]`
    func needleTokens(_ image: RGBImage, mode: NeedleMode, frameSize: (width: Int, height: Int)) -> Tensor
    func tokenize(_ text: String) -> [Int]
    func decode(_ ids: [Int]) -> String
    /// Prompt rows of a cell with `frames` frames (needle included) and `question`, before the answer.
    func promptLength(frames: Int, question: String, mode: NeedleMode) throws -> Int
    /// Bytes a teacher-forced pass over `rows` positions needs at its peak.
    func peakBytes(rows: Int) -> Int
    /// The argmax ids at the answer's positions with the answer teacher-forced after the prompt:
    /// `pred[:, L-1 : L+k-1]` of the references. - Parameter frames: per frame `[S, H]`, in order
    func predict(frames: [Tensor], question: String, answer: [Int], mode: NeedleMode) throws -> [Int]
}

/// Which model produced a run's numbers. A model behind the `VisionLanguageModel` seam (generated
/// mode) states only its name and identity; the checkpoint's shapes are recorded when the
/// in-process engine answers teacher-forced.
public struct ModelIdentity: Codable, Equatable, Sendable {
    /// What the user passed as `--model` (a folder or a Hub id), or the seam model's display name.
    public var name: String
    /// Teacher-forced: sha256 over the checkpoint's config and weight files' names and sizes, and
    /// config.json. Generated: the seam model's `identity` (the checkpoint's content identity and
    /// precision, or the remote server's model name).
    public var fingerprint: String
    public var imageMode: String?
    public var videoEncoder: String?
    public var tokensPerFrame: Int?
    public var hiddenSize: Int?
    public var contextLength: Int?

    public init(name: String, fingerprint: String, imageMode: String? = nil, videoEncoder: String? = nil, tokensPerFrame: Int? = nil,
                hiddenSize: Int? = nil, contextLength: Int? = nil) {
        self.name = name
        self.fingerprint = fingerprint
        self.imageMode = imageMode
        self.videoEncoder = videoEncoder
        self.tokensPerFrame = tokensPerFrame
        self.hiddenSize = hiddenSize
        self.contextLength = contextLength
    }
}

/// The reference harness's `qwen2` prompt template (`prompt_templates["qwen2"]`), used around the
/// flattened frames in embedding mode.
enum ReferenceTemplate {
    static let preprompt = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    static let postprompt = "<|im_end|>\n<|im_start|>assistant\n"
}

/// NVILA in process.
struct NVILANeedleModel: NeedleModel {
    let model: NVILAModel
    let identity: ModelIdentity
    /// Projected tokens per frame (S).
    let tokensPerFrame: Int

    init(model: NVILAModel, name: String, directory: String) {
        self.model = model
        let tokens = model.projector.tokenCount(gridSide: model.tower.config.gridSide)
        tokensPerFrame = tokens
        identity = ModelIdentity(
            name: name, fingerprint: checkpointFingerprint(directory), imageMode: "\(model.config.imageMode)",
            videoEncoder: "\(model.config.videoEncoder)", tokensPerFrame: tokens, hiddenSize: model.llm.config.hiddenSize,
            contextLength: model.llm.config.maxPositionEmbeddings)
    }

    var frameTokenShape: [Int] { [tokensPerFrame, model.llm.config.hiddenSize] }
    var contextLength: Int { model.llm.config.maxPositionEmbeddings }

    func frameTokens(_ image: RGBImage, mode: NeedleMode) -> Tensor {
        switch mode {
        // produce_haystack_embedding.py: image_aspect_ratio = "pad", encode_images(block_sizes=None).
        case .embedding: return model.projectFrame(model.frameFeatures(model.padToSquare(image)))
        case .pixel: return model.projectFrame(model.frameFeatures(image))
        }
    }

    func needleTokens(_ image: RGBImage, mode: NeedleMode, frameSize: (width: Int, height: Int)) -> Tensor {
        switch mode {
        // produce_needle_embedding.py: the image alone, padded to a square like the frames.
        case .embedding: return frameTokens(image, mode: .embedding)
        // A frame of the stream: the decoder's size first, then the checkpoint's frame path.
        case .pixel: return frameTokens(needleFrame(image, frameSize: frameSize), mode: .pixel)
        }
    }

    func tokenize(_ text: String) -> [Int] { model.tokenizer.encode(text) }
    func decode(_ ids: [Int]) -> String { model.tokenizer.decode(ids) }

    func promptLength(frames: Int, question: String, mode: NeedleMode) throws -> Int {
        let S = tokensPerFrame
        switch mode {
        case .embedding:
            return tokenize(ReferenceTemplate.preprompt).count + frames * S + tokenize(question).count
                + tokenize(ReferenceTemplate.postprompt).count
        case .pixel:
            let ids = model.promptIDs(userMessage: model.userMessage(text: question, media: [.videoTokens([])]))
            let text = ids.count - 1  // the <vila/video> placeholder is replaced
            func count(_ s: String?) -> Int { s.map { tokenize($0).count } ?? 0 }
            switch model.config.videoEncoder {
            case .basic(let start, let end):
                return text + frames * (S + count(start) + count(end))
            case .tsp(let sizes, let start, let end, let separator):
                let wrap = count(start) + count(end)
                return text + sizes.reduce(0) { sum, size in
                    let groups = (frames + size.t - 1) / size.t
                    return sum + groups * (S / (size.h * size.w) + wrap) + count(separator)
                }
            }
        }
    }

    /// KV cache (2 × layers × rows × kv width), the attention kernel's score matrix (rows × rows,
    /// one head at a time, `DenseCore.attention`), the hidden state, q/k/v/o and the MLP's
    /// intermediate tensors per row, the prompt embeddings and a few rows of logits, all Float32.
    func peakBytes(rows: Int) -> Int {
        let c = model.llm.config
        let kv = 2 * c.layers * rows * c.kvHeads * c.headDim
        let perRow = 3 * c.hiddenSize + (c.heads + 2 * c.kvHeads) * c.headDim + c.heads * c.headDim + 3 * c.intermediateSize
        let (r, _) = rows.multipliedReportingOverflow(by: rows)
        return 4 * (kv + r + rows * perRow + 8 * model.llm.vocabularyRows)
    }

    func predict(frames: [Tensor], question: String, answer: [Int], mode: NeedleMode) throws -> [Int] {
        try teacherForcedArgmax(prompt: prompt(frames: frames, question: question, mode: mode), answer: answer)
    }

    /// A cell's prompt embeddings. - Returns: `[L, H]`, L = `promptLength`
    func prompt(frames: [Tensor], question: String, mode: NeedleMode) throws -> Tensor {
        switch mode {
        case .embedding:
            // [pre | frames flattened | question | post], each text part tokenized on its own.
            return concatenateRows(
                [try model.llm.embed(tokenize(ReferenceTemplate.preprompt))] + frames
                    + [try model.llm.embed(tokenize(question)), try model.llm.embed(tokenize(ReferenceTemplate.postprompt))])
        case .pixel:
            return try model.promptEmbeddings(text: question, media: [.videoTokens(frames)])
        }
    }

    /// Argmax ids of the logits at positions L-1 … L+k-2 of `[prompt | answer]`: the prompt's
    /// last position, then every answer token but the last through the KV cache.
    func teacherForcedArgmax(prompt: Tensor, answer: [Int]) throws -> [Int] {
        var cache = KVCache(config: model.llm.config, capacity: prompt.shape[0] + answer.count)
        var logits = model.llm.forward(prompt, cache: &cache)  // [1, V]
        var predicted = [argmaxRows(logits)[0]]
        if answer.count > 1 {
            logits = model.llm.forward(try model.llm.embed(Array(answer.dropLast())), cache: &cache, logits: .all)  // [k-1, V]
            predicted += argmaxRows(logits)
        }
        return predicted
    }
}

/// The needle image as a frame of the haystack's stream (pixel mode, both answer modes): resized
/// to the video's display size with Pillow's resampling, as a decoder would give it.
func needleFrame(_ image: RGBImage, frameSize: (width: Int, height: Int)) -> RGBImage {
    image.width == frameSize.width && image.height == frameSize.height
        ? image : pillowResize(image, width: frameSize.width, height: frameSize.height)
}

/// Rows of several `[n_i, H]` tensors stacked. - Returns: `[Σ n_i, H]`
func concatenateRows(_ parts: [Tensor]) -> Tensor {
    let H = parts[0].shape[1]
    var scalars: [Float] = []
    scalars.reserveCapacity(parts.reduce(0) { $0 + $1.count })
    for p in parts { scalars += p.scalars }
    return Tensor(shape: [scalars.count / H, H], scalars: scalars)
}

/// sha256 of a checkpoint's file list (relative path and size, links followed) plus every config.json's bytes:
/// cheap on multi-gigabyte weights, and changes with any re-export.
func checkpointFingerprint(_ directory: String) -> String {
    var hasher = SHA256Hasher()
    let fm = FileManager.default
    let files = (fm.enumerator(atPath: directory)?.allObjects as? [String] ?? []).sorted()
    for file in files {
        // Hugging Face cache snapshots hold symbolic links to blobs: follow them.
        let full = ((directory as NSString).appendingPathComponent(file) as NSString).resolvingSymlinksInPath
        guard let attributes = try? fm.attributesOfItem(atPath: full), attributes[.type] as? FileAttributeType == .typeRegular else { continue }
        hasher.update("\(file)\t\((attributes[.size] as? NSNumber)?.intValue ?? 0)\n")
        if file.hasSuffix("config.json"), let data = fm.contents(atPath: full) { hasher.update(data) }
    }
    return hasher.hex()
}
