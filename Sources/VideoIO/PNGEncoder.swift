import CFFmpeg
import DenseCore
import Synchronization

/// Encodes RGB images as PNG with libavcodec's encoder (one context reused per picture size).
public final class PNGEncoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var size = (width: 0, height: 0)

    public init() {}

    deinit {
        avcodec_free_context(&context)
        av_frame_free(&frame)
        av_packet_free(&packet)
    }

    /// - Returns: the bytes of a PNG file.
    public func encode(_ image: RGBImage) throws -> [UInt8] {
        try prepare(width: image.width, height: image.height)
        guard let ctx = context, let frame, let packet else { throw encoderError("encoder not ready") }
        var rc = av_frame_make_writable(frame)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        let stride = Int(frame.pointee.linesize.0)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<image.height {
                (frame.pointee.data.0! + y * stride).update(from: src.baseAddress! + y * image.width * 3, count: image.width * 3)
            }
        }
        rc = avcodec_send_frame(ctx, frame)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        rc = avcodec_receive_packet(ctx, packet)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        defer { av_packet_unref(packet) }
        return Array(UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
    }

    private func prepare(width: Int, height: Int) throws {
        if context != nil && size == (width, height) { return }
        avcodec_free_context(&context)
        av_frame_free(&frame)
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_PNG), let ctx = avcodec_alloc_context3(codec) else {
            throw encoderError("this FFmpeg build has no PNG encoder")
        }
        context = ctx
        ctx.pointee.width = Int32(width)
        ctx.pointee.height = Int32(height)
        ctx.pointee.pix_fmt = AV_PIX_FMT_RGB24
        ctx.pointee.time_base = AVRational(num: 1, den: 1)
        var rc = avcodec_open2(ctx, codec, nil)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        guard let f = av_frame_alloc() else { throw encoderError("out of memory") }
        frame = f
        f.pointee.width = Int32(width)
        f.pointee.height = Int32(height)
        f.pointee.format = AV_PIX_FMT_RGB24.rawValue
        rc = av_frame_get_buffer(f, 0)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        if packet == nil { packet = av_packet_alloc() }
        size = (width, height)
    }

    private func encoderError(_ message: String) -> VideoError {
        VideoError(.output, path: "png", reason: "PNG encoding failed: \(message)")
    }
}

/// How much of FFmpeg's own logging reaches stderr. densecap reports damage itself, one line
/// per file, so the default is quiet.
public enum FFmpegLogLevel: Sendable {
    case quiet, errors, warnings, verbose

    private static let chosen = Atomic<Bool>(false)

    /// Quiet, unless the program already chose a level.
    static func applyDefaultOnce() {
        if !chosen.exchange(true, ordering: .relaxed) { av_log_set_level(AV_LOG_QUIET) }
    }

    public func apply() {
        FFmpegLogLevel.chosen.store(true, ordering: .relaxed)
        switch self {
        case .quiet: av_log_set_level(AV_LOG_QUIET)
        case .errors: av_log_set_level(AV_LOG_ERROR)
        case .warnings: av_log_set_level(AV_LOG_WARNING)
        case .verbose: av_log_set_level(AV_LOG_VERBOSE)
        }
    }
}
