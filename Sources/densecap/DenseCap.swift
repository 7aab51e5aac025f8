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
            stream, nothing decodable); 66 input missing or unreadable; 69 unsupported codec; \
            73 output cannot be written; 1 anything else. With several inputs, every input is \
            processed and the most severe code is returned.
            """,
        version: densecapVersion,
        subcommands: [Caption.self, Probe.self, Frames.self, Segment.self, Describe.self, Ask.self, Evaluate.self, Generate.self, Bench.self, Doctor.self]
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
