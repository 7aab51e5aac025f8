import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

// Writing events the way `segment` and `caption` share: one file per format named after the
// input, thumbnails in `<name>.thumbs/`, every file atomically, the JSON last.

/// PNGs of the events' keyframes, decoded again at `width` (keyframes are frame times).
func keyframeThumbnails(_ file: String, events: [Event], width: Int, threads: Int, logger: Logger) throws -> [Int: [UInt8]] {
    let reader = try VideoReader(path: file, options: DecodeOptions(threads: threads))
    let size = OutputSize(width: min(width, reader.info.displaySize.width))
    let png = PNGEncoder()
    var out: [Int: [UInt8]] = [:]
    for (i, e) in events.enumerated() {
        let sampler = try FrameSampler(reader: reader, policy: .every, window: TimeWindow(start: e.keyframe), logger: logger)
        guard let sample = try sampler.next() else { continue }
        out[i] = try png.encode(try reader.image(from: sample.frame, size: size))
    }
    return out
}

/// Writes `document` in `formats` as `folder/<stem>.<suffix>`, thumbnails first, the JSON last.
/// - Returns: the files written, relative to `folder`.
func writeOutputs(_ document: CaptionDocument, file: String, into folder: String, formats: [CaptionFormat], logger: Logger) throws -> [String] {
    let name = stem(of: file)
    var written: [String] = []
    var thumbnailNames: [Int: String] = [:]
    if !document.thumbnails.isEmpty {
        let dir = (folder as NSString).appendingPathComponent("\(name).thumbs")
        try createFolder(dir)
        for (i, bytes) in document.thumbnails.sorted(by: { $0.key < $1.key }) {
            let png = thumbnailName(stem: name, index: i, keyframe: document.events[i].keyframe)
            try writeOutput(Data(bytes), to: (folder as NSString).appendingPathComponent(png))
            thumbnailNames[i] = png
            written.append(png)
        }
    }
    for format in formats where format != .json {
        try writeOutput(Data(format.render(document).utf8), to: (folder as NSString).appendingPathComponent("\(name).\(format.fileSuffix)"))
        written.append("\(name).\(format.fileSuffix)")
    }
    if formats.contains(.json) {
        let json = JSONWriter.render(document, thumbnailNames: thumbnailNames)
        try writeOutput(Data(json.utf8), to: (folder as NSString).appendingPathComponent("\(name).\(CaptionFormat.json.fileSuffix)"))
        written.append("\(name).\(CaptionFormat.json.fileSuffix)")
    }
    logger.info("\(file): \(document.events.count) events → \(folder)/\(name).*")
    return written
}

/// The file the keyframe thumbnail of event `index` is written to, relative to the output folder:
/// `<stem>.thumbs/event_0001_6.706.png` (numbered from 1, named after the keyframe's time).
public func thumbnailName(stem name: String, index: Int, keyframe: MediaTime) -> String {
    "\(name).thumbs/event_\(zeroPad(index + 1, 4))_\(keyframe.secondsString).png"
}

/// `CaptionWriters.writeAtomically`, failing as an output error of the exit-code table.
public func writeOutput(_ data: Data, to path: String) throws {
    do {
        try writeAtomically(data, to: path)
    } catch let error as WriterError {
        throw VideoError(.output, path: error.path, reason: error.reason)
    }
}

func createFolder(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw VideoError(.output, path: path, reason: "cannot create folder: \(posixReason(error))")
    }
}

/// What a job did with one input: for the CLI to report and for tests and benchmarks to count.
public struct JobOutcome: Sendable {
    /// The input was already done with these settings (nothing was run).
    public var skipped = false
    public var document: CaptionDocument?
    public var report = DecodeReport()
    /// Files written, relative to the output folder.
    public var written: [String] = []
    /// Frames through the vision tower in this run, and frames read back from the cache.
    public var towerPasses = 0
    public var cachedFrames = 0
    /// Captions generated in this run, and captions reused from the manifest.
    public var generations = 0
    public var reusedCaptions = 0
    public var promptTokens = 0
    public var generatedTokens = 0

    public init() {}
}
