import CaptionWriters
import DenseCore
import Engine
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import Testing
import TestClips
import VideoIO

@testable import Jobs

/// The caption job against the engine alone: what it captions must be exactly what the model
/// gives for the same frames asked directly, and a rerun must redo only what changed.
@Suite(.serialized) struct CaptionJobTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EngineTests/Fixtures").standardized.path
    static let modelFolder = fixtures + "/tiny-nvila-video"

    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }

    static func model() throws -> NVILAModel { try NVILAModel.load(directory: modelFolder, logger: logger) }

    static func temporaryFolder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "densecap-jobs-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// cfr10 (3 s at 10 fps, one shot) at 2 model frames per second: 6 frames, the budget of the
    /// checkpoint (num_video_frames 6).
    static func settings() -> CaptionSettings {
        var s = CaptionSettings()
        s.detection.rate = Rational(10)
        s.modelRate = Rational(2)
        s.maxNewTokens = 6
        s.detection.segmenter.fuser.maximumLength = nil
        s.output = OutputSettings(formats: [.json], thumbnailWidth: nil)
        return s
    }

    static func job(_ settings: CaptionSettings = settings(), model: NVILAModel) throws -> CaptionJob {
        try CaptionJob(model: model, modelName: "tiny", modelDirectory: modelFolder, settings: settings, logger: logger)
    }

    @Test func captionEqualsAskingTheModelDirectly() async throws {
        let model = try Self.model()
        let out = Self.temporaryFolder("direct")
        let clip = try Clip.cfr10.path
        let outcome = try await Self.job(model: model).run(file: clip, into: out)
        #expect(outcome.towerPasses == 6 && outcome.generations == 1)
        let event = try #require(outcome.document?.events.first)
        #expect(outcome.document?.events.count == 1)
        #expect(event.frameTimes.map(\.rational) == (0..<6).map { Rational(Int64($0), 2) })

        // The same frames decoded by hand, through the model's own video path.
        let reader = try VideoReader(path: clip)
        let sampler = try FrameSampler(reader: reader, policy: .rate(Rational(2)), logger: Self.logger)
        var images: [RGBImage] = []
        while let s = try sampler.next() { images.append(try reader.image(from: s.frame)) }
        let ids = try model.generate(text: CaptionSettings.defaultPrompt, media: [.video(images)],
                                     options: GenerationOptions(maxNewTokens: 6, stopTokens: model.stopTokens))
        #expect(event.caption == model.tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines))

        // Done: a rerun runs nothing.
        let again = try await Self.job(model: model).run(file: clip, into: out)
        #expect(again.skipped && again.towerPasses == 0 && again.generations == 0)
    }

    /// A changed setting, a touched input, a replaced input and a changed model each invalidate
    /// exactly what they change.
    @Test func rerunsRedoOnlyWhatChanged() async throws {
        let model = try Self.model()
        let out = Self.temporaryFolder("invalidate")
        let clip = out + "/input.mp4"
        try FileManager.default.copyItem(atPath: try Clip.cfr10.path, toPath: clip)
        var job = try await Self.job(model: model)
        job.keepCache = true
        let first = try await job.run(file: clip, into: out)
        #expect(first.towerPasses == 6 && first.generations == 1)

        // Another prompt: the frames are still valid (no tower pass), the caption is not.
        var prompt = Self.settings()
        prompt.prompt = "What is shown?"
        job = try await Self.job(prompt, model: model)
        job.keepCache = true
        let reprompted = try await job.run(file: clip, into: out)
        #expect(reprompted.towerPasses == 0 && reprompted.generations == 1 && reprompted.reusedCaptions == 0)

        // Another output format: nothing to compute again, only files to write.
        var formats = prompt
        formats.output.formats = [.json, .srt]
        job = try await Self.job(formats, model: model)
        job.keepCache = true
        let reformatted = try await job.run(file: clip, into: out)
        #expect(!reformatted.skipped && reformatted.towerPasses == 0 && reformatted.generations == 0 && reformatted.reusedCaptions == 1)
        #expect(FileManager.default.fileExists(atPath: out + "/input.srt"))

        // Touched (same bytes, new time): still done.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 3600)], ofItemAtPath: clip)
        #expect(try await job.run(file: clip, into: out).skipped)

        // Replaced by other content: everything again.
        try FileManager.default.removeItem(atPath: clip)
        try FileManager.default.copyItem(atPath: try Clip.cfr10Clean.path, toPath: clip)
        let replaced = try await job.run(file: clip, into: out)
        #expect(!replaced.skipped && replaced.towerPasses == 6 && replaced.generations == 1)
    }

    /// Another model (here: the same folder with one file changed, as a new commit would) redoes
    /// the tower and the captions; the identity of a folder is the hash of its files.
    @Test func anotherModelRedoesEverything() async throws {
        let out = Self.temporaryFolder("model")
        let folder = out + "/model"
        try FileManager.default.copyItem(atPath: Self.modelFolder, toPath: folder)
        let model = try Self.model()
        let before = try ModelIdentity.of(directory: folder)
        #expect(before == (try ModelIdentity.of(directory: Self.modelFolder)))
        let clip = try Clip.cfr10.path
        let run = { try await CaptionJob(model: model, modelName: "tiny", modelDirectory: folder, settings: Self.settings(), logger: Self.logger)
            .run(file: clip, into: out) }
        #expect(try await run().towerPasses == 6)
        #expect(try await run().skipped)
        let config = folder + "/llm/generation_config.json"
        try (try String(contentsOfFile: config, encoding: .utf8) + "\n").write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try ModelIdentity.of(directory: folder) != before)
        let redone = try await run()
        #expect(!redone.skipped && redone.towerPasses == 6 && redone.generations == 1)
        // A Hub snapshot is named by its commit.
        #expect(try ModelIdentity.of(directory: out + "/hub/models--Org--Name/snapshots/" + String(repeating: "ab", count: 20))
            == "hf:Org/Name@" + String(repeating: "ab", count: 20))
    }

    /// Captions decoded together are the captions decoded one by one.
    @Test func batchedCaptionsEqualOneByOne() async throws {
        let model = try Self.model()
        let out = Self.temporaryFolder("batch")
        let clip = out + "/shots.mp4"
        try runFFmpeg(["-f", "lavfi", "-i", "color=c=red:s=64x36:r=10:d=2", "-f", "lavfi", "-i", "color=c=blue:s=64x36:r=10:d=2",
                       "-f", "lavfi", "-i", "testsrc=s=64x36:r=10:d=2", "-filter_complex", "[0][1][2]concat=n=3:v=1",
                       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", clip])
        var s = Self.settings()
        s.detection.rate = Rational(4)
        s.maxNewTokens = 12
        var captions: [[String?]] = []
        for batch in [1, 3] {
            let job = try await Self.job(s, model: model)
            job.decodeBatch = batch
            let outcome = try await job.run(file: clip, into: out + "/b\(batch)")
            #expect(outcome.generations == 3)
            captions.append(outcome.document?.events.map(\.caption) ?? [])
        }
        #expect(captions[0].count == 3 && captions[0] == captions[1])
    }

    /// Gated still stretches never reach the tower, have no caption and list no frames.
    @Test func skippableEventsCostNothing() async throws {
        let model = try Self.model()
        var s = Self.settings()
        s.detection.segmenter = .staticCamera
        s.detection.segmenter.fuser.maximumLength = nil
        s.detection.segmenter.fuser.skippableLength = MediaTime(seconds: 1)
        s.detection.rate = Rational(10)
        let out = Self.temporaryFolder("gated")
        let still = out + "/still.mp4"
        try runFFmpeg(["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10:d=4", "-c:v", "libx264", "-pix_fmt", "yuv420p", still])
        let outcome = try await Self.job(s, model: model).run(file: still, into: out)
        let events = try #require(outcome.document?.events)
        #expect(events.count == 1 && events[0].skippable)
        #expect(events[0].caption == nil && events[0].frameTimes.isEmpty)
        #expect(outcome.towerPasses == 0 && outcome.generations == 0)
        let json = try String(contentsOfFile: out + "/still.events.json", encoding: .utf8)
        #expect(json.contains("\"caption\": null"))
        #expect(json.contains("\"frame_times\": []"))
    }

    /// An event with no model frame inside has no caption: `null` in the first run and in a run
    /// that rebuilds the outputs from the manifest (never `""`).
    @Test func uncaptionedEventStaysNullOnRerun() async throws {
        let model = try Self.model()
        let out = Self.temporaryFolder("null")
        let clip = out + "/shots.mp4"
        try runFFmpeg(["-f", "lavfi", "-i", "color=c=red:s=64x36:r=10:d=3", "-f", "lavfi", "-i", "color=c=blue:s=64x36:r=10:d=2",
                       "-filter_complex", "[0][1]concat=n=2:v=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", clip])
        var s = Self.settings()
        s.detection.rate = Rational(4)
        s.modelRate = Rational(1, 5)  // grid 0 s only: the blue shot [3, 5) has no model frame
        let first = try await Self.job(s, model: model).run(file: clip, into: out)
        let events = try #require(first.document?.events)
        #expect(events.map(\.start.rational) == [Rational(0), Rational(3)])
        #expect(events[0].caption != nil && events[1].caption == nil && events[1].frameTimes.isEmpty)
        let path = out + "/shots.events.json"
        let nulls = { try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\"caption\": null").count - 1 }
        #expect(try nulls() == 1)
        try FileManager.default.removeItem(atPath: path)
        let rerun = try await Self.job(s, model: model).run(file: clip, into: out)
        #expect(rerun.generations == 0 && rerun.towerPasses == 0 && rerun.reusedCaptions == 1)
        #expect(try nulls() == 1)
    }

    /// Reopening a frame cache reads its header, not the file: a 16 GiB cache with another key is
    /// replaced at once (reading it whole would need 16 GiB of memory).
    @Test func frameCacheOpensWithoutReadingTheFile() async throws {
        let path = Self.temporaryFolder("big") + "/frames.bin"
        FileManager.default.createFile(atPath: path, contents: Data("{\"key\":\"old\"}\n".utf8))
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.truncate(atOffset: 16 << 30)  // sparse
        try handle.close()
        let cache = try FrameCache(path: path, key: "new", embeddingWidth: 2, tokenShape: [2, 3])
        #expect(cache.count == 0)
        #expect(((try FileManager.default.attributesOfItem(atPath: path))[.size] as? NSNumber)?.intValue ?? 0 < 4096)
    }

    /// A torn last record (a crash mid-write) is dropped on reopening; a different key discards the file.
    @Test func frameCacheSurvivesATornWrite() async throws {
        let path = Self.temporaryFolder("torn") + "/frames.bin"
        let tokens = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let t = { (n: Int64) in MediaTime(value: n, timescale: 3) }
        let frame = { (n: Int64, e: [Float]) in CachedFrame(requested: t(n), time: t(n) + MediaTime(value: 1, timescale: 100), embedding: e, tokens: tokens) }
        do {
            let cache = try FrameCache(path: path, key: "a", embeddingWidth: 2, tokenShape: [2, 3])
            try cache.append(frame(1, [7, 8]))
            try cache.append(frame(2, [9, 10]))
        }
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size - 5)
        try handle.close()
        let reopened = try FrameCache(path: path, key: "a", embeddingWidth: 2, tokenShape: [2, 3])
        #expect(reopened.count == 1)
        #expect(try reopened.frame(at: t(1)) == frame(1, [7, 8]))
        let embedded = try #require(try reopened.embedding(at: t(1)))
        #expect(embedded.time == frame(1, [7, 8]).time && embedded.embedding == [7, 8])
        try reopened.append(frame(2, [9, 10]))
        #expect(try reopened.frame(at: t(2)) == frame(2, [9, 10]))
        let other = try FrameCache(path: path, key: "b", embeddingWidth: 2, tokenShape: [2, 3])
        #expect(other.count == 0)
    }

    /// `segment` and `caption` show the detectors the same frames: caption's events without
    /// semantic boundaries are segment's.
    @Test func captionAndSegmentSeeTheSamePixels() async throws {
        let model = try Self.model()
        var s = Self.settings()
        s.semantic = .off
        s.detection.rate = Rational(4)
        var seg = SegmentSettings()
        seg.detection = s.detection
        let clip = try Clip.vfrBFrames.path
        let captioned = try await Self.job(s, model: model).run(file: clip, into: Self.temporaryFolder("same-pixels"))
        let segmented = try SegmentJob(settings: seg, logger: Self.logger).analyse(file: clip).document
        #expect(captioned.document?.events.map { [$0.start, $0.end] } == segmented.events.map { [$0.start, $0.end] })
    }

    /// Settings record every option (a Set's order never leaks into the encoding).
    @Test func settingsEncodingIsCanonicalAndComplete() async throws {
        var a = SegmentSettings()
        a.detection.segmenter.detectors = [.motion, .content, .adaptive, .fade, .histogram]
        let encoded = String(decoding: try a.canonicalJSON(), as: UTF8.self)
        #expect(encoded.contains("\"detectors\":[\"adaptive\",\"content\",\"fade\",\"histogram\",\"motion\"]"))
        #expect(try JSONDecoder().decode(SegmentSettings.self, from: Data(encoded.utf8)) == a)
        let pairs = Dictionary(try a.settingsPairs(), uniquingKeysWith: { $1 })
        #expect(pairs["output.formats"] == "json,csv")
        #expect(pairs["detection.rate"] == "4")
        #expect(pairs["detection.segmenter.fuser.minimumLength"] == "1/2")
    }

    /// Equally severe failures give the same exit code whatever the inputs' order.
    @Test func exitStatusOrderIsTotal() {
        #expect(max(ExitStatus.noInput, .dataError) == max(ExitStatus.dataError, .noInput))
        #expect(max(ExitStatus.partial, .dataError) == .dataError)
        #expect(max(ExitStatus.failure, .dataError) == .failure)
    }
}

func runFFmpeg(_ arguments: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"] + arguments
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw JobError.input(path: arguments.last ?? "", reason: "ffmpeg failed") }
}
