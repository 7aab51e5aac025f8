import ArgumentParser
import CaptionWriters
import DenseCore
import Engine
import EventSegmenter
import Foundation
import Jobs
import Logging
import VideoIO

struct Caption: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Timestamped dense captions: events found in the video, each described by an NVILA model.",
        discussion: """
            Pass 1 decodes the video once for the pixel boundary detectors of `densecap segment` \
            (frames at --detector-fps, --width wide). The vision tower then runs only where it pays: \
            on the frames each event's caption uses (up to --frames-per-event, default the \
            checkpoint's num_video_frames, uniform on the event's --fps grid) and, with --semantic \
            probe (the default), on a few probes per event — its first and last frame, and a \
            bisection where they differ by --semantic-threshold — that find semantic changes a \
            pixel detector misses. --semantic every-frame runs the tower on every --fps frame \
            instead (cost grows with duration); --semantic off only on caption frames. Skippable \
            stretches (--still --gate) never reach the tower. Times are the stream's presentation \
            timestamps (milliseconds in the outputs).

            Outputs per input, next to it or under --out: <name>.events.json (schema in README), \
            .srt, .vtt, .activitynet.json, .html (a report with keyframe thumbnails), .events.csv, as \
            --formats says; each written atomically, the JSON last; and <name>.manifest.json, the \
            job's record: a rerun skips inputs done with the same settings, content and model \
            (--force redoes them), and an interrupted run resumes without repeating a recorded \
            tower pass (<name>.cache/, removed after success unless --keep-cache) or caption. One \
            broken file never stops the others; the exit code is the most severe (see `densecap --help`).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Remote model") var engine: EngineOptions

    @Argument(help: "Video file(s).")
    var files: [String]

    @Option(help: "The model frame grid: frames per second the tower may see (exact: 1, 0.5, 30000/1001).")
    var fps = "1"

    @Option(help: "Frames per second for the pixel boundary detectors.")
    var detectorFps = "4"

    @Option(help: "Analysis width of the detectors' frames.")
    var width = 256

    @Option(help: "Frames per caption (default: the checkpoint's num_video_frames).")
    var framesPerEvent: Int?

    @Option(help: "Semantic boundaries: probe (a few tower passes per event; the default with the native engine), every-frame (the tower on every --fps frame), off (the default and only choice with a remote model: it has no embeddings).")
    var semantic: SemanticMode?

    @Option(help: "Cosine distance between frame embeddings that makes a semantic boundary.")
    var semanticThreshold: Double = 0.25

    @Option(help: "The instruction given with each event.")
    var prompt = CaptionSettings.defaultPrompt

    @Option(help: "Longest caption in tokens.")
    var maxNewTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Flag(help: "Still-camera footage (surveillance): motion events, gating on.")
    var still = false

    @Flag(help: "Keep long still stretches whole, marked skippable and not captioned.")
    var gate = false

    @OptionGroup(title: "Motion (still cameras)") var motion: MotionOptions

    @Option(help: "Shortest event in seconds.")
    var minLength = "1"

    @Option(help: "Longest event in seconds before it is split (0: never).")
    var maxLength = "60"

    @Flag(help: "Move each hard cut to its exact frame.")
    var refine = false

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .shortAndLong, help: "Output folder (default: next to each input).")
    var out: String?

    @Option(help: "Files to write, comma-separated: json, csv, srt, vtt, activitynet, html.")
    var formats = "json,srt,vtt,activitynet,html"

    @Option(help: "Thumbnail width in the HTML report.")
    var thumbnailWidth = 320

    @Flag(help: "Keep the frame cache after success.")
    var keepCache = false

    @Flag(help: "Redo inputs whose outputs are already complete.")
    var force = false

    @Option(help: "Decoder threads (1, the default, decodes in chunks beside the analysis; 0 = one per core).")
    var decodeThreads = 1

    @Option(help: "Captions decoded together by the native engine (the same words as one by one; more memory, more throughput); with --engine openai, captions in flight at once.")
    var batch = 4

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        for (name, value) in [("--fps", fps), ("--detector-fps", detectorFps)] {
            guard let r = Rational(parsing: value), Rational.zero < r else { throw ValidationError("\(name) must be a positive number, got '\(value)'") }
        }
        if let framesPerEvent, framesPerEvent < 1 { throw ValidationError("--frames-per-event must be positive") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if engine.engine == .openai, let semantic, semantic != .off {
            throw ValidationError("--semantic \(semantic.rawValue) needs the native engine's frame embeddings; a remote model takes --semantic off")
        }
        guard temperature >= 0 else { throw ValidationError("--temperature must not be negative") }
        guard semanticThreshold > 0, semanticThreshold <= 2 else { throw ValidationError("--semantic-threshold must be in (0, 2]") }
        guard width >= 16, thumbnailWidth >= 16 else { throw ValidationError("--width and --thumbnail-width must be at least 16") }
        for (name, value) in [("--min-length", minLength), ("--max-length", maxLength)] {
            if MediaTime(parsing: value) == nil { throw ValidationError("\(name): cannot read '\(value)' as a time") }
        }
        _ = try parseFormats(formats)
    }

    /// Every flag that changes the outputs, as the job's settings.
    func settings() throws -> CaptionSettings {
        var s = CaptionSettings()
        s.detection.rate = Rational(parsing: detectorFps)!
        s.detection.width = width
        s.detection.window = range.window
        s.detection.refine = refine
        var segmenter = still ? SegmenterConfiguration.staticCamera : SegmenterConfiguration()
        segmenter.fuser.minimumLength = MediaTime(parsing: minLength)!
        let maximum = MediaTime(parsing: maxLength)!
        segmenter.fuser.maximumLength = maximum > .zero ? maximum : nil
        if gate { segmenter.fuser.gating = true }
        segmenter.semanticThreshold = semanticThreshold
        try motion.apply(to: &segmenter, still: still)
        s.detection.segmenter = segmenter
        let formats = try parseFormats(formats)
        s.output = OutputSettings(formats: formats, thumbnailWidth: formats.contains(.html) ? thumbnailWidth : nil)
        s.modelRate = Rational(parsing: fps)!
        s.framesPerEvent = framesPerEvent
        s.semantic = semantic ?? (engine.engine == .native ? .probe : .off)
        s.prompt = prompt
        s.maxNewTokens = maxNewTokens
        s.temperature = temperature
        s.seed = seed
        return s
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.caption")
        let settings = try settings()
        let job = try await reportingErrors { () async throws -> CaptionJob in
            let model = try await makeVisionModel(modelOptions, engine, batch: batch, logger: logger)
            return CaptionJob(model: model, modelName: modelOptions.model, settings: settings, logger: logger)
        }
        job.decodeThreads = decodeThreads
        job.keepCache = keepCache
        job.generator = "densecap \(densecapVersion) caption"
        let status = await runBatch(files, out: out, logger: logger) { file, folder in
            let bar = ProgressBar(label: stem(of: file))
            defer { bar.finish() }
            return try await job.run(file: file, into: folder, force: force) { bar.update($0, detail: $1) }
        }
        if status != .success { throw status.exitCode }
    }
}

/// Runs `job` on every input (outputs next to it or under `out`), reporting each failure as one
/// line and going on; the most severe status of all.
func runBatch(_ files: [String], out: String?, logger: Logger, job: (String, String) async throws -> JobOutcome) async -> Status {
    var status = Status.success
    for file in files {
        let folder = out ?? (file as NSString).deletingLastPathComponent
        do {
            let outcome = try await job(file, folder.isEmpty ? "." : folder)
            status = max(status, warnAboutDamage(file, report: outcome.report) ? .partial : .success)
        } catch {
            Console.error(failureLine(error, file: file))
            status = max(status, Status(error: error))
        }
    }
    return status
}

/// One line naming the file for any error a job throws (typed errors already name it).
func failureLine(_ error: Error, file: String) -> String {
    switch error {
    case let e as VideoError: e.description
    case let e as JobError: e.description
    case let e as WriterError: e.description
    default: "\(file): \(error)"
    }
}

/// Parses a comma-separated list of output formats.
func parseFormats(_ text: String) throws -> [CaptionFormat] {
    try text.split(separator: ",").map {
        guard let f = CaptionFormat(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("unknown format '\($0)'; choose from \(CaptionFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return f
    }
}

extension SemanticMode: ExpressibleByArgument {}
