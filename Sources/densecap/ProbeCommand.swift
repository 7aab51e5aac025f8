import ArgumentParser
import DenseCore
import Foundation
import VideoIO

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a video file contains: duration, time base, frame rates, size, rotation, codec.")

    @Argument(help: "Video files to probe.")
    var files: [String]

    @Flag(help: "Print JSON (an object for one file, an array for several) instead of a table.")
    var json = false

    @Flag(help: "Read every packet (no decoding) for the exact frame count, key frames and frame-rate variability.")
    var scan = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger(label: "densecap.probe")
        var status = Status.success
        var reports: [ProbeReport] = []
        for file in files {
            do {
                let info = try VideoReader.probe(path: file)
                let packets = scan ? try VideoReader.scanPackets(path: file) : nil
                if let packets, packets.endedEarly {
                    Console.warning("\(file): the file ends early; demuxing stopped at an error")
                    status = max(status, .partial)
                }
                reports.append(ProbeReport(info: info, scan: packets))
            } catch let error as VideoError {
                Console.error(error.description)
                status = max(status, Status(error.kind))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = reports.count == 1 && files.count == 1 ? try encoder.encode(reports[0]) : try encoder.encode(reports)
            Console.stdout(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            Console.stdout(reports.map(\.table).joined(separator: "\n"))
        }
        if status != .success { throw status.exitCode }
    }
}

/// An exact time for JSON: the rational and its seconds.
struct TimeJSON: Codable, Equatable {
    let time: String
    let seconds: Double

    init(_ t: MediaTime) {
        time = t.rational.description
        seconds = t.seconds
    }
}

struct ProbeReport: Codable {
    let path: String
    let container: String
    let codec: String
    let pixelFormat: String?
    let width: Int
    let height: Int
    let displayWidth: Int
    let displayHeight: Int
    let sampleAspectRatio: String
    let rotation: Int
    let mirrored: Bool
    let timeBase: String
    let startTime: TimeJSON?
    let duration: TimeJSON?
    let averageFrameRate: String?
    let realFrameRate: String?
    let variableFrameRate: Bool
    let frameCount: Int?
    let frameCountSource: String?
    let keyFrames: Int?
    let bitRate: Int?
    let audioStreams: Int

    enum CodingKeys: String, CodingKey {
        case path, container, codec, width, height, rotation, mirrored, duration
        case pixelFormat = "pixel_format", displayWidth = "display_width", displayHeight = "display_height"
        case sampleAspectRatio = "sample_aspect_ratio", timeBase = "time_base", startTime = "start_time"
        case averageFrameRate = "average_frame_rate", realFrameRate = "real_frame_rate"
        case variableFrameRate = "variable_frame_rate", frameCount = "frame_count"
        case frameCountSource = "frame_count_source", keyFrames = "key_frames", bitRate = "bit_rate"
        case audioStreams = "audio_streams"
    }

    init(info: VideoInfo, scan: PacketScan?) {
        path = info.path
        container = info.container
        codec = info.codec
        pixelFormat = info.pixelFormat
        width = info.width
        height = info.height
        (displayWidth, displayHeight) = info.displaySize
        sampleAspectRatio = "\(info.sampleAspectRatio.numerator):\(info.sampleAspectRatio.denominator)"
        rotation = info.rotation
        mirrored = info.mirrored
        timeBase = info.timeBase.description
        startTime = info.startTime.map(TimeJSON.init)
        duration = info.duration.map(TimeJSON.init)
        averageFrameRate = info.averageFrameRate?.description
        realFrameRate = info.realFrameRate?.description
        variableFrameRate = scan?.isVariableFrameRate ?? info.isVariableFrameRate
        frameCount = scan?.frameCount ?? info.frameCount
        frameCountSource = scan != nil ? "packets" : (info.frameCount != nil ? "container" : nil)
        keyFrames = scan?.keyTimes.count
        bitRate = info.bitRate
        audioStreams = info.audioStreams
    }

    var table: String {
        func rate(_ r: String?) -> String {
            guard let r, let q = Rational(parsing: r) else { return "unknown" }
            return "\(r) (\(String(format: "%.3f", q.doubleValue)) fps)"
        }
        var rows: [(String, String)] = [
            ("file", path),
            ("container", container),
            ("codec", codec + (pixelFormat.map { " (\($0))" } ?? "")),
            ("coded size", "\(width)x\(height)"),
            ("display size", "\(displayWidth)x\(displayHeight) (SAR \(sampleAspectRatio), rotation \(rotation)°\(mirrored ? ", mirrored" : ""))"),
            ("time base", timeBase),
            ("start", startTime.map { "\(MediaTime(Rational(parsing: $0.time)!).secondsString) s (\($0.time))" } ?? "unknown"),
            ("duration", duration.map { t in let m = MediaTime(Rational(parsing: t.time)!); return "\(m.secondsString) s (\(m.timecode))" } ?? "unknown"),
            ("frame rate", "average \(rate(averageFrameRate)), real \(rate(realFrameRate))"),
            ("variable rate", (variableFrameRate ? "yes" : "no") + (frameCountSource == "packets" ? "" : " (from headers; --scan to check)")),
            ("frames", frameCount.map { "\($0) (\(frameCountSource ?? ""))" } ?? "unknown (--scan counts)"),
        ]
        if let keyFrames { rows.append(("key frames", "\(keyFrames)")) }
        rows.append(("bit rate", bitRate.map { String(format: "%.3f Mb/s", Double($0) / 1e6) } ?? "unknown"))
        rows.append(("audio streams", "\(audioStreams)"))
        let width = rows.map(\.0.count).max()!
        return rows.map { $0.0.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n") + "\n"
    }
}
