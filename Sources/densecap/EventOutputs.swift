import ArgumentParser
import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import FrameSampler
import Logging
import VideoIO

// Writing events the way `segment` and `caption` share: one file per format named after the
// input, thumbnails in `<name>.thumbs/`, every file atomically, the JSON last so that its
// presence (with the same settings) marks an input as done.

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

/// Writes `document` in `formats` as `folder/<stem>.<suffix>`, thumbnails first, the JSON last;
/// returns the paths written, the JSON last.
@discardableResult
func writeOutputs(_ document: CaptionDocument, file: String, into folder: String, formats: [CaptionFormat], logger: Logger) throws -> [String] {
    let name = stem(of: file)
    var written: [String] = []
    var thumbnailNames: [Int: String] = [:]
    if !document.thumbnails.isEmpty {
        let dir = (folder as NSString).appendingPathComponent("\(name).thumbs")
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw VideoError(.output, path: dir, reason: "cannot create folder: \(describe(error))")
        }
        for (i, bytes) in document.thumbnails.sorted(by: { $0.key < $1.key }) {
            let e = document.events[i]
            let png = "event_\(zeroPad(i + 1, 4))_\(e.keyframe.secondsString).png"
            try writeAtomically(Data(bytes), to: (dir as NSString).appendingPathComponent(png))
            written.append((dir as NSString).appendingPathComponent(png))
            thumbnailNames[i] = "\(name).thumbs/\(png)"
        }
    }
    for format in formats where format != .json {
        let path = (folder as NSString).appendingPathComponent("\(name).\(format.fileSuffix)")
        try writeAtomically(Data(format.render(document).utf8), to: path)
        written.append(path)
    }
    let json = JSONWriter.render(document, thumbnailNames: thumbnailNames)
    let jsonPath = (folder as NSString).appendingPathComponent("\(name).\(CaptionFormat.json.fileSuffix)")
    try writeAtomically(Data(json.utf8), to: jsonPath)
    logger.info("\(file): \(document.events.count) events → \(folder)/\(name).*")
    return written + [jsonPath]
}

/// True when `folder/<stem>.events.json` exists with these settings.
func outputIsDone(_ file: String, in folder: String, settings: [(String, String)]) -> Bool {
    let path = (folder as NSString).appendingPathComponent("\(stem(of: file)).\(CaptionFormat.json.fileSuffix)")
    guard let data = FileManager.default.contents(atPath: path),
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
        let saved = object["settings"] as? [String: String]
    else { return false }
    return saved == Dictionary(settings, uniquingKeysWith: { $1 })
}

/// Parses a comma-separated list of output formats.
func parseFormats(_ text: String) throws -> [CaptionFormat] {
    try text.split(separator: ",").map {
        guard let f = CaptionFormat(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("unknown format '\($0)'; choose from \(CaptionFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return f
    }
}
