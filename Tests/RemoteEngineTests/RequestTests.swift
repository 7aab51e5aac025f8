import DenseCore
import Foundation
import ModelAPI
import RemoteEngine
import Testing
import TestOpenAIServer
import VideoIO

/// What goes over the wire: the body's fields, the parts in order, the headers.
@Suite struct RequestTests {
    @Test func samplingIsAlwaysSentAndFramesCarryTheirTimes() async throws {
        try await withServer { server in
            let model = try makeModel(server)
            let generation = GenerationParameters(maxNewTokens: 40, temperature: 0, topP: 1, seed: 0)
            let answer = try await model.answer(videoRequest(frames: 3, system: "Be brief.", generation: generation))
            #expect(answer.text == "A default answer.")
            let request = try #require(server.state.requests.first)
            #expect(request.path == "/v1/chat/completions")
            let json = request.json
            #expect(json["model"] as? String == "test-vlm")
            // Greedy defaults are sent too: no server's own default decides an answer.
            #expect(json["temperature"] as? Double == 0)
            #expect(json["top_p"] as? Double == 1)
            #expect(json["seed"] as? Int == 0)
            #expect(json["max_completion_tokens"] as? Int == 40)
            #expect(json["max_tokens"] as? Int == 40)
            #expect(json["stream"] == nil)
            #expect(json["stream_options"] == nil)
            let messages = try #require(json["messages"] as? [[String: Any]])
            #expect(messages.count == 2)
            #expect(messages[0]["role"] as? String == "system")
            #expect(messages[0]["content"] as? String == "Be brief.")
            #expect(messages[1]["role"] as? String == "user")
            let parts = userParts(request)
            #expect(parts.map { $0["type"] as? String } == ["text", "image_url", "text", "image_url", "text", "image_url", "text"])
            #expect(parts.compactMap { $0["text"] as? String }
                == ["Frame at 0.000 s:", "Frame at 1.500 s:", "Frame at 3.000 s:", "Describe the video."])
            for part in parts where part["type"] as? String == "image_url" {
                let url = try #require((part["image_url"] as? [String: Any])?["url"] as? String)
                #expect(url.hasPrefix("data:image/jpeg;base64,"))
                let bytes = try #require(Data(base64Encoded: String(url.dropFirst("data:image/jpeg;base64,".count))))
                #expect(Array(bytes.prefix(3)) == [0xFF, 0xD8, 0xFF])
            }
            #expect(request.headers["authorization"] == nil)
            #expect(request.headers["content-type"] == "application/json")
        }
    }

    @Test func samplingValuesAndNoSystemMessage() async throws {
        try await withServer { server in
            let model = try makeModel(server) { $0.legacyMaxTokens = false }
            let generation = GenerationParameters(maxNewTokens: 7, temperature: 0.7, topP: 0.9, seed: 1234)
            _ = try await model.answer(videoRequest(frames: 1, generation: generation))
            let request = try #require(server.state.requests.first)
            let json = request.json
            // The Float's decimal form goes out, as a Python client writes it.
            let text = String(decoding: request.body, as: UTF8.self)
            #expect(text.contains("\"temperature\":0.7,"))
            #expect(text.contains("\"top_p\":0.9"))
            #expect((json["temperature"] as? Double).map { abs($0 - 0.7) < 1e-6 } == true)
            #expect((json["top_p"] as? Double).map { abs($0 - 0.9) < 1e-6 } == true)
            #expect(json["seed"] as? Int == 1234)
            #expect(json["max_completion_tokens"] as? Int == 7)
            #expect(json["max_tokens"] == nil)
            let messages = try #require(json["messages"] as? [[String: Any]])
            #expect(messages.map { $0["role"] as? String } == ["user"])
        }
    }

    @Test func videoURLSendsOneFrameListAndThePromptAlone() async throws {
        try await withServer { server in
            let model = try makeModel(server) { $0.transport = .videoURL }
            _ = try await model.answer(videoRequest(frames: 4))
            let parts = userParts(try #require(server.state.requests.first))
            #expect(parts.map { $0["type"] as? String } == ["video_url", "text"])
            #expect(parts[1]["text"] as? String == "Describe the video.")
            let url = try #require((parts[0]["video_url"] as? [String: Any])?["url"] as? String)
            #expect(url.hasPrefix("data:video/jpeg;base64,"))
            let frames = url.dropFirst("data:video/jpeg;base64,".count).split(separator: ",")
            #expect(frames.count == 4)
            for frame in frames {
                let bytes = try #require(Data(base64Encoded: String(frame)))
                #expect(Array(bytes.prefix(2)) == [0xFF, 0xD8])
            }
            #expect(!url.contains("Frame at"))
        }
    }

    @Test func anImageIsOneImagePartAndPNGIsLossless() async throws {
        try await withServer { server in
            let model = try makeModel(server) {
                $0.frameFormat = .png
                $0.imageSize = nil
            }
            let image = gradient(width: 40, height: 30)
            _ = try await model.answer(VisionRequest(media: [.image(image)], prompt: "What is this?"))
            let parts = userParts(try #require(server.state.requests.first))
            #expect(parts.map { $0["type"] as? String } == ["image_url", "text"])
            let url = try #require((parts[0]["image_url"] as? [String: Any])?["url"] as? String)
            #expect(url.hasPrefix("data:image/png;base64,"))
            let png = try #require(Data(base64Encoded: String(url.dropFirst("data:image/png;base64,".count))))
            #expect(try decode(png, ext: "png") == image)
        }
    }

    @Test func framesAreShrunkToTheImageSizeOnTheirLongSide() async throws {
        try await withServer { server in
            let model = try makeModel(server) {
                $0.frameFormat = .png
                $0.imageSize = 32
            }
            _ = try await model.answer(VisionRequest(media: [.image(gradient(width: 64, height: 48))], prompt: "?"))
            let request = try #require(server.state.requests.first)
            let url = try #require((userParts(request)[0]["image_url"] as? [String: Any])?["url"] as? String)
            let sent = try decode(try #require(Data(base64Encoded: String(url.dropFirst("data:image/png;base64,".count)))), ext: "png")
            #expect(sent.width == 32)
            #expect(sent.height == 24)
        }
    }

    @Test func theKeyGoesOnlyInTheAuthorizationHeader() async throws {
        try await withServer { server in
            let key = "sk-test-secret-1234"
            let model = try makeModel(server, apiKey: key)
            _ = try await model.answer(videoRequest(frames: 1))
            let request = try #require(server.state.requests.first)
            #expect(request.headers["authorization"] == "Bearer \(key)")
            #expect(!String(decoding: request.body, as: UTF8.self).contains(key))
            #expect(!model.identity.contains(key))
            let recorded = String(decoding: try JSONEncoder().encode(model.settings), as: UTF8.self)
            #expect(!recorded.contains(key))
            #expect(recorded.contains("OPENAI_API_KEY"))
            // An empty key is no key.
            let keyless = try makeModel(server, apiKey: "")
            server.state.reset()
            _ = try await keyless.answer(videoRequest(frames: 1))
            #expect(try #require(server.state.requests.first).headers["authorization"] == nil)
        }
    }

    @Test func aFrameWithoutPixelsIsRefusedBeforeAnythingIsSent() async throws {
        try await withServer { server in
            let model = try makeModel(server)
            let request = VisionRequest(media: [.video([VisionFrame(time: .zero, image: nil, prepared: 1)])], prompt: "?")
            let error = try #require(await remoteError { try await model.answer(request) })
            guard case .invalidRequest = error.reason else { Issue.record("got \(error)"); return }
            #expect(error.tries == 0)
            #expect(server.state.requests.isEmpty)
        }
    }
}

/// An encoded picture read back through VideoIO's decoder.
func decode(_ bytes: Data, ext: String) throws -> RGBImage {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("remote-\(UUID().uuidString).\(ext)").path
    try bytes.write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try VideoReader.readImage(path: path)
}
