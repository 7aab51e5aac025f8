import DenseCore
import Foundation
import Logging
import ModelAPI
import RemoteEngine
import Synchronization
import TestOpenAIServer

/// Records the back-off waits a model asked for and returns at once.
final class SleepRecorder: Sendable {
    private let waits = Mutex<[Double]>([])
    var recorded: [Double] { waits.withLock { $0 } }
    var sleeper: OpenAIVisionModel.Sleeper {
        { seconds in self.waits.withLock { $0.append(seconds) } }
    }
}

let testLogger = Logger(label: "remote-engine-tests")

/// A model on `server` with test-friendly settings (fast timeout only where a test asks).
func makeModel(
    _ server: TestOpenAIServer, apiKey: String? = nil, sleeps: SleepRecorder = SleepRecorder(),
    _ configure: (inout RemoteEngineSettings) -> Void = { _ in }
) throws -> OpenAIVisionModel {
    var settings = RemoteEngineSettings(endpoint: server.endpoint, model: "test-vlm")
    configure(&settings)
    return try OpenAIVisionModel(settings: settings, apiKey: apiKey, logger: testLogger, sleep: sleeps.sleeper)
}

/// A smooth colour gradient, `width × height`, different per `seed`.
func gradient(width: Int, height: Int, seed: Int = 0) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            pixels[i] = UInt8((x * 255 / max(1, width - 1) + seed * 40) % 256)
            pixels[i + 1] = UInt8((y * 255 / max(1, height - 1) + seed * 70) % 256)
            pixels[i + 2] = UInt8(((x + y) * 127 / max(1, width + height - 2) + seed * 20) % 256)
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// A video request with `count` frames at 0, 1.5, 3, … s.
func videoRequest(frames count: Int = 3, width: Int = 64, height: Int = 48, prompt: String = "Describe the video.",
                  system: String? = nil, generation: GenerationParameters = .init(maxNewTokens: 32)) -> VisionRequest {
    let frames = (0..<count).map { k in
        VisionFrame(time: MediaTime(Rational(Int64(3 * k), 2)), image: gradient(width: width, height: height, seed: k))
    }
    return VisionRequest(media: [.video(frames)], prompt: prompt, system: system, generation: generation)
}

/// The user message's content parts of a recorded request.
func userParts(_ request: RecordedRequest) -> [[String: Any]] {
    let messages = request.json["messages"] as? [[String: Any]] ?? []
    return messages.last?["content"] as? [[String: Any]] ?? []
}

/// Runs `body` with a fresh server, stopping it afterwards.
func withServer<T>(_ body: (TestOpenAIServer) async throws -> T) async throws -> T {
    let server = try await TestOpenAIServer.start()
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// The `RemoteEngineError` `body` throws (nil when it throws none or another error).
func remoteError(_ body: () async throws -> VisionAnswer) async -> RemoteEngineError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error as? RemoteEngineError
    }
}
