import DenseCore

/// What the container and the video stream's headers say about a file, read without decoding.
public struct VideoInfo: Sendable, Equatable {
    public var path: String
    /// Container format name(s), e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    public var container: String
    /// Index of the chosen video stream in the container.
    public var streamIndex: Int
    /// Video codec short name, e.g. `h264`.
    public var codec: String
    /// Decoder pixel format name, e.g. `yuv420p` (nil when unknown).
    public var pixelFormat: String?
    /// Coded size in pixels, before sample aspect ratio and rotation.
    public var width: Int
    public var height: Int
    /// Sample (pixel) aspect ratio; `1` for square pixels.
    public var sampleAspectRatio: Rational
    /// Clockwise rotation in degrees (0, 90, 180, 270) a player applies, from the display matrix.
    public var rotation: Int
    /// The display matrix also mirrors the picture (reported; not applied).
    public var mirrored: Bool
    /// The stream's time base: one PTS tick is this many seconds.
    public var timeBase: Rational
    /// First presentation time of the stream (nil when the container does not say).
    public var startTime: MediaTime?
    /// Stream duration, or the container's when the stream has none.
    public var duration: MediaTime?
    /// Average frame rate (frames ÷ duration) as the container reports it.
    public var averageFrameRate: Rational?
    /// FFmpeg's "real" base frame rate: the lowest rate that represents every timestamp.
    public var realFrameRate: Rational?
    /// Frame count from the container header, when it has one (MP4 does; MPEG-TS does not).
    public var frameCount: Int?
    /// Bit rate in bits per second (stream's, else the container's), when known.
    public var bitRate: Int?
    /// Number of audio streams in the file.
    public var audioStreams: Int

    /// True when the average and real frame rates disagree by more than 0.5 %, which is how a
    /// variable-rate stream shows in the headers. `VideoReader.scanPackets()` tells for certain.
    public var isVariableFrameRate: Bool {
        guard let a = averageFrameRate, let r = realFrameRate, !a.isZero, !r.isZero else { return false }
        return abs(a.doubleValue - r.doubleValue) > 0.005 * r.doubleValue
    }

    /// Size a player shows: width stretched by the sample aspect ratio, then rotated.
    public var displaySize: (width: Int, height: Int) {
        var w = width
        if sampleAspectRatio.numerator > 0, sampleAspectRatio != .one {
            w = Int((Double(width) * sampleAspectRatio.doubleValue).rounded())
            w += w & 1 == 1 && width & 1 == 0 ? 1 : 0  // keep even like players' scalers
        }
        return rotation % 180 == 0 ? (w, height) : (height, w)
    }

    /// End of the stream's timeline (start + duration), when both are known.
    public var endTime: MediaTime? {
        guard let d = duration else { return nil }
        return (startTime ?? .zero) + d
    }
}

/// Exact facts from reading every packet of the video stream (no decoding).
public struct PacketScan: Sendable, Equatable {
    /// Presentation times of all video packets that carry one, sorted.
    public var presentationTimes: [MediaTime]
    /// Presentation times of the key packets, sorted.
    public var keyTimes: [MediaTime]
    /// Packets without a PTS (counted, not timed).
    public var packetsWithoutTime: Int
    /// Packets the demuxer flagged as corrupt.
    public var corruptPackets: Int
    /// Shortest and longest gap between consecutive presentation times (nil below two frames).
    public var minFrameDuration: MediaTime?
    public var maxFrameDuration: MediaTime?
    /// One tick of the stream's time base (rounding unit of every gap).
    public var tick: MediaTime
    /// True when the demuxer stopped with an error before the end of the file.
    public var endedEarly: Bool

    public var frameCount: Int { presentationTimes.count + packetsWithoutTime }
    /// True when frame gaps differ by more than one tick and 2 %: rounding jitter (33/34 ms in a
    /// 1/1000 time base) is constant rate; a dropped-frame or VFR stream is not.
    public var isVariableFrameRate: Bool {
        guard let lo = minFrameDuration, let hi = maxFrameDuration else { return false }
        let spread = hi - lo
        return tick < spread && MediaTime(lo.rational / Rational(50)) < spread
    }
}
