import ArgumentParser
import DenseCore
import Engine
import Foundation
import Jobs
import Logging
import ModelAPI
import NIAH

struct NeedleInAHaystack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "niah",
        abstract: "Needle-in-a-haystack evaluation (V-NIAH): hide an image in a long video, sweep length × depth.",
        discussion: """
            The protocol of LongVA's vision_niah and VILA's port: haystack frames sampled every \
            round(avg_fps)-th decoded frame (or --fps), their features computed once and cached \
            (<out>/haystack-<mode>.features); for each cell of N frames and depth d the needle goes \
            before frame int(d·N), each needle's answer is teacher-forced after its question and scored \
            by --score. With --answer generated the model is asked instead, through the engine seam \
            (--engine native, or --engine openai for a remote server): the cell's decoded frames and \
            the needle as one video, the question as the prompt, greedy, the text scored by the text \
            rules. Outputs in --out: all_accuracies.json, avg_accuracy.txt, heatmap.png, \
            heatmap.html, run.json and one file per cell under cells/ (a rerun computes only missing \
            cells). Exit codes: 0 done; 3 done but some cells refused (memory) or failed (a model \
            error, recorded and computed again by a rerun); 64 bad usage or an \
            --out holding a different run; 65 bad input (empty or malformed dataset, haystack shorter \
            than the sweep, not a video, not a checkpoint); 66 missing input (needle image, dataset, \
            haystack, model); 73 output not writable; 1 anything else (ffmpeg failed, or the model \
            failed every request of 3 cells in a row).
            """,
        subcommands: [NeedleRun.self, MakeHaystack.self],
        defaultSubcommand: NeedleRun.self)
}

extension NeedleMode: ExpressibleByArgument {}
extension AnswerMode: ExpressibleByArgument {}
extension ScoreRule: ExpressibleByArgument {}

/// NIAHError's exit status in the CLI's table.
extension Status {
    init(_ kind: NIAHError.Kind) {
        switch kind {
        case .usage: self = .usage
        case .data: self = .dataError
        case .missing: self = .noInput
        case .output: self = .cannotCreate
        case .tool: self = .failure
        }
    }
}

/// `reportingErrors` that also knows the evaluation's errors.
private func reportingNIAHErrors<T>(_ body: () async throws -> T) async throws -> T {
    try await reportingErrors {
        do {
            return try await body()
        } catch let error as NIAHError {
            throw CLIError(status: Status(error.kind), message: error.description)
        }
    }
}

struct NeedleRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run (or resume) a sweep; the default of `densecap niah`.")

    @Option(help: "Haystack video (any file FFmpeg decodes; see `densecap niah make-haystack`).")
    var haystack: String?

    @Option(help: "Needle dataset: LongVA's dataset.json format, a list of {\"path\", \"prompt\", \"answer\"}, image paths relative to it.")
    var needles: String?

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Fewest haystack frames.") var minFrames = 20
    @Option(help: "Most haystack frames.") var maxFrames = 300
    @Option(help: "Step between haystack lengths.") var frameInterval = 20
    @Option(help: "Step between depths (np.arange(0, 1 + step, step)).") var depthInterval = 0.1

    @Option(help: "Haystack frames per second (exact: 1, 1/2); default: the references' every round(avg_fps)-th frame.")
    var fps: String?

    @Option(help: "teacher-forced: the answer teacher-forced after the question, argmax ids kept (the references; native engine only); generated: the model's greedy answer through the engine seam (native or --engine openai).")
    var answer: AnswerMode = .teacherForced

    @Option(help: "embedding: needle tokens spliced (parity with the references); pixel: the needle becomes a frame through the whole video path. Default: embedding when teacher-forced; generated needs pixel.")
    var mode: NeedleMode?

    @Option(help: "Verdict that makes the score: longva (answer ids; generated: the text begins with the answer), vila (text, spaces and case ignored), vnbench (option letter).")
    var score: ScoreRule = .longva

    @Option(help: "Most tokens a generated answer may have (--answer generated; default \(NIAHSettings.defaultMaxNewTokens)).")
    var maxNewTokens: Int?

    @Flag(help: "Ask each multiple-choice needle once per rotation of its options; it counts only if all are right (VNBench).")
    var rotateChoices = false

    @Option(help: "Seed recorded in run.json and sent with every generated request (teacher forcing draws nothing at random).")
    var seed: UInt64 = 24_242_424

    @Option(help: "GiB a cell may need; larger cells are refused up front (default: 80% of RAM).")
    var memoryLimit: Double?

    @Option(help: "Folder for the haystack cache: projected features, or the decoded frames with --answer generated (default: --out).")
    var cacheDir: String?

    @Flag(help: "Only redraw heatmap.png, heatmap.html and avg_accuracy.txt from all_accuracies.json.")
    var plotOnly = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Remote model") var engine: EngineOptions
    @OptionGroup var global: GlobalOptions

    func settings() throws -> NIAHSettings {
        var s = NIAHSettings()
        s.minFrames = minFrames
        s.maxFrames = maxFrames
        s.frameInterval = frameInterval
        s.depthInterval = depthInterval
        if let fps {
            guard let rate = Rational(parsing: fps), rate > .zero else { throw ValidationError("--fps: not a positive rate: \(fps)") }
            s.fps = rate
        }
        s.answer = answer
        s.mode = mode ?? (answer == .generated ? .pixel : .embedding)
        s.maxNewTokens = answer == .generated ? maxNewTokens ?? NIAHSettings.defaultMaxNewTokens : maxNewTokens
        s.score = score
        s.rotateChoices = rotateChoices
        s.seed = seed
        s.memoryLimit = memoryLimit.map { Int($0 * Double(1 << 30)) }
        return s
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.niah")
        try await reportingNIAHErrors {
            if plotOnly {
                let average = try NIAHOutputs.plot(directory: out)
                Console.stdout("Average Accuracy: \(average.map { "\($0)" } ?? "none")\n")
                return
            }
            if engine.engine == .openai && answer == .teacherForced {
                throw CLIError(status: .usage, message: "--engine openai answers by generation only (teacher forcing needs the model's logits): add --answer generated")
            }
            if answer == .teacherForced && modelOptions.precision != .fp32 {
                throw CLIError(status: .usage, message: "--precision applies to --answer generated; teacher forcing runs fp32, as the references")
            }
            guard engine.engine == .openai || modelOptions.model != nil, let haystack, let needles else {
                throw CLIError(status: .usage, message: "--model, --haystack and --needles are required (except with --plot-only)")
            }
            let settings = try settings()
            do {
                try settings.validate()
            } catch let error as NIAHError {
                throw CLIError(status: .usage, message: error.description)
            }
            // Inputs before the model: a bad dataset should not wait for gigabytes to load.
            _ = try NeedleDataset(path: needles)
            guard FileManager.default.fileExists(atPath: haystack) else {
                throw NIAHError(.missing, haystack, "haystack video not found")
            }
            let runner: NIAHRunner
            switch answer {
            case .teacherForced:
                Numerics.setThreads(modelOptions.threads)
                let directory = try await modelOptions.checkpointDirectory(logger: logger)
                let loaded = try NVILAModel.load(directory: directory, logger: logger)
                logger.info("loaded \(directory); \(BLASRuntime.summary)")
                runner = NIAHRunner(model: loaded, name: try modelOptions.name, directory: directory, settings: settings, logger: logger)
            case .generated:
                runner = NIAHRunner(model: try await makeVisionModel(modelOptions, engine, logger: logger), settings: settings, logger: logger)
            }
            runner.version = densecapVersion
            runner.cacheDirectory = cacheDir
            let bar = ProgressBar(label: "niah")
            let progress = { (done: Int, total: Int) in bar.update(Double(done) / Double(max(total, 1)), detail: "\(done)/\(total) cells") }
            let report: NIAHReport
            if answer == .generated {
                report = try await runner.runGenerated(haystack: haystack, dataset: needles, out: out, progress: progress)
            } else {
                report = try runner.run(haystack: haystack, dataset: needles, out: out, progress: progress)
            }
            bar.finish()
            summarize(report, logger: logger)
            if !report.refused.isEmpty || !report.failed.isEmpty { throw Status.partial.exitCode }
        }
    }

    /// Warnings for refused and failed cells, timings to the log, the average to stdout.
    private func summarize(_ report: NIAHReport, logger: Logger) {
        for refused in report.refused {
            Console.warning("cell \(refused.frames) frames, depth \(refused.depth): refused: \(refused.reason)")
        }
        for failed in report.failed {
            Console.warning("cell \(failed.frames) frames, depth \(failed.depth): failed: \(failed.failures[0].error) (a rerun computes it again)")
        }
        if report.haystackFramesComputed > 0 {
            logger.info("haystack throughput: \(report.haystackFramesComputed) frames in \(String(format: "%.2f", report.haystackSeconds)) s (\(String(format: "%.3f", Double(report.haystackFramesComputed) / report.haystackSeconds)) frames/s)")
        }
        if report.cellsComputed > 0 {
            logger.info("cells: \(report.cellsComputed) in \(String(format: "%.2f", report.cellSeconds)) s (\(String(format: "%.2f", report.cellSeconds / Double(report.cellsComputed))) s per cell)")
        }
        let failed = report.failed.isEmpty ? "" : ", \(report.failed.count) failed"
        logger.info("\(report.cellsComputed) cells computed, \(report.cellsReused) reused, \(report.refused.count) refused\(failed); haystack frames: \(report.haystackFramesComputed) computed, \(report.haystackFramesCached) cached")
        Console.stdout("Average Accuracy: \(report.averageScore.map { "\($0)" } ?? "none")\n")
    }
}

struct MakeHaystack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-haystack",
        abstract: "Generate a deterministic synthetic haystack video with FFmpeg.",
        discussion: """
            Scenes of FFmpeg's synthetic sources (life, cellauto, gradients, sierpinski, testsrc2 \
            with turning hues, noisy colour fields, rotating bars), 3–12 s each, parameters drawn from \
            --seed; x264 with one thread and bit-exact flags, scenes joined without re-encoding. The \
            same seed, duration, size and rate give the same sha256 with the same FFmpeg build. The \
            recipe (every scene's lavfi graph) is printed as JSON on stdout and written to FILE.recipe.json.
            """)

    @Option(help: "Seed of the scene choices.") var seed: UInt64 = 0
    @Option(help: "Length in whole seconds.") var duration: Int
    @Option(help: "Frame size WIDTHxHEIGHT.") var size = "640x360"
    @Option(help: "Frames per second (integer).") var rate = 24
    @Option(help: "Output file (.mp4).") var out: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.niah")
        try await reportingNIAHErrors {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 16, parts[1] >= 16, parts[0] % 2 == 0, parts[1] % 2 == 0 else {
                throw CLIError(status: .usage, message: "--size: need even WIDTHxHEIGHT of at least 16x16, got \(size)")
            }
            guard duration > 0 else { throw CLIError(status: .usage, message: "--duration must be positive") }
            guard rate > 0 else { throw CLIError(status: .usage, message: "--rate must be positive") }
            let recipe = HaystackRecipe(seed: seed, duration: duration, width: parts[0], height: parts[1], rate: rate)
            let bar = ProgressBar(label: "haystack")
            try recipe.render(to: out) { done, total in bar.update(Double(done) / Double(total), detail: "\(done)/\(total) scenes") }
            bar.finish()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json = try encoder.encode(recipe) + Data("\n".utf8)
            try writeOutput(json, to: out + ".recipe.json")
            Console.stdout(String(decoding: json, as: UTF8.self))
            logger.info("\(out): \(recipe.scenes.count) scenes, \(duration) s")
        }
    }
}
