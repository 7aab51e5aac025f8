import DenseCore
import Foundation
import Logging
import TemporalCompress

// NVILA: SigLIP tower → projector → Qwen2, with the scale-then-compress steps of
// TemporalCompress between them. Follows NVlabs/VILA at b760c34: llava/model/llava_arch.py
// (encode_images, merge_features_for_dynamic_s2, _embed, generate_content), llava/mm_utils.py
// (process_image), llava/model/encoders/{image,video}/basic.py and video/tsp.py (nvila-spec §2–§6).

/// The media a prompt refers to, in the order of their placeholders.
public enum Media: Sendable {
    /// One image: `<image>`.
    case image(RGBImage)
    /// Frames of one video, in time order: `<vila/video>`.
    case video([RGBImage])
    /// One video as tower features already computed per frame (`[N, C]` each), so a pipeline
    /// that ran the tower for boundary detection does not run it again: `<vila/video>`.
    case videoFeatures([Tensor])
    /// One video as projected frames (`projectFrame` output, `[S, H]` each): `<vila/video>`.
    case videoTokens([Tensor])
    /// Frames of one video, each tiled with up to `maxTiles` tiles (the "detail" knob,
    /// `video_max_tiles`): `<vila/video>`.
    case detailedVideo([RGBImage], maxTiles: Int)
}

/// Problems with a prompt's media, named for the user.
public enum MediaError: Error, CustomStringConvertible, Equatable {
    case placeholderMismatch(placeholders: Int, media: Int)
    case emptyVideo
    case missingToken(String)
    case detailWithTemporalPooling

    public var description: String {
        switch self {
        case .placeholderMismatch(let p, let m): return "the prompt has \(p) media placeholders for \(m) media items"
        case .emptyVideo: return "a video with no frames"
        case .missingToken(let t): return "the tokenizer has no \(t) token"
        case .detailWithTemporalPooling: return "per-frame tiles (--detail) need the Basic video encoder; this checkpoint pools frames (TSP)"
        }
    }
}

/// A loaded NVILA checkpoint: immutable, shareable across threads.
public final class NVILAModel: Sendable {
    public let config: NVILAConfig
    public let llm: Qwen2Model
    public let tokenizer: BPETokenizer
    public let tower: SiglipVisionModel
    public let projector: MultimodalProjector
    public let imageTokenID: Int
    public let videoTokenID: Int

    public init(config: NVILAConfig, llm: Qwen2Model, tokenizer: BPETokenizer, tower: SiglipVisionModel, projector: MultimodalProjector) throws {
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        self.tower = tower
        self.projector = projector
        guard let image = tokenizer.id(forToken: "<image>") else { throw MediaError.missingToken("<image>") }
        guard let video = tokenizer.id(forToken: "<vila/video>") else { throw MediaError.missingToken("<vila/video>") }
        imageTokenID = image
        videoTokenID = video
        let expected = (config.dynamicS2 ? config.scales.count : 1) * tower.config.hiddenSize
        guard projector.inputChannels == expected else {
            throw ConfigError(key: "mm_hidden_size", value: "\(projector.inputChannels)",
                              reason: "the tower gives \(tower.config.hiddenSize) channels\(config.dynamicS2 ? " × \(config.scales.count) scales" : ""), so \(expected) are needed")
        }
        if case .tsp(let sizes, _, _, _) = config.videoEncoder {
            let tokens = projector.tokenCount(gridSide: tower.config.gridSide)
            for size in sizes {
                do {
                    try size.validate(tokensPerFrame: tokens)
                } catch {
                    throw ConfigError(key: "video_encoder.pool_sizes", value: "[\(size.t), \(size.h), \(size.w)]",
                                      reason: "\(error) (\(tokens) tokens per frame)")
                }
            }
        }
        guard projector.outputChannels == llm.config.hiddenSize else {
            throw ConfigError(key: "hidden_size", value: "\(projector.outputChannels)",
                              reason: "the projector must output the LLM width \(llm.config.hiddenSize)")
        }
    }

    /// The tower's input side (448).
    public var tileSize: Int { tower.config.imageSize }

    // MARK: - Pixels

    /// A frame or a multi-image prompt's image as the SigLIP processor prepares it: squashed to
    /// tile × tile with Pillow's bicubic (after padding to a square for `pad` models), then
    /// u8/127.5 − 1. - Returns: `[3, S, S]`
    public func framePixels(_ image: RGBImage) -> Tensor {
        let square = config.imageMode == .pad ? padToSquare(image) : image
        return siglipPixels(pillowResize(square, width: tileSize, height: tileSize))
    }

    /// `expand2square` of VILA's process_image: the image centred on a square of the processor's
    /// mean colour (0.5 × 255 → 127).
    public func padToSquare(_ image: RGBImage) -> RGBImage {
        let side = max(image.width, image.height)
        if image.width == image.height { return image }
        var pixels = [UInt8](repeating: 127, count: side * side * 3)
        let (x0, y0) = ((side - image.width) / 2, (side - image.height) / 2)
        for y in 0..<image.height {
            let src = y * image.width * 3, dst = ((y + y0) * side + x0) * 3
            pixels.replaceSubrange(dst..<dst + image.width * 3, with: image.pixels[src..<src + image.width * 3])
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }

    // MARK: - Visual tokens

    /// Tower features of one frame (the same for captioning and for boundary detection).
    /// - Returns: `[N, C]`, N = 1024 patches of the 32×32 grid
    public func frameFeatures(_ image: RGBImage) -> Tensor { tower(framePixels(image)) }

    /// The mean of a frame's tower features over its patches: a cheap global embedding for
    /// semantic boundary detection. - Parameter features: `[N, C]`. - Returns: `[C]`
    public static func pooled(_ features: Tensor) -> [Float] {
        let (n, c) = (features.shape[0], features.shape[1])
        var sum = [Float](repeating: 0, count: c)
        features.scalars.withUnsafeBufferPointer { f in
            for r in 0..<n { for j in 0..<c { sum[j] += f[r * c + j] } }
        }
        return sum.map { $0 / Float(max(n, 1)) }
    }

    /// Projected tokens of one frame's tower features, as `encode_images` treats an image
    /// without a block size: Dynamic-S2 models repeat the channels once per scale.
    /// - Parameter features: `[N, C]`. - Returns: `[T, H]` (256 for 2×2, 121 for 3×3 projectors)
    public func projectFrame(_ features: Tensor) -> Tensor {
        projector(config.dynamicS2 ? replicateChannels(features, times: config.scales.count) : features)
    }

    /// The embedding blocks one image contributes, one per `<image>` placeholder it needs:
    /// one block for Dynamic-S2 and single-tile modes; one per tile (thumbnail last) for the
    /// Lite `dynamic` mode, whose prompt repeats `<image>\n` per tile (see `imagePlaceholders`).
    /// Each block ends with the image encoder's end tokens ("\n").
    public func encodeImage(_ image: RGBImage) throws -> [Tensor] {
        let end = try wrapTokens(config.imageEncoder.start, config.imageEncoder.end)
        return tiledTokens(image, maxTiles: config.maxTiles).map(end.wrap)
    }

    /// The projected tokens of one picture cut into tiles the checkpoint's way, without end
    /// tokens: Dynamic-S2 gives one block `[256·rows·cols, H]` (the merged grid, row-major);
    /// Lite `dynamic` gives one `[121, H]` block per tile, thumbnail last; squashing modes one block.
    public func tiledTokens(_ image: RGBImage, maxTiles: Int) -> [Tensor] {
        switch config.imageMode {
        case .dynamicS2(let scales):
            let plan = dynamicS2Plan(width: image.width, height: image.height, scales: scales, maxTiles: maxTiles)
            let tiles = dynamicS2Tiles(image, plan: plan).map { tower(siglipPixels($0)) }
            let blocks = mergeDynamicS2Features(tiles, plan: plan)  // rows·cols × [1024, 3C]
            return [mergeProjectedBlocks(blocks.map { projector($0) }, grid: plan.grid)]  // [256·rows·cols, H]
        case .dynamic:
            let plan = dynamicTilePlan(width: image.width, height: image.height, minTiles: config.minTiles,
                                       maxTiles: maxTiles, imageSize: tileSize)
            return dynamicTiles(image, plan: plan, imageSize: tileSize).map { projectFrame(tower(siglipPixels($0))) }
        case .resize, .pad:
            return [projectFrame(frameFeatures(image))]
        }
    }

    /// A video's frames with the "detail" knob (`video_max_tiles` > 1): each frame tiled as a
    /// single image would be, with up to `maxTiles` tiles at the last scale. Dynamic-S2 models
    /// keep each frame's merged multi-scale grid as one unit (the reference passes no block sizes
    /// here and so treats every tile as its own frame, which nvila-spec §11.11 calls bug-prone);
    /// Lite models give every tile its own "\n", as the reference does. Only the Basic video
    /// encoder: TSP pooling averages frames of one shape.
    /// - Returns: blocks `[S_i, H]` in order, each followed by "\n" in `encodeVideo(projected:)`.
    public func detailedFrameTokens(_ frames: [RGBImage], maxTiles: Int) throws -> [Tensor] {
        if case .tsp = config.videoEncoder, maxTiles > 1 { throw MediaError.detailWithTemporalPooling }
        return frames.flatMap { tiledTokens($0, maxTiles: maxTiles) }
    }

    /// How many `<image>` placeholders one image needs (Lite `dynamic` tiling: one per tile).
    public func imagePlaceholders(width: Int, height: Int) -> Int {
        guard config.imageMode == .dynamic else { return 1 }
        return dynamicTilePlan(width: width, height: height, minTiles: config.minTiles, maxTiles: config.maxTiles,
                               imageSize: tileSize).tileCount
    }

    /// The embeddings of one video from its frames' tower features, per the video encoder:
    /// Basic: each frame's tokens then "\n"; TSP: per pool size, consecutive frames averaged
    /// (a short last group by its own length), then "\n" per group (and the separator).
    /// - Parameter features: per frame `[N, C]`. - Returns: `[tokens, H]`
    public func encodeVideo(features: [Tensor]) throws -> Tensor {
        try encodeVideo(projected: features.map(projectFrame))
    }

    /// `encodeVideo(features:)` from frames already through the projector (`projectFrame`), as a
    /// pipeline that cached them passes them. - Parameter frames: per frame `[S, H]`
    public func encodeVideo(projected frames: [Tensor]) throws -> Tensor {
        guard !frames.isEmpty else { throw MediaError.emptyVideo }
        switch config.videoEncoder {
        case .basic(let start, let end):
            let wrap = try wrapTokens(start, end)
            return concatRows(frames.map(wrap.wrap))
        case .tsp(let sizes, let start, let end, let separator):
            let (S, H) = (frames[0].shape[0], frames[0].shape[1])
            precondition(frames.allSatisfy { $0.shape == [S, H] }, "TSP: frames of different shapes \(frames.map(\.shape))")
            let stacked = Tensor(shape: [frames.count, S, H], scalars: frames.flatMap(\.scalars))
            let wrap = try wrapTokens(start, end)
            let sep = try separator.map { try llm.embed(tokenizer.encode($0)) }
            var parts: [Tensor] = []
            for size in sizes {
                let pooled = temporalPool(stacked, size: size)  // [G, S', H]
                let (G, S2) = (pooled.shape[0], pooled.shape[1])
                for g in 0..<G {
                    let group = Tensor(shape: [S2, H], scalars: Array(pooled.scalars[g * S2 * H..<(g + 1) * S2 * H]))
                    parts.append(wrap.wrap(group))
                }
                if let sep { parts.append(sep) }
            }
            return concatRows(parts)
        }
    }

    /// `encodeVideo(features:)` from frames.
    public func encodeVideo(frames: [RGBImage]) throws -> Tensor {
        try encodeVideo(features: frames.map(frameFeatures))
    }

    struct Wrap {
        let start: Tensor?
        let end: Tensor?
        func wrap(_ x: Tensor) -> Tensor { concatRows([start, x, end].compactMap { $0 }) }
    }

    func wrapTokens(_ start: String?, _ end: String?) throws -> Wrap {
        Wrap(start: try start.map { try llm.embed(tokenizer.encode($0)) }, end: try end.map { try llm.embed(tokenizer.encode($0)) })
    }

    // MARK: - Prompts

    /// The user message VILA builds for media and a question: placeholders first, then the text
    /// (plain concatenation, `extract_media`), with Lite's per-tile `<image>\n` expansion
    /// (`generate_content`) and any placeholder the user typed removed.
    public func userMessage(text: String, media: [Media]) -> String {
        var cleaned = text
        for token in ["<image>", "<vila/video>", "<vila/sentinel>"] where cleaned.contains(token) {
            cleaned = cleaned.replacingOccurrences(of: token, with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var message = ""
        for item in media {
            switch item {
            case .image(let image):
                let n = imagePlaceholders(width: image.width, height: image.height)
                message += config.imageMode == .dynamic && Self.imageCount(media) == 1 ? String(repeating: "<image>\n", count: n) : "<image>"
            case .video, .videoFeatures, .videoTokens, .detailedVideo: message += "<vila/video>"
            }
        }
        return (message + cleaned).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Images among `media`: a prompt with exactly one is tiled (`generate_content` counts images
    /// only; videos do not change it).
    static func imageCount(_ media: [Media]) -> Int {
        media.reduce(0) { n, item in if case .image = item { return n + 1 } else { return n } }
    }

    /// Token ids of a ChatML prompt (system line as the checkpoint's template renders it).
    public func promptIDs(userMessage: String, system: String? = nil) -> [Int] {
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(userMessage))
        return tokenizer.encode(tokenizer.chatPrompt.render(messages, addGenerationPrompt: true))
    }

    /// Splices media embeddings into the prompt (`_embed`): runs of text ids are embedded, each
    /// `<image>` / `<vila/video>` id is replaced by the next block of its kind, in order.
    /// - Returns: `[L, H]`
    public func spliceEmbeddings(ids: [Int], imageBlocks: [Tensor], videoBlocks: [Tensor]) throws -> Tensor {
        var images = imageBlocks[...], videos = videoBlocks[...]
        var parts: [Tensor] = []
        var run: [Int] = []
        func flush() throws {
            if !run.isEmpty { parts.append(try llm.embed(run)) }
            run = []
        }
        let placeholders = ids.filter { $0 == imageTokenID || $0 == videoTokenID }.count
        guard placeholders == imageBlocks.count + videoBlocks.count else {
            throw MediaError.placeholderMismatch(placeholders: placeholders, media: imageBlocks.count + videoBlocks.count)
        }
        for id in ids {
            if id == imageTokenID, let block = images.popFirst() {
                try flush()
                parts.append(block)
            } else if id == videoTokenID, let block = videos.popFirst() {
                try flush()
                parts.append(block)
            } else if id == imageTokenID || id == videoTokenID {
                throw MediaError.placeholderMismatch(placeholders: placeholders, media: imageBlocks.count + videoBlocks.count)
            } else {
                run.append(id)
            }
        }
        try flush()
        return concatRows(parts)
    }

    /// The spliced prompt for a question about media. - Returns: `[L, H]`
    public func promptEmbeddings(text: String, media: [Media], system: String? = nil) throws -> Tensor {
        var imageBlocks: [Tensor] = [], videoBlocks: [Tensor] = []
        for item in media {
            switch item {
            case .image(let image):
                // Several images are each squashed to one tile, as VILA does for multi-image prompts.
                if Self.imageCount(media) == 1 {
                    imageBlocks += try encodeImage(image)
                } else {
                    imageBlocks.append(try wrapTokens(config.imageEncoder.start, config.imageEncoder.end)
                        .wrap(projectFrame(frameFeatures(image))))
                }
            case .video(let frames): videoBlocks.append(try encodeVideo(frames: frames))
            case .videoFeatures(let features): videoBlocks.append(try encodeVideo(features: features))
            case .videoTokens(let frames): videoBlocks.append(try encodeVideo(projected: frames))
            case .detailedVideo(let frames, let maxTiles):
                videoBlocks.append(try encodeVideo(projected: try detailedFrameTokens(frames, maxTiles: maxTiles)))
            }
        }
        let ids = promptIDs(userMessage: userMessage(text: text, media: media), system: system)
        return try spliceEmbeddings(ids: ids, imageBlocks: imageBlocks, videoBlocks: videoBlocks)
    }

    /// Stop ids: the tokenizer's eos, `<|im_end|>` and `<|endoftext|>` (VILA's infer_stop_tokens).
    public var stopTokens: Set<Int> { tokenizer.stopTokenIDs }

    /// Answers a question about media. Media ids (≥ the embedding rows) are never generated.
    /// - Returns: the generated ids (a stop token, if hit, is the last)
    public func generate(
        text: String, media: [Media], options: GenerationOptions, system: String? = nil, onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        let prompt = try promptEmbeddings(text: text, media: media, system: system)
        return try llm.generate(prompt: prompt, options: options, allowed: llm.vocabularyRows, onToken: onToken)
    }
}

/// Rows of several `[n_i, H]` tensors stacked. - Returns: `[Σ n_i, H]`
func concatRows(_ parts: [Tensor]) -> Tensor {
    guard let first = parts.first else { return Tensor(zeros: [0, 0]) }
    let H = first.shape[1]
    precondition(parts.allSatisfy { $0.rank == 2 && $0.shape[1] == H }, "concatRows: \(parts.map(\.shape))")
    return Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }, H], scalars: parts.flatMap(\.scalars))
}
