import DenseCore
import Logging
import VideoIO

/// One sampled frame: the time asked for and the frame that answered it.
public struct SampledFrame {
    /// 0-based number of this sample.
    public let index: Int
    /// The sample time t_k this frame answers (nil for `.every`).
    public let requested: MediaTime?
    public let frame: VideoFrame
    /// The same decoded frame already answered the previous sample (source slower than `--fps`).
    public let repeatsPrevious: Bool

    public var time: MediaTime { frame.time }
}

/// Tuning for when to seek instead of decoding forward.
public struct SeekPolicy: Sendable, Equatable {
    /// Seek only when it skips at least this much decoding. Below it, flushing the decoder's
    /// frame threads costs about what decoding the gap would.
    public var minimumSkip: MediaTime
    public var enabled: Bool

    public init(minimumSkip: MediaTime = MediaTime(seconds: 1), enabled: Bool = true) {
        self.minimumSkip = minimumSkip
        self.enabled = enabled
    }

    public static let never = SeekPolicy(enabled: false)
    public static let eager = SeekPolicy(minimumSkip: .zero)
}

/// Streams sampled frames out of a `VideoReader`, holding at most two decoded frames.
///
/// It decodes forward, and seeks only when the next sample lies beyond the next key frame by at
/// least `SeekPolicy.minimumSkip` (found in the container's index; without an index, when the gap
/// exceeds twice the longest key-frame interval seen). A seek that lands after its target (an
/// imprecise container) is retried from further back, so the frames chosen never depend on
/// whether the sampler seeked.
public final class FrameSampler {
    public let reader: VideoReader
    public let policy: SamplingPolicy
    public let window: TimeWindow
    public private(set) var seekCount = 0

    private let seekPolicy: SeekPolicy
    private let logger: Logger
    private var origin: MediaTime?
    private var countTargets: [MediaTime]?
    private var nextIndex = 0
    private var pending: VideoFrame?
    private var lastSample: VideoFrame?
    /// Time of the last frame pulled from the reader (the decoder's position).
    private var position: MediaTime?
    private var lastKeyframe: MediaTime?
    private var longestKeyframeGap: MediaTime = .zero
    private var seekingWorks = true
    private var done = false

    /// - Parameter frameTimes: for `.count`, the presentation times of all frames in the stream
    ///   (`VideoReader.scanPackets`); read from the file when nil.
    public init(
        reader: VideoReader, policy: SamplingPolicy, window: TimeWindow = TimeWindow(),
        seekPolicy: SeekPolicy = SeekPolicy(), frameTimes: [MediaTime]? = nil, logger: Logger
    ) throws {
        self.reader = reader
        self.policy = policy
        self.window = window
        self.seekPolicy = seekPolicy
        self.logger = logger
        if case .count(let n) = policy {
            let times = try frameTimes ?? VideoReader.scanPackets(path: reader.info.path).presentationTimes
            let inRange = times.filter(window.contains)
            countTargets = uniformFrameIndices(frameCount: inRange.count, samples: n).map { inRange[$0] }
        }
    }

    /// Approximate progress through the window, 0…1, from the decoder's position.
    public var progress: Double {
        guard let end = window.end ?? reader.info.endTime, let p = position else { return 0 }
        let start = origin ?? window.start ?? reader.info.startTime ?? .zero
        let span = (end - start).seconds
        return span > 0 ? min(1, max(0, (p - start).seconds / span)) : 0
    }

    /// The next sample, or nil when the window or the stream is exhausted.
    public func next() throws -> SampledFrame? {
        if done { return nil }
        switch policy {
        case .every:
            if nextIndex == 0, pending == nil, let start = window.start { try seekIfWorthIt(to: start) }
            guard let f = try nextFrameInWindow(atLeast: window.start) else { return finish() }
            return emit(f, requested: nil)
        case .count:
            guard nextIndex < countTargets!.count else { return finish() }
            return try sample(at: countTargets![nextIndex])
        case .times(let times):
            guard nextIndex < times.count, window.end.map({ times[nextIndex] < $0 }) ?? true else { return finish() }
            return try sample(at: times[nextIndex])
        case .rate(let rate):
            let start = try resolveOrigin()
            guard let start, let t = sampleTime(nextIndex, start: start, rate: rate), window.end.map({ t < $0 }) ?? true
            else { return finish() }
            return try sample(at: t)
        }
    }

    // MARK: - Private

    private func sample(at target: MediaTime) throws -> SampledFrame? {
        if let last = lastSample, target <= last.time {
            return emit(last, requested: target, repeated: true)
        }
        try seekIfWorthIt(to: target)
        reader.discardBefore = target
        guard let f = try nextFrameInWindow(atLeast: target) else { return finish() }
        return emit(f, requested: target)
    }

    private func emit(_ frame: VideoFrame, requested: MediaTime?, repeated: Bool = false) -> SampledFrame {
        defer { nextIndex += 1 }
        lastSample = frame
        return SampledFrame(index: nextIndex, requested: requested, frame: frame, repeatsPrevious: repeated)
    }

    private func finish() -> SampledFrame? {
        done = true
        reader.discardBefore = nil
        pending = nil
        lastSample = nil
        return nil
    }

    /// First frame at or after `target` (and inside the window), dropping earlier ones.
    private func nextFrameInWindow(atLeast target: MediaTime?) throws -> VideoFrame? {
        while let f = try pullFrame() {
            if let end = window.end, end <= f.time { return nil }
            if let target, f.time < target { continue }
            return f
        }
        return nil
    }

    private func pullFrame() throws -> VideoFrame? {
        if let p = pending {
            pending = nil
            return p
        }
        guard let f = try reader.nextFrame() else { return nil }
        position = f.time
        if f.isKeyFrame {
            if let k = lastKeyframe, k < f.time { longestKeyframeGap = max(longestKeyframeGap, f.time - k) }
            lastKeyframe = f.time
        }
        return f
    }

    /// The rate policy's t_0: the window start, else the stream's start time, else the first frame.
    private func resolveOrigin() throws -> MediaTime? {
        if let origin { return origin }
        if let s = window.start ?? reader.info.startTime {
            origin = s
        } else if let first = try pullFrame() {
            pending = first
            origin = first.time
        }
        return origin
    }

    private func seekIfWorthIt(to target: MediaTime) throws {
        guard seekPolicy.enabled, seekingWorks else { return }
        let from = position ?? reader.info.startTime ?? .zero
        let landing: MediaTime
        if let k = reader.keyframeTime(atOrBefore: target) {
            landing = k
        } else if !reader.hasKeyframeIndex {
            // No index: only a long gap is surely beyond the current key-frame interval.
            let gap = target - from
            guard longestKeyframeGap + longestKeyframeGap < gap else { return }
            landing = target
        } else {
            return
        }
        // Pending frames lie before `landing` only if they are stale; a pending frame at or past
        // the target still answers it and no seek is needed.
        if let p = pending, target <= p.time { return }
        guard from < landing, seekPolicy.minimumSkip <= landing - from else { return }
        try seek(to: target)
    }

    /// Seeks to `target`; when the first frame after the seek is past the target (or there is
    /// none), the container landed too late — without an index FFmpeg lands on any packet, and the
    /// decoder then waits for the next key frame — so aim earlier (1 s, 2 s, 4 s, 8 s before).
    /// If that keeps failing, rewind to the start, decode forward and stop seeking: slower, never
    /// wrong.
    private func seek(to target: MediaTime) throws {
        let start = reader.info.startTime ?? .zero
        var backoff = Rational(1)
        var aim = target
        for _ in 0..<5 {
            guard reader.seek(to: aim) else {
                logger.debug("seek failed; decoding forward", metadata: ["target": "\(target)"])
                seekingWorks = false
                return
            }
            seekCount += 1
            pending = nil
            position = nil
            if let first = try reader.nextFrame() {
                position = first.time
                pending = first
                if first.time <= target { return }
            }
            aim = MediaTime(target.rational - backoff)
            backoff = backoff * Rational(2)
            if aim <= start { break }
        }
        logger.debug("seeks land past their target; decoding forward from the start", metadata: ["target": "\(target)"])
        seekingWorks = false
        pending = nil
        position = nil
        reader.rewind()
    }
}
