import DenseCore

/// Which frames to take from a stream.
public enum SamplingPolicy: Sendable, Equatable {
    /// `--fps F`: sample times t_k = start + k/F; each takes the first decoded frame whose
    /// presentation time is ≥ t_k. A frame can serve several t_k when F exceeds the source rate.
    case rate(Rational)
    /// `--frames N`: N frames spread uniformly over the frames in range with the reference's
    /// index rule, round-half-to-even of linspace(0, n−1, N) (duplicates kept when N > n).
    case count(Int)
    /// Every decoded frame in range (with key-frame-only decoding: every key frame).
    case every
    /// The first decoded frame at or after each of these times (ascending), like `rate` on an
    /// irregular grid: the frames a job chose after a first pass.
    case times([MediaTime])
}

/// A time window `[start, end)` on the stream's timeline; nil sides are the stream's own ends.
public struct TimeWindow: Sendable, Equatable, Codable {
    public var start: MediaTime?
    public var end: MediaTime?

    public init(start: MediaTime? = nil, end: MediaTime? = nil) {
        self.start = start
        self.end = end
    }

    public func contains(_ t: MediaTime) -> Bool {
        (start.map { $0 <= t } ?? true) && (end.map { t < $0 } ?? true)
    }
}

/// Sample time number `k` of the rate policy: `start + k / rate`, exactly.
public func sampleTime(_ k: Int, start: MediaTime, rate: Rational) -> MediaTime? {
    guard let step = rate.reciprocal, let offset = Rational(Int64(k)).multiplied(by: step),
        let t = start.rational.adding(offset)
    else { return nil }
    return MediaTime(t)
}

/// All sample times of the rate policy in `[start, end)`.
public func sampleTimes(start: MediaTime, end: MediaTime, rate: Rational) -> [MediaTime] {
    var times: [MediaTime] = []
    var k = 0
    while let t = sampleTime(k, start: start, rate: rate), t < end {
        times.append(t)
        k += 1
    }
    return times
}

/// The reference's uniform frame indices: `np.round(np.linspace(0, n - 1, samples)).astype(int)`.
///
/// Port of NVlabs/VILA@b760c34 llava/utils/media.py (`_extract_video` index rule). The float
/// arithmetic is numpy's own (`i * ((n−1)/(samples−1))`, last value pinned to n−1) so that values
/// landing on .5 round half-to-even exactly as the reference does.
public func uniformFrameIndices(frameCount n: Int, samples: Int) -> [Int] {
    guard n > 0, samples > 0 else { return [] }
    if samples == 1 { return [0] }
    let step = Double(n - 1) / Double(samples - 1)
    return (0..<samples).map { i in
        let y = i == samples - 1 ? Double(n - 1) : Double(i) * step
        return Int(y.rounded(.toNearestOrEven))
    }
}
