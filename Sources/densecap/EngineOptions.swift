import ArgumentParser
import DenseCore
import Engine
import Foundation
import Jobs
import Logging
import ModelAPI

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

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1") }
        switch engine {
        case .native:
            if endpoint != nil || apiModel != nil { throw ValidationError("--endpoint and --api-model need --engine openai") }
        case .openai:
            guard let endpoint, URL(string: endpoint)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
                throw ValidationError("--engine openai needs --endpoint http(s)://HOST[:PORT]/v1")
            }
            guard apiModel?.isEmpty == false else { throw ValidationError("--engine openai needs --api-model NAME") }
        }
    }
}

/// The model behind the seam, as the flags say.
/// - Parameter batch: requests answered together (the native engine's decode batch).
func makeVisionModel(_ modelOptions: ModelOptions, _ engine: EngineOptions, batch: Int = 1, logger: Logger) async throws
    -> any VisionLanguageModel
{
    switch engine.engine {
    case .native:
        Numerics.setThreads(modelOptions.threads)
        let directory = try await modelOptions.checkpointDirectory(logger: logger)
        let start = Date()
        let model = try NVILAModel.load(directory: directory, logger: logger, precision: modelOptions.precision,
                                        allowExtraTensors: modelOptions.allowExtraTensors)
        logger.info("loaded \(directory) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; \(BLASRuntime.summary)")
        return NativeVisionModel(model: model, identity: try CaptionJob.nativeIdentity(directory: directory, precision: modelOptions.precision),
                                 displayName: try modelOptions.name, batch: batch)
    case .openai:
        throw CLIError(status: .unavailable, message: "--engine openai: not built yet")
    }
}
