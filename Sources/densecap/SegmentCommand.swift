import ArgumentParser
import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import FrameSampler
import Jobs
import Logging
import VideoIO

struct Segment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find event boundaries (cuts, fades, dissolves, motion in still scenes) without a model.",
        discussion: """
            Frames are sampled at --fps (default 4: a boundary is placed at the first sampled frame \
            after it, at most 1/fps late; --fps all compares every frame as PySceneDetect does), \
            scaled to --width (default 256, as PySceneDetect's automatic downscale), and shown to the \
            detectors: adaptive (PySceneDetect's AdaptiveDetector ratio rule on the HSV content \
            score), content (ContentDetector's threshold, set high in the default set), histogram, \
            fade (through black or white), dissolve (a window that is a linear blend of its ends), \
            and motion (foreground energy against a slowly updated, brightness-normalised background: \
            a person entering a still scene is an event, a lighting change is not). A short flash \
            that returns to the previous picture never cuts. Boundaries closer than --min-length \
            are fused into one, with a confidence in [0, 1]; events longer than --max-length are \
            split, or with --gate kept whole and marked skippable when nothing moved.

            Output: without --out, JSON (or --format csv) on stdout. With --out DIR, per input \
            DIR/<name>.events.json and DIR/<name>.events.csv (and --formats srt,vtt,activitynet,html), \
            and with --thumbnails a PNG of each event's keyframe in DIR/<name>.thumbs/; every file is \
            written atomically, the JSON last, so a rerun skips inputs already done with the same \
            settings (--force redoes them).
            """)

    @Argument(help: "Video file(s). One broken file never stops the others.")
    var files: [String]

    @Option(help: "Frames per second to compare (exact: 4, 30000/1001), or 'all' for every frame.")
    var fps: String = "4"

    @Option(help: "Analysis width in pixels (height keeps the display aspect; never upscaled).")
    var width: Int = 256

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "Comma-separated detectors: adaptive, content, histogram, fade, dissolve, motion.")
    var detectors: String = "adaptive,content,fade,dissolve,motion"

    @Flag(help: "Still-camera footage (surveillance): motion events after 1 s of quiet, gating on.")
    var still = false

    @OptionGroup(title: "Motion (still cameras)") var motion: MotionOptions

    @Option(help: "ContentDetector threshold (0–255).")
    var threshold: Double?

    @Option(help: "AdaptiveDetector ratio.")
    var adaptiveRatio: Double?

    @Option(help: "Content score weights of hue, saturation, value and edges (PySceneDetect's default 1,1,1,0).")
    var weights: String = "1,1,1,0"

    @Option(help: "Shortest event in seconds.")
    var minLength: String = "0.5"

    @Option(help: "Longest event in seconds before it is split (0: never).")
    var maxLength: String = "60"

    @Flag(help: "Keep long still stretches whole and mark them skippable instead of splitting them.")
    var gate = false

    @Flag(help: "Move each hard cut to the exact frame: decode the frames between the two samples around it.")
    var refine = false

    @Flag(help: "Write a PNG of each event's keyframe (needs --out).")
    var thumbnails = false

    @Option(help: "Thumbnail width in pixels.")
    var thumbnailWidth: Int = 320

    @Option(name: .shortAndLong, help: "Output folder (default: stdout).")
    var out: String?

    @Option(help: "Stdout format without --out: json or csv.")
    var format: StdoutFormat = .json

    @Option(help: "Files to write with --out, comma-separated: json, csv, srt, vtt, activitynet, html.")
    var formats: String = "json,csv"

    // One decoder thread by default: the analysis runs on a second core beside the decoder, and
    // frame-threaded decoding of the small frames it reads costs more in hand-offs than it gains
    // (measured: 10-minute 320×180 clip 3.77 → 2.94 s, 720p 0.65 → 0.59 s; bench/segment.sh).
    @Option(help: "Decoder threads (0 = one per core; 1, the default, leaves the other core to the analysis).")
    var threads: Int = 1

    @Flag(help: "Redo inputs whose output is already complete.")
    var force = false

    @OptionGroup var global: GlobalOptions

    enum StdoutFormat: String, ExpressibleByArgument {
        case json, csv
    }

    func validate() throws {
        if fps != "all" {
            guard let r = Rational(parsing: fps), Rational.zero < r else {
                throw ValidationError("--fps must be a positive number, a fraction or 'all', got '\(fps)'")
            }
        }
        guard width >= 16 else { throw ValidationError("--width must be at least 16") }
        guard thumbnailWidth >= 16 else { throw ValidationError("--thumbnail-width must be at least 16") }
        _ = try detectorSet()
        _ = try outputFormats()
        _ = try contentWeights()
        guard let m = MediaTime(parsing: minLength), m >= .zero else { throw ValidationError("cannot read --min-length '\(minLength)'") }
        guard let x = MediaTime(parsing: maxLength), x >= .zero else { throw ValidationError("cannot read --max-length '\(maxLength)'") }
        if thumbnails, out == nil { throw ValidationError("--thumbnails needs --out") }
    }

    private func detectorSet() throws -> Set<SegmenterConfiguration.Detector> {
        var set: Set<SegmenterConfiguration.Detector> = []
        for name in detectors.split(separator: ",") {
            guard let d = SegmenterConfiguration.Detector(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown detector '\(name)'; choose from \(SegmenterConfiguration.Detector.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            set.insert(d)
        }
        guard !set.isEmpty else { throw ValidationError("--detectors is empty") }
        return set
    }

    private func contentWeights() throws -> ContentWeights {
        let values = weights.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 4, let w = values as? [Double], w.allSatisfy({ $0 >= 0 }), w.contains(where: { $0 > 0 }) else {
            throw ValidationError("--weights takes four non-negative numbers h,s,v,edges, not all zero; got '\(weights)'")
        }
        return ContentWeights(hue: w[0], saturation: w[1], value: w[2], edges: w[3])
    }

    private func outputFormats() throws -> [CaptionFormat] { try parseFormats(formats) }

    /// Every flag that changes the outputs, as the job's settings.
    func settings() throws -> SegmentSettings {
        var s = SegmentSettings()
        s.detection.rate = fps == "all" ? nil : Rational(parsing: fps)!
        s.detection.width = width
        s.detection.window = range.window
        s.detection.refine = refine
        var c = still ? SegmenterConfiguration.staticCamera : SegmenterConfiguration()
        c.detectors = try detectorSet()
        if let threshold { c.contentThreshold = threshold }
        if let adaptiveRatio { c.adaptiveRatio = adaptiveRatio }
        c.weights = try contentWeights()
        c.fuser.minimumLength = MediaTime(parsing: minLength)!
        let maximum = MediaTime(parsing: maxLength)!
        c.fuser.maximumLength = maximum > .zero ? maximum : nil
        if gate { c.fuser.gating = true }
        try motion.apply(to: &c, still: still)
        s.detection.segmenter = c
        s.output = OutputSettings(formats: try outputFormats(), thumbnailWidth: thumbnails ? thumbnailWidth : nil)
        return s
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.segment")
        let job = SegmentJob(settings: try settings(), logger: logger)
        job.decodeThreads = threads
        job.generator = "densecap \(densecapVersion) segment"
        if let out {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                Console.error("\(out): cannot create folder: \(describe(error))")
                throw Status.cannotCreate.exitCode
            }
            let status = await runBatch(files, out: out, logger: logger) { file, folder in
                let bar = ProgressBar(label: stem(of: file))
                defer { bar.finish() }
                return try job.run(file: file, into: folder, force: force) { bar.update($0, detail: "detecting") }
            }
            if status != .success { throw status.exitCode }
            return
        }
        // No --out: documents on stdout, nothing recorded.
        var documents: [CaptionDocument] = []
        let status = await runBatch(files, out: nil, logger: logger) { file, _ in
            let bar = ProgressBar(label: stem(of: file))
            defer { bar.finish() }
            var outcome = JobOutcome()
            (outcome.document, outcome.report) = try job.analyse(file: file) { bar.update($0, detail: "detecting") }
            documents.append(outcome.document!)
            return outcome
        }
        switch format {
        case .json:
            let values = documents.map { JSONWriter.value($0) }
            Console.stdout((files.count == 1 ? values.first ?? .null : .array(values)).rendered() + "\n")
        case .csv:
            Console.stdout(CSVWriter.render(documents))
        }
        if status != .success { throw status.exitCode }
    }
}
