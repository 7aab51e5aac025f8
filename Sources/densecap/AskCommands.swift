import ArgumentParser
import DenseCore
import Engine
import FrameSampler
import Foundation
import Logging
import TemporalCompress
import VideoIO

extension ModelOptions {
    /// The folder of an NVILA checkpoint (either published layout), pulled into the Hugging Face
    /// cache first when `--model` is a model id.
    func checkpointDirectory(logger: Logger) async throws -> String {
        let directory = try await resolveModel(model, logger: logger)
        guard NVILAModel.isCheckpoint(directory: directory) else {
            throw CLIError(status: .dataError,
                           message: "\(model): not an NVILA checkpoint (needs llm/, vision_tower/ and mm_projector/, or a single-folder -hf layout)")
        }
        return directory
    }
}

/// Loads the checkpoint, answers: the text to stdout, timings to stderr.
private func answer(
    media: () throws -> [Media], question: String, modelOptions: ModelOptions, generation: GenerationArguments, logger: Logger
) async throws {
    Numerics.setThreads(modelOptions.threads)
    let directory = try await modelOptions.checkpointDirectory(logger: logger)
    // The input first: a bad file should not wait for a multi-gigabyte model to load.
    let items = try media()
    let loadStart = Date()
    let model = try NVILAModel.load(directory: directory, logger: logger, precision: modelOptions.precision,
                                    allowExtraTensors: modelOptions.allowExtraTensors)
    logger.info("loaded \(directory) in \(String(format: "%.1f", Date().timeIntervalSince(loadStart))) s; \(BLASRuntime.summary)")
    let start = Date()
    var firstTokenAt: Date?
    let prompt = try model.promptEmbeddings(text: question, media: items, system: generation.system)
    if model.llm.exceedsContext(promptLength: prompt.shape[0], maxNewTokens: generation.maxNewTokens) {
        logger.warning("\(prompt.shape[0]) prompt embeddings + \(generation.maxNewTokens) new tokens exceed the \(model.llm.config.maxPositionEmbeddings) positions the model was trained for; answers may degrade")
    }
    let output = try model.llm.generate(
        prompt: prompt, options: generation.options(stops: model.stopTokens), allowed: model.llm.vocabularyRows
    ) { id in
        if firstTokenAt == nil { firstTokenAt = Date() }
        return true
    }
    // VILA strips the decoded answer.
    Console.stdout(model.tokenizer.decode(output, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines) + "\n")
    let encode = (firstTokenAt ?? Date()).timeIntervalSince(start)
    logger.info("vision + prefill \(String(format: "%.2f", encode)) s; \(output.count) new tokens in \(String(format: "%.2f", Date().timeIntervalSince(firstTokenAt ?? Date()))) s")
}

/// The first frame of an image file (anything FFmpeg decodes: PNG, JPEG, WebP, …), as shown.
func readImage(_ path: String) throws -> RGBImage {
    let reader = try VideoReader(path: path)
    guard let frame = try reader.nextFrame() else {
        throw VideoError(.undecodable, path: path, reason: "no picture could be decoded")
    }
    return try reader.image(from: frame, size: OutputSize())
}

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe an image with an NVILA model.",
        discussion: "A single image is tiled as the checkpoint says (Dynamic-S2 multi-scale tiles for NVILA, InternVL tiles with a thumbnail for NVILA-Lite). The answer goes to stdout.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "An image file (any format FFmpeg reads).")
    var image: String

    @Option(help: "The question or instruction.")
    var prompt = "Describe the image in detail."

    @OptionGroup var generation: GenerationArguments
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.describe")
        try await reportingErrors {
            try await answer(media: { [.image(try readImage(image))] }, question: prompt, modelOptions: modelOptions,
                       generation: generation, logger: logger)
        }
    }
}

struct Ask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a question about a video with an NVILA model.",
        discussion: "Frames are chosen as the reference does (--frames N: uniform over the range, round-half-to-even) or at a rate (--fps), squashed to the tower's size with Pillow's bicubic, and given to the model as one <vila/video>.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "A video file.")
    var video: String

    @Argument(help: "The question.")
    var question: String

    @Option(help: "Frames uniform over the range (default: the checkpoint's num_video_frames).")
    var frames: Int?

    @Option(help: "Sample at this rate instead (e.g. 1, 0.5, 30000/1001).")
    var fps: String?

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "Detail: tile every frame like a single image, up to N tiles at the last scale (the reference's video_max_tiles; 1 = off; default: the checkpoint's video_max_tiles, 1 when unset). Costs about N+5 tower passes per frame for NVILA, N+1 for NVILA-Lite.")
    var detail: Int?

    @OptionGroup var generation: GenerationArguments
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if let detail, detail < 1 { throw ValidationError("--detail must be at least 1") }
        if let frames, frames <= 0 { throw ValidationError("--frames must be positive") }
        if frames != nil && fps != nil { throw ValidationError("--frames and --fps exclude each other") }
        if let fps, Rational(parsing: fps).map({ $0 > .zero }) != true { throw ValidationError("--fps must be a positive number") }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.ask")
        try await reportingErrors {
            let checkpoint = try await modelOptions.checkpointDirectory(logger: logger)
            let config = try NVILAConfig.load(directory: checkpoint)
            let frameCount = frames ?? config.numVideoFrames
            // Frames are squashed to the tower's tile as they are decoded, so a long range holds
            // tiles, not full frames: the model's own squash of a tile-sized image is a copy, so the
            // pixels are the same. Padding models pad first, and --detail tiles the full frame.
            let tile = try SiglipVisionConfig.load(checkpoint: checkpoint).imageSize
            let tiles = detail ?? config.videoMaxTiles  // the checkpoint's video_max_tiles, as the reference
            let squash = tiles == 1 && config.imageMode != .pad
            try await answer(
                media: {
                    let reader = try VideoReader(path: video)
                    let policy: SamplingPolicy = fps.flatMap(Rational.init(parsing:)).map { .rate($0) } ?? .count(frameCount)
                    let window = range.window
                    let sampler = try FrameSampler(reader: reader, policy: policy, window: window, logger: logger)
                    var images: [RGBImage] = []
                    var times: [String] = []
                    while let sample = try sampler.next() {
                        let frame = try reader.image(from: sample.frame, size: OutputSize())
                        images.append(squash ? pillowResize(frame, width: tile, height: tile) : frame)
                        times.append(sample.time.secondsString)
                    }
                    guard !images.isEmpty else {
                        throw VideoError(.undecodable, path: video, reason: "no frame in the requested range")
                    }
                    logger.info("\(video): \(images.count) frames at \(times.joined(separator: ", ")) s")
                    return [tiles > 1 ? .detailedVideo(images, maxTiles: tiles) : .video(images)]
                }, question: question, modelOptions: modelOptions, generation: generation, logger: logger)
        }
    }
}
