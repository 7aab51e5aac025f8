import ArgumentParser
import DenseCore
import Engine
import FrameSampler
import Foundation
import Logging
import ModelAPI
import TemporalCompress
import VideoIO

extension ModelOptions {
    /// The folder of an NVILA checkpoint (either published layout), pulled into the Hugging Face
    /// cache first when `--model` is a model id.
    func checkpointDirectory(logger: Logger) async throws -> String {
        let name = try name
        let directory = try await resolveModel(name, logger: logger)
        guard NVILAModel.isCheckpoint(directory: directory) else {
            throw CLIError(status: .dataError,
                           message: "\(name): not an NVILA checkpoint (needs llm/, vision_tower/ and mm_projector/, or a single-folder -hf layout)")
        }
        return directory
    }
}

/// Reads the media, makes the model, answers: the text streams to stdout, timings go to stderr.
private func answer(
    media: () throws -> [VisionMedia], question: String, videoDetail: Int? = nil, modelOptions: ModelOptions, engine: EngineOptions,
    generation: GenerationArguments, logger: Logger
) async throws {
    // The input first: a bad file should not wait for a multi-gigabyte model to load.
    let items = try media()
    let model = try await makeVisionModel(modelOptions, engine, recorded: false, logger: logger)
    let start = Date()
    let firstText = LockedValue<Date?>(nil)
    let request = VisionRequest(media: items, prompt: question, system: generation.system, generation: generation.parameters,
                                videoDetail: videoDetail)
    let result = try await model.answer(request) { piece in
        guard !piece.isEmpty else { return }
        firstText.update { $0 = $0 ?? Date() }
        Console.stdout(piece)
    }
    Console.stdout("\n")
    let first = firstText.value ?? Date()
    logger.info("vision + prefill \(String(format: "%.2f", first.timeIntervalSince(start))) s; \(result.completionTokens) new tokens in \(String(format: "%.2f", Date().timeIntervalSince(first))) s; \(result.promptTokens) prompt tokens; finish: \(result.finishReason.rawValue)")
    if result.finishReason == .length { logger.warning("the answer was cut at --max-new-tokens \(generation.maxNewTokens)") }
}

/// A value shared with a callback that may run on another thread.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func update(_ change: (inout T) -> Void) { lock.withLock { change(&stored) } }
}

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe an image with an NVILA model.",
        discussion: "A single image is tiled as the checkpoint says (Dynamic-S2 multi-scale tiles for NVILA, InternVL tiles with a thumbnail for NVILA-Lite). The answer goes to stdout.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Remote model") var engine: EngineOptions

    @Argument(help: "An image file (any format FFmpeg reads).")
    var image: String

    @Option(help: "The question or instruction.")
    var prompt = "Describe the image in detail."

    @OptionGroup var generation: GenerationArguments
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.describe")
        try await reportingErrors {
            try await answer(media: { [.image(try VideoReader.readImage(path: image))] }, question: prompt, modelOptions: modelOptions, engine: engine,
                             generation: generation, logger: logger)
        }
    }
}

struct Ask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a question about a video with an NVILA model.",
        discussion: "Frames are chosen as the reference does (--frames N: uniform over the range, round-half-to-even) or at a rate (--fps), squashed to the tower's size with Pillow's bicubic, and given to the model as one <vila/video>.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Remote model") var engine: EngineOptions

    @Argument(help: "A video file.")
    var video: String

    @Argument(help: "The question.")
    var question: String

    @Option(help: "Frames uniform over the range (default: the checkpoint's num_video_frames; 8 for a remote model).")
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
            // The native engine squashes frames to the tower's tile as they are decoded, so a long
            // range holds tiles, not full frames: the model's own squash of a tile-sized image is a
            // copy, so the pixels are the same. Padding models pad first, and --detail tiles the
            // full frame. A remote model gets full frames (its client scales them).
            var frameCount = frames ?? 8
            var squashTo: Int?
            var tiles = 1
            if engine.engine == .native {
                let checkpoint = try await modelOptions.checkpointDirectory(logger: logger)
                let config = try NVILAConfig.load(directory: checkpoint)
                frameCount = frames ?? config.numVideoFrames
                tiles = detail ?? config.videoMaxTiles  // the checkpoint's video_max_tiles, as the reference
                squashTo = config.videoFrameSquash(tiles: tiles, tileSize: try SiglipVisionConfig.load(checkpoint: checkpoint).imageSize)
            }
            try await answer(
                media: {
                    let reader = try VideoReader(path: video)
                    let policy: SamplingPolicy = fps.flatMap(Rational.init(parsing:)).map { .rate($0) } ?? .count(frameCount)
                    let sampler = try FrameSampler(reader: reader, policy: policy, window: range.window, logger: logger)
                    var decoded: [VisionFrame] = []
                    while let sample = try sampler.next() {
                        let frame = try reader.image(from: sample.frame, size: OutputSize())
                        decoded.append(VisionFrame(time: sample.time, image: squashTo.map { pillowResize(frame, width: $0, height: $0) } ?? frame))
                    }
                    guard !decoded.isEmpty else {
                        throw VideoError(.undecodable, path: video, reason: "no frame in the requested range")
                    }
                    logger.info("\(video): \(decoded.count) frames at \(decoded.compactMap { $0.time?.secondsString }.joined(separator: ", ")) s")
                    return [.video(decoded)]
                }, question: question, videoDetail: tiles, modelOptions: modelOptions, engine: engine, generation: generation, logger: logger)
        }
    }
}
