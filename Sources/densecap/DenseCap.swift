import ArgumentParser
import DenseCore
import Engine
import Logging
import VideoIO

@main
struct Main {
    static func main() async {
        // Before anything else: the BLAS kernel choice needs a fresh process to take effect.
        BLASRuntime.ensureFastKernels()
        BLASRuntime.parkThreads()
        Numerics.keepLargeAllocations()
        await DenseCap.main()
    }
}

struct DenseCap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "densecap",
        abstract: "Timestamped dense captions for long videos.",
        discussion: """
            Exit codes: 0 success; 3 output written but an input was damaged or truncated (see the \
            warnings); 64 bad usage; 65 input is not a decodable video (empty, not media, no video \
            stream, nothing decodable) or not a usable checkpoint; 66 input missing or unreadable \
            (also: a model id not found on the Hub, or not cached with HF_HUB_OFFLINE set); \
            69 unsupported codec; 73 output (or the model cache) cannot be written; 75 the Hub \
            could not be reached or a download failed its checks (retry); 76 the server did not \
            answer like a Hugging Face Hub; 77 the model is private or gated (set HF_TOKEN); \
            1 anything else. With several inputs, every input is \
            processed and the most severe code is returned.
            """,
        version: densecapVersion,
        subcommands: [Caption.self, Probe.self, Frames.self, Segment.self, ArchiveCommand.self, Search.self, Describe.self, Ask.self,
                      Evaluate.self, NeedleInAHaystack.self, Generate.self, Bench.self, Models.self, Doctor.self, ServeCommand.self]
    )
}

let densecapVersion = "0.1.0"

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Log progress details (and FFmpeg's warnings) to stderr.")
    var verbose = false

    @Flag(name: .shortAndLong, help: "Print only errors to stderr.")
    var quiet = false

    func makeLogger(label: String) -> Logger {
        let level: Logger.Level = verbose ? .debug : (quiet ? .error : .info)
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        (verbose ? FFmpegLogLevel.warnings : .quiet).apply()
        return logger
    }
}
