import DenseCore
import Engine
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import Testing
import TestClips
import VideoIO

@testable import CaptionPipeline

/// The pipeline against the engine alone: what it caches and captions must be exactly what the
/// model gives for the same frames asked directly.
@Suite struct CaptionPipelineTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EngineTests/Fixtures").standardized.path

    static func model() throws -> NVILAModel {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return try NVILAModel.load(directory: fixtures + "/tiny-nvila-video", logger: logger)
    }

    static func temporaryFile(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "densecap-pipeline-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    /// cfr10: 3 s at 10 fps, no cuts. At 2 model frames per second the cache holds the frames at
    /// 0, 0.5, …, 2.5 s; the one event's caption equals `generate` on those decoded frames.
    @Test func captionFromTheCacheEqualsAskingDirectly() throws {
        let model = try Self.model()
        var settings = CaptionSettings()
        settings.modelRate = Rational(2)
        settings.detectorRate = Rational(10)
        settings.generation = GenerationOptions(maxNewTokens: 6)
        settings.segmenter.fuser.maximumLength = nil
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let pipeline = CaptionPipeline(model: model, settings: settings, logger: logger)
        let clip = try Clip.cfr10.path
        let cache = try FrameCache(path: Self.temporaryFile("cache"), key: "k", embeddingWidth: 16, tokenShape: [256, 64])
        let run = try pipeline.analyse(file: clip, cache: cache)
        #expect(run.towerFrames == 6 && run.cachedFrames == 0)
        let times = cache.times.sorted()
        #expect(times.map(\.rational) == (0..<6).map { Rational(Int64($0), 2) })
        #expect(run.modelFrameTimes == times)
        let event = try #require(run.events.first)
        let frames = pipeline.captionFrames(for: event, among: times)
        #expect(frames == times)  // 6 frames, within the checkpoint's budget of 6
        let caption = try pipeline.caption(event, frames: frames, cache: cache)

        // The same frames decoded by hand, through the model's own path.
        let reader = try VideoReader(path: clip)
        let sampler = try FrameSampler(reader: reader, policy: .rate(Rational(2)), window: TimeWindow(), logger: logger)
        var images: [RGBImage] = []
        while let s = try sampler.next() { images.append(try reader.image(from: s.frame)) }
        var options = settings.generation
        options.stopTokens = model.stopTokens
        let ids = try model.generate(text: settings.prompt, media: [.video(images)], options: options)
        let direct = model.tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(caption == direct)

        // A second analysis finds every frame in the cache and runs no tower pass.
        let again = try pipeline.analyse(file: clip, cache: cache)
        #expect(again.towerFrames == 0 && again.cachedFrames == 6)
    }

    /// More frames than the budget: the reference's uniform rule picks them.
    @Test func framesUniformWithinTheEvent() throws {
        let model = try Self.model()  // num_video_frames 6
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let pipeline = CaptionPipeline(model: model, settings: CaptionSettings(), logger: logger)
        let times = (0..<20).map { MediaTime(value: Int64($0), timescale: 1) }
        let event = Event(start: MediaTime(seconds: 2), end: MediaTime(seconds: 12), keyframe: MediaTime(seconds: 7), confidence: 1, kind: .cut)
        let picked = pipeline.captionFrames(for: event, among: times)
        // linspace(0, 9, 6) = 0, 1.8, 3.6, 5.4, 7.2, 9 → round half to even → 0, 2, 4, 5, 7, 9
        #expect(picked.map { $0.rational.numerator } == [2, 4, 6, 7, 9, 11])
    }

    /// A torn last record (a crash mid-write) is dropped on reopening; a different key discards the file.
    @Test func frameCacheSurvivesATornWrite() throws {
        let path = Self.temporaryFile("torn")
        let tokens = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        do {
            let cache = try FrameCache(path: path, key: "a", embeddingWidth: 2, tokenShape: [2, 3])
            try cache.append(CachedFrame(time: MediaTime(value: 1, timescale: 3), embedding: [7, 8], tokens: tokens))
            try cache.append(CachedFrame(time: MediaTime(value: 2, timescale: 3), embedding: [9, 10], tokens: tokens))
        }
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size - 5)
        try handle.close()
        let reopened = try FrameCache(path: path, key: "a", embeddingWidth: 2, tokenShape: [2, 3])
        #expect(reopened.count == 1)
        #expect(try reopened.frame(at: MediaTime(value: 1, timescale: 3)) == CachedFrame(time: MediaTime(value: 1, timescale: 3), embedding: [7, 8], tokens: tokens))
        try reopened.append(CachedFrame(time: MediaTime(value: 2, timescale: 3), embedding: [9, 10], tokens: tokens))
        #expect(try reopened.frame(at: MediaTime(value: 2, timescale: 3))?.embedding == [9, 10])
        let other = try FrameCache(path: path, key: "b", embeddingWidth: 2, tokenShape: [2, 3])
        #expect(other.count == 0)
    }
}
