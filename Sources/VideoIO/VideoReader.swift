import CFFmpeg
import DenseCore

#if canImport(Glibc)
    import Glibc
#endif

/// How to decode.
public struct DecodeOptions: Sendable, Equatable {
    /// Decoder threads; 0 lets libavcodec use one per core.
    public var threads: Int
    /// Decode key frames only, using the decoder's skip-frame setting: non-key frames are never
    /// decoded (their packets are still read from the file).
    public var keyframesOnly: Bool
    /// Trade picture quality for speed: no in-loop deblocking, the codec's non-compliant
    /// speed-ups (`AV_CODEC_FLAG2_FAST`) and area-averaging instead of bicubic scaling. Blocking artefacts stay in the frames (and drift
    /// through the references until the next key frame): fine for boundary detection on small
    /// frames, wrong for anything shown or captioned.
    public var fast: Bool

    public init(threads: Int = 0, keyframesOnly: Bool = false, fast: Bool = false) {
        self.threads = threads
        self.keyframesOnly = keyframesOnly
        self.fast = fast
    }
}

/// What happened while decoding: damage the decoder saw and where the stream really ended.
public struct DecodeReport: Sendable, Equatable {
    /// Frames returned by `nextFrame()`.
    public var framesDecoded = 0
    /// Packets the demuxer flagged as corrupt; they are skipped, not decoded.
    public var corruptPackets = 0
    /// Packets the decoder rejected as invalid data.
    public var rejectedPackets = 0
    /// Frames the decoder returned with concealed errors, or errors returned instead of a frame.
    public var damagedFrames = 0
    /// The demuxer's error when it stopped before the end of the file (nil on a clean end).
    public var readError: String?
    /// Latest presentation time returned so far.
    public var lastFrameTime: MediaTime?
    /// Set once the decoder is drained at the end of the file: the last decoded frame's time, when
    /// the file ended (read error, or frames stop well before the declared duration) too early.
    public var truncatedAt: MediaTime?
    /// The declared end the truncation check compared against.
    public var declaredEnd: MediaTime?

    public var isDamaged: Bool { corruptPackets + rejectedPackets + damagedFrames > 0 }

    public init() {}

    /// Adds the report of a later stretch of the same stream, decoded by another reader: counts
    /// add up, the last frame comes from the later one, the first cut-off and read error stand.
    public mutating func merge(_ other: DecodeReport) {
        framesDecoded += other.framesDecoded
        corruptPackets += other.corruptPackets
        rejectedPackets += other.rejectedPackets
        damagedFrames += other.damagedFrames
        readError = readError ?? other.readError
        lastFrameTime = other.lastFrameTime ?? lastFrameTime
        truncatedAt = truncatedAt ?? other.truncatedAt
        declaredEnd = declaredEnd ?? other.declaredEnd
    }
}

/// One decoded picture, in presentation order. Owns its FFmpeg frame; freed with the object.
public final class VideoFrame {
    let frame: UnsafeMutablePointer<AVFrame>
    /// Presentation time: PTS × time base (best-effort timestamp when the PTS is missing).
    public let time: MediaTime
    public let isKeyFrame: Bool
    /// The decoder concealed errors in this picture.
    public let isDamaged: Bool
    public var width: Int { Int(frame.pointee.width) }
    public var height: Int { Int(frame.pointee.height) }

    init(taking frame: UnsafeMutablePointer<AVFrame>, time: MediaTime) {
        self.frame = frame
        self.time = time
        self.isKeyFrame = dc_frame_is_key(frame) != 0
        self.isDamaged = dc_frame_is_corrupt(frame) != 0
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&f)
    }
}

/// Reads one video stream of a file with libavformat/libavcodec: probe, decode, seek, convert.
///
/// Not thread-safe: one reader belongs to one task. C resources are freed in `deinit`.
public final class VideoReader {
    public let info: VideoInfo
    public let options: DecodeOptions
    public private(set) var report = DecodeReport()
    /// Frames presented before this time are of no use to the caller: packets with an earlier
    /// PTS are decoded with `AVDISCARD_NONREF`, so the decoder skips the ones no other frame
    /// refers to (non-reference B-frames, often half of a stream). Frames that are decoded are
    /// unchanged, so this never alters which frame answers a sample.
    public var discardBefore: MediaTime?

    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var scratch: UnsafeMutablePointer<AVFrame>?
    private let stream: UnsafeMutablePointer<AVStream>
    private var draining = false
    private var finished = false
    private var consecutiveErrors = 0
    private lazy var converter = FrameConverter()

    /// Opens `path` and prepares its best video stream for decoding.
    /// - Throws: `VideoError` naming the file: missing, unreadable, not media, no video, unsupported codec.
    public init(path: String, options: DecodeOptions = DecodeOptions()) throws {
        self.options = options
        let (fmt, index) = try VideoReader.openContainer(path)
        format = fmt
        stream = fmt.pointee.streams[index]!
        hasKeyframeIndex = avformat_index_get_entries_count(stream) > 0
        var probed = VideoReader.describe(fmt, index: index, path: path)

        let par = stream.pointee.codecpar!
        guard let decoder = avcodec_find_decoder(par.pointee.codec_id) else {
            // Read the tag before closing: the parameters belong to the format context.
            let reason = "unsupported video codec '\(probed.codec)'\(VideoReader.fourCC(par.pointee.codec_tag)): this FFmpeg build has no decoder for it"
            var f: UnsafeMutablePointer<AVFormatContext>? = fmt
            avformat_close_input(&f)
            throw VideoError(.unsupportedCodec, path: path, reason: reason)
        }
        guard let ctx = avcodec_alloc_context3(decoder) else {
            var f: UnsafeMutablePointer<AVFormatContext>? = fmt
            avformat_close_input(&f)
            throw VideoError(.undecodable, path: path, reason: "out of memory allocating a decoder")
        }
        codec = ctx
        packet = av_packet_alloc()
        scratch = av_frame_alloc()
        var rc = avcodec_parameters_to_context(ctx, par)
        if rc >= 0 {
            ctx.pointee.pkt_timebase = stream.pointee.time_base
            ctx.pointee.thread_count = Int32(max(0, options.threads))
            ctx.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
            if options.keyframesOnly { ctx.pointee.skip_frame = AVDISCARD_NONKEY }
            if options.fast {
                ctx.pointee.skip_loop_filter = AVDISCARD_ALL
                ctx.pointee.flags2 |= AV_CODEC_FLAG2_FAST
            }
            rc = avcodec_open2(ctx, decoder, nil)
        }
        if rc < 0 {
            // deinit frees what was allocated so far.
            info = probed
            throw VideoError(.unsupportedCodec, path: path,
                reason: "cannot open the \(probed.codec) decoder: \(ffmpegMessage(rc))")
        }
        if probed.pixelFormat == nil, ctx.pointee.pix_fmt != AV_PIX_FMT_NONE,
            let name = av_get_pix_fmt_name(ctx.pointee.pix_fmt)
        {
            probed.pixelFormat = String(cString: name)
        }
        info = probed
    }

    deinit {
        avcodec_free_context(&codec)
        av_packet_free(&packet)
        av_frame_free(&scratch)
        avformat_close_input(&format)
    }

    /// Reads the container headers only (no decoder is opened).
    public static func probe(path: String) throws -> VideoInfo {
        let (fmt, index) = try openContainer(path)
        var f: UnsafeMutablePointer<AVFormatContext>? = fmt
        defer { avformat_close_input(&f) }
        return describe(fmt, index: index, path: path)
    }

    // MARK: - Decoding

    /// The next decoded frame in presentation order, or nil at the end of the stream.
    ///
    /// Damage never throws: corrupt packets are skipped and counted in `report`; a stream that
    /// ends early is drained and its end recorded in `report.truncatedAt`.
    public func nextFrame() throws -> VideoFrame? {
        guard let ctx = codec, let pkt = packet, let fmt = format, let scratch = scratch else { return nil }
        if finished { return nil }
        while true {
            let received = avcodec_receive_frame(ctx, scratch)
            if received == 0 {
                consecutiveErrors = 0
                guard let owned = av_frame_alloc() else {
                    av_frame_unref(scratch)
                    throw VideoError(.undecodable, path: info.path, reason: "out of memory allocating a frame")
                }
                av_frame_move_ref(owned, scratch)
                let time = presentationTime(of: owned)
                let out = VideoFrame(taking: owned, time: time)
                report.framesDecoded += 1
                if out.isDamaged { report.damagedFrames += 1 }
                if report.lastFrameTime.map({ $0 < time }) ?? true { report.lastFrameTime = time }
                return out
            }
            if received == dc_averror_eof() {
                finish()
                return nil
            }
            if received != dc_averror_eagain() {
                // A picture was lost inside the decoder; keep going with the next one.
                report.damagedFrames += 1
                consecutiveErrors += 1
                if consecutiveErrors > 10_000 {
                    throw VideoError(.undecodable, path: info.path,
                        reason: "decoder keeps failing: \(ffmpegMessage(received))")
                }
                if draining { continue }
            }
            if draining {
                // EAGAIN while draining cannot make progress; treat as the end.
                finish()
                return nil
            }
            let read = av_read_frame(fmt, pkt)
            if read < 0 {
                if read != dc_averror_eof() { report.readError = ffmpegMessage(read) }
                draining = true
                _ = avcodec_send_packet(ctx, nil)
                continue
            }
            defer { av_packet_unref(pkt) }
            guard pkt.pointee.stream_index == stream.pointee.index else { continue }
            if dc_packet_is_corrupt(pkt) != 0 {
                report.corruptPackets += 1
                continue
            }
            if !options.keyframesOnly {
                // The context's skip_frame is copied to the frame thread when the packet is submitted.
                let useless = discardBefore.map { limit in
                    pkt.pointee.pts != dc_nopts_value() && (MediaTime(pts: pkt.pointee.pts, timeBase: info.timeBase).map { $0 < limit } ?? false)
                } ?? false
                let discard = useless ? AVDISCARD_NONREF : AVDISCARD_DEFAULT
                if ctx.pointee.skip_frame != discard { ctx.pointee.skip_frame = discard }
            }
            let sent = avcodec_send_packet(ctx, pkt)
            if sent < 0 && sent != dc_averror_eagain() {
                report.rejectedPackets += 1
            }
        }
    }

    /// Moves to the key frame at or before `time`; the next `nextFrame()` decodes forward from it.
    /// Containers with a seek index (MP4, Matroska) land exactly there; without one (MPEG-TS)
    /// FFmpeg searches by byte position and may land later, which `FrameSampler` corrects for.
    /// - Returns: false when the container cannot seek (the reader is then unchanged).
    @discardableResult
    public func seek(to time: MediaTime) -> Bool {
        guard let fmt = format, let ctx = codec, let ts = time.ticks(in: info.timeBase) else { return false }
        var rc = av_seek_frame(fmt, stream.pointee.index, ts, AVSEEK_FLAG_BACKWARD)
        if rc < 0 { rc = avformat_seek_file(fmt, stream.pointee.index, Int64.min, ts, ts, 0) }
        guard rc >= 0 else { return false }
        avcodec_flush_buffers(ctx)
        draining = false
        finished = false
        return true
    }

    /// Goes back to the very beginning of the stream: the first time stamp for containers with an
    /// index (exact there), byte 0 for those without one (MPEG-TS resynchronises on it).
    public func rewind() {
        guard let fmt = format, let ctx = codec else { return }
        let byteSeekable = (fmt.pointee.iformat.pointee.flags & AVFMT_NO_BYTE_SEEK) == 0
        if hasKeyframeIndex || !(byteSeekable && av_seek_frame(fmt, -1, 0, AVSEEK_FLAG_BYTE) >= 0) {
            let first = stream.pointee.start_time != dc_nopts_value() ? stream.pointee.start_time : 0
            _ = av_seek_frame(fmt, stream.pointee.index, first, AVSEEK_FLAG_BACKWARD)
        }
        avcodec_flush_buffers(ctx)
        draining = false
        finished = false
    }

    /// Time of the key frame at or before `time` according to the container's index, or nil when
    /// the container has no index (MPEG-TS, raw streams).
    public func keyframeTime(atOrBefore time: MediaTime) -> MediaTime? {
        guard hasKeyframeIndex, let ts = time.ticks(in: info.timeBase),
            let entry = avformat_index_get_entry_from_timestamp(stream, ts, AVSEEK_FLAG_BACKWARD)
        else { return nil }
        return MediaTime(pts: entry.pointee.timestamp, timeBase: info.timeBase)
    }

    /// True when the container came with a seek index of key frames (MP4, Matroska). Formats
    /// without one (MPEG-TS) build a partial index while reading, which does not count.
    public let hasKeyframeIndex: Bool

    /// Converts a decoded frame to packed RGB at `size`, as a player shows it (sample aspect ratio
    /// and rotation applied).
    public func image(from frame: VideoFrame, size: OutputSize = OutputSize()) throws -> RGBImage {
        do {
            return try converter.convert(frame.frame, info: info, size: size, fast: options.fast)
        } catch let error as ConversionError {
            throw VideoError(.undecodable, path: info.path, reason: error.message)
        }
    }

    // MARK: - Private

    private func finish() {
        finished = true
        guard report.truncatedAt == nil else { return }
        if report.readError != nil {
            report.truncatedAt = report.lastFrameTime ?? info.startTime ?? .zero
            return
        }
        // Key-frame-only decoding stops at the last key frame, which says nothing about the end.
        guard !options.keyframesOnly, let last = report.lastFrameTime else { return }
        // Only the stream's own duration is a promise about this stream: a container duration
        // covers every stream, and demuxers disagree on whether it counts from zero or the start.
        guard stream.pointee.duration != dc_nopts_value(), stream.pointee.duration > 0, let end = info.endTime else { return }
        report.declaredEnd = end
        let frameDuration = info.averageFrameRate.flatMap { $0.reciprocal } ?? Rational(1, 25)
        // Allow the last frame's own duration, two more frames and a quarter second of slack.
        let slack = MediaTime(frameDuration * Rational(3) + Rational(1, 4))
        if last + slack < end { report.truncatedAt = last }
    }

    private func presentationTime(of frame: UnsafeMutablePointer<AVFrame>) -> MediaTime {
        var pts = frame.pointee.pts
        if pts == dc_nopts_value() { pts = frame.pointee.best_effort_timestamp }
        if pts != dc_nopts_value(), let t = MediaTime(pts: pts, timeBase: info.timeBase) { return t }
        // No timestamp at all: continue from the previous frame by this frame's duration.
        let step: Rational
        if frame.pointee.pkt_duration > 0 {
            step = Rational(frame.pointee.pkt_duration) * info.timeBase
        } else {
            step = info.averageFrameRate.flatMap { $0.isZero ? nil : $0.reciprocal } ?? Rational(1, 25)
        }
        if let last = report.lastFrameTime { return last + MediaTime(step) }
        return info.startTime ?? .zero
    }

    static func openContainer(_ path: String) throws -> (UnsafeMutablePointer<AVFormatContext>, Int) {
        FFmpegLogLevel.applyDefaultOnce()
        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw VideoError(.missing, path: path, reason: "no such file") }
            throw VideoError(.unreadable, path: path, reason: String(cString: strerror(e)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw VideoError(.unreadable, path: path, reason: "is a directory") }
        if access(path, R_OK) != 0 {
            throw VideoError(.unreadable, path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 {
            throw VideoError(.notMedia, path: path, reason: "file is empty (0 bytes)")
        }
        var fmt: UnsafeMutablePointer<AVFormatContext>?
        var rc = avformat_open_input(&fmt, path, nil, nil)
        guard rc >= 0, let ctx = fmt else {
            if rc == -EACCES || rc == -EIO {
                throw VideoError(.unreadable, path: path, reason: ffmpegMessage(rc))
            }
            throw VideoError(.notMedia, path: path, reason: "not a recognised media file (\(ffmpegMessage(rc)))")
        }
        rc = avformat_find_stream_info(ctx, nil)
        if rc < 0 {
            avformat_close_input(&fmt)
            throw VideoError(.notMedia, path: path, reason: "cannot read stream information (\(ffmpegMessage(rc)))")
        }
        let streams = (0..<Int(ctx.pointee.nb_streams)).map { ctx.pointee.streams[$0]! }
        let isPicture = { (s: UnsafeMutablePointer<AVStream>) in
            s.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
                && (s.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) == 0
        }
        let candidates = streams.indices.filter { isPicture(streams[$0]) }
        guard !candidates.isEmpty else {
            let audio = streams.filter { $0.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO }.count
            avformat_close_input(&fmt)
            throw VideoError(.noVideo, path: path,
                reason: audio > 0 ? "no video stream (audio only)" : "no video stream")
        }
        let best = Int(av_find_best_stream(ctx, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0))
        let index = candidates.contains(best) ? best : candidates[0]
        let par = streams[index].pointee.codecpar.pointee
        if par.width <= 0 || par.height <= 0 {
            avformat_close_input(&fmt)
            throw VideoError(.notMedia, path: path, reason: "video stream has no picture size")
        }
        // Discard every other stream at the demuxer so its packets cost nothing.
        for (i, s) in streams.enumerated() where i != index { s.pointee.discard = AVDISCARD_ALL }
        return (ctx, index)
    }

    static func describe(_ fmt: UnsafeMutablePointer<AVFormatContext>, index: Int, path: String) -> VideoInfo {
        let st = fmt.pointee.streams[index]!.pointee
        let par = st.codecpar.pointee
        let nopts = dc_nopts_value()
        let timeBase = rational(st.time_base) ?? Rational(1, 90_000)
        var sar = rational(st.sample_aspect_ratio) ?? rational(par.sample_aspect_ratio) ?? .one
        if sar.numerator <= 0 { sar = .one }
        let ccw = dc_stream_rotation(fmt.pointee.streams[index])
        var rotation = 0
        if !ccw.isNaN {
            rotation = ((Int((-ccw / 90).rounded()) % 4 + 4) % 4) * 90
        }
        var duration: MediaTime?
        if st.duration != nopts, st.duration > 0 {
            duration = MediaTime(pts: st.duration, timeBase: timeBase)
        } else if fmt.pointee.duration != nopts, fmt.pointee.duration > 0 {
            duration = MediaTime(value: fmt.pointee.duration, timescale: Int64(AV_TIME_BASE))
        }
        let start = st.start_time != nopts ? MediaTime(pts: st.start_time, timeBase: timeBase) : nil
        let audio = (0..<Int(fmt.pointee.nb_streams)).filter {
            fmt.pointee.streams[$0]!.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO
        }.count
        let pixelFormat = par.format >= 0 ? av_get_pix_fmt_name(AVPixelFormat(rawValue: par.format)).map { String(cString: $0) } : nil
        let bitRate = par.bit_rate > 0 ? Int(par.bit_rate) : (fmt.pointee.bit_rate > 0 ? Int(fmt.pointee.bit_rate) : nil)
        return VideoInfo(
            path: path,
            container: String(cString: fmt.pointee.iformat.pointee.name),
            streamIndex: index,
            codec: String(cString: avcodec_get_name(par.codec_id)),
            pixelFormat: pixelFormat,
            width: Int(par.width), height: Int(par.height),
            sampleAspectRatio: sar,
            rotation: rotation,
            mirrored: dc_stream_is_mirrored(fmt.pointee.streams[index]) != 0,
            timeBase: timeBase,
            startTime: start,
            duration: duration,
            averageFrameRate: rational(st.avg_frame_rate),
            realFrameRate: rational(st.r_frame_rate),
            frameCount: st.nb_frames > 0 ? Int(st.nb_frames) : nil,
            bitRate: bitRate,
            audioStreams: audio)
    }

    static func fourCC(_ tag: UInt32) -> String {
        guard tag != 0 else { return "" }
        let bytes = (0..<4).map { UInt8((tag >> (8 * UInt32($0))) & 0xFF) }
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return "" }
        return " (tag \(String(decoding: bytes, as: UTF8.self)))"
    }
}

/// A positive FFmpeg rational as `Rational`, or nil for 0/x, x/0 and negatives.
func rational(_ r: AVRational) -> Rational? {
    guard r.num > 0, r.den > 0 else { return nil }
    return Rational(Int64(r.num), Int64(r.den))
}
