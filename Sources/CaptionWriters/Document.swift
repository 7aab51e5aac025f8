import DenseCore
import EventSegmenter
import Foundation

/// The facts about the source video that outputs record.
public struct VideoMetadata: Sendable, Equatable {
    /// The path as given.
    public var path: String
    /// The id used in ActivityNet results and the HTML title (default: file name without extension).
    public var id: String
    public var duration: MediaTime?
    public var width: Int?
    public var height: Int?
    public var frameRate: Rational?
    public var codec: String?

    public init(path: String, id: String? = nil, duration: MediaTime? = nil, width: Int? = nil, height: Int? = nil,
                frameRate: Rational? = nil, codec: String? = nil) {
        self.path = path
        self.id = id ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        self.duration = duration
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.codec = codec
    }
}

/// Everything an output file says about one video: what it is, how it was processed, its events.
public struct CaptionDocument: Sendable, Equatable {
    public var video: VideoMetadata
    /// The captioning model (nil for the detector alone).
    public var model: String?
    /// The program that wrote it ("densecap 0.1.0 segment").
    public var generator: String
    /// Settings as ordered key–value text pairs, recorded verbatim.
    public var settings: [(String, String)]
    /// What the analysis found about the video, as ordered key–value text pairs (the footage mode
    /// used, burned-in overlays ignored); not compared on resume, unlike `settings`.
    public var analysis: [(String, String)] = []
    public var events: [Event]
    /// PNG bytes of each event's keyframe thumbnail, by event index (optional).
    public var thumbnails: [Int: [UInt8]]

    public init(video: VideoMetadata, model: String? = nil, generator: String, settings: [(String, String)] = [],
                events: [Event], thumbnails: [Int: [UInt8]] = [:]) {
        self.video = video
        self.model = model
        self.generator = generator
        self.settings = settings
        self.events = events
        self.thumbnails = thumbnails
    }

    public static func == (a: CaptionDocument, b: CaptionDocument) -> Bool {
        a.video == b.video && a.model == b.model && a.generator == b.generator && a.events == b.events
            && a.thumbnails == b.thumbnails && a.settings.map { [$0.0, $0.1] } == b.settings.map { [$0.0, $0.1] }
            && a.analysis.map { [$0.0, $0.1] } == b.analysis.map { [$0.0, $0.1] }
    }
}

/// The output formats.
public enum CaptionFormat: String, Sendable, CaseIterable, Codable {
    case json, csv, srt, vtt, activitynet, html

    /// File name suffix: `<input stem>.<suffix>`.
    public var fileSuffix: String {
        switch self {
        case .json: "events.json"
        case .csv: "events.csv"
        case .srt: "srt"
        case .vtt: "vtt"
        case .activitynet: "activitynet.json"
        case .html: "html"
        }
    }

    /// Renders `document` in this format (UTF-8 text).
    public func render(_ document: CaptionDocument) -> String {
        switch self {
        case .json: JSONWriter.render(document)
        case .csv: CSVWriter.render([document])
        case .srt: SubtitleWriter.srt(document)
        case .vtt: SubtitleWriter.webVTT(document)
        case .activitynet: ActivityNetWriter.render([document])
        case .html: HTMLReport.render(document)
        }
    }
}

/// An output that could not be written.
public struct WriterError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so a reader
/// never sees a half-written file and an interrupted run leaves the old file intact.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial")
    do {
        try data.write(to: temp)
    } catch {
        try? FileManager.default.removeItem(at: temp)
        throw WriterError(path: path, reason: "cannot write: \(posixReason(error))")
    }
    if rename(temp.path, url.path) != 0 {
        let message = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temp)
        throw WriterError(path: path, reason: "cannot write: \(message)")
    }
}

/// A short message for a Foundation error (its underlying POSIX reason when there is one).
public func posixReason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return ns.localizedDescription
}

// MARK: - Time formatting (integer milliseconds of the exact time)

extension MediaTime {
    /// `HH:MM:SS,mmm` (SRT).
    var srtTimestamp: String { timecode.replacingOccurrences(of: ".", with: ",") }
}
