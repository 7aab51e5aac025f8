import DenseCore
import Foundation

/// A synthetic haystack anyone can regenerate: scenes of FFmpeg's own sources (Conway's life,
/// cellular automata, moving gradients, Sierpinski fractals, test patterns with turning hues,
/// noisy colour fields), each with parameters drawn from a seeded SplitMix64, 3–12 s long,
/// encoded one by one with x264 (one thread, bit-exact flags) and joined without re-encoding.
/// For a given FFmpeg build the same seed, duration, size and rate give the same bytes.
public struct HaystackRecipe: Codable, Equatable, Sendable {
    public struct Scene: Codable, Equatable, Sendable {
        /// Seconds.
        public var duration: Int
        /// The lavfi graph that renders it.
        public var source: String
    }

    public var seed: UInt64
    public var duration: Int
    public var width: Int
    public var height: Int
    public var rate: Int
    public var scenes: [Scene]
    /// The encoder settings every scene shares.
    public var encoder: [String]

    /// The scenes of a haystack: deterministic in (seed, duration, size, rate).
    public init(seed: UInt64, duration: Int, width: Int = 640, height: Int = 360, rate: Int = 24) {
        self.seed = seed
        self.duration = duration
        self.width = width
        self.height = height
        self.rate = rate
        encoder = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "\(2 * rate)", "-pix_fmt", "yuv420p",
                   "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-an"]
        var rng = SplitMix64(seed: seed)
        func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(rng.next() % UInt64(range.count)) }
        func colour() -> String { String(format: "0x%06X", Int(rng.next() & 0xFFFFFF)) }
        let size = "s=\(width)x\(height):r=\(rate)"
        var scenes: [Scene] = []
        var left = duration
        while left > 0 {
            let d = min(left, int(3...12))
            left -= d
            let s = int(1...1_000_000)
            let source: String
            switch int(0...6) {
            case 0: source = "life=\(size):seed=\(s):mold=\(int(0...40)):life_color=\(colour()):death_color=\(colour()):mold_color=\(colour()):ratio=0.\(int(1...6))"
            case 1: source = "cellauto=\(size):seed=\(s):rule=\(int(1...255)):random_fill_ratio=0.\(int(2...8)):scroll=1,hue=h=\(int(0...359))"
            case 2: source = "gradients=\(size):seed=\(s):n=\(int(2...8)):speed=0.0\(int(1...9)):type=\(["linear", "radial", "circular", "spiral"][int(0...3)])"
            case 3: source = "sierpinski=\(size):seed=\(s):jump=\(int(1...20)):type=\(["carpet", "triangle"][int(0...1)])"
            case 4: source = "testsrc2=\(size),hue=h=\(int(0...359))+\(int(10...90))*t"
            case 5: source = "color=c=\(colour()):\(size),noise=alls=\(int(10...60)):allf=t+u:all_seed=\(s)"
            default: source = "smptehdbars=\(size),rotate=a=\(int(1...9))*0.0\(int(1...9))*t*PI:fillcolor=\(colour())"
            }
            scenes.append(Scene(duration: d, source: source + ",format=yuv420p"))
        }
        self.scenes = scenes
    }

    /// Renders the haystack to `out` (an .mp4) with the ffmpeg CLI; `progress` after each scene.
    /// - Throws: `NIAHError.tool` when ffmpeg fails, `.output` when `out` cannot be written.
    public func render(to out: String, ffmpeg: String = "ffmpeg", progress: (Int, Int) -> Void = { _, _ in }) throws {
        let fm = FileManager.default
        let work = (out as NSString).deletingLastPathComponent + "/.\((out as NSString).lastPathComponent).\(getpid()).scenes"
        do {
            try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            throw NIAHError(.output, out, "cannot create \(work)")
        }
        defer { try? fm.removeItem(atPath: work) }
        var list = ""
        for (i, scene) in scenes.enumerated() {
            let file = work + String(format: "/scene%05d.mp4", i)
            try run(ffmpeg, ["-f", "lavfi", "-i", scene.source, "-t", "\(scene.duration)", "-frames:v", "\(scene.duration * rate)"]
                + encoder + [file], for: out)
            list += "file '\(file)'\n"
            progress(i + 1, scenes.count)
        }
        let listFile = work + "/scenes.txt"
        guard fm.createFile(atPath: listFile, contents: Data(list.utf8)) else { throw NIAHError(.output, listFile, "cannot write") }
        let partial = work + "/haystack.mp4"
        try run(ffmpeg, ["-f", "concat", "-safe", "0", "-i", listFile, "-c", "copy", "-map_metadata", "-1",
                         "-fflags", "+bitexact", "-movflags", "+faststart", partial], for: out)
        if rename(partial, out) != 0 {
            throw NIAHError(.output, out, "cannot write: \(String(cString: strerror(errno)))")
        }
    }

    private func run(_ ffmpeg: String, _ arguments: [String], for out: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-filter_threads", "1", "-y"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw NIAHError(.tool, out, "cannot run \(ffmpeg): \(error.localizedDescription)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let line = String(decoding: message, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)"
            throw NIAHError(.tool, out, "\(ffmpeg) failed: \(line)")
        }
    }
}
