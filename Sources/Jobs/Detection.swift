import DenseCore
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

/// Pass 1 of both jobs: frames at the detection rate, downscaled, through the pixel detectors.
/// `segment` and `caption` run exactly this, so their detectors see the same pixels (decoded
/// without deblocking: at the analysis width the difference is invisible, the time is not).
struct DetectionPass {
    struct Result {
        var info: VideoInfo
        /// Fed every frame; `events` not yet called (a caption job adds embeddings first).
        var segmenter: EventSegmenter
        /// Times of the frames the detectors saw, ascending.
        var sampleTimes: [MediaTime]
        /// t₀ of the sample grid: the window's start, the stream's start time or its first frame.
        var origin: MediaTime
        var report: DecodeReport
        /// Where the last event ends: the stream's (or window's) end, nil when unknown or cut short.
        var streamEnd: MediaTime?
    }

    let settings: DetectionSettings
    /// Decoder threads. One (the default) decodes key-frame-aligned chunks on two single-threaded
    /// decoders while the analysis runs: frame threading costs more than it gains on small frames.
    let threads: Int
    let logger: Logger

    /// Source seconds per parallel decoding chunk (`DENSECAP_DECODE_CHUNK_SECONDS`, for tests).
    private var chunk: MediaTime {
        let text = ProcessInfo.processInfo.environment["DENSECAP_DECODE_CHUNK_SECONDS"]
        return text.flatMap(MediaTime.init(parsing:)).flatMap { $0 > .zero ? $0 : nil } ?? MediaTime(seconds: 30)
    }

    func run(file: String, progress: (Double) -> Void) throws -> Result {
        let options = DecodeOptions(threads: threads, fast: true)
        let reader = try VideoReader(path: file, options: options)
        let info = reader.info
        let window = settings.window
        let policy: SamplingPolicy = settings.rate.map { .rate($0) } ?? .every
        var configuration = settings.segmenter
        configuration.frameRate = settings.rate?.doubleValue ?? (info.averageFrameRate ?? info.realFrameRate)?.doubleValue ?? 30
        let segmenter = EventSegmenter(configuration: configuration, sourceSize: (info.displaySize.width, info.displaySize.height))
        let size = OutputSize(width: min(settings.width, info.displaySize.width))
        var sampleTimes: [MediaTime] = []
        var origin: MediaTime?
        var report: DecodeReport
        do {
            if threads == 1, case .rate = policy, let parallel = ParallelFrameSource(
                file: file, reader: reader, options: options, policy: policy, window: window, size: size, chunk: chunk, logger: logger)
            {
                origin = parallel.windows.first?.start
                report = try parallel.run(consume: { frame in
                    try segmenter.process(frame.image, at: frame.time)
                    sampleTimes.append(frame.time)
                }, progress: progress)
            } else {
                // Decoding and analysis overlap: this thread decodes and scales frame k + 1 while
                // `analysis` analyses frame k (frames stay in order: one serial queue).
                let sampler = try FrameSampler(reader: reader, policy: policy, window: window, logger: logger)
                let analysis = PipelinedAnalysis(segmenter)
                while let sample = try sampler.next() {
                    if origin == nil { origin = sample.requested ?? sample.time }
                    if sample.repeatsPrevious { continue }
                    try analysis.submit(try reader.image(from: sample.frame, size: size), at: sample.time)
                    sampleTimes.append(sample.time)
                    progress(sampler.progress)
                }
                try analysis.drain()
                report = reader.report
            }
        } catch let error as SegmenterError {
            throw JobError.segmenter(path: file, reason: error.description)
        }
        guard let last = sampleTimes.last, let origin = window.start ?? origin else { throw JobError.noFrames(path: file) }
        var streamEnd = info.endTime
        if let e = window.end, streamEnd.map({ e < $0 }) ?? true { streamEnd = e }
        if let e = streamEnd, e <= last { streamEnd = nil }
        if report.truncatedAt != nil { streamEnd = nil }
        return Result(info: info, segmenter: segmenter, sampleTimes: sampleTimes, origin: origin, report: report, streamEnd: streamEnd)
    }

    /// What the motion detector found, for the outputs' `analysis` section (kept out of the
    /// settings: it is a result): the footage mode used and the overlays ignored, in source pixels.
    static func analysis(_ found: Result) -> [(String, String)] {
        let (w, h) = (found.info.displaySize.width, found.info.displaySize.height)
        var a = [("footage", found.segmenter.footage.rawValue)]
        if !found.segmenter.overlays.isEmpty {
            a.append(("overlays", found.segmenter.overlays.map { $0.pixels(sourceWidth: w, sourceHeight: h) }.joined(separator: ";")))
        }
        return a
    }

    /// Moves each hard cut to its exact frame (`CutRefiner`), decoding the frames around it.
    func refineCuts(_ events: inout [Event], file: String, sampleTimes: [MediaTime]) throws {
        let reader = try VideoReader(path: file, options: DecodeOptions(threads: threads, fast: true))
        let size = OutputSize(width: min(settings.width, reader.info.displaySize.width))
        try CutRefiner(weights: settings.segmenter.weights).refine(&events, sampleTimes: sampleTimes) { from, through in
            let window = TimeWindow(start: from, end: through + MediaTime(Rational(1, 1_000_000)))
            let sampler = try FrameSampler(reader: reader, policy: .every, window: window, logger: logger)
            var frames: [(time: MediaTime, image: RGBImage)] = []
            while let sample = try sampler.next() { frames.append((sample.time, try reader.image(from: sample.frame, size: size))) }
            return frames
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

    init(_ segmenter: EventSegmenter, depth: Int = 4) {
        self.segmenter = segmenter
        slots = DispatchSemaphore(value: depth)
    }

    func submit(_ image: RGBImage, at time: MediaTime) throws {
        try rethrow()
        slots.wait()
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
