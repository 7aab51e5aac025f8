import CFFmpeg
import DenseCore
import Foundation

/// A still picture's encoding, as a data URL or an upload names it.
public enum ImageEncoding: String, Sendable, CaseIterable {
    case jpeg, png, webp

    /// `image/jpeg`, `image/jpg`, `image/png`, `image/webp` (and the same subtypes of `video/`,
    /// as frame lists name them); nil for anything else.
    public init?(mediaSubtype: String) {
        switch mediaSubtype.lowercased() {
        case "jpeg", "jpg", "pjpeg": self = .jpeg
        case "png": self = .png
        case "webp": self = .webp
        default: return nil
        }
    }

    /// The encoding the bytes' signature names: PNG's 8-byte signature, JPEG's SOI marker, or a
    /// RIFF container of type WEBP; nil for anything else.
    public init?(sniffing bytes: Data) {
        let b = [UInt8](bytes.prefix(12))
        if b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if b.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if b.count == 12, b.starts(with: Array("RIFF".utf8)), Array(b[8..<12]) == Array("WEBP".utf8) {
            self = .webp
        } else {
            return nil
        }
    }

    var codecID: AVCodecID {
        switch self {
        case .jpeg: return AV_CODEC_ID_MJPEG
        case .png: return AV_CODEC_ID_PNG
        case .webp: return AV_CODEC_ID_WEBP
        }
    }
}

extension VideoReader {
    /// Decodes an encoded picture held in memory with the codec named by `encoding` alone: no
    /// demuxer probes the bytes and nothing is written to disk, so untrusted uploads reach only
    /// that one decoder. The pixels equal `readImage(path:)`'s for the same file (the image
    /// demuxers hand the whole file to the same decoder as one packet).
    /// - Parameters:
    ///   - name: how errors name the picture (e.g. "messages[0].content[1]").
    ///   - maxPixels: pictures with more pixels are refused before they are decoded.
    /// - Throws: `VideoError(.undecodable)` naming `name`.
    public static func decodeImage(_ bytes: Data, encoding: ImageEncoding, name: String, maxPixels: Int = 64 << 20) throws -> RGBImage {
        guard !bytes.isEmpty else { throw VideoError(.undecodable, path: name, reason: "empty \(encoding.rawValue) picture") }
        guard let decoder = avcodec_find_decoder(encoding.codecID) else {
            throw VideoError(.unsupportedCodec, path: name, reason: "this FFmpeg build has no \(encoding.rawValue) decoder")
        }
        var ctx = avcodec_alloc_context3(decoder)
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer {
            avcodec_free_context(&ctx)
            av_packet_free(&packet)
            av_frame_free(&frame)
        }
        guard let ctx, let packet, let frame else {
            throw VideoError(.undecodable, path: name, reason: "out of memory allocating a decoder")
        }
        ctx.pointee.max_pixels = Int64(maxPixels)
        ctx.pointee.thread_count = 1
        var rc = avcodec_open2(ctx, decoder, nil)
        guard rc >= 0 else { throw VideoError(.undecodable, path: name, reason: "cannot open the \(encoding.rawValue) decoder: \(ffmpegMessage(rc))") }
        // av_new_packet zeroes the padding the decoders read past the end.
        guard av_new_packet(packet, Int32(bytes.count)) >= 0 else {
            throw VideoError(.undecodable, path: name, reason: "out of memory for a \(bytes.count)-byte picture")
        }
        bytes.withUnsafeBytes { raw in
            packet.pointee.data.update(from: raw.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count)
        }
        packet.pointee.flags |= AV_PKT_FLAG_KEY
        rc = avcodec_send_packet(ctx, packet)
        if rc >= 0 { rc = avcodec_send_packet(ctx, nil) }
        if rc >= 0 { rc = avcodec_receive_frame(ctx, frame) }
        guard rc >= 0 else {
            throw VideoError(.undecodable, path: name, reason: "not a decodable \(encoding.rawValue) picture (\(ffmpegMessage(rc)))")
        }
        guard frame.pointee.width > 0, frame.pointee.height > 0 else {
            throw VideoError(.undecodable, path: name, reason: "the \(encoding.rawValue) picture has no pixels")
        }
        let info = VideoInfo(
            path: name, container: encoding.rawValue, streamIndex: 0, codec: String(cString: avcodec_get_name(encoding.codecID)),
            pixelFormat: av_get_pix_fmt_name(AVPixelFormat(rawValue: frame.pointee.format)).map { String(cString: $0) },
            width: Int(frame.pointee.width), height: Int(frame.pointee.height), sampleAspectRatio: .one, rotation: 0,
            mirrored: false, timeBase: Rational(1, 1), startTime: nil, duration: nil, averageFrameRate: nil,
            realFrameRate: nil, frameCount: 1, bitRate: nil, audioStreams: 0)
        do {
            return try FrameConverter().convert(frame, info: info, size: OutputSize())
        } catch let error as ConversionError {
            throw VideoError(.undecodable, path: name, reason: error.message)
        }
    }
}
