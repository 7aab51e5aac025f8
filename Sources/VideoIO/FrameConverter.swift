import CFFmpeg
import DenseCore

/// Requested output size in display orientation. A nil side follows the display aspect ratio;
/// both nil means the display size itself.
public struct OutputSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int?
    public var height: Int?

    public init(width: Int? = nil, height: Int? = nil) {
        self.width = width
        self.height = height
    }

    /// Parses `448x448`, `448x` or `448` (width, height follows), `x448` (height, width follows).
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: "x", maxSplits: 1, omittingEmptySubsequences: false)
        func side(_ s: Substring) -> Int?? {
            if s.isEmpty || s == "-1" { return .some(nil) }
            guard let v = Int(s), v > 0, v <= 16384 else { return nil }
            return .some(v)
        }
        guard let w = side(parts[0]) else { return nil }
        let h: Int?? = parts.count == 2 ? side(parts[1]) : .some(nil)
        guard let h else { return nil }
        guard w != nil || (h ?? nil) != nil else { return nil }
        self.init(width: w, height: h)
    }

    /// The concrete size for a picture whose display size is `display`.
    public func resolved(display: (width: Int, height: Int)) -> (width: Int, height: Int) {
        switch (width, height) {
        case let (w?, h?): return (w, h)
        case let (w?, nil): return (w, max(1, Int((Double(w) * Double(display.height) / Double(display.width)).rounded())))
        case let (nil, h?): return (max(1, Int((Double(h) * Double(display.width) / Double(display.height)).rounded())), h)
        case (nil, nil): return display
        }
    }

    public var description: String { "\(width.map(String.init) ?? "auto")x\(height.map(String.init) ?? "auto")" }
}

struct ConversionError: Error {
    let message: String
}

/// swscale to packed RGB24 at the requested size, then the display rotation.
final class FrameConverter {
    private var context: OpaquePointer?
    private var buffer: UnsafeMutablePointer<UInt8>?
    private var bufferStride: Int32 = 0
    private var bufferSize = (width: 0, height: 0)

    deinit {
        sws_freeContext(context)
        av_free(buffer)
    }

    /// - Returns: `[height, width, 3]` RGB in display orientation.
    /// - Parameter fast: area averaging instead of bicubic (for small analysis frames).
    func convert(_ frame: UnsafeMutablePointer<AVFrame>, info: VideoInfo, size: OutputSize, fast: Bool = false) throws -> RGBImage {
        let f = frame.pointee
        guard f.width > 0, f.height > 0, f.format >= 0 else {
            throw ConversionError(message: "decoded frame has no picture")
        }
        // The frame may differ from the headers (mid-stream resolution change): use its own size.
        var frameInfo = info
        frameInfo.width = Int(f.width)
        frameInfo.height = Int(f.height)
        if f.sample_aspect_ratio.num > 0, f.sample_aspect_ratio.den > 0 {
            frameInfo.sampleAspectRatio = Rational(Int64(f.sample_aspect_ratio.num), Int64(f.sample_aspect_ratio.den))
        }
        let out = size.resolved(display: frameInfo.displaySize)
        let turns = info.rotation / 90
        // Scale to the pre-rotation shape, then turn: swscale cannot rotate.
        let (sw, sh) = turns % 2 == 1 ? (out.height, out.width) : (out.width, out.height)
        let source = AVPixelFormat(rawValue: f.format)
        context = sws_getCachedContext(
            context, f.width, f.height, source, Int32(sw), Int32(sh), AV_PIX_FMT_RGB24, fast ? SWS_AREA : SWS_BICUBIC, nil, nil,
            nil)
        guard let sws = context else {
            throw ConversionError(message: "cannot convert \(pixelFormatName(source)) \(f.width)x\(f.height) to RGB \(sw)x\(sh)")
        }
        applyColorDetails(sws, frame: f, source: source)
        try ensureBuffer(width: sw, height: sh)

        var dst: [UnsafeMutablePointer<UInt8>?] = [buffer, nil, nil, nil]
        var dstStride: [Int32] = [bufferStride, 0, 0, 0]
        let rows = withUnsafeMutablePointer(to: &frame.pointee.data) { data in
            withUnsafeMutablePointer(to: &frame.pointee.linesize) { linesize in
                data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { src in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { stride in
                        sws_scale(sws, src, stride, 0, f.height, &dst, &dstStride)
                    }
                }
            }
        }
        guard rows > 0 else { throw ConversionError(message: "swscale failed (\(ffmpegMessage(rows)))") }
        var pixels = [UInt8](repeating: 0, count: sw * sh * 3)
        pixels.withUnsafeMutableBufferPointer { dstPixels in
            for y in 0..<sh {
                let row = buffer! + y * Int(bufferStride)
                (dstPixels.baseAddress! + y * sw * 3).update(from: row, count: sw * 3)
            }
        }
        return RGBImage(width: sw, height: sh, pixels: pixels).rotated(clockwiseQuarterTurns: turns)
    }

    /// Picks the YUV→RGB matrix and input range from the frame, as players do: BT.709 when the
    /// stream says so, or says nothing and is HD; BT.601 otherwise. Output is full-range RGB.
    private func applyColorDetails(_ sws: OpaquePointer, frame f: AVFrame, source: AVPixelFormat) {
        let space: Int32
        switch f.colorspace {
        case AVCOL_SPC_BT709: space = SWS_CS_ITU709
        case AVCOL_SPC_FCC: space = SWS_CS_FCC
        case AVCOL_SPC_SMPTE240M: space = SWS_CS_SMPTE240M
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: space = SWS_CS_BT2020
        case AVCOL_SPC_BT470BG, AVCOL_SPC_SMPTE170M: space = SWS_CS_ITU601
        default: space = f.height >= 720 || f.width >= 1280 ? SWS_CS_ITU709 : SWS_CS_ITU601
        }
        let fullRange: Int32 =
            f.color_range == AVCOL_RANGE_JPEG
                || [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUVJ440P].contains(source)
            ? 1 : 0
        _ = sws_setColorspaceDetails(
            sws, sws_getCoefficients(space), fullRange, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16)
    }

    private func ensureBuffer(width: Int, height: Int) throws {
        guard bufferSize != (width, height) || buffer == nil else { return }
        av_free(buffer)
        buffer = nil
        // 64-byte aligned rows keep swscale on its SIMD paths.
        let stride = (width * 3 + 63) / 64 * 64
        guard let b = av_malloc(stride * height + 64)?.assumingMemoryBound(to: UInt8.self) else {
            throw ConversionError(message: "out of memory for a \(width)x\(height) picture")
        }
        buffer = b
        bufferStride = Int32(stride)
        bufferSize = (width, height)
    }
}

func pixelFormatName(_ format: AVPixelFormat) -> String {
    av_get_pix_fmt_name(format).map { String(cString: $0) } ?? "unknown"
}
