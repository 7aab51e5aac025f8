import ArgumentParser
import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

struct Segment: ParsableCommand {
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

    func outputFormats() throws -> [CaptionFormat] { try parseFormats(formats) }

    /// The settings recorded in every output (and compared to skip finished inputs).
    private var settings: [(String, String)] {
        [("fps", fps), ("width", String(width)), ("start", range.start ?? ""), ("end", range.end ?? ""), ("detectors", detectors),
         ("still", String(still)), ("threshold", threshold.map { String($0) } ?? ""),
         ("adaptive_ratio", adaptiveRatio.map { String($0) } ?? ""),
         ("weights", weights == "1,1,1,0" ? "" : weights), ("min_length", minLength),
         ("max_length", maxLength), ("gate", String(gate)), ("refine", refine ? "true" : ""),
         ("thumbnails", String(thumbnails))].filter { !$0.1.isEmpty }
    }

    func run() throws {
        let logger = global.makeLogger(label: "densecap.segment")
        var status = Status.success
        var documents: [CaptionDocument] = []
        if let out {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                Console.error("\(out): cannot create folder: \(describe(error))")
                throw Status.cannotCreate.exitCode
            }
        }
        for file in files {
            do {
                if let out, !force, outputIsDone(file, in: out, settings: settings) {
                    logger.info("\(file): already done in \(out); --force redoes it")
                    continue
                }
                let (document, damaged) = try segment(file, logger: logger)
                if let out {
                    try writeOutputs(document, file: file, into: out, formats: try outputFormats(), logger: logger)
                } else {
                    documents.append(document)
                }
                status = max(status, damaged ? .partial : .success)
            } catch let error as VideoError {
                Console.error(error.description)
                status = max(status, Status(error.kind))
            } catch let error as SegmenterError {
                Console.error("\(file): \(error)")
                status = max(status, .failure)
            }
        }
        if out == nil {
            switch format {
            case .json:
                let values = documents.map { JSONWriter.value($0) }
                Console.stdout((files.count == 1 ? values.first ?? .null : .array(values)).rendered() + "\n")
            case .csv:
                Console.stdout(CSVWriter.render(documents))
            }
        }
        if status != .success { throw status.exitCode }
    }

    private func configuration(frameRate: Double) throws -> SegmenterConfiguration {
        var c = still ? SegmenterConfiguration.staticCamera : SegmenterConfiguration()
        c.detectors = try detectorSet()
        c.frameRate = frameRate
        if let threshold { c.contentThreshold = threshold }
        if let adaptiveRatio { c.adaptiveRatio = adaptiveRatio }
        c.weights = try contentWeights()
        c.fuser.minimumLength = MediaTime(parsing: minLength)!
        let maximum = MediaTime(parsing: maxLength)!
        c.fuser.maximumLength = maximum > .zero ? maximum : nil
        if gate { c.fuser.gating = true }
        return c
    }

    /// Source seconds per parallel decoding chunk (`DENSECAP_DECODE_CHUNK_SECONDS`, for tests).
    private var decodeChunk: MediaTime {
        let text = ProcessInfo.processInfo.environment["DENSECAP_DECODE_CHUNK_SECONDS"]
        return text.flatMap(MediaTime.init(parsing:)).flatMap { $0 > .zero ? $0 : nil } ?? MediaTime(seconds: 30)
    }

    func segment(_ file: String, logger: Logger) throws -> (CaptionDocument, damaged: Bool) {
        // Detection looks at small frames: skipping deblocking costs nothing it can see.
        let reader = try VideoReader(path: file, options: DecodeOptions(threads: threads, fast: true))
        let info = reader.info
        let window = range.window
        let policy: SamplingPolicy = fps == "all" ? .every : .rate(Rational(parsing: fps)!)
        let rate = fps == "all" ? (info.averageFrameRate ?? info.realFrameRate)?.doubleValue ?? 30 : Rational(parsing: fps)!.doubleValue
        let segmenter = EventSegmenter(configuration: try configuration(frameRate: rate))
        let sampler = try FrameSampler(reader: reader, policy: policy, window: window, logger: logger)
        let size = OutputSize(width: min(width, info.displaySize.width))
        let progress = ProgressBar(label: stem(of: file))
        var last: MediaTime?
        var sampleTimes: [MediaTime] = []
        var report: DecodeReport
        // Sparse sampling (a rate): two single-threaded decoders on key-frame-aligned chunks, the
        // analysis on this thread. Every frame (`--fps all`): one decoder and the analysis queue,
        // which keeps both cores busy without a third thread.
        if threads == 1, case .rate = policy, let parallel = ParallelFrameSource(
            file: file, reader: reader, options: DecodeOptions(threads: 1, fast: true), policy: policy, window: window,
            size: size, chunk: decodeChunk, logger: logger)
        {
            report = try parallel.run(consume: { frame in
                try segmenter.process(frame.image, at: frame.time)
                last = frame.time
                if refine { sampleTimes.append(frame.time) }
            }, progress: { progress.update($0, detail: "\(segmenter.frameCount) frames") })
        } else {
            // Decoding and analysis overlap: this thread decodes and scales frame k + 1 while
            // `analysis` analyses frame k (frames stay in order: one serial queue).
            let analysis = PipelinedAnalysis(segmenter)
            while let sample = try sampler.next() {
                if sample.repeatsPrevious { continue }
                try analysis.submit(try reader.image(from: sample.frame, size: size), at: sample.time)
                last = sample.time
                if refine { sampleTimes.append(sample.time) }
                progress.update(sampler.progress, detail: "\(analysis.submitted) frames")
            }
            try analysis.drain()
            report = reader.report
        }
        progress.finish()
        guard last != nil else { throw VideoError(.undecodable, path: file, reason: "no frame in the range") }
        var streamEnd = info.endTime
        if let e = window.end, streamEnd.map({ e < $0 }) ?? true { streamEnd = e }
        if let e = streamEnd, let l = last, e <= l { streamEnd = nil }
        if report.truncatedAt != nil { streamEnd = nil }
        var events = segmenter.events(end: streamEnd)
        if refine && fps != "all" { try refineCuts(&events, file: file, sampleTimes: sampleTimes, logger: logger) }
        logger.info("\(file): \(segmenter.frameCount) frames, \(events.count) events")
        var document = CaptionDocument(
            video: VideoMetadata(path: file, duration: info.duration, width: info.displaySize.width,
                                 height: info.displaySize.height, frameRate: info.averageFrameRate, codec: info.codec),
            generator: "densecap \(densecapVersion) segment", settings: settings, events: events)
        if thumbnails {
            document.thumbnails = try keyframeThumbnails(file, events: events, width: thumbnailWidth, threads: threads, logger: logger)
        }
        return (document, warnAboutDamage(file, report: report))
    }

    /// Moves each cut from the sample that first showed it to the frame with the largest content
    /// change among the frames after the sample before it.
    private func refineCuts(_ events: inout [Event], file: String, sampleTimes: [MediaTime], logger: Logger) throws {
        let reader = try VideoReader(path: file, options: DecodeOptions(threads: threads, fast: true))
        let size = OutputSize(width: min(width, reader.info.displaySize.width))
        let weights = try contentWeights()
        for i in events.indices.dropFirst() where events[i].kind == .cut {
            let cut = events[i].start
            // The sample before the cut: the last one earlier than it.
            var lo = 0, hi = sampleTimes.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if sampleTimes[mid] < cut { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { continue }
            let window = TimeWindow(start: sampleTimes[lo - 1], end: cut + MediaTime(Rational(1, 1_000_000)))
            let sampler = try FrameSampler(reader: reader, policy: .every, window: window, logger: logger)
            var previous: AnalyzedFrame?
            var best: (time: MediaTime, score: Double)?
            while let sample = try sampler.next() {
                let frame = AnalyzedFrame(index: 0, time: sample.time, image: try reader.image(from: sample.frame, size: size),
                                          edges: weights.edges > 0)
                if let previous {
                    let score = contentScore(previous, frame, weights: weights)
                    if best.map({ score > $0.score }) ?? true { best = (sample.time, score) }
                }
                previous = frame
            }
            guard let best, best.time > events[i - 1].start, best.time < events[i].end else { continue }
            events[i].start = best.time
            events[i - 1].end = best.time
            if events[i - 1].keyframe >= best.time { events[i - 1].keyframe = events[i - 1].start }
        }
    }
}

/// Runs `EventSegmenter.process` on a serial background queue, at most `depth` frames behind
/// the caller, and hands back the first error.
final class PipelinedAnalysis: @unchecked Sendable {
    // The segmenter is touched only on `queue` until `drain` returns.
    private let segmenter: EventSegmenter
    private let queue = DispatchQueue(label: "densecap.segment.analysis")
    private let slots: DispatchSemaphore
    private let lock = NSLock()
    private var failure: Error?
    private(set) var submitted = 0

    init(_ segmenter: EventSegmenter, depth: Int = 4) {
        self.segmenter = segmenter
        slots = DispatchSemaphore(value: depth)
    }

    func submit(_ image: RGBImage, at time: MediaTime) throws {
        try rethrow()
        slots.wait()
        submitted += 1
        queue.async {
            defer { self.slots.signal() }
            do {
                try self.segmenter.process(image, at: time)
            } catch {
                self.lock.withLock { if self.failure == nil { self.failure = error } }
            }
        }
    }

    /// Waits for every submitted frame.
    func drain() throws {
        queue.sync {}
        try rethrow()
    }

    private func rethrow() throws {
        if let error = lock.withLock({ failure }) { throw error }
    }
}
