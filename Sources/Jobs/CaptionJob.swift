import CaptionWriters
import DenseCore
import Engine
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import ModelAPI
import VideoIO

/// `densecap caption`: events, each described by an NVILA model, with the tower spent where it
/// pays.
///
/// 1. Pass 1 (`DetectionPass`, the same as `segment`): frames at the detection rate through the
///    pixel detectors only.
/// 2. Semantic boundaries (`CaptionSettings.semantic`): `probe` embeds each event's first and
///    last model frame and bisects where they differ (`SemanticProbe`); `every-frame` runs the
///    tower on every model frame and the running-mean novelty detector; `off` skips this.
/// 3. Captions: each event's frames — up to the budget, uniform on its model grid by the
///    reference's rule — through the tower (frames already embedded are reused), the checkpoint's
///    video encoder and the LLM. Skippable events never reach the tower.
///
/// Every tower pass lands in a frame cache on disk and every caption in the manifest as soon as
/// it is made, so an interrupted run repeats neither (`Manifest`, `FrameCache`).
public final class CaptionJob {
    /// The model behind the seam: the native engine (`NativeVisionModel`) or a remote one.
    public let model: any VisionLanguageModel
    /// The native engine when `model` is one: its tower embeddings drive the semantic probe and
    /// its projected frames are cached on disk.
    let native: NativeVisionModel?
    /// The model as the user named it (recorded in the outputs).
    public let modelName: String
    /// What resume compares: the model's identity (a checkpoint's content and precision, or a
    /// remote endpoint, model name and frame encoding).
    public let modelIdentity: String
    public let settings: CaptionSettings
    public var decodeThreads = 1
    /// Keep `<name>.cache/` (the tower's work) after success.
    public var keepCache = false
    /// Captions requested together: the native engine decodes them as one batch (one read of
    /// each weight matrix serves them all; the ids are those of decoding one by one), a remote
    /// client keeps them in flight at once. Each group is recorded before the next starts.
    public var decodeBatch: Int
    public var generator = "densecap caption"
    let logger: Logger

    public init(model: any VisionLanguageModel, modelName: String? = nil, settings: CaptionSettings, logger: Logger) {
        self.model = model
        self.native = model as? NativeVisionModel
        self.modelName = modelName ?? model.displayName
        self.modelIdentity = model.identity
        self.settings = settings
        self.decodeBatch = model.concurrency
        self.logger = logger
    }

    /// The native engine over a checkpoint folder.
    /// - Parameter precision: what `model` was loaded with (`NVILAModel.load(…, precision:)`).
    public convenience init(model: NVILAModel, modelName: String, modelDirectory: String, precision: PrecisionSettings = .fp32,
                            settings: CaptionSettings, logger: Logger) throws {
        let native = NativeVisionModel(model: model, identity: try Self.nativeIdentity(directory: modelDirectory, precision: precision),
                                       displayName: modelName, logger: logger)
        self.init(model: native, modelName: modelName, settings: settings, logger: logger)
    }

    /// `ModelIdentity` of a checkpoint folder and the precision it was loaded in (another
    /// precision gives other features and captions).
    public static func nativeIdentity(directory: String, precision: PrecisionSettings) throws -> String {
        let identity = try ModelIdentity.of(directory: directory)
        return precision == .fp32 ? identity : "\(identity)|precision=\(precision)"
    }

    /// Frames per caption.
    public var budget: Int { settings.framesPerEvent ?? model.defaultVideoFrames }

    /// The model and every setting that changes a caption made from given frames.
    var captionKey: String {
        struct Key: Encodable {
            var model: String, prompt: String, system: String?, maxNewTokens: Int, temperature: Float, topP: Float, seed: UInt64
        }
        let s = settings
        let key = Key(model: modelIdentity, prompt: s.prompt, system: s.system, maxNewTokens: s.maxNewTokens,
                      temperature: s.temperature, topP: s.topP, seed: s.seed)
        return String(decoding: (try? key.canonicalJSON()) ?? Data(), as: UTF8.self)
    }

    /// One input into `folder`: skipped when its manifest says it is done with these settings,
    /// this content and this model (unless `force`); otherwise run, keeping every recorded
    /// tower pass and caption that is still valid.
    /// - Parameter progress: fraction done and a detail, for a progress bar.
    public func run(file: String, into folder: String, force: Bool = false, progress: (Double, String) -> Void = { _, _ in }) async throws
        -> JobOutcome
    {
        if native == nil && settings.semantic != .off {
            throw JobError.settings(path: file, reason: "--semantic \(settings.semantic.rawValue) needs the native engine's frame embeddings; with a remote model use --semantic off")
        }
        let manifestPath = Manifest.path(for: file, in: folder)
        let previous = Manifest.load(manifestPath)
        let input = try InputIdentity.of(file, known: previous?.input)
        let encoded = String(decoding: try settings.canonicalJSON(), as: UTF8.self)
        var outcome = JobOutcome()
        if !force, try previous?.skip(file, job: "caption", input: input, settings: encoded, model: modelIdentity, folder: folder,
                                      logger: logger) == true {
            outcome.skipped = true
            return outcome
        }
        try createFolder(folder)
        // Captions stay valid while the content and the caption key do; events are matched by
        // their bounds and frames.
        let reusable = previous.flatMap { $0.input.sameContent(as: input) && $0.captionKey == captionKey ? $0 : nil }
        var manifest = Manifest(job: "caption", input: input, model: modelIdentity, settings: encoded, state: .running,
                                captionKey: captionKey)
        manifest.events = reusable?.events ?? []
        try manifest.save(to: manifestPath)

        let pass = DetectionPass(settings: settings.detection, threads: decodeThreads, logger: logger)
        let found = try pass.run(file: file) { progress(0.2 * $0, "detecting") }
        let cacheFolder = (folder as NSString).appendingPathComponent("\(stem(of: file)).cache")
        let frames: ModelFrames
        if let native {
            let m = native.model
            try createFolder(cacheFolder)
            let cache = try FrameCache(
                path: (cacheFolder as NSString).appendingPathComponent("frames.bin"),
                key: "input=\(input.sha256)|model=\(modelIdentity)|tile=\(m.tileSize)|mode=\(m.config.imageMode)",
                embeddingWidth: m.tower.config.hiddenSize,
                tokenShape: [m.projector.tokenCount(gridSide: m.tower.config.gridSide), m.projector.outputChannels])
            if cache.count > 0 { logger.info("\(file): resuming with \(cache.count) frames from \(cacheFolder)") }
            frames = try ModelFrames(file: file, cache: cache, model: m, threads: decodeThreads, logger: logger)
        } else {
            frames = try ModelFrames(file: file, cache: nil, model: nil, threads: decodeThreads, logger: logger)
        }

        // The model grid: t_k = origin + k / rate, up to the last decoded frame (each has a frame).
        var gridEnd = found.streamEnd ?? found.sampleTimes.last!
        if let last = found.report.lastFrameTime, last < gridEnd { gridEnd = last }
        let grid = sampleTimes(start: found.origin, end: gridEnd + MediaTime(Rational(1, 1_000_000)), rate: settings.modelRate)
        let inside = { (e: Event) -> [MediaTime] in
            let lo = grid.partitioningIndex { $0 >= e.start }, hi = grid.partitioningIndex { $0 >= e.end }
            return Array(grid[lo..<max(lo, hi)])
        }
        var events = try semanticEvents(found, grid: grid, inside: inside, frames: frames, progress: progress)
        if settings.detection.refine && settings.detection.rate != nil {
            try pass.refineCuts(&events, file: file, sampleTimes: found.sampleTimes)
        }

        // Which frames each event's caption uses; the tower runs on the missing ones in one pass.
        let plans: [(state: Manifest.EventState, frames: [MediaTime])] = events.map { e in
            if e.skippable && !settings.captionSkippable { return (.skipped, []) }
            let g = inside(e)
            if g.isEmpty { return (.noFrames, []) }
            return (.pending, g.count > budget ? uniformFrameIndices(frameCount: g.count, samples: budget).map { g[$0] } : g)
        }
        let recorded = events.indices.map { i in reusable?.recorded(start: events[i].start, end: events[i].end, frames: plans[i].frames) }
        if native != nil {
            let needed = events.indices.filter { plans[$0].state == .pending && recorded[$0] == nil }.flatMap { plans[$0].frames }
            try frames.ensure(needed) { done, total in
                progress(0.2 + 0.5 * Double(done) / Double(max(1, total)), "\(done)/\(total) frames through the tower")
            }
        }

        var records = events.indices.map { i in
            recorded[i] ?? Manifest.EventRecord(start: events[i].start, end: events[i].end, frames: plans[i].frames, state: plans[i].state)
        }
        // Captions not recorded yet, `decodeBatch` at a time; each group is recorded before the
        // next starts. A caption the model could not make is recorded as failed, not as text.
        let missing = events.indices.filter { plans[$0].state == .pending && recorded[$0] == nil }
        outcome.reusedCaptions = events.indices.filter { plans[$0].state == .pending && recorded[$0] != nil }.count
        var failures: [String] = []
        for start in stride(from: 0, to: missing.count, by: max(1, decodeBatch)) {
            let batch = Array(missing[start..<min(missing.count, start + max(1, decodeBatch))])
            let used = try batch.map { i in try frames.frames(at: plans[i].frames) }
            let answers = await model.answer(used.map { request($0) })
            for (k, i) in batch.enumerated() {
                records[i].frameTimes = used[k].compactMap(\.time)
                switch answers[k] {
                case .success(let answer):
                    // Stripped, as VILA strips its answers (a server may keep a leading space).
                    records[i].caption = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
                    records[i].state = .captioned
                    records[i].error = nil
                    records[i].generation = CaptionGeneration(
                        model: answer.model, seed: settings.seed, promptTokens: answer.promptTokens,
                        completionTokens: answer.completionTokens, finishReason: answer.finishReason.rawValue)
                    outcome.generations += 1
                    outcome.promptTokens += answer.promptTokens
                    outcome.generatedTokens += answer.completionTokens
                case .failure(let error):
                    let reason = "\(error)"
                    records[i].caption = nil
                    records[i].state = .failed
                    records[i].error = reason
                    failures.append(reason)
                    logger.warning("\(file): event \(i) at \(events[i].start.secondsString)–\(events[i].end.secondsString) s: caption failed: \(reason)")
                }
            }
            manifest.events = records
            try manifest.save(to: manifestPath)
            for _ in batch { Failpoint.hit("caption") }
            progress(0.7 + 0.3 * Double(start + batch.count) / Double(missing.count), "\(start + batch.count)/\(missing.count) captions")
        }
        outcome.towerPasses = frames.towerPasses
        outcome.cachedFrames = frames.reads
        if let first = failures.first {
            throw JobError.captionsFailed(path: file, failed: failures.count, of: missing.count + outcome.reusedCaptions, firstError: first)
        }
        for i in events.indices where plans[i].state == .pending {
            events[i].caption = records[i].caption
            events[i].frameTimes = records[i].frameTimes
            events[i].generation = records[i].generation
        }

        let info = found.info
        var document = CaptionDocument(
            video: VideoMetadata(path: file, duration: info.duration, width: info.displaySize.width, height: info.displaySize.height,
                                 frameRate: info.averageFrameRate, codec: info.codec),
            model: modelName, generator: generator, settings: try settings.settingsPairs() + [("model_identity", modelIdentity)],
            events: events)
        document.analysis = DetectionPass.analysis(found)
        if let width = settings.output.thumbnailWidth {
            document.thumbnails = try keyframeThumbnails(file, events: events, width: width, threads: decodeThreads, logger: logger)
        }
        outcome.written = try writeOutputs(document, file: file, into: folder, formats: settings.output.formats, logger: logger)
        manifest.events = records
        manifest.outputs = outcome.written
        manifest.state = .done
        try manifest.save(to: manifestPath)
        if !keepCache { try? FileManager.default.removeItem(atPath: cacheFolder) }
        logger.info("\(file): \(events.count) events; tower \(outcome.towerPasses) frames (\(frames.reads) read back), \(outcome.generations) captions generated, \(outcome.reusedCaptions) reused")
        logger.info("\(file): caption stats: events=\(events.count) tower=\(outcome.towerPasses) generations=\(outcome.generations) reused=\(outcome.reusedCaptions) prompt_tokens=\(outcome.promptTokens) generated_tokens=\(outcome.generatedTokens)")
        outcome.document = document
        outcome.report = found.report
        return outcome
    }

    /// The caption request for one event's frames: the same prompt, system message and sampling
    /// for every model.
    func request(_ frames: [VisionFrame]) -> VisionRequest {
        VisionRequest(media: [.video(frames)], prompt: settings.prompt, system: settings.system,
                      generation: GenerationParameters(maxNewTokens: settings.maxNewTokens, temperature: settings.temperature,
                                                       topP: settings.topP, seed: settings.seed))
    }

    /// The events after semantic boundaries are added, as `settings.semantic` says.
    private func semanticEvents(
        _ found: DetectionPass.Result, grid: [MediaTime], inside: (Event) -> [MediaTime], frames: ModelFrames,
        progress: (Double, String) -> Void
    ) throws -> [Event] {
        do {
            switch settings.semantic {
            case .off:
                return try found.segmenter.events(end: found.streamEnd)
            case .everyFrame:
                let step = 32
                var last: MediaTime?
                for start in stride(from: 0, to: grid.count, by: step) {
                    let batch = Array(grid[start..<min(grid.count, start + step)])
                    try frames.ensure(batch)
                    for t in batch {
                        let f = try frames.embedding(at: t)
                        // Grid times that land on one decoded frame give one embedding.
                        if let last, f.time <= last { continue }
                        last = f.time
                        try found.segmenter.process(embedding: f.embedding, at: f.time)
                    }
                    progress(0.2 + 0.5 * Double(min(grid.count, start + step)) / Double(grid.count), "every model frame through the tower")
                }
                return try found.segmenter.events(end: found.streamEnd)
            case .probe:
                let base = try found.segmenter.events(end: found.streamEnd)
                let probe = SemanticProbe(threshold: settings.detection.segmenter.semanticThreshold,
                                          minimumLength: settings.detection.segmenter.fuser.minimumLength)
                var extra: [Boundary] = []
                for (i, e) in base.enumerated() where !(e.skippable && !settings.captionSkippable) {
                    let g = inside(e)
                    extra += try probe.boundaries(count: g.count, start: e.start, end: e.end) { k in
                        try frames.ensure([g[k]])
                        return try frames.embedding(at: g[k])
                    }
                    progress(0.2 + 0.1 * Double(i + 1) / Double(base.count), "probing \(i + 1)/\(base.count) events")
                }
                return extra.isEmpty ? base : try found.segmenter.events(end: found.streamEnd, adding: extra)
            }
        } catch let error as SegmenterError {
            throw JobError.segmenter(path: frames.file, reason: error.description)
        }
    }
}

/// Model frames by grid time. With the native engine: from the cache, or decoded (full
/// quality, as the reference decodes) and run through the tower once, then cached; the frames
/// handed to the model carry their projected tokens. With a remote model: decoded when asked,
/// full size (the client scales and encodes them).
final class ModelFrames {
    let file: String
    private let cache: FrameCache?
    private let model: NVILAModel?
    private let reader: VideoReader
    private let logger: Logger
    private var lastDecoded: MediaTime?
    private(set) var towerPasses = 0
    private(set) var reads = 0

    init(file: String, cache: FrameCache?, model: NVILAModel?, threads: Int, logger: Logger) throws {
        self.file = file
        self.cache = cache
        self.model = model
        self.logger = logger
        reader = try VideoReader(path: file, options: DecodeOptions(threads: threads))
    }

    /// Decodes the frames at sorted, distinct grid `times` forward (rewinding only when asked for
    /// an earlier time, seeking over gaps): the requested time, the decoded frame's time and its
    /// picture. Two grid times on one decoded frame give one picture, passed twice.
    private func decode(_ times: [MediaTime], each: (_ requested: MediaTime, _ time: MediaTime, _ image: RGBImage?, _ index: Int) throws -> Void)
        throws
    {
        guard let first = times.first else { return }
        if let lastDecoded, first <= lastDecoded { reader.rewind() }
        let sampler = try FrameSampler(reader: reader, policy: .times(times), logger: logger)
        var previous: MediaTime?
        while let sample = try sampler.next() {
            let requested = sample.requested ?? sample.time
            let image = previous == sample.time ? nil : try reader.image(from: sample.frame)
            try each(requested, sample.time, image, sample.index)
            previous = sample.time
            lastDecoded = sample.time
        }
    }

    /// Runs the tower on the grid times not cached yet (native engine only).
    func ensure(_ times: [MediaTime], progress: (Int, Int) -> Void = { _, _ in }) throws {
        guard let cache, let model else { return }
        let missing = Array(Set(times.filter { !cache.contains($0) })).sorted()
        var previous: CachedFrame?
        try decode(missing) { requested, time, image, index in
            var frame: CachedFrame
            if let previous, image == nil {
                frame = previous  // two grid times, one decoded frame: one tower pass
                frame.requested = requested
            } else {
                let features = model.frameFeatures(image!)
                frame = CachedFrame(requested: requested, time: time, embedding: NVILAModel.pooled(features),
                                    tokens: model.projectFrame(features))
                towerPasses += 1
            }
            try cache.append(frame)
            Failpoint.hit("tower")
            previous = frame
            progress(index + 1, missing.count)
        }
    }

    /// The frames a caption shows, in order: cached projected tokens (native; after `ensure`) or
    /// decoded pictures (remote), each with its decoded time.
    func frames(at times: [MediaTime]) throws -> [VisionFrame] {
        if cache != nil {
            return try times.map { t in
                let f = try frame(at: t)
                return VisionFrame(time: f.time, image: nil, prepared: f.tokens)
            }
        }
        var decoded: [MediaTime: VisionFrame] = [:]
        var last: VisionFrame?
        try decode(Array(Set(times)).sorted()) { requested, time, image, _ in
            let frame = image.map { VisionFrame(time: time, image: $0) } ?? last!
            decoded[requested] = frame
            last = frame
        }
        return try times.map { t in try found(decoded[t], t) }
    }

    /// The cached frame for a grid time (after `ensure`).
    func frame(at time: MediaTime) throws -> CachedFrame {
        reads += 1
        return try found(try cache?.frame(at: time), time)
    }

    /// The decoded time and embedding for a grid time (after `ensure`), without its tokens.
    func embedding(at time: MediaTime) throws -> (time: MediaTime, embedding: [Float]) {
        reads += 1
        return try found(try cache?.embedding(at: time), time)
    }

    private func found<T>(_ value: T?, _ time: MediaTime) throws -> T {
        guard let value else { throw JobError.state(path: cache?.path ?? file, reason: "no decoded frame at or after \(time.secondsString) s") }
        return value
    }
}

extension Array {
    /// The first index whose element satisfies `belongs` (elements ordered so that it holds for a suffix).
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if belongs(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
