import DenseCore
import Engine
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

// The product's main job: video → timestamped events with captions.
//
// Pass 1 streams the video once: frames sampled at the detector rate go (downscaled) to the
// pixel detectors; the subset at the model rate also goes through the vision tower once — its
// pooled embedding feeds the semantic detector and its projected tokens go to a frame cache on
// disk. Pass 2 captions each event from the cache: up to the model's frame budget, uniform over
// the event's frames with the reference's index rule, through the checkpoint's video encoder
// (per-frame "\n", or TSP temporal pooling) and the LLM. Memory holds two decoded frames and one
// event's tokens whatever the video's length.

/// Problems of the captioning pipeline that are not the video's.
public enum CaptionError: Error, CustomStringConvertible, Equatable {
    case cache(path: String, reason: String)
    case noFrames(path: String)

    public var description: String {
        switch self {
        case .cache(let path, let reason): return "\(path): \(reason)"
        case .noFrames(let path): return "\(path): no frame in the requested range"
        }
    }
}

/// How a video is captioned.
public struct CaptionSettings: Sendable, Equatable {
    /// Frames per second shown to the vision tower (and available for captions).
    public var modelRate: Rational = Rational(1)
    /// Frames per second shown to the pixel detectors (at least the model rate).
    public var detectorRate: Rational = Rational(4)
    /// Width of the detectors' frames (height follows the display aspect).
    public var analysisWidth = 256
    /// Frames per caption, uniform within the event (nil: the checkpoint's `num_video_frames`).
    public var framesPerEvent: Int?
    /// The instruction given with each event's frames.
    public var prompt = CaptionSettings.defaultPrompt
    public var system: String?
    public var generation = GenerationOptions(maxNewTokens: 128)
    /// Skip captioning events the segmenter marks skippable (static stretches with gating on).
    public var captionSkippable = false
    public var segmenter = SegmenterConfiguration()
    public var window = TimeWindow()

    public static let defaultPrompt =
        "Describe what happens in this video segment in one to three sentences. Mention people, objects and actions that are visible."

    public init() {}
}

/// What pass 1 found about the stream.
public struct CaptionRun: Sendable {
    public var info: VideoInfo
    public var events: [Event]
    /// Times of the frames at the model rate, in order: the frames captions can use.
    public var modelFrameTimes: [MediaTime]
    public var report: DecodeReport
    /// Frames the tower ran on in this run (the rest came from the cache).
    public var towerFrames: Int
    public var cachedFrames: Int
}

/// Captions one video at a time with a loaded model. Not thread-safe.
public final class CaptionPipeline {
    public let model: NVILAModel
    public let settings: CaptionSettings
    let logger: Logger

    public init(model: NVILAModel, settings: CaptionSettings, logger: Logger) {
        self.model = model
        self.settings = settings
        self.logger = logger
    }

    /// The identity of cached records: the model and every setting that changes them.
    public func cacheKey(modelID: String) -> String {
        "\(modelID)|tile=\(model.tileSize)|mode=\(model.config.imageMode)|rate=\(settings.modelRate)"
    }

    /// Pass 1: decode, detect boundaries, cache every model frame's embedding and tokens.
    /// - Parameter progress: fraction done and a detail string, for a progress bar.
    public func analyse(
        file: String, cache: FrameCache, decodeThreads: Int = 0, progress: (Double, String) -> Void = { _, _ in }
    ) throws -> CaptionRun {
        let reader = try VideoReader(path: file, options: DecodeOptions(threads: decodeThreads))
        let info = reader.info
        var segmenterConfig = settings.segmenter
        let detectorRate = max(settings.detectorRate, settings.modelRate)
        segmenterConfig.frameRate = detectorRate.doubleValue
        let segmenter = EventSegmenter(configuration: segmenterConfig, sourceSize: (info.displaySize.width, info.displaySize.height))
        let sampler = try FrameSampler(reader: reader, policy: .rate(detectorRate), window: settings.window, logger: logger)
        let small = OutputSize(width: min(settings.analysisWidth, info.displaySize.width))
        var nextModelSample = 0
        var modelStart: MediaTime?
        var tower = 0, cached = 0
        var modelFrameTimes: [MediaTime] = []
        var last: MediaTime?
        while let sample = try sampler.next() {
            if sample.repeatsPrevious { continue }
            let time = sample.time
            try segmenter.process(try reader.image(from: sample.frame, size: small), at: time)
            last = time
            // The model rate's grid t_k = start + k / rate: a detector frame serves every t_k ≤ its time.
            let origin = modelStart ?? sample.requested ?? time
            modelStart = origin
            var isModelFrame = false
            while let t = sampleTime(nextModelSample, start: origin, rate: settings.modelRate), t <= time {
                isModelFrame = true
                nextModelSample += 1
            }
            guard isModelFrame else { continue }
            let frame: CachedFrame
            if let hit = try cache.frame(at: time) {
                frame = hit
                cached += 1
            } else {
                let features = model.frameFeatures(try reader.image(from: sample.frame))
                frame = CachedFrame(time: time, embedding: NVILAModel.pooled(features), tokens: model.projectFrame(features))
                try cache.append(frame)
                tower += 1
            }
            modelFrameTimes.append(time)
            try segmenter.process(embedding: frame.embedding, at: time)
            progress(sampler.progress, "\(tower + cached) model frames, \(segmenter.frameCount) analysed")
        }
        guard let last else { throw CaptionError.noFrames(path: file) }
        var streamEnd = info.endTime
        if let e = settings.window.end, streamEnd.map({ e < $0 }) ?? true { streamEnd = e }
        if let e = streamEnd, e <= last { streamEnd = nil }
        if reader.report.truncatedAt != nil { streamEnd = nil }
        let events = segmenter.events(end: streamEnd)
        logger.info("\(file): \(segmenter.frameCount) frames analysed, \(tower) through the tower (\(cached) from the cache), \(events.count) events")
        return CaptionRun(info: info, events: events, modelFrameTimes: modelFrameTimes, report: reader.report,
                          towerFrames: tower, cachedFrames: cached)
    }

    /// The model frames inside `[event.start, event.end)` that a caption uses: all of them up to
    /// the budget, else the budget spread by the reference's uniform index rule.
    public func captionFrames(for event: Event, among times: [MediaTime]) -> [MediaTime] {
        let inside = times.filter { $0 >= event.start && $0 < event.end }
        let budget = settings.framesPerEvent ?? model.config.numVideoFrames
        guard inside.count > budget else { return inside }
        return uniformFrameIndices(frameCount: inside.count, samples: budget).map { inside[$0] }
    }

    /// Pass 2 for one event: its caption from the cached frames (nil when it has none).
    public func caption(_ event: Event, frames times: [MediaTime], cache: FrameCache) throws -> String? {
        guard !times.isEmpty else { return nil }
        let tokens = try times.map { t -> Tensor in
            guard let f = try cache.frame(at: t) else { throw CaptionError.cache(path: cache.path, reason: "frame at \(t) s missing") }
            return f.tokens
        }
        var options = settings.generation
        options.stopTokens.formUnion(model.stopTokens)
        let ids = try model.generate(text: settings.prompt, media: [.videoTokens(tokens)], options: options, system: settings.system)
        // VILA decodes the answer skipping special tokens and strips it.
        return model.tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
