import ArgumentParser
import DenseCore
import Engine
import Foundation
import Jobs
import Logging
import Serve

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an NVILA model over the OpenAI chat-completions API.",
        discussion: """
            POST /v1/chat/completions (text, image_url as data URLs or file:// URLs under --allow-folder, video_url as a \
            data:video/jpeg;base64 frame list or a video file with VILA's frames/fps, stream: true for server-sent events), \
            GET /v1/models, GET /health. The first stdout line is the bound address (http://HOST:PORT); /health answers 503 \
            until the model is loaded. SIGTERM or Ctrl-C: new requests get 503, queued ones are answered, then it exits.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Address to bind (loopback by default; 0.0.0.0 exposes the server to the network).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 = any free port; the bound address is printed first on stdout).")
    var port = 8000

    @Option(help: ArgumentHelp("The model id clients send and /v1/models lists (default: --model as given).", valueName: "name"))
    var servedModelName: String?

    @Option(help: ArgumentHelp("Require 'Authorization: Bearer KEY' on /v1 routes, KEY read from this environment variable.",
                               valueName: "VAR"))
    var apiKeyEnv: String?

    @Option(help: "Requests that may wait for the model; one more is refused with 429.")
    var maxQueue = 64

    @Option(help: "Largest request body in bytes (413 beyond it).")
    var maxBodyBytes = 64 << 20

    @Option(help: "Most pictures (images plus video frames) in one request (413 beyond it).")
    var maxFrames = 64

    @Option(help: ArgumentHelp("A folder whose files file:// URLs may name (repeatable; none: file URLs are refused).",
                               valueName: "path"))
    var allowFolder: [String] = []

    @Option(help: "Waiting requests with the same sampling settings decoded together as one batch.")
    var batch = 4

    @OptionGroup var global: GlobalOptions

    var settings: ServeSettings {
        ServeSettings(host: host, port: port, maxQueue: maxQueue, maxBodyBytes: maxBodyBytes, maxFrames: maxFrames,
                      allowedFolders: allowFolder, batch: batch)
    }

    func validate() throws {
        guard modelOptions.model != nil else { throw ValidationError("--model is required: the checkpoint to serve") }
        do { try settings.validate() } catch let error as ServeSetupError { throw ValidationError(error.message) }
        if let apiKeyEnv, (ProcessInfo.processInfo.environment[apiKeyEnv] ?? "").isEmpty {
            throw ValidationError("--api-key-env \(apiKeyEnv): the environment variable is not set")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.serve")
        let apiKey = apiKeyEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
        let options = modelOptions
        let server = ChatServer(settings: settings, modelName: try servedModelName ?? options.name, apiKey: apiKey, logger: logger)
        try await reportingErrors {
            do {
                try await server.run(
                    load: {
                        let native = try await makeNativeModel(options, displayName: server.modelName, batch: settings.batch, logger: logger)
                        return .native(native, name: server.modelName)
                    },
                    onListening: { host, port in
                        let shown = host.contains(":") ? "[\(host)]" : host
                        Console.stdout("http://\(shown):\(port)\n")
                        logger.info("listening on http://\(shown):\(port)")
                    })
            } catch let error as ServeSetupError {
                throw CLIError(status: .unavailable, message: error.message)
            }
        }
    }
}
