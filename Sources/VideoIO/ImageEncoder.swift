import CFFmpeg
import DenseCore

/// Encodes RGB images as PNG or JPEG files with libavcodec's own encoders (`png`, `mjpeg`); one
/// codec context is reused while the picture size stays the same.
public final class ImageEncoder {
    public enum Format: Sendable, Equatable {
        /// Lossless, 8-bit RGB.
        case png
        /// Baseline JPEG, 4:2:0 full-range BT.601 YCbCr (JFIF); `quality` 1…100 as libjpeg and
        /// Pillow count it (see `ImageEncoder.qscale(quality:)`).
        case jpeg(quality: Int)
    }

    public let format: Format
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var scaler: OpaquePointer?
    private var size = (width: 0, height: 0)
    /// Increases per picture: mpegvideo encoders refuse a timestamp that does not.
    private var pictures: Int64 = 0

    public init(format: Format) {
        self.format = format
        FFmpegLogLevel.applyDefaultOnce()
    }

    deinit {
        avcodec_free_context(&context)
        av_frame_free(&frame)
        av_packet_free(&packet)
        sws_freeContext(scaler)
    }

    /// The mjpeg encoder's fixed quantiser for a libjpeg quality. libjpeg scales its Annex K
    /// tables by `S = 5000 / q` % (q < 50) or `200 − 2q` % (q ≥ 50); FFmpeg's mjpeg encoder
    /// writes its base tables times `qscale / 8`, so `qscale = 8 · S / 100`, rounded and kept in
    /// 1…31 (quality 90 → 2, 75 → 4, 50 → 8, 25 → 16).
    public static func qscale(quality: Int) -> Int {
        let q = min(100, max(1, quality))
        let percent = q < 50 ? 5000.0 / Double(q) : Double(200 - 2 * q)
        return min(31, max(1, Int((8 * percent / 100).rounded())))
    }

    /// - Returns: the bytes of one PNG or JPEG file.
    public func encode(_ image: RGBImage) throws -> [UInt8] {
        try prepare(width: image.width, height: image.height)
        guard let ctx = context, let frame, let packet else { throw encoderError("encoder not ready") }
        var rc = av_frame_make_writable(frame)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        switch format {
        case .png:
            let stride = Int(frame.pointee.linesize.0)
            image.pixels.withUnsafeBufferPointer { src in
                for y in 0..<image.height {
                    (frame.pointee.data.0! + y * stride).update(
                        from: src.baseAddress! + y * image.width * 3, count: image.width * 3)
                }
            }
        case .jpeg:
            let rows = image.pixels.withUnsafeBufferPointer { src -> Int32 in
                var srcPlanes: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
                var srcStrides: [Int32] = [Int32(image.width * 3), 0, 0, 0]
                return withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                    withUnsafeMutablePointer(to: &frame.pointee.linesize) { linesize in
                        data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dst in
                            linesize.withMemoryRebound(to: Int32.self, capacity: 8) { dstStride in
                                sws_scale(scaler, &srcPlanes, &srcStrides, 0, Int32(image.height), dst, dstStride)
                            }
                        }
                    }
                }
            }
            guard rows > 0 else { throw encoderError("swscale failed (\(ffmpegMessage(rows)))") }
            frame.pointee.quality = ctx.pointee.global_quality
        }
        frame.pointee.pts = pictures
        pictures += 1
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
        let (codecID, pixelFormat): (AVCodecID, AVPixelFormat) =
            switch format {
            case .png: (AV_CODEC_ID_PNG, AV_PIX_FMT_RGB24)
            // The J format is mjpeg's full-range 4:2:0, which every JPEG decoder reads as JFIF.
            case .jpeg: (AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P)
            }
        guard let codec = avcodec_find_encoder(codecID), let ctx = avcodec_alloc_context3(codec) else {
            throw encoderError("this FFmpeg build has no \(name) encoder")
        }
        context = ctx
        ctx.pointee.width = Int32(width)
        ctx.pointee.height = Int32(height)
        ctx.pointee.pix_fmt = pixelFormat
        ctx.pointee.time_base = AVRational(num: 1, den: 25)
        if case .jpeg(let quality) = format {
            ctx.pointee.color_range = AVCOL_RANGE_JPEG
            ctx.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            ctx.pointee.qmin = 1
            ctx.pointee.qmax = 31
            ctx.pointee.global_quality = Int32(Self.qscale(quality: quality)) * Int32(FF_QP2LAMBDA)
            scaler = sws_getCachedContext(
                scaler, Int32(width), Int32(height), AV_PIX_FMT_RGB24, Int32(width), Int32(height), pixelFormat,
                SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, nil, nil, nil)
            guard scaler != nil else { throw encoderError("cannot convert RGB to YUV \(width)x\(height)") }
        }
        var rc = avcodec_open2(ctx, codec, nil)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        guard let f = av_frame_alloc() else { throw encoderError("out of memory") }
        frame = f
        f.pointee.width = Int32(width)
        f.pointee.height = Int32(height)
        f.pointee.format = pixelFormat.rawValue
        f.pointee.color_range = ctx.pointee.color_range
        rc = av_frame_get_buffer(f, 0)
        guard rc >= 0 else { throw encoderError(ffmpegMessage(rc)) }
        if packet == nil { packet = av_packet_alloc() }
        size = (width, height)
    }

    private var name: String {
        switch format {
        case .png: "PNG"
        case .jpeg: "JPEG"
        }
    }

    private func encoderError(_ message: String) -> VideoError {
        VideoError(.output, path: name.lowercased(), reason: "\(name) encoding failed: \(message)")
    }
}
