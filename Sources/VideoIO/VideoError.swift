import CFFmpeg

/// Why a video could not be opened or read. Every case names the file; `description` is one line.
public struct VideoError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem this is; the CLI maps each to a documented exit code.
    public enum Kind: String, Sendable, Equatable {
        /// The path does not exist.
        case missing
        /// The file exists but cannot be read (permissions, a directory, an I/O error).
        case unreadable
        /// The bytes are not a media file FFmpeg can parse, or the file is empty.
        case notMedia
        /// A media file without any video stream (audio only, subtitles only).
        case noVideo
        /// The video codec has no decoder in this FFmpeg build.
        case unsupportedCodec
        /// The file parsed but no frame could be decoded from it.
        case undecodable
        /// Writing an output failed.
        case output
    }

    public let kind: Kind
    public let path: String
    public let reason: String

    public init(_ kind: Kind, path: String, reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// An FFmpeg return code rendered as text with `av_strerror`.
func ffmpegMessage(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    av_strerror(code, &buffer, buffer.count)
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
