import DenseCore
import Foundation
import ModelAPI
@testable import RemoteEngine
import Testing
import VideoIO

/// The frame encoder read back through VideoIO's decoder.
@Suite struct ImageEncoderTests {
    @Test(arguments: [(64, 48), (33, 17), (1, 1)])
    func pngRoundTripsExactly(width: Int, height: Int) throws {
        let image = gradient(width: width, height: height, seed: 3)
        let png = try ImageEncoder(format: .png).encode(image)
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        #expect(try decode(Data(png), ext: "png") == image)
    }

    @Test(arguments: [(64, 48), (33, 17)])
    func jpegRoundTripsClosely(width: Int, height: Int) throws {
        // Seed 0: no wrap-around edge, a gradient JPEG keeps well.
        let image = gradient(width: width, height: height)
        let encoder = ImageEncoder(format: .jpeg(quality: 90))
        _ = try encoder.encode(gradient(width: width, height: height, seed: 4))
        // The second picture through one encoder (what a video's frames do).
        let jpeg = try encoder.encode(image)
        #expect(Array(jpeg.prefix(3)) == [0xFF, 0xD8, 0xFF])
        let back = try decode(Data(jpeg), ext: "jpg")
        #expect(back.width == width)
        #expect(back.height == height)
        let diffs = zip(back.pixels, image.pixels).map { abs(Int($0) - Int($1)) }
        let mean = Double(diffs.reduce(0, +)) / Double(diffs.count)
        // A smooth gradient at quality 90: a few levels off on average, never wildly.
        #expect(mean < 3)
        #expect(diffs.max()! < 40)
        // Lossy for real: not the PNG's exact bytes back.
        #expect(back != image || width * height < 4)
    }

    @Test func lowerQualityMakesSmallerFiles() throws {
        let image = gradient(width: 96, height: 64, seed: 2)
        let encoder = ImageEncoder(format: .jpeg(quality: 30))
        let low = try encoder.encode(image)
        let high = try ImageEncoder(format: .jpeg(quality: 98)).encode(image)
        #expect(low.count < high.count)
        // The same encoder handles a second size.
        #expect(try decode(Data(try encoder.encode(gradient(width: 20, height: 10))), ext: "jpg").width == 20)
    }

    @Test(arguments: [(100, 1), (95, 1), (90, 2), (75, 4), (50, 8), (25, 16), (10, 31), (1, 31)])
    func qualityMapsToQscaleAsLibjpegScalesItsTables(quality: Int, qscale: Int) {
        #expect(ImageEncoder.qscale(quality: quality) == qscale)
    }

    @Test(arguments: [
        (1920, 1080, 448 as Int?, 448, 252), (1080, 1920, 448, 252, 448), (320, 240, 448, 320, 240),
        (448, 100, 448, 448, 100), (1000, 3, 100, 100, 1), (640, 480, nil, 640, 480),
    ])
    func sentSizeKeepsTheAspectAndNeverEnlarges(width: Int, height: Int, limit: Int?, sentWidth: Int, sentHeight: Int) {
        let size = FrameEncoder.sentSize(width: width, height: height, limit: limit)
        #expect(size.width == sentWidth)
        #expect(size.height == sentHeight)
    }
}

/// openai-python's retry rules as a table.
@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxRetries: 2)

    @Test(arguments: [
        (408, true), (409, true), (429, true), (500, true), (502, true), (503, true), (504, true),
        (400, false), (401, false), (403, false), (404, false), (422, false),
    ])
    func statusesThatAreRetried(status: Int, retried: Bool) {
        #expect(policy.shouldRetry(status: status, headers: [:]) == retried)
    }

    @Test func headersOverrideTheStatus() {
        #expect(policy.shouldRetry(status: 400, headers: ["x-should-retry": "true"]))
        #expect(!policy.shouldRetry(status: 503, headers: ["x-should-retry": "false"]))
        #expect(!policy.shouldRetry(status: 429, headers: ["retry-after": "121"]))
        #expect(policy.shouldRetry(status: 429, headers: ["retry-after": "120"]))
    }

    @Test func backoffDoublesFromHalfASecondUpToEight() {
        #expect(policy.delay(retriesTaken: 0, headers: [:], random: 0) == 0.5)
        #expect(policy.delay(retriesTaken: 1, headers: [:], random: 0) == 1)
        #expect(policy.delay(retriesTaken: 3, headers: [:], random: 0) == 4)
        #expect(policy.delay(retriesTaken: 4, headers: [:], random: 0) == 8)
        #expect(policy.delay(retriesTaken: 9, headers: [:], random: 0) == 8)
        // Jitter takes off up to a quarter.
        #expect(policy.delay(retriesTaken: 0, headers: [:], random: 0.5) == 0.4375)
        #expect(policy.delay(retriesTaken: 4, headers: [:], random: 0.999) > 6)
    }

    @Test func serverDirectedWaits() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(policy.delay(retriesTaken: 0, headers: ["retry-after": "3"], random: 0.9) == 3)
        #expect(policy.delay(retriesTaken: 0, headers: ["retry-after": "2.5"], random: 0.9) == 2.5)
        #expect(policy.delay(retriesTaken: 0, headers: ["retry-after-ms": "250", "retry-after": "9"], random: 0.9) == 0.25)
        // An HTTP date 30 s ahead.
        let date = "Tue, 14 Nov 2023 22:13:50 GMT"
        #expect(RetryPolicy.retryAfter(["retry-after": date], now: now) == 30)
        #expect(policy.delay(retriesTaken: 0, headers: ["retry-after": date], now: now, random: 0) == 30)
        // Zero, negative, too long or unreadable: the back-off instead.
        for value in ["0", "-4", "121", "soon"] {
            #expect(policy.delay(retriesTaken: 1, headers: ["retry-after": value], now: now, random: 0) == 1)
        }
    }
}

@Suite struct SettingsTests {
    @Test func identityCoversWhatChangesAnswersOnly() throws {
        let base = RemoteEngineSettings(endpoint: "http://gpu:8000/v1/", model: "Qwen/Qwen2.5-VL-7B-Instruct")
        #expect(base.identity == "openai:http://gpu:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct|image_url|jpeg-q90|448px")
        #expect(base.chatCompletionsURL == "http://gpu:8000/v1/chat/completions")
        var same = base
        same.parallel = 16
        same.timeoutSeconds = 30
        same.maxRetries = 5
        same.apiKeyVariable = "VLLM_KEY"
        #expect(same.identity == base.identity)
        for change in [
            { (s: inout RemoteEngineSettings) in s.model = "other" }, { $0.endpoint = "http://gpu:9000/v1" },
            { $0.transport = .videoURL }, { $0.frameFormat = .png }, { $0.imageSize = 336 }, { $0.imageSize = nil },
            { $0.jpegQuality = 80 },
        ] {
            var changed = base
            change(&changed)
            #expect(changed.identity != base.identity)
        }
        let decoded = try JSONDecoder().decode(RemoteEngineSettings.self, from: try JSONEncoder().encode(same))
        #expect(decoded == same)
    }

    @Test func theKeyComesFromTheNamedVariable() {
        var settings = RemoteEngineSettings(endpoint: "http://h/v1", model: "m")
        #expect(settings.apiKey(from: ["OPENAI_API_KEY": "k1"]) == "k1")
        settings.apiKeyVariable = "MY_KEY"
        #expect(settings.apiKey(from: ["OPENAI_API_KEY": "k1"]) == nil)
        #expect(settings.apiKey(from: ["MY_KEY": ""]) == nil)
        #expect(settings.apiKey(from: ["MY_KEY": "k2"]) == "k2")
    }

    @Test(arguments: ["ftp://h/v1", "not a url", "http:///v1"])
    func badEndpointsAreRefused(endpoint: String) {
        let settings = RemoteEngineSettings(endpoint: endpoint, model: "m")
        #expect(throws: RemoteEngineError.self) { try settings.validate() }
    }

    @Test func badNumbersAreRefused() {
        for change in [
            { (s: inout RemoteEngineSettings) in s.parallel = 0 }, { $0.jpegQuality = 0 }, { $0.jpegQuality = 101 },
            { $0.imageSize = 0 }, { $0.timeoutSeconds = 0 }, { $0.maxRetries = -1 }, { $0.model = "" },
            { $0.apiKeyVariable = "A KEY" },
        ] {
            var settings = RemoteEngineSettings(endpoint: "http://127.0.0.1:8000/v1", model: "m")
            change(&settings)
            #expect(throws: RemoteEngineError.self) { try settings.validate() }
        }
        #expect(throws: Never.self) { try RemoteEngineSettings(endpoint: "https://api.example.com/v1", model: "m").validate() }
    }
}

/// Stream parsing on its own: lines split anywhere, comments and usage chunks.
@Suite struct StreamParsingTests {
    @Test func linesSplitAcrossReadsAndCarriageReturns() throws {
        let events = """
            : comment\r
            event: message\r
            data: {"model":"m1","choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}\r
            \r
            data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}

            data:{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}

            data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}

            data: [DONE]

            data: {"choices":[{"delta":{"content":"after done"}}]}

            """
        var stream = StreamAccumulator()
        var pieces: [String] = []
        for byte in Array(events.utf8) { pieces += try stream.push([byte]) }
        pieces += try stream.finishStream()
        #expect(pieces == ["Hel", "lo"])
        #expect(stream.done)
        #expect(stream.answer(requestedModel: "asked") == VisionAnswer(text: "Hello", finishReason: .stop, promptTokens: 5,
                                                                         completionTokens: 2, model: "m1"))
    }

    @Test func contentAsAListOfPartsAndMissingUsage() throws {
        let body = Array(#"{"choices":[{"message":{"content":[{"type":"text","text":"a "},{"type":"text","text":"b"}]},"finish_reason":"content_filter"}]}"#.utf8)
        let answer = try parseCompletion(body, requestedModel: "asked")
        #expect(answer == VisionAnswer(text: "a b", finishReason: .stop, promptTokens: 0, completionTokens: 0, model: "asked"))
        #expect(throws: MalformedResponse.self) { try parseCompletion(Array(#"{"choices":[]}"#.utf8), requestedModel: "m") }
        #expect(throws: MalformedResponse.self) { try parseCompletion(Array("<html>".utf8), requestedModel: "m") }
    }

    @Test func errorBodiesInTheirUsualShapes() {
        #expect(APIErrorBody.message(in: Array(#"{"error":{"message":"m1","type":"x","code":"rate_limit"}}"#.utf8)) == "m1")
        #expect(APIErrorBody.message(in: Array(#"{"object":"error","message":"m2","code":400}"#.utf8)) == "m2")
        #expect(APIErrorBody.message(in: Array(#"{"detail":"Not Found"}"#.utf8)) == "Not Found")
        #expect(APIErrorBody.message(in: Array("upstream timed out\n".utf8)) == "upstream timed out")
        #expect(APIErrorBody.message(in: []) == nil)
    }
}
