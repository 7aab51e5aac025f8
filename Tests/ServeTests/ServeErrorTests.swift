import Engine
import Foundation
import ModelAPI
import Serve
import Testing

/// Every refusal is OpenAI's error JSON with the status clients act on; none reaches the model.
@Suite(.serialized) struct ServeErrorTests {
    static let image = fixtures + "/nvila-image.png"

    /// Checks the error JSON's shape and the status, type and code.
    func expectError(_ r: HTTPResult, _ status: Int, code: String?, type: String? = nil, _ comment: Comment? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(comment?.rawValue ?? "") \(r.text)", sourceLocation: sourceLocation)
        #expect(r.error["message"] is String, sourceLocation: sourceLocation)
        #expect(r.error.keys.sorted() == ["code", "message", "param", "type"], "\(r.text)", sourceLocation: sourceLocation)
        if let code { #expect(r.error["code"] as? String == code, "\(r.text)", sourceLocation: sourceLocation) }
        if let type { #expect(r.error["type"] as? String == type, sourceLocation: sourceLocation) }
    }

    func imagePart(_ url: String) -> [String: Any] { ["type": "image_url", "image_url": ["url": url]] }

    @Test func malformedRequestsAre400() async throws {
        let gated = GatedModel(try Models.native(Models.lite))
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"))
        let url = server.base + "/v1/chat/completions"
        let notJSON = try await http(.POST, url, body: Data("{\"messages\": [".utf8))
        let noMessages = try await http(.POST, url, body: Data("{\"model\": \"tiny\"}".utf8))
        let wrongType = try await http(.POST, url, body: Data("{\"messages\": [{\"role\": \"user\", \"content\": 3}]}".utf8))
        let empty = try await chat(server, ["messages": [[String: Any]]()])
        let badRole = try await chat(server, ["messages": [["role": "narrator", "content": "hi"]]])
        let zeroTokens = try await chat(server, ["max_tokens": 0, "messages": [["role": "user", "content": "hi"]]])
        let badTemperature = try await chat(server, ["temperature": -1, "messages": [["role": "user", "content": "hi"]]])
        let badDataURL = try await chat(server, ["messages": userMessage([imagePart("data:image/png,abc")])])
        try await server.stop()
        expectError(notJSON, 400, code: "invalid_request", type: "invalid_request_error")
        expectError(noMessages, 400, code: "invalid_request")
        #expect(noMessages.error["param"] as? String == "messages")
        expectError(wrongType, 400, code: "invalid_request")
        expectError(empty, 400, code: "invalid_request")
        expectError(badRole, 400, code: "invalid_request")
        expectError(zeroTokens, 400, code: "invalid_request")
        #expect(zeroTokens.error["param"] as? String == "max_tokens")
        expectError(badTemperature, 400, code: "invalid_request")
        expectError(badDataURL, 400, code: "invalid_request")
        #expect(gated.calls.withLock { $0 }.isEmpty)
    }

    @Test func apiKeyIsRequiredOnV1Routes() async throws {
        let server = try await RunningServer.start(.native(try Models.native(Models.lite), name: "tiny"), apiKey: "s3cret")
        let body: [String: Any] = ["max_tokens": 2, "messages": [["role": "user", "content": "hi"]]]
        let none = try await chat(server, body)
        let wrong = try await chat(server, body, headers: [("Authorization", "Bearer nope")])
        let models = try await http(.GET, server.base + "/v1/models", headers: [("Authorization", "Bearer s3cre")])
        let right = try await chat(server, body, headers: [("Authorization", "Bearer s3cret")])
        let health = try await http(.GET, server.base + "/health")
        try await server.stop()
        expectError(none, 401, code: "invalid_api_key", type: "authentication_error")
        expectError(wrong, 401, code: "invalid_api_key")
        expectError(models, 401, code: "invalid_api_key")
        #expect(right.status == 200, "\(right.text)")
        #expect(health.status == 200)
    }

    @Test func unknownModelAndRouteAre404() async throws {
        let server = try await RunningServer.start(.native(try Models.native(Models.lite), name: "tiny"))
        let model = try await chat(server, ["model": "gpt-4o", "messages": [["role": "user", "content": "hi"]]])
        let route = try await http(.GET, server.base + "/v1/embeddings")
        let post = try await http(.POST, server.base + "/v1/completions", body: Data("{}".utf8))
        try await server.stop()
        expectError(model, 404, code: "model_not_found", type: "not_found_error")
        #expect(model.error["param"] as? String == "model")
        expectError(route, 404, code: "unknown_url")
        expectError(post, 404, code: "unknown_url")
    }

    @Test func limitsAre413() async throws {
        let gated = GatedModel(try Models.native(Models.lite))
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"),
                                                   settings: ServeSettings(maxBodyBytes: 64 << 10, maxFrames: 2))
        // Small pictures (the video fixture's frames) keep these bodies under the 64 KiB limit.
        let png = try dataURL(fixtures + "/nvila-video-frame-0.png", type: "image/png")
        // A body over the limit (the padding is a long text part).
        let big = try await chat(server, ["messages": userMessage([["type": "text", "text": String(repeating: "a", count: 200 << 10)]])])
        let frame = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/nvila-video-frame-0.png")).base64EncodedString()
        let list = "data:video/png;base64," + [String](repeating: frame, count: 3).joined(separator: ",")
        let manyFrames = try await chat(server, ["messages": userMessage([["type": "video_url", "video_url": ["url": list]]])])
        let framesAndImages = try await chat(server, ["messages": userMessage([imagePart(png), imagePart(png), imagePart(png)])])
        try await server.stop()
        expectError(big, 413, code: "body_too_large")
        expectError(manyFrames, 413, code: "too_many_frames")
        expectError(framesAndImages, 413, code: "too_many_frames")
        #expect(framesAndImages.error["param"] as? String == "messages[0].content[2]")
        #expect(gated.calls.withLock { $0 }.isEmpty)
    }

    @Test func undecodableAndUnsupportedContentAre422() async throws {
        let gated = GatedModel(try Models.native(Models.lite))
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"))
        let garbage = "data:image/png;base64," + Data("not a png at all".utf8).base64EncodedString()
        let notBase64 = "data:image/jpeg;base64,%%%"
        var results: [(String, HTTPResult)] = []
        for (name, parts) in [
            ("garbage png", [imagePart(garbage)]),
            ("not base64", [imagePart(notBase64)]),
            ("gif", [imagePart("data:image/gif;base64,R0lGODlh")]),
            ("http url", [imagePart("https://example.com/cat.png")]),
            ("audio part", [["type": "input_audio", "input_audio": ["data": "", "format": "wav"]]]),
            ("mp4 data url", [["type": "video_url", "video_url": ["url": "data:video/mp4;base64,AAAA"]]]),
            ("bad frame", [["type": "video_url", "video_url": ["url": "data:video/jpeg;base64,AAAA,BBBB"]]]),
        ] as [(String, [[String: Any]])] {
            results.append((name, try await chat(server, ["messages": userMessage(parts)])))
        }
        let multiTurn = try await chat(server, ["messages": [["role": "user", "content": "hi"], ["role": "assistant", "content": "hello"],
                                                            ["role": "user", "content": "again"]]])
        let twoChoices = try await chat(server, ["n": 2, "messages": [["role": "user", "content": "hi"]]])
        try await server.stop()
        for (name, r) in results {
            expectError(r, 422, code: nil, "\(name)")
        }
        #expect(results[0].1.error["code"] as? String == "invalid_image")
        #expect(results[0].1.error["param"] as? String == "messages[0].content[0].image_url")
        #expect(results[3].1.error["code"] as? String == "unsupported_content")
        expectError(multiTurn, 422, code: "unsupported_content")
        expectError(twoChoices, 422, code: "unsupported_content")
        #expect(gated.calls.withLock { $0 }.isEmpty)
    }

    /// File URLs: only under an allowed folder, symbolic links resolved first.
    @Test func fileURLsOutsideAllowedFoldersAreRefused() async throws {
        let allowed = temporaryFolder("allowed")
        let outside = temporaryFolder("outside")
        try FileManager.default.copyItem(atPath: Self.image, toPath: allowed + "/in.png")
        try FileManager.default.copyItem(atPath: Self.image, toPath: outside + "/out.png")
        try FileManager.default.createSymbolicLink(atPath: allowed + "/escape.png", withDestinationPath: outside + "/out.png")
        try FileManager.default.createSymbolicLink(atPath: allowed + "/up", withDestinationPath: outside)
        let server = try await RunningServer.start(.native(try Models.native(Models.lite), name: "tiny"),
                                                   settings: ServeSettings(allowedFolders: [allowed]))
        func ask(_ url: String) async throws -> HTTPResult {
            try await chat(server, ["max_tokens": 2, "messages": userMessage([imagePart(url), ["type": "text", "text": "hi"]])])
        }
        let inside = try await ask("file://" + allowed + "/in.png")
        let out = try await ask("file://" + outside + "/out.png")
        let dots = try await ask("file://" + allowed + "/../" + (outside as NSString).lastPathComponent + "/out.png")
        let link = try await ask("file://" + allowed + "/escape.png")
        let folderLink = try await ask("file://" + allowed + "/up/out.png")
        let prefix = try await ask("file://" + allowed + "-other/x.png")
        let missing = try await ask("file://" + allowed + "/missing.png")
        try await server.stop()
        let none = try await RunningServer.start(.native(try Models.native(Models.lite), name: "tiny"))
        let noFolders = try await chat(none, ["messages": userMessage([imagePart("file://" + allowed + "/in.png")])])
        try await none.stop()
        #expect(inside.status == 200, "\(inside.text)")
        for (name, r) in [("outside", out), ("dots", dots), ("link", link), ("folder link", folderLink), ("no folders", noFolders)] {
            expectError(r, 403, code: "file_not_allowed", type: "permission_error", "\(name)")
        }
        #expect(prefix.status == 400 || prefix.status == 403)
        expectError(missing, 400, code: "invalid_request")
    }

    /// max-queue 1: one request held in the model, one waiting, the next is refused with 429.
    @Test func fullQueueIs429() async throws {
        let gated = GatedModel(try Models.native(Models.lite))
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"), settings: ServeSettings(maxQueue: 1, batch: 1))
        let body: [String: Any] = ["max_tokens": 2, "messages": [["role": "user", "content": "hi"]]]
        let data = try JSONSerialization.data(withJSONObject: body)
        let first = Task { try await chat(server, data) }
        await server.waitFor(waiting: 0, running: 1)
        let second = Task { try await chat(server, data) }
        await server.waitFor(waiting: 1, running: 1)
        let refused = try await chat(server, body)
        var streamed = body
        streamed["stream"] = true
        let refusedStream = try await chat(server, streamed)
        await gated.gate.release()
        let (a, b) = (try await first.value, try await second.value)
        try await server.stop()
        expectError(refused, 429, code: "queue_full", type: "rate_limit_error")
        #expect(refused.headers.contains { $0.0.lowercased() == "retry-after" })
        expectError(refusedStream, 429, code: "queue_full")
        #expect(a.status == 200 && b.status == 200)
        #expect(gated.calls.withLock { $0 } == [1, 1])
    }

    /// Until the model is loaded every route answers 503; then it serves.
    @Test func notReadyIs503() async throws {
        let gate = Gate()
        let native = try Models.native(Models.lite)
        let server = try await RunningServer.start({
            await gate.wait()
            return .native(native, name: "tiny")
        }, waitReady: false)
        let health = try await http(.GET, server.base + "/health")
        let early = try await chat(server, ["messages": [["role": "user", "content": "hi"]]])
        await gate.release()
        while await server.server.load() == nil { await Task.yield() }
        let later = try await chat(server, ["max_tokens": 2, "messages": [["role": "user", "content": "hi"]]])
        try await server.stop()
        expectError(health, 503, code: "not_ready", type: "server_error")
        expectError(early, 503, code: "not_ready")
        #expect(later.status == 200)
    }

    /// Stopping: queued requests are still answered.
    @Test func stopAnswersQueuedRequests() async throws {
        let gated = GatedModel(try Models.native(Models.lite))
        let server = try await RunningServer.start(ServedModel(model: gated, name: "tiny"), settings: ServeSettings(batch: 1))
        let data = try JSONSerialization.data(withJSONObject: ["max_tokens": 2, "messages": [["role": "user", "content": "hi"]]] as [String: Any])
        let first = Task { try await chat(server, data) }
        await server.waitFor(waiting: 0, running: 1)
        let stopping = Task { try await server.stop() }
        await gated.gate.release()
        let answer = try await first.value
        try await stopping.value
        #expect(answer.status == 200)
    }
}
