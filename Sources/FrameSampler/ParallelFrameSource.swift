import DenseCore
import Foundation
import FrameSampler
import Logging
import VideoIO

/// The sampled, downscaled frames of a window, decoded on two threads chunk by chunk and handed
/// over in order — exactly the frames one `FrameSampler` over the whole window gives.
///
/// A single H.264 decoding thread is the critical path of `segment` on two cores (the analysis
/// runs beside it), and frame threading inside one decoder costs more than it gains on small
/// frames. Chunks start at key frames, so each decodes on its own; for a rate policy a chunk starts
/// at the first sample time t_k = origin + k/F at or after its key frame, so every chunk keeps
/// the whole window's sample grid. Frames are handed over as they are decoded (the analysis of a
/// chunk runs beside its decoding); at most `depth` chunks are in flight, decoding or being
/// consumed, so memory stays bounded whatever the length. Used when the container has a key-frame
/// index and the window spans at least two chunks; otherwise the caller samples sequentially.
public final class ParallelFrameSource: @unchecked Sendable {
    public struct Frame {
        public let image: RGBImage
        public let time: MediaTime
    }

    /// A chunk being decoded: the frames not yet handed over, and once `finished` its report or error.
    private struct Decoded {
        var frames: [Frame] = []
        var finished = false
        var report = DecodeReport()
        var error: Error?
    }

    public let windows: [TimeWindow]
    private let file: String
    private let options: DecodeOptions
    private let policy: SamplingPolicy
    private let size: OutputSize
    private let logger: Logger
    private let depth: Int

    private let condition = NSCondition()
    private var results: [Int: Decoded] = [:]
    private var nextChunk = 0
    private var cancelled = false
    private let permits: DispatchSemaphore

    /// - Returns: nil when the window cannot or need not be split (no key-frame index, unknown
    ///   length, or fewer than two chunks).
    public init?(
        file: String, reader: VideoReader, options: DecodeOptions, policy: SamplingPolicy, window: TimeWindow,
        size: OutputSize, chunk: MediaTime = MediaTime(seconds: 30), depth: Int = 3, logger: Logger
    ) {
        let info = reader.info
        guard reader.hasKeyframeIndex, let streamEnd = info.endTime else { return nil }
        let origin = window.start ?? info.startTime ?? .zero
        let end = min(window.end ?? streamEnd, streamEnd)
        var starts: [MediaTime] = [origin]
        var target = origin + chunk
        while target < end {
            if var start = reader.keyframeTime(atOrBefore: target), start > starts.last! {
                if case .rate(let rate) = policy {
                    // The first sample time at or after the key frame keeps the window's grid.
                    let k = ((start - origin).rational * rate)
                    let whole = k.floor + (k.denominator == 1 ? 0 : 1)
                    guard let t = sampleTime(Int(whole), start: origin, rate: rate) else { return nil }
                    start = t
                }
                if start > starts.last!, start < end { starts.append(start) }
            }
            target = target + chunk
        }
        guard starts.count >= 2 else { return nil }
        windows = starts.indices.map { i in
            TimeWindow(start: starts[i], end: i + 1 < starts.count ? starts[i + 1] : window.end)
        }
        self.file = file
        self.options = options
        self.policy = policy
        self.size = size
        self.logger = logger
        self.depth = depth
        permits = DispatchSemaphore(value: depth)
    }

    /// Decodes on two threads and calls `consume` with every frame in time order (repeats of the
    /// previous frame skipped), on the calling thread. - Returns: the decoders' reports, summed.
    public func run(consume: (Frame) throws -> Void, progress: (Double) -> Void) throws -> DecodeReport {
        let workers = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global(qos: .userInitiated).async(group: workers) { self.work() }
        }
        defer {
            condition.withLock { cancelled = true }
            for _ in 0..<depth { permits.signal() }  // wake any worker waiting for room
            workers.wait()
        }
        var report = DecodeReport()
        for i in windows.indices {
            // Frames are handed over as they are decoded, so the analysis of a chunk runs beside
            // its decoding instead of after it.
            var finished: Decoded?
            while finished == nil {
                let batch: [Frame] = condition.withLock {
                    while results[i].map({ $0.frames.isEmpty && !$0.finished }) ?? true { condition.wait() }
                    let batch = results[i]!.frames
                    results[i]!.frames = []
                    if results[i]!.finished { finished = results.removeValue(forKey: i) }
                    return batch
                }
                // A chunk that failed throws (the job fails, whatever of it was consumed before).
                if let error = finished?.error { throw error }
                for frame in batch { try consume(frame) }
            }
            permits.signal()
            report.merge(finished!.report)
            progress(Double(i + 1) / Double(windows.count))
            if finished!.report.truncatedAt != nil { break }  // nothing decodes past a cut-off stream
        }
        return report
    }

    private func work() {
        while true {
            permits.wait()
            let i: Int? = condition.withLock {
                guard !cancelled, nextChunk < windows.count else { return nil }
                defer { nextChunk += 1 }
                return nextChunk
            }
            guard let i else { return }
            condition.withLock { results[i] = Decoded() }
            var report = DecodeReport()
            var failure: Error?
            do {
                // A fresh reader per chunk keeps each chunk's damage report its own.
                let reader = try VideoReader(path: file, options: options)
                let sampler = try FrameSampler(reader: reader, policy: policy, window: windows[i], logger: logger)
                while let sample = try sampler.next() {
                    if sample.repeatsPrevious { continue }
                    let frame = Frame(image: try reader.image(from: sample.frame, size: size), time: sample.time)
                    condition.withLock {
                        results[i]!.frames.append(frame)
                        condition.broadcast()
                    }
                }
                report = reader.report
            } catch {
                failure = error
            }
            condition.withLock {
                results[i]!.finished = true
                results[i]!.report = report
                results[i]!.error = failure
                condition.broadcast()
            }
        }
    }
}
