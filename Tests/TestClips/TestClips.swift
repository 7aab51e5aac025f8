import Foundation
import Synchronization

/// Small test videos with exactly known frame times, made at test time with the ffmpeg CLI that
/// the set-up installs (nothing is downloaded and nothing outside the project is read).
///
/// Every clip is 64×48 testsrc2, made once per test process, deterministic (`+bitexact`, one
/// x264 thread). The facts each test asserts (time bases, PTS lists, key frames) were checked with
/// ffprobe when the recipes were written; see Tests/TestClips/README.md.
public enum Clip: String, CaseIterable, Sendable {
    /// 10 fps, 3 s, GOP 10, B-frames; time base 1/10240, pts 1024·i, key frames at 0, 1, 2 s.
    case cfr10 = "cfr10.mp4"
    /// As `cfr10` without x264's version SEI (source of the damaged variants).
    case cfr10Clean = "cfr10_nosei.mp4"
    /// As `cfr10` in a 1/90000 time base: pts 9000·i.
    case cfr10Timescale90k = "cfr10_90k.mp4"
    /// 30000/1001 fps, 2 s, GOP 15: time base 1/30000, pts 1001·i (60 frames).
    case ntsc = "ntsc.mp4"
    /// Frames at 0, 0.1, 0.2, 0.5, 0.55, 1.3, 2.0 s (time base 1/1000), no B-frames.
    case vfr = "vfr_bf0.mp4"
    /// The same times with B-frames (its stream duration header says 0.85 s).
    case vfrBFrames = "vfr.mp4"
    /// The same times in Matroska.
    case vfrMatroska = "vfr.mkv"
    /// 10 fps, 1 s, GOP 10, square pixels, no rotation.
    case base1s = "base1s.mp4"
    /// `base1s` with a display matrix: rotate tag 90 (a player turns it 90° counter-clockwise).
    case rotated90 = "rot90.mp4"
    case rotated180 = "rot180.mp4"
    case rotated270 = "rot270.mp4"
    /// 64×48 stored, sample aspect ratio 2:1 (displays as 128×48).
    case sar2 = "sar2.mp4"
    /// 1 s at 10 fps whose first frame is at 2.5 s (MP4 edit list): pts 25600 + 1024·i.
    case startOffsetMP4 = "off2.5.mp4"
    /// The same in Matroska: pts 2500 + 100·i (1/1000).
    case startOffsetMatroska = "off2.5.mkv"
    /// The same in MPEG-TS: pts 225000 + 9000·i (1/90000).
    case startOffsetTS = "off2.5.ts"
    /// 3 s at 10 fps in MPEG-TS (no seek index): pts 144000 + 9000·i, key frames every second.
    case cfr10TS = "cfr10.ts"
    /// Audio only (AAC).
    case audioOnly = "sine.m4a"
    /// Zero bytes.
    case empty = "empty.mp4"
    /// Text named .mp4.
    case text = "text.mp4"
    /// Matroska whose codec ID no decoder knows.
    case noDecoder = "nodec.mkv"
    /// `cfr10` with the moov first, cut to 60 %: 10 frames decode (0 … 0.9 s).
    case truncated = "trunc_fs.mp4"
    /// `cfr10` with the moov last, cut to 60 %: no index, cannot open.
    case truncatedNoIndex = "trunc_nofs.mp4"
    /// `cfr10Clean` with a broken NAL length in the B-frame at pts 12288: that frame alone is lost.
    case corruptBFrame = "badnal_b.mp4"
    /// `cfr10Clean` with a broken NAL length in the key frame at 1 s: its GOP is damaged.
    case corruptKeyFrame = "badnal_idr.mp4"

    /// Path of the clip, generating it (and what it derives from) on first use.
    public var path: String {
        get throws { try ClipFactory.shared.path(for: self) }
    }
}

final class ClipFactory: Sendable {
    static let shared = ClipFactory()
    private let made = Mutex<[Clip: String]>([:])
    let directory: String

    init() {
        directory = NSTemporaryDirectory() + "densecap-clips-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func path(for clip: Clip) throws -> String {
        // One lock for all: clips derive from each other and are made in well under a second.
        try made.withLock { made in
            try make(clip, &made)
        }
    }

    private func make(_ clip: Clip, _ made: inout [Clip: String]) throws -> String {
        if let p = made[clip] { return p }
        let out = directory + "/" + clip.rawValue
        let x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact"]
        let noSEI = ["-bsf:v", "filter_units=remove_types=6"]
        func source(_ rate: String, _ seconds: String) -> [String] {
            ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=\(rate):duration=\(seconds)"]
        }
        let vfrFilter = "settb=1/1000,setpts=0*eq(N\\,0)+100*eq(N\\,1)+200*eq(N\\,2)+500*eq(N\\,3)+550*eq(N\\,4)+1300*eq(N\\,5)+2000*eq(N\\,6)"
        let vfr = ["-vf", vfrFilter, "-fps_mode", "vfr", "-enc_time_base", "1/1000"]
        switch clip {
        case .cfr10: try ffmpeg(source("10", "3") + x264 + ["-g", "10", "-an", out])
        case .cfr10Clean: try ffmpeg(source("10", "3") + x264 + noSEI + ["-g", "10", "-an", out])
        case .cfr10Timescale90k: try ffmpeg(source("10", "3") + x264 + ["-g", "10", "-video_track_timescale", "90000", "-an", out])
        case .ntsc: try ffmpeg(source("30000/1001", "2") + x264 + ["-g", "15", "-an", out])
        case .vfr: try ffmpeg(source("10", "0.7") + vfr + x264 + ["-bf", "0", "-g", "10", "-video_track_timescale", "1000", "-an", out])
        case .vfrBFrames: try ffmpeg(source("10", "0.7") + vfr + x264 + ["-g", "10", "-video_track_timescale", "1000", "-an", out])
        case .vfrMatroska: try ffmpeg(source("10", "0.7") + vfr + x264 + ["-g", "10", "-an", out])
        case .base1s: try ffmpeg(source("10", "1") + x264 + noSEI + ["-g", "10", "-an", out])
        case .rotated90, .rotated180, .rotated270:
            // ffmpeg 5.1 ignores the rotate tag while encoding; it takes effect on a stream copy.
            let degrees = clip == .rotated90 ? 90 : (clip == .rotated180 ? 180 : 270)
            try ffmpeg(["-i", try make(.base1s, &made), "-c", "copy", "-fflags", "+bitexact", "-metadata:s:v:0", "rotate=\(degrees)", out])
        case .sar2: try ffmpeg(source("10", "1") + ["-vf", "setsar=2/1"] + x264 + noSEI + ["-g", "10", "-an", out])
        case .startOffsetMP4, .startOffsetMatroska:
            try ffmpeg(source("10", "1") + x264 + noSEI + ["-g", "10", "-an", "-output_ts_offset", "2.5", out])
        case .startOffsetTS:
            try ffmpeg(source("10", "1") + x264 + noSEI + ["-g", "10", "-an", "-output_ts_offset", "2.5", "-muxdelay", "0", "-muxpreload", "0", out])
        case .cfr10TS: try ffmpeg(source("10", "3") + x264 + noSEI + ["-g", "10", "-an", out])
        case .audioOnly:
            try ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1", "-c:a", "aac", "-b:a", "16k", "-fflags", "+bitexact", out])
        case .empty: try write(Data(), out)
        case .text: try write(Data("hello, this is not a video\n".utf8), out)
        case .noDecoder:
            let copy = directory + "/nodec_src.mkv"
            try ffmpeg(["-i", try make(.base1s, &made), "-c", "copy", "-fflags", "+bitexact", copy])
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: copy)))
            let from = Array("V_MPEG4/ISO/AVC".utf8), to = Array("V_DENSECAP/XYZZ".utf8)  // same length
            guard let at = firstIndex(of: from, in: bytes) else { throw ClipError("codec id not found in \(copy)") }
            bytes.replaceSubrange(at..<at + from.count, with: to)
            try write(Data(bytes), out)
        case .truncated, .truncatedNoIndex:
            let full = directory + "/" + (clip == .truncated ? "cfr10_fs.mp4" : "cfr10_nosei_copy.mp4")
            try ffmpeg(source("10", "3") + x264 + noSEI + ["-g", "10"] + (clip == .truncated ? ["-movflags", "+faststart"] : []) + ["-an", full])
            let data = try Data(contentsOf: URL(fileURLWithPath: full))
            try write(data.prefix(data.count * 60 / 100), out)
        case .corruptBFrame, .corruptKeyFrame:
            let clean = try make(.cfr10Clean, &made)
            let pts = clip == .corruptBFrame ? 12288 : 10240
            guard let offset = try packetPosition(clean, pts: pts) else { throw ClipError("no packet at pts \(pts)") }
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: clean)))
            // The packet starts with a 4-byte NAL length; an absurd one breaks exactly this packet.
            bytes.replaceSubrange(offset..<offset + 4, with: [0x7F, 0xFF, 0xFF, 0xFF])
            try write(Data(bytes), out)
        }
        made[clip] = out
        return out
    }

    private func ffmpeg(_ arguments: [String]) throws {
        _ = try run("ffmpeg", ["-nostdin", "-v", "error", "-y"] + arguments)
    }

    private func packetPosition(_ file: String, pts: Int) throws -> Int? {
        let csv = try run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,pos", "-of", "csv=p=0", file])
        for line in csv.split(separator: "\n") {
            let fields = line.split(separator: ",")
            if fields.count >= 2, Int(fields[0]) == pts { return Int(fields[1]) }
        }
        return nil
    }

    private func write(_ data: Data, _ path: String) throws {
        try data.write(to: URL(fileURLWithPath: path))
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}

struct ClipError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs a tool from PATH; returns its stdout, throws with its stderr on failure.
@discardableResult
public func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
    let result = try runProcess(tool, arguments, environment: environment)
    guard result.status == 0 else {
        throw ClipError("\(tool) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
    }
    return result.stdout
}

public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let stdoutData: Data
}

/// Runs `tool` (a path, or a name looked up on PATH) and collects its output.
public func runProcess(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    if tool.contains("/") {
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
    }
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drain stderr on another thread so a chatty child cannot block on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    group.wait()
    let errText = String(decoding: errBox.data, as: UTF8.self)
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: errText, stdoutData: outData)
}
