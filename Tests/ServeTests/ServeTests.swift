import DenseCore
import Engine
import Foundation
import ModelAPI
import Serve
import TestClips
import Testing
import VideoIO

/// `densecap serve` in-process on loopback, driven over HTTP: answers equal the native engine's
/// (and the reference's), streaming, usage, and every refusal.
@Suite(.serialized) struct ServeAnswerTests {
    static let image = fixtures + "/nvila-image.png"
    static let frames = (0..<6).map { fixtures + "/nvila-video-frame-\($0).png" }

    /// A PNG image as a data URL: the greedy answer is `describe`'s (the native model on the
    /// file FFmpeg decodes) and the reference's, word for word.
    @Test func imageAnswerEqualsDescribe() async throws {
        let native = try Models.native(Models.lite)
        let server = try await RunningServer.start(.native(native, name: "tiny"))
        let reference = try referenceAnswer("lite.image", checkpoint: "tiny-nvila-lite")
        let direct = try await native.answer(VisionRequest(
            media: [.image(try VideoReader.readImage(path: Self.image))], prompt: "Describe the image.",
            generation: GenerationParameters(maxNewTokens: 16)))
        let r = try await chat(server, [
            "model": "tiny", "max_tokens": 16,
            "messages": userMessage([["type": "image_url", "image_url": ["url": try dataURL(Self.image, type: "image/png")]],
                                     ["type": "text", "text": "Describe the image."]]),
        ])
        try await server.stop()
        #expect(r.status == 200, "\(r.text)")
        let choice = try #require((r.json["choices"] as? [[String: Any]])?.first)
        let content = (choice["message"] as? [String: Any])?["content"] as? String
        #expect(content == direct.text)
        #expect(content == reference)
        #expect(r.json["object"] as? String == "chat.completion")
        #expect(r.json["model"] as? String == "tiny")
        #expect((r.json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        let usage = try #require(r.json["usage"] as? [String: Int])
        #expect(usage["prompt_tokens"] == direct.promptTokens)
        #expect(usage["completion_tokens"] == 16)
        #expect(usage["total_tokens"] == direct.promptTokens + 16)
        #expect(choice["finish_reason"] as? String == direct.finishReason.rawValue)
    }

    /// A JPEG (made here with the ffmpeg CLI) decoded in memory gives `describe`'s answer on the
    /// same file; a file URL under an allowed folder gives it too.
    @Test func jpegDataURLAndFileURLEqualDescribe() async throws {
        let folder = temporaryFolder("jpeg")
        let jpeg = folder + "/picture.jpg"
        try run("ffmpeg", ["-nostdin", "-loglevel", "error", "-y", "-i", Self.image, "-q:v", "3", jpeg])
        let native = try Models.native(Models.lite)
        let server = try await RunningServer.start(.native(native, name: "tiny"), settings: ServeSettings(allowedFolders: [folder]))
        let direct = try await native.answer(VisionRequest(
            media: [.image(try VideoReader.readImage(path: jpeg))], prompt: "What is it?",
            generation: GenerationParameters(maxNewTokens: 12)))
        for url in [try dataURL(jpeg, type: "image/jpeg"), "file://" + jpeg] {
            let r = try await chat(server, [
                "model": "tiny", "max_completion_tokens": 12,
                "messages": userMessage([["type": "text", "text": "What is it?"], ["type": "image_url", "image_url": ["url": url]]]),
            ])
            #expect(r.status == 200, "\(r.text)")
            #expect(((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String == direct.text)
        }
        try await server.stop()
    }

    /// vLLM's frame list (`data:video/png;base64,<f>,<f>,…`): the native model's answer on the
    /// same frames, and the reference's.
    @Test func frameListAnswerEqualsNativeModel() async throws {
        let native = try Models.native(Models.video)
        let server = try await RunningServer.start(.native(native, name: "tiny"))
        let images = try Self.frames.map { try VideoReader.readImage(path: $0) }
        let direct = try await native.answer(VisionRequest(
            media: [.video(images.map { VisionFrame(time: nil, image: $0) })], prompt: "Describe the video.",
            generation: GenerationParameters(maxNewTokens: 16), videoDetail: native.model.config.videoMaxTiles))
        let list = "data:video/png;base64," + (try Self.frames.map { try Data(contentsOf: URL(fileURLWithPath: $0)).base64EncodedString() })
            .joined(separator: ",")
        let body: [String: Any] = [
            "model": "tiny", "max_tokens": 16,
            "messages": userMessage([["type": "video_url", "video_url": ["url": list]], ["type": "text", "text": "Describe the video."]]),
        ]
        let r = try await chat(server, body)
        #expect(r.status == 200, "\(r.text)")
        let content = ((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(content == direct.text)
        #expect(content == (try referenceAnswer("video.video", checkpoint: "tiny-nvila-video")))

        // Streamed: the deltas concatenate to the same text.
        var streamed = body
        streamed["stream"] = true
        let s = try await chat(server, streamed)
        try await server.stop()
        let pieces = events(s).compactMap { ($0 as? [String: Any]).flatMap { ($0["choices"] as? [[String: Any]])?.first } }
            .compactMap { ($0["delta"] as? [String: Any])?["content"] as? String }
        #expect(pieces.joined() == direct.text)
    }

    /// A video file under an allowed folder is sampled like VILA's server: `frames` uniform.
    @Test func videoFileIsSampled() async throws {
        let clip = try Clip.cfr10.path
        let folder = (clip as NSString).deletingLastPathComponent
        let native = try Models.native(Models.video)
        let server = try await RunningServer.start(.native(native, name: "tiny"), settings: ServeSettings(allowedFolders: [folder]))
        func ask(_ extra: [String: Any]) async throws -> HTTPResult {
            var part: [String: Any] = ["type": "video_url", "video_url": ["url": "file://" + clip]]
            part.merge(extra) { $1 }
            return try await chat(server, ["max_tokens": 4, "messages": userMessage([part, ["type": "text", "text": "What happens?"]])])
        }
        let two = try await ask(["frames": 2])
        let four = try await ask(["frames": 4])
        let rate = try await ask(["fps": 1, "frames": 2])
        try await server.stop()
        for r in [two, four, rate] { #expect(r.status == 200, "\(r.text)") }
        let p2 = (two.json["usage"] as? [String: Int])?["prompt_tokens"] ?? 0
        let p4 = (four.json["usage"] as? [String: Int])?["prompt_tokens"] ?? 0
        #expect(p4 > p2)
        #expect((rate.json["usage"] as? [String: Int])?["prompt_tokens"] == p2)
    }

    /// Streaming in OpenAI's chunk format: a role chunk, content deltas, a finish chunk, the usage
    /// chunk when asked for, `[DONE]`; `length` when the token budget ends the answer.
    @Test func streamingChunksAndUsage() async throws {
        let native = try Models.native(Models.lite)
        let server = try await RunningServer.start(.native(native, name: "tiny"))
        let body: [String: Any] = [
            "model": "tiny", "max_tokens": 5,
            "messages": [["role": "system", "content": "Be brief."],
                         ["role": "user", "content": [["type": "image_url", "image_url": ["url": try dataURL(Self.image, type: "image/png")]],
                                                      ["type": "text", "text": "Describe the image."]]]],
        ]
        let plain = try await chat(server, body)
        var streamedBody = body
        streamedBody["stream"] = true
        streamedBody["stream_options"] = ["include_usage": true]
        let streamed = try await chat(server, streamedBody)
        try await server.stop()

        #expect(plain.status == 200)
        let choice = try #require((plain.json["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "length")
        let usage = try #require(plain.json["usage"] as? [String: Int])
        #expect(usage["completion_tokens"] == 5)

        #expect(streamed.status == 200)
        #expect(streamed.headers.contains { $0.0.lowercased() == "content-type" && $0.1.hasPrefix("text/event-stream") })
        let all = events(streamed)
        #expect(all.last as? String == "[DONE]")
        let chunks = all.compactMap { $0 as? [String: Any] }
        #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["model"] as? String == "tiny" })
        #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
        let choices = chunks.map { ($0["choices"] as? [[String: Any]]) ?? [] }
        #expect((choices.first?.first?["delta"] as? [String: Any])?["role"] as? String == "assistant")
        let text = choices.compactMap { ($0.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(text == (choice["message"] as? [String: Any])?["content"] as? String)
        let finishes = choices.compactMap { $0.first?["finish_reason"] as? String }
        #expect(finishes == ["length"])
        // The usage chunk comes last, with no choice; earlier chunks carry usage: null.
        #expect(choices.last?.isEmpty == true)
        #expect(chunks.last?["usage"] as? [String: Int] == usage)
        #expect(chunks.dropLast().allSatisfy { $0["usage"] is NSNull })
    }

    /// Several waiting requests with equal sampling are decoded as one batch, with the answers
    /// each would get alone; a streamed request is answered alone.
    @Test func waitingRequestsAreBatched() async throws {
        let native = try Models.native(Models.lite, batch: 4)
        let gated = GatedModel(native)
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"))
        let prompts = ["Describe the image.", "What colour is it?", "Name one thing."]
        let bodies = try prompts.map { prompt in
            try JSONSerialization.data(withJSONObject: [
                "max_tokens": 6,
                "messages": userMessage([["type": "image_url", "image_url": ["url": try dataURL(Self.image, type: "image/png")]],
                                         ["type": "text", "text": prompt]]),
            ] as [String: Any])
        }
        let first = Task { try await chat(server, bodies[0]) }
        await server.waitFor(waiting: 0, running: 1)
        let second = Task { try await chat(server, bodies[1]) }
        await server.waitFor(waiting: 1, running: 1)
        let third = Task { try await chat(server, bodies[2]) }
        await server.waitFor(waiting: 2, running: 1)
        await gated.gate.release()
        let answers = [try await first.value, try await second.value, try await third.value]
        try await server.stop()
        #expect(gated.calls.withLock { $0 } == [1, 2])
        let image = try VideoReader.readImage(path: Self.image)
        for (prompt, r) in zip(prompts, answers) {
            let alone = try await native.answer(VisionRequest(media: [.image(image)], prompt: prompt, generation: GenerationParameters(maxNewTokens: 6)))
            #expect(r.status == 200)
            #expect(((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String == alone.text)
        }
    }

    @Test func modelsAndHealth() async throws {
        let server = try await RunningServer.start(.native(try Models.native(Models.lite), name: "tiny"))
        let models = try await http(.GET, server.base + "/v1/models")
        let one = try await http(.GET, server.base + "/v1/models/tiny")
        let other = try await http(.GET, server.base + "/v1/models/org/other")
        let health = try await http(.GET, server.base + "/health")
        try await server.stop()
        #expect(models.status == 200)
        #expect(models.json["object"] as? String == "list")
        #expect((models.json["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["tiny"])
        #expect(one.status == 200 && one.json["id"] as? String == "tiny")
        #expect(other.status == 404 && other.error["code"] as? String == "model_not_found")
        #expect(health.status == 200)
        #expect(health.json["status"] as? String == "ok")
        #expect(health.json["waiting"] as? Int == 0)
    }
}
