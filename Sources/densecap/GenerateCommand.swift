import ArgumentParser
import DenseCore
import Engine
import Foundation
import Logging
import ModelAPI
import ModelHub
import RemoteEngine
import VideoIO

/// Options shared by the commands that load the language model.
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Model: a checkpoint directory (Qwen2, or NVILA whose llm/ folder is used) or a Hugging Face model id ORG/NAME[@REVISION], pulled into the HF cache on first use. Required unless --engine openai.",
        valueName: "dir-or-id"))
    var model: String?

    @Option(help: ArgumentHelp(
        "Arithmetic: fp32 (exact, default), bf16, int8, auto (bf16 vision where the CPU has native bf16, int8 LLM), or per part tower=bf16,projector=fp32,llm=int8.",
        valueName: "precision"))
    var precision: PrecisionSettings = .fp32

    @Flag(help: "Load checkpoints holding tensors the model does not use (logged) instead of refusing them.")
    var allowExtraTensors = false

    @Option(help: "Threads for BLAS and the elementwise loops (0 = one per core).")
    var threads: Int = 0

    /// `--model`, which the native engine needs.
    var name: String {
        get throws {
            guard let model else { throw CLIError(status: .usage, message: "--model is required (a checkpoint folder or a Hugging Face id)") }
            return model
        }
    }

    /// The folder holding the language model's config.json, weights and tokenizer.
    func languageModelDirectory(logger: Logger) async throws -> String {
        let directory = try await resolveModel(try name, logger: logger)
        let llm = (directory as NSString).appendingPathComponent("llm")
        if FileManager.default.fileExists(atPath: (llm as NSString).appendingPathComponent("config.json")) { return llm }
        return directory
    }
}

extension PrecisionSettings: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

/// An error the CLI reports as one line with its exit status.
struct CLIError: Error, CustomStringConvertible {
    let status: Status
    let message: String
    var description: String { message }
}

/// Runs `body`, turning the library's typed errors into one stderr line and an exit code.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        let status: Status
        switch error {
        case let e as CLIError: status = e.status
        case let e as VideoError: status = Status(e.kind)
        case let e as HubError: status = Status(e.kind)
        case is WeightError, is ConfigError, is TokenizerError, is MediaError: status = .dataError
        case is GenerationError: status = .failure
        case let e as RemoteEngineError: status = Status(remote: e)
        default: throw error
        }
        Console.error("\(error)")
        throw status.exitCode
    }
}

extension Status {
    /// A remote model's failure: 75 when another try later could succeed, 77 for a refused key,
    /// 64 for unusable settings, 76 for answers that are not the API's.
    init(remote e: RemoteEngineError) {
        switch e.reason {
        case .status(let code, _) where code == 401 || code == 403: self = .noPermission
        case .invalidSettings, .invalidRequest: self = .usage
        case .malformedResponse: self = .protocolError
        case .status(let code, _) where !e.isTransient && (400..<500).contains(code): self = .protocolError
        default: self = .tempFailure
        }
    }
}

/// Sampling and length settings shared by the commands that generate text.
struct GenerationArguments: ParsableArguments {
    @Option(help: "Stop after this many new tokens.")
    var maxNewTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy (the reference's default).")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling mass (with --temperature > 0).")
    var topP: Float = 1

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "System prompt (default: the template's).")
    var system: String?

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard temperature >= 0 else { throw ValidationError("--temperature must not be negative") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func options(stops: Set<Int>) -> GenerationOptions {
        GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed, stopTokens: stops)
    }

    /// The seam's sampling settings.
    var parameters: GenerationParameters {
        GenerationParameters(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed)
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with the language model alone (no video).",
        discussion: "The prompt is wrapped in the checkpoint's chat template (system, user, assistant turns) unless --raw is given. Text streams to stdout; timings go to stderr.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "The user's message.")
    var prompt: String

    @Flag(help: "Tokenize the prompt as is, without the chat template.")
    var raw = false

    @OptionGroup var generation: GenerationArguments
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.generate")
        Numerics.setThreads(modelOptions.threads)
        try await reportingErrors {
            let directory = try await modelOptions.languageModelDirectory(logger: logger)
            logger.debug("\(BLASRuntime.summary)")
            let loadStart = Date()
            let tokenizer = try BPETokenizer.load(directory: directory)
            let model = try Qwen2Model.load(directory: directory, logger: logger, precision: modelOptions.precision.llm,
                                            allowExtraTensors: modelOptions.allowExtraTensors)
            logger.info("loaded \(directory) in \(String(format: "%.1f", Date().timeIntervalSince(loadStart))) s")
            let text: String
            if raw {
                text = prompt
            } else {
                var messages: [ChatMessage] = []
                if let system = generation.system { messages.append(.system(system)) }
                messages.append(.user(prompt))
                if tokenizer.chatPrompt.checkpointTemplate == .unrecognized {
                    logger.warning("\(directory): the checkpoint's chat template is not the Qwen2/ChatML one densecap renders; rendering ChatML")
                }
                text = tokenizer.chatPrompt.render(messages, addGenerationPrompt: true)
            }
            let ids = tokenizer.encode(text)
            let options = generation.options(stops: tokenizer.stopTokenIDs)
            var stream = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
            let start = Date()
            var firstTokenAt: Date?
            let output = try model.generate(ids: ids, options: options, allowed: tokenizer.vocabularySize) { id in
                if firstTokenAt == nil { firstTokenAt = Date() }
                Console.stdout(stream.push(id))
                return true
            }
            Console.stdout(stream.finish() + "\n")
            let prefill = (firstTokenAt ?? Date()).timeIntervalSince(start)
            let decode = Date().timeIntervalSince(firstTokenAt ?? Date())
            logger.info("\(ids.count) prompt tokens in \(String(format: "%.2f", prefill)) s (\(String(format: "%.1f", Double(ids.count) / max(prefill, 1e-9))) tok/s); \(output.count) new tokens in \(String(format: "%.2f", decode)) s (\(String(format: "%.1f", Double(max(0, output.count - 1)) / max(decode, 1e-9))) tok/s); \(BLASRuntime.summary)")
        }
    }
}
