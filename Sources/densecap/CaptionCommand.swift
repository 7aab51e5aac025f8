import ArgumentParser
import CaptionPipeline
import CaptionWriters
import DenseCore
import Engine
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

struct Caption: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Timestamped dense captions: events found in the video, each described by an NVILA model.",
        discussion: """
            Pass 1 decodes the video once: frames at --detector-fps go (at --width) to the boundary \
            detectors of `densecap segment`; frames at --fps also go through the vision tower once, \
            whose pooled features feed a semantic-novelty detector and whose projected tokens are kept \
            in a frame cache on disk. Pass 2 captions every event from the cache: up to \
            --frames-per-event frames (default: the checkpoint's num_video_frames) uniform within the \
            event, pooled by the checkpoint's video encoder, with --prompt. Times are the stream's \
            presentation timestamps (milliseconds in the outputs).

            Outputs per input, next to it or under --out: <name>.events.json (schema in README), \
            .srt, .vtt, .activitynet.json, .html (a report with keyframe thumbnails), .events.csv, as \
            --formats says; each written atomically, the JSON last. A rerun skips inputs whose JSON \
            has the same settings (--force redoes them). An interrupted run resumes: the frame cache \
            (<name>.cache/) keeps the tower's work and the captions done so far; it is removed after \
            success unless --keep-cache. One broken file never stops the others; the exit code is \
            the most severe (see `densecap --help`).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Video file(s).")
    var files: [String]

    @Option(help: "Frames per second through the vision tower (exact: 1, 0.5, 30000/1001).")
    var fps = "1"

    @Option(help: "Frames per second for the pixel boundary detectors (at least --fps).")
    var detectorFps = "4"

    @Option(help: "Analysis width of the detectors' frames.")
    var width = 256

    @Option(help: "Frames per caption (default: the checkpoint's num_video_frames).")
    var framesPerEvent: Int?

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

    @Option(help: "Shortest event in seconds.")
    var minLength = "1"

    @Option(help: "Longest event in seconds before it is split (0: never).")
    var maxLength = "60"

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

    @Option(help: "Decoder threads (0 = one per core).")
    var decodeThreads = 0

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        for (name, value) in [("--fps", fps), ("--detector-fps", detectorFps)] {
            guard let r = Rational(parsing: value), Rational.zero < r else { throw ValidationError("\(name) must be a positive number, got '\(value)'") }
        }
        if let framesPerEvent, framesPerEvent < 1 { throw ValidationError("--frames-per-event must be positive") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard temperature >= 0 else { throw ValidationError("--temperature must not be negative") }
        guard width >= 16, thumbnailWidth >= 16 else { throw ValidationError("--width and --thumbnail-width must be at least 16") }
        for (name, value) in [("--min-length", minLength), ("--max-length", maxLength)] {
            if MediaTime(parsing: value) == nil { throw ValidationError("\(name): cannot read '\(value)' as a time") }
        }
        _ = try parseFormats(formats)
    }

    /// Everything that changes the outputs, recorded in them and compared on reruns.
    func settings(model: String) -> [(String, String)] {
        [("model", model), ("fps", fps), ("detector_fps", detectorFps), ("width", String(width)),
         ("frames_per_event", framesPerEvent.map(String.init) ?? ""), ("prompt", prompt),
         ("max_new_tokens", String(maxNewTokens)), ("temperature", String(temperature)), ("seed", String(seed)),
         ("still", String(still)), ("gate", String(gate)), ("min_length", minLength), ("max_length", maxLength),
         ("start", range.start ?? ""), ("end", range.end ?? "")]
    }

    func captionSettings(model: NVILAModel) -> CaptionSettings {
        var s = CaptionSettings()
        s.modelRate = Rational(parsing: fps)!
        s.detectorRate = Rational(parsing: detectorFps)!
        s.analysisWidth = width
        s.framesPerEvent = framesPerEvent
        s.prompt = prompt
        s.generation = GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
        var segmenter = still ? SegmenterConfiguration.staticCamera : SegmenterConfiguration()
        segmenter.fuser.minimumLength = MediaTime(parsing: minLength)!
        let maximum = MediaTime(parsing: maxLength)!
        segmenter.fuser.maximumLength = maximum > .zero ? maximum : nil
        if gate { segmenter.fuser.gating = true }
        s.segmenter = segmenter
        s.window = range.window
        return s
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.caption")
        Numerics.setThreads(modelOptions.threads)
        let (directory, model) = try await reportingErrors { () async throws -> (String, NVILAModel) in
            let directory = try await modelOptions.checkpointDirectory(logger: logger)
            let start = Date()
            let model = try NVILAModel.load(directory: directory, logger: logger)
            logger.info("loaded \(directory) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; \(BLASRuntime.summary)")
            return (directory, model)
        }
        let pipeline = CaptionPipeline(model: model, settings: captionSettings(model: model), logger: logger)
        let formats = try parseFormats(formats)
        let recorded = settings(model: modelOptions.model)
        var status = Status.success
        for file in files {
            let folder = out ?? (file as NSString).deletingLastPathComponent
            let outputFolder = folder.isEmpty ? "." : folder
            do {
                if !force, outputIsDone(file, in: outputFolder, settings: recorded) {
                    logger.info("\(file): already done in \(outputFolder); --force redoes it")
                    continue
                }
                let (damaged, _) = try caption(file, into: outputFolder, pipeline: pipeline, directory: directory, formats: formats,
                                               recorded: recorded, logger: logger)
                status = max(status, damaged ? .partial : .success)
            } catch let error as VideoError {
                Console.error(error.description)
                status = max(status, Status(error.kind))
            } catch let error as CaptionError {
                Console.error(error.description)
                if case .noFrames = error { status = max(status, .dataError) } else { status = max(status, .cannotCreate) }
            } catch let error as WriterError {
                Console.error(error.description)
                status = max(status, .cannotCreate)
            } catch {
                Console.error("\(file): \(error)")
                status = max(status, .failure)
            }
        }
        if status != .success { throw status.exitCode }
    }

    /// One input, both passes and the outputs. - Returns: whether the input was damaged, and the
    /// files written (the JSON last).
    func caption(
        _ file: String, into folder: String, pipeline: CaptionPipeline, directory: String, formats: [CaptionFormat],
        recorded: [(String, String)], logger: Logger
    ) throws -> (damaged: Bool, written: [String]) {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw VideoError(.output, path: folder, reason: "cannot create folder: \(describe(error))")
        }
        let cacheFolder = (folder as NSString).appendingPathComponent("\(stem(of: file)).cache")
        do {
            try FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
        } catch {
            throw VideoError(.output, path: cacheFolder, reason: "cannot create folder: \(describe(error))")
        }
        let model = pipeline.model
        let cache = try FrameCache(
            path: (cacheFolder as NSString).appendingPathComponent("frames.bin"),
            key: pipeline.cacheKey(modelID: (directory as NSString).standardizingPath)
                + "|file=\(fileIdentity(file))|start=\(range.start ?? "")|end=\(range.end ?? "")",
            embeddingWidth: model.tower.config.hiddenSize,
            tokenShape: [model.projector.tokenCount(gridSide: model.tower.config.gridSide), model.projector.outputChannels])
        if cache.count > 0 { logger.info("\(file): resuming with \(cache.count) frames from \(cacheFolder)") }

        let bar = ProgressBar(label: stem(of: file))
        let run = try pipeline.analyse(file: file, cache: cache, decodeThreads: decodeThreads) { fraction, detail in
            bar.update(fraction * 0.5, detail: detail)
        }
        // Pass 2, with captions kept as they are made so an interruption loses at most one.
        let captionsPath = (cacheFolder as NSString).appendingPathComponent("captions.json")
        var done = loadCaptions(captionsPath, settings: recorded)
        var events = run.events
        for (i, event) in events.enumerated() {
            let frames = pipeline.captionFrames(for: event, among: run.modelFrameTimes)
            events[i].frameTimes = frames
            if event.skippable && !pipeline.settings.captionSkippable { continue }
            let key = "\(event.start.rational)-\(event.end.rational)-\(frames.map { "\($0.rational)" }.joined(separator: ","))"
            if let text = done[key] {
                events[i].caption = text
            } else {
                events[i].caption = try pipeline.caption(event, frames: frames, cache: cache)
                done[key] = events[i].caption ?? ""
                try saveCaptions(done, to: captionsPath, settings: recorded)
            }
            bar.update(0.5 + 0.5 * Double(i + 1) / Double(events.count), detail: "\(i + 1)/\(events.count) events captioned")
        }
        bar.finish()
        let info = run.info
        var document = CaptionDocument(
            video: VideoMetadata(path: file, duration: info.duration, width: info.displaySize.width, height: info.displaySize.height,
                                 frameRate: info.averageFrameRate, codec: info.codec),
            model: modelOptions.model, generator: "densecap \(densecapVersion) caption", settings: recorded, events: events)
        if formats.contains(.html) {
            document.thumbnails = try keyframeThumbnails(file, events: events, width: thumbnailWidth, threads: decodeThreads, logger: logger)
        }
        let written = try writeOutputs(document, file: file, into: folder, formats: formats, logger: logger)
        if !keepCache { try? FileManager.default.removeItem(atPath: cacheFolder) }
        return (warnAboutDamage(file, report: run.report), written)
    }

    /// Size and modification time: a changed file at the same path does not reuse a cache.
    private func fileIdentity(_ file: String) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(size)@\(Int64(modified))"
    }

    private func loadCaptions(_ path: String, settings: [(String, String)]) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["settings"] as? [String: String] == Dictionary(settings, uniquingKeysWith: { $1 }),
            let captions = object["captions"] as? [String: String]
        else { return [:] }
        return captions
    }

    private func saveCaptions(_ captions: [String: String], to path: String, settings: [(String, String)]) throws {
        let object: [String: Any] = ["settings": Dictionary(settings, uniquingKeysWith: { $1 }), "captions": captions]
        try writeAtomically(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), to: path)
    }
}
