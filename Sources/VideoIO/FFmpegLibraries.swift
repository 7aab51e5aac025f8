import CFFmpeg

/// Versions and capabilities of the FFmpeg libraries densecap runs on.
public enum FFmpegLibraries {
    /// e.g. `libavformat 59.27.100, libavcodec 59.37.100, libswscale 6.7.100, libavutil 57.28.100`.
    public static var versions: String {
        func v(_ n: UInt32) -> String { "\(n >> 16).\((n >> 8) & 0xFF).\(n & 0xFF)" }
        return "libavformat \(v(avformat_version())), libavcodec \(v(avcodec_version())), "
            + "libswscale \(v(swscale_version())), libavutil \(v(avutil_version()))"
    }

    /// `h264=yes hevc=no …` for the named decoders.
    public static func decoderAvailability(_ names: [String]) -> String {
        names.map { "\($0)=\(avcodec_find_decoder_by_name($0) != nil ? "yes" : "no")" }.joined(separator: " ")
    }
}
