import ArgumentParser
import DenseCore
import Foundation
import FrameSampler
import Jobs
import Logging
import VideoIO

struct Frames: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample frames of a video at exact timestamps and write them as PNG (or raw RGB).",
        discussion: """
            Sampling rule for --fps F: sample times are t_k = start + k/F, and each takes the first \
            decoded frame whose presentation time is ≥ t_k (so a sample is never earlier than its \
            time; when F exceeds the source rate, a frame answers several t_k). --frames N takes N \
            frames uniformly over the frames in range with round-half-to-even of linspace(0, n−1, N), \
            as NVILA's reference does. --keyframes decodes key frames only (alone: every key frame; \
            with --fps or --frames: the rule applied to key frames). Times are the stream's \
            presentation timestamps (PTS × time base), the numbers ffprobe prints as pts_time.

            Output: PNG files named frame_<index>_<seconds>.png and index.json listing every \
            frame's exact time, written last and atomically; a rerun skips inputs whose index.json \
            is complete (use --force to redo them).
            """)

    @Argument(help: "Video file(s). With several, each gets its own folder under --out.")
    var files: [String]

    @Option(help: "Sample rate in frames per second (exact: 1, 0.5, 30000/1001).")
    var fps: String?

    @Option(help: "Take this many frames uniformly over the range.")
    var frames: Int?

    @Flag(help: "Decode key frames only; alone, output every key frame.")
    var keyframes = false

    @Flag(help: "Output every decoded frame.")
    var all = false

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "Output size: WxH (exact), W or Wx (height keeps the display aspect), xH. Default: display size.")
    var size: String?

    @Option(help: "png or rgb24 (packed RGB, frames back to back).")
    var format: OutputFormat = .png

    @Option(name: .shortAndLong, help: "Output folder, or - to write rgb24 frames to stdout.")
    var out: String

    @Option(help: "Decoder threads (0 = one per core).")
    var threads: Int = 0

    @Flag(help: "Redo inputs whose output is already complete.")
    var force = false

    @OptionGroup var global: GlobalOptions

    enum OutputFormat: String, ExpressibleByArgument {
        case png, rgb24
    }

    func validate() throws {
        let chosen = [fps != nil, frames != nil, all].filter { $0 }.count
        guard chosen <= 1 else { throw ValidationError("choose one of --fps, --frames and --all") }
        guard chosen == 1 || keyframes else { throw ValidationError("choose --fps, --frames, --keyframes or --all") }
        if let fps {
            guard let r = Rational(parsing: fps), Rational.zero < r else {
                throw ValidationError("--fps must be a positive number or fraction, got '\(fps)'")
            }
        }
        if let frames, frames < 1 { throw ValidationError("--frames must be at least 1") }
        if let size, OutputSize(parsing: size) == nil { throw ValidationError("cannot read --size '\(size)'; use WxH, W or xH") }
        if out == "-" {
            guard format == .rgb24 else { throw ValidationError("--out - needs --format rgb24") }
            guard files.count == 1 else { throw ValidationError("--out - takes one input") }
        }
    }

    func run() throws {
        let logger = global.makeLogger(label: "densecap.frames")
        var status = Status.success
        for file in files {
            let folder = files.count == 1 ? out : (out as NSString).appendingPathComponent(stem(of: file))
            do {
                status = max(status, try extract(file, into: folder, logger: logger))
            } catch let error as VideoError {
                Console.error(error.description)
                status = max(status, Status(error.kind))
            }
        }
        if status != .success { throw status.exitCode }
    }

    private var policy: SamplingPolicy {
        if let fps { return .rate(Rational(parsing: fps)!) }
        if let frames { return .count(frames) }
        return .every
    }

    private func extract(_ file: String, into folder: String, logger: Logger) throws -> Status {
        let toStdout = folder == "-"
        let indexPath = (folder as NSString).appendingPathComponent("index.json")
        let settings = FrameIndex.Settings(
            policy: fps.map { "fps=\($0)" } ?? frames.map { "frames=\($0)" } ?? "every",
            keyframesOnly: keyframes, start: range.start, end: range.end, size: size, format: format.rawValue)
        if !toStdout, !force, let done = FrameIndex.load(indexPath), done.settings == settings, done.complete {
            logger.info("\(file): already done (\(indexPath)); --force redoes it")
            return done.decode.truncatedAt != nil || done.decode.damaged ? .partial : .success
        }
        let reader = try VideoReader(path: file, options: DecodeOptions(threads: threads, keyframesOnly: keyframes))
        let window = range.window
        let sampler = try FrameSampler(reader: reader, policy: policy, window: window, logger: logger)
        let outputSize = size.flatMap(OutputSize.init(parsing:)) ?? OutputSize()
        if !toStdout {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw VideoError(.output, path: folder, reason: "cannot create folder: \(describe(error))")
            }
        }
        let raw = format == .rgb24 ? try RawSink(folder: folder) : nil
        let png = PNGEncoder()
        let progress = ProgressBar(label: stem(of: file))
        var entries: [FrameIndex.Entry] = []
        while let sample = try sampler.next() {
            let image = try reader.image(from: sample.frame, size: outputSize)
            let name: String?
            if let raw {
                try raw.write(image.pixels)
                name = nil
            } else {
                name = "frame_\(zeroPad(sample.index, 6))_\(zeroPad(Int(sample.time.milliseconds / 1000), 6)).\(zeroPad(Int(sample.time.milliseconds % 1000), 3)).png"
                try writeOutput(Data(try png.encode(image)), to: (folder as NSString).appendingPathComponent(name!))
            }
            entries.append(FrameIndex.Entry(sample: sample, file: name, timeBase: reader.info.timeBase, width: image.width, height: image.height))
            progress.update(sampler.progress, detail: "\(entries.count) frames")
        }
        progress.finish()
        try raw?.close()
        let report = reader.report
        let index = FrameIndex(source: ProbeReport(info: reader.info, scan: nil), settings: settings, frames: entries,
                               decode: .init(report: report, seeks: sampler.seekCount), complete: true)
        if !toStdout {
            try writeOutput(try index.encoded(), to: indexPath)
            removeStaleFrames(in: folder, keeping: Set(entries.compactMap(\.file)))
        }
        logger.info("\(file): \(entries.count) frames → \(toStdout ? "stdout" : folder)")
        return warnAboutDamage(file, report: report) ? .partial : .success
    }

    /// Frames an earlier run with other settings left behind would be mistaken for this run's.
    private func removeStaleFrames(in folder: String, keeping written: Set<String>) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names where name.hasPrefix("frame_") && name.hasSuffix(".png") && !written.contains(name) {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(name))
        }
        if format == .png { try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent("frames.rgb")) }
    }
}

/// Raw RGB24 frames back to back, to stdout or to `frames.rgb` (renamed into place at the end).
final class RawSink {
    private let handle: FileHandle
    private let finalPath: String?
    private let tempPath: String?

    init(folder: String) throws {
        if folder == "-" {
            handle = .standardOutput
            finalPath = nil
            tempPath = nil
        } else {
            let path = (folder as NSString).appendingPathComponent("frames.rgb")
            let temp = path + ".partial"
            guard FileManager.default.createFile(atPath: temp, contents: nil), let h = FileHandle(forWritingAtPath: temp) else {
                throw VideoError(.output, path: path, reason: "cannot create file")
            }
            handle = h
            finalPath = path
            tempPath = temp
        }
    }

    func write(_ bytes: [UInt8]) throws {
        do { try handle.write(contentsOf: bytes) } catch {
            throw VideoError(.output, path: finalPath ?? "stdout", reason: "cannot write: \(describe(error))")
        }
    }

    func close() throws {
        guard let finalPath, let tempPath else { return }
        try handle.close()
        guard rename(tempPath, finalPath) == 0 else {
            throw VideoError(.output, path: finalPath, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
    }
}

/// index.json: the source, the settings and every sampled frame's exact time.
struct FrameIndex: Codable {
    struct Settings: Codable, Equatable {
        let policy: String
        let keyframesOnly: Bool
        let start: String?
        let end: String?
        let size: String?
        let format: String

        enum CodingKeys: String, CodingKey {
            case policy, start, end, size, format
            case keyframesOnly = "keyframes_only"
        }
    }

    struct Entry: Codable {
        let index: Int
        let file: String?
        /// PTS in the stream's time base.
        let pts: Int64?
        let time: TimeJSON
        let requested: TimeJSON?
        let keyFrame: Bool
        let repeatsPrevious: Bool
        let damaged: Bool
        let width: Int
        let height: Int

        enum CodingKeys: String, CodingKey {
            case index, file, pts, time, requested, damaged, width, height
            case keyFrame = "key_frame", repeatsPrevious = "repeats_previous"
        }

        init(sample: SampledFrame, file: String?, timeBase: Rational, width: Int, height: Int) {
            index = sample.index
            self.file = file
            let ticks = sample.time.rational.dividedBy(timeBase)
            pts = ticks.flatMap { $0.denominator == 1 ? $0.numerator : nil }
            time = TimeJSON(sample.time)
            requested = sample.requested.map(TimeJSON.init)
            keyFrame = sample.frame.isKeyFrame
            repeatsPrevious = sample.repeatsPrevious
            damaged = sample.frame.isDamaged
            self.width = width
            self.height = height
        }
    }

    struct Decode: Codable {
        let framesDecoded: Int
        let corruptPackets: Int
        let rejectedPackets: Int
        let damagedFrames: Int
        let truncatedAt: TimeJSON?
        let readError: String?
        let seeks: Int
        var damaged: Bool { corruptPackets + rejectedPackets + damagedFrames > 0 }

        enum CodingKeys: String, CodingKey {
            case seeks
            case framesDecoded = "frames_decoded", corruptPackets = "corrupt_packets"
            case rejectedPackets = "rejected_packets", damagedFrames = "damaged_frames"
            case truncatedAt = "truncated_at", readError = "read_error"
        }

        init(report: DecodeReport, seeks: Int) {
            framesDecoded = report.framesDecoded
            corruptPackets = report.corruptPackets
            rejectedPackets = report.rejectedPackets
            damagedFrames = report.damagedFrames
            truncatedAt = report.truncatedAt.map(TimeJSON.init)
            readError = report.readError
            self.seeks = seeks
        }
    }

    let source: ProbeReport
    let settings: Settings
    let frames: [Entry]
    let decode: Decode
    let complete: Bool

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    static func load(_ path: String) -> FrameIndex? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(FrameIndex.self, from: data)
    }
}
