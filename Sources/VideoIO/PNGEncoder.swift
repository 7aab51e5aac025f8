import CFFmpeg
import DenseCore
import Synchronization

/// Encodes RGB images as PNG (`ImageEncoder` with the `.png` format).
public final class PNGEncoder {
    private let encoder = ImageEncoder(format: .png)

    public init() {}

    /// - Returns: the bytes of a PNG file.
    public func encode(_ image: RGBImage) throws -> [UInt8] {
        try encoder.encode(image)
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
