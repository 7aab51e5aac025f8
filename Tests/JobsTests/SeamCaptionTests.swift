import CaptionWriters
import DenseCore
import Engine
import EventSegmenter
import Foundation
import ModelAPI
import Testing
import TestClips

@testable import Jobs

/// A model behind the seam that is not the native engine: it records what it was asked and
/// answers from a script (or forwards to another model), as a remote server would.
final class ScriptedModel: VisionLanguageModel, @unchecked Sendable {
    let identity: String
    let displayName = "scripted"
    let defaultVideoFrames = 2
    let concurrency: Int
    private let lock = NSLock()
    private(set) var requests: [VisionRequest] = []
    /// Answers by the request's position (0-based over the model's life); nil: the default answer.
    var script: (Int) throws -> VisionAnswer?
    let forward: (any VisionLanguageModel)?

    init(identity: String = "scripted:test", concurrency: Int = 2, forward: (any VisionLanguageModel)? = nil,
         script: @escaping (Int) throws -> VisionAnswer? = { _ in nil }) {
        self.identity = identity
        self.concurrency = concurrency
        self.forward = forward
        self.script = script
    }

    func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        let n = lock.withLock {
            requests.append(request)
            return requests.count - 1
        }
        if let scripted = try script(n) { return scripted }
        if let forward { return try await forward.answer(request, onText: onText) }
        return VisionAnswer(text: "caption \(n)", finishReason: .stop, promptTokens: 10 + n, completionTokens: 3, model: "served-name")
    }
}

struct ServerDown: Error, CustomStringConvertible {
    var description: String { "http://127.0.0.1:9/v1: HTTP 503 after 3 tries" }
}

@Suite(.serialized) struct SeamCaptionTests {
    /// Three 2 s shots (red, blue, a test pattern) at 10 fps.
    static func threeShots(_ folder: String) throws -> String {
        let clip = folder + "/shots.mp4"
        try runFFmpeg(["-f", "lavfi", "-i", "color=c=red:s=64x36:r=10:d=2", "-f", "lavfi", "-i", "color=c=blue:s=64x36:r=10:d=2",
                       "-f", "lavfi", "-i", "testsrc=s=64x36:r=10:d=2", "-filter_complex", "[0][1][2]concat=n=3:v=1",
                       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", clip])
        return clip
    }

    static func settings() -> CaptionSettings {
        var s = CaptionJobTests.settings()
        s.detection.rate = Rational(4)
        s.semantic = .off
        s.maxNewTokens = 12
        return s
    }

    /// A non-native model gets decoded pictures with their times, the job's prompt and sampling,
    /// and its answers land in the outputs with their usage and finish reason.
    @Test func remoteModelGetsPicturesWithTimesAndTheSamePrompt() async throws {
        let out = CaptionJobTests.temporaryFolder("seam-remote")
        let clip = try Self.threeShots(out)
        let model = ScriptedModel()
        var s = Self.settings()
        s.framesPerEvent = 2
        s.seed = 7
        let job = CaptionJob(model: model, settings: s, logger: CaptionJobTests.logger)
        #expect(job.modelIdentity == "scripted:test" && job.modelName == "scripted")
        let outcome = try await job.run(file: clip, into: out)
        #expect(outcome.generations == 3 && outcome.towerPasses == 0)
        #expect(model.requests.count == 3)
        for request in model.requests {
            #expect(request.prompt == s.prompt && request.system == s.system)
            #expect(request.generation == GenerationParameters(maxNewTokens: 12, temperature: 0, topP: 1, seed: 7))
            guard case .video(let frames) = try #require(request.media.first) else { Issue.record("not a video"); continue }
            #expect(frames.count == 2 && frames.allSatisfy { $0.image?.width == 64 && $0.prepared == nil })
        }
        let events = try #require(outcome.document?.events)
        #expect(events.map(\.caption) == ["caption 0", "caption 1", "caption 2"])
        // The frames sent are those recorded: grid times inside each shot, in order.
        let sent = model.requests.map { r -> [MediaTime] in
            guard case .video(let frames) = r.media[0] else { return [] }
            return frames.compactMap(\.time)
        }
        #expect(sent == events.map(\.frameTimes))
        #expect(zip(sent, events).allSatisfy { times, e in times.allSatisfy { $0 >= e.start && $0 < e.end } })
        #expect(events[1].generation == CaptionGeneration(model: "served-name", seed: 7, promptTokens: 11, completionTokens: 3, finishReason: "stop"))
        let json = try String(contentsOfFile: out + "/shots.events.json", encoding: .utf8)
        #expect(json.contains("\"finish_reason\": \"stop\"") && json.contains("\"truncated\": false"))
        #expect(json.contains("\"prompt_tokens\": 11") && json.contains("\"seed\": \"7\""))
    }

    /// A caption the server cannot make is recorded as failed (never as text), the file is not
    /// finished, and the rerun asks only for it.
    @Test func failedCaptionsAreRecordedThenRetriedAlone() async throws {
        let out = CaptionJobTests.temporaryFolder("seam-failed")
        let clip = try Self.threeShots(out)
        let failing = ScriptedModel { n in if n == 1 { throw ServerDown() }; return nil }
        let first = CaptionJob(model: failing, settings: Self.settings(), logger: CaptionJobTests.logger)
        await #expect(throws: JobError.captionsFailed(path: clip, failed: 1, of: 3, firstError: ServerDown().description)) {
            try await first.run(file: clip, into: out)
        }
        #expect(JobError.captionsFailed(path: clip, failed: 1, of: 3, firstError: "x").status == .tempFailure)
        #expect(!FileManager.default.fileExists(atPath: out + "/shots.events.json"))
        let manifest = try #require(Manifest.load(Manifest.path(for: clip, in: out)))
        #expect(manifest.state == .running)
        #expect(manifest.events.map(\.state) == [.captioned, .failed, .captioned])
        #expect(manifest.events[1].caption == nil && manifest.events[1].error == ServerDown().description)

        let working = ScriptedModel()
        let rerun = try await CaptionJob(model: working, settings: Self.settings(), logger: CaptionJobTests.logger).run(file: clip, into: out)
        #expect(rerun.generations == 1 && rerun.reusedCaptions == 2 && working.requests.count == 1)
        #expect(rerun.document?.events.map(\.caption) == ["caption 0", "caption 0", "caption 2"])
        #expect(Manifest.load(Manifest.path(for: clip, in: out))?.events.allSatisfy { $0.state == .captioned && $0.error == nil } == true)
    }

    /// The semantic probe needs embeddings only the native engine has.
    @Test func remoteModelRefusesTheSemanticProbe() async throws {
        let out = CaptionJobTests.temporaryFolder("seam-probe")
        let clip = try Clip.cfr10.path
        var s = Self.settings()
        s.semantic = .probe
        let model = ScriptedModel()
        await #expect(throws: JobError.self) { try await CaptionJob(model: model, settings: s, logger: CaptionJobTests.logger).run(file: clip, into: out) }
        #expect(model.requests.isEmpty)
    }

    /// The native engine given pictures (the remote path) captions exactly as it does from its
    /// own frame cache: the seam changes nothing for the same frames.
    @Test func nativeEngineFromPicturesEqualsNativeFromItsCache() async throws {
        let model = try CaptionJobTests.model()
        var s = Self.settings()
        s.framesPerEvent = 3  // the proxy's own default (2) differs from the checkpoint's (6)
        let native = try CaptionJob(model: model, modelName: "tiny", modelDirectory: CaptionJobTests.modelFolder,
                                    settings: s, logger: CaptionJobTests.logger)
        let out = CaptionJobTests.temporaryFolder("seam-native")
        let clip = try Self.threeShots(out)
        let cached = try await native.run(file: clip, into: out + "/cached")
        #expect(cached.towerPasses > 0)
        let proxy = ScriptedModel(identity: "proxy", forward: native.model)
        let pictures = try await CaptionJob(model: proxy, settings: s, logger: CaptionJobTests.logger)
            .run(file: clip, into: out + "/pictures")
        #expect(pictures.towerPasses == 0 && proxy.requests.count == 3)
        let a = try #require(cached.document?.events), b = try #require(pictures.document?.events)
        #expect(a.count == 3 && a.map(\.caption) == b.map(\.caption) && a.map(\.frameTimes) == b.map(\.frameTimes))
        #expect(a.map(\.generation) == b.map(\.generation))
    }

    /// A caption cut at the token limit says so.
    @Test func truncatedCaptionIsMarked() async throws {
        let model = try CaptionJobTests.model()
        var s = CaptionJobTests.settings()
        s.maxNewTokens = 2
        s.semantic = .off
        let out = CaptionJobTests.temporaryFolder("seam-truncated")
        let outcome = try await CaptionJob(model: model, modelName: "tiny", modelDirectory: CaptionJobTests.modelFolder, settings: s,
                                           logger: CaptionJobTests.logger).run(file: try Clip.cfr10.path, into: out)
        let g = try #require(outcome.document?.events.first?.generation)
        // The tiny random model does not stop within two tokens here: the caption is cut.
        #expect(g.finishReason == "length" && g.truncated && g.completionTokens == 2)
        #expect(g.model == "tiny" && g.seed == 0)
        let json = try String(contentsOfFile: out + "/" + stem(of: try Clip.cfr10.path) + ".events.json", encoding: .utf8)
        #expect(json.contains("\"truncated\": true") && json.contains("\"finish_reason\": \"length\""))
    }
}
