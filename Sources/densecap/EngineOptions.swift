import ArgumentParser
import DenseCore
import Engine
import Foundation
import Jobs
import Logging
import ModelAPI
import RemoteEngine

/// Which model answers.
enum EngineKind: String, ExpressibleByArgument, CaseIterable {
    /// NVILA on this machine's CPU, loaded from --model.
    case native
    /// An OpenAI-compatible chat server (SGLang, vLLM, llama.cpp's server, `densecap serve`).
    case openai
}

/// The flags that choose the model behind the seam: the native engine, or a remote server.
struct EngineOptions: ParsableArguments {
    @Option(help: "native: NVILA on this CPU (--model); openai: an OpenAI-compatible server (--endpoint, --api-model).")
    var engine: EngineKind = .native

    @Option(help: ArgumentHelp("Base URL of the OpenAI-compatible API (with --engine openai).", valueName: "url"))
    var endpoint: String?

    @Option(help: ArgumentHelp("The model name the server serves (with --engine openai).", valueName: "name"))
    var apiModel: String?

    @Option(help: ArgumentHelp("Environment variable that holds the API key (the key itself is never a flag, never recorded).", valueName: "name"))
    var apiKeyEnv = "OPENAI_API_KEY"

    @Option(help: "Requests in flight at once to the server (with --engine openai): a caption job's events, bounded.")
    var parallel = 4

    @Option(help: "How frames travel: image_url (one picture per frame, its time stated in the text) or video_url (vLLM's frame list; the native engine's prompt).")
    var transport: RemoteEngineSettings.Transport = .imageURL

    @Option(help: "Frame encoding: jpeg or png (lossless, larger).")
    var frameFormat: RemoteEngineSettings.FrameFormat = .jpeg

    @Option(help: "Long side of each frame sent, in pixels (shrunk with Pillow's bicubic, aspect kept; 0 = as decoded).")
    var imageSize = 448

    @Option(help: "JPEG quality, 1–100.")
    var jpegQuality = 90

    @Option(help: "Seconds one try may take (the whole answer).")
    var timeout: Double = 600

    @Option(help: "Tries after the first, for connection errors, timeouts, 408, 409, 429 and 5xx (back-off 0.5–8 s, Retry-After honoured).")
    var maxRetries = 2

    @Flag(inversion: .prefixedNo, help: "Also send the token limit as the deprecated max_tokens (older llama.cpp servers read only that).")
    var maxTokensField = true

    /// The remote client's settings (with --engine openai).
    func remoteSettings() -> RemoteEngineSettings {
        var s = RemoteEngineSettings(endpoint: endpoint ?? "", model: apiModel ?? "")
        s.apiKeyVariable = apiKeyEnv
        s.transport = transport
        s.frameFormat = frameFormat
        s.imageSize = imageSize > 0 ? imageSize : nil
        s.jpegQuality = jpegQuality
        s.parallel = parallel
        s.timeoutSeconds = timeout
        s.maxRetries = maxRetries
        s.legacyMaxTokens = maxTokensField
        return s
    }

    func validate() throws {
        switch engine {
        case .native:
            if endpoint != nil || apiModel != nil { throw ValidationError("--endpoint and --api-model need --engine openai") }
        case .openai:
            guard endpoint != nil, apiModel != nil else { throw ValidationError("--engine openai needs --endpoint URL and --api-model NAME") }
            // The client's own checks: an http(s) URL, a model name, sizes, --parallel, timeouts.
            do { try remoteSettings().validate() } catch { throw ValidationError("\(error)") }
        }
    }
}

/// The model behind the seam, as the flags say.
/// - Parameters:
///   - batch: requests answered together (the native engine's decode batch).
///   - recorded: whether the model's identity is recorded (outputs, resume); when not (`ask`,
///     `describe`), a local checkpoint is not hashed.
func makeVisionModel(_ modelOptions: ModelOptions, _ engine: EngineOptions, batch: Int = 1, recorded: Bool = true, logger: Logger)
    async throws -> any VisionLanguageModel
{
    switch engine.engine {
    case .native:
        return try await makeNativeModel(modelOptions, batch: batch, recorded: recorded, logger: logger)
    case .openai:
        let settings = engine.remoteSettings()
        return try OpenAIVisionModel(settings: settings, apiKey: settings.apiKey(), logger: logger)
    }
}

extension RemoteEngineSettings.Transport: ExpressibleByArgument {}
extension RemoteEngineSettings.FrameFormat: ExpressibleByArgument {}

/// NVILA loaded from `--model` behind the seam, named `displayName` (default: `--model`). Its
/// identity is `CaptionJob.nativeIdentity` (a SHA-256 over a local checkpoint's files) when
/// `recorded`, else the folder's path.
func makeNativeModel(_ modelOptions: ModelOptions, displayName: String? = nil, batch: Int, recorded: Bool = true, logger: Logger)
    async throws -> NativeVisionModel
{
    Numerics.setThreads(modelOptions.threads)
    let directory = try await modelOptions.checkpointDirectory(logger: logger)
    let start = Date()
    let model = try NVILAModel.load(directory: directory, logger: logger, precision: modelOptions.precision,
                                    allowExtraTensors: modelOptions.allowExtraTensors)
    logger.info("loaded \(directory) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; \(BLASRuntime.summary)")
    let identity = recorded ? try CaptionJob.nativeIdentity(directory: directory, precision: modelOptions.precision) : "path:\(directory)"
    return NativeVisionModel(model: model, identity: identity, displayName: try displayName ?? modelOptions.name, batch: batch, logger: logger)
}
