import Foundation
import TestClips
import Testing

@Suite struct NIAHCommandTests {
    static let model = engineFixtures + "/tiny-nvila-video"

    /// A folder with two needle images and a dataset.json naming them (or `entries`).
    static func needles(_ name: String, entries: [[String: String]]? = nil) throws -> (folder: String, dataset: String) {
        let folder = temporaryFolder(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (file, source) in [("a.png", "mandelbrot=s=80x60"), ("b.png", "smptebars=s=120x90")] {
            let r = try runProcess("/usr/bin/env", ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
                                                    "-frames:v", "1", folder + "/" + file])
            #expect(r.status == 0)
        }
        let items = entries ?? [
            ["path": "a.png", "prompt": "\nWhat is it?\nA. Bars\nB. A fractal\nAnswer with the option's letter from the given choices directly.", "answer": "B"],
            ["path": "b.png", "prompt": "\nWhat colour?\nAnswer the question using a single word or phrase.", "answer": "Grey"],
        ]
        try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: folder + "/dataset.json"))
        return (folder, folder + "/dataset.json")
    }

    @Test func badInputsGiveOneLineAndTheirExitCode() throws {
        let clip = try Clip.cfr10.path  // 3 s: 3 frames at the reference's 1 fps
        let missing = try Self.needles("niah-missing", entries: [["path": "gone.png", "prompt": "q", "answer": "a"]])
        var r = try densecap("niah", "--model", Self.model, "--haystack", clip, "--needles", missing.dataset, "--out", missing.folder + "/o")
        #expect(r.status == 66)
        #expect(r.stderr == "densecap: error: \(missing.dataset): needle 0: image gone.png not found (looked at \(missing.folder)/gone.png)\n")

        let empty = try Self.needles("niah-empty", entries: [])
        r = try densecap("niah", "--model", Self.model, "--haystack", clip, "--needles", empty.dataset, "--out", empty.folder + "/o")
        #expect(r.status == 65)
        #expect(r.stderr == "densecap: error: \(empty.dataset): the needle dataset is empty\n")

        let good = try Self.needles("niah-short")
        r = try densecap("niah", "--model", Self.model, "--haystack", clip, "--needles", good.dataset, "--out", good.folder + "/o",
                         "--min-frames", "2", "--max-frames", "8", "--frame-interval", "2", "-q")
        #expect(r.status == 65)
        #expect(r.stderr.hasPrefix("densecap: error: \(clip): haystack shorter than the sweep"))
        #expect(r.stderr.split(separator: "\n").count == 1)

        r = try densecap("niah", "--plot-only", "--out", good.folder + "/nothing")
        #expect(r.status == 66)
        r = try densecap("niah", "--haystack", clip, "--needles", good.dataset, "--out", good.folder + "/o")
        #expect(r.status == 64)
        r = try densecap("niah", "--model", Self.model, "--haystack", clip, "--needles", good.dataset, "--out", good.folder + "/o",
                         "--depth-interval", "0")
        #expect(r.status == 64)
    }

    /// The real binary killed mid-sweep: the rerun reuses exactly the cell files the first one
    /// left and computes the rest.
    @Test func killedRunResumesWithOnlyMissingCells() throws {
        let clip = try Clip.cfr10.path
        let (folder, dataset) = try Self.needles("niah-kill")
        let out = folder + "/o"
        let args = ["niah", "--model", Self.model, "--haystack", clip, "--needles", dataset, "--out", out,
                    "--min-frames", "1", "--max-frames", "3", "--frame-interval", "1", "--depth-interval", "0.02", "--threads", "1"]
        let total = 3 * 51
        let process = Process()
        process.executableURL = URL(fileURLWithPath: densecapBinary)
        process.arguments = args + ["-q"]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        func cellFiles() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: out + "/cells")) ?? []).filter { $0.hasPrefix("frame_") }
        }
        let deadline = Date().addingTimeInterval(120)
        while cellFiles().count < 3, process.isRunning, Date() < deadline { usleep(2000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let left = cellFiles().count
        #expect(left >= 3)
        try #require(left < total, "the sweep finished before it could be killed")

        let r = try densecap(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("\(total - left) cells computed, \(left) reused, 0 refused; haystack frames: 0 computed, 3 cached"))
        #expect(cellFiles().count == total)
        #expect(r.stdout.hasPrefix("Average Accuracy: "))
    }
    /// A remote engine answers only by generation: teacher forcing (the default) is refused in one
    /// line before anything is read or loaded; generation needs pixel mode.
    @Test func remoteEngineRefusesTeacherForcing() throws {
        let clip = try Clip.cfr10.path
        let good = try Self.needles("niah-remote")
        let remote = ["--engine", "openai", "--endpoint", "http://127.0.0.1:9/v1", "--api-model", "nvila"]
        for answer in [[], ["--answer", "teacher-forced"]] {
            let r = try densecap(["niah", "--haystack", clip, "--needles", good.dataset, "--out", good.folder + "/o"] + remote + answer)
            #expect(r.status == 64)
            #expect(r.stderr == "densecap: error: --engine openai answers by generation only (teacher forcing needs the model's logits): add --answer generated\n")
        }
        var r = try densecap("niah", "--model", Self.model, "--answer", "generated", "--mode", "embedding", "--haystack", clip,
                             "--needles", good.dataset, "--out", good.folder + "/o")
        #expect(r.status == 64)
        #expect(r.stderr == "densecap: error: --answer generated sends the needle as a frame of the video: it needs --mode pixel, not embedding\n")
        r = try densecap("niah", "--model", Self.model, "--max-new-tokens", "8", "--haystack", clip, "--needles", good.dataset,
                         "--out", good.folder + "/o")
        #expect(r.status == 64)
        #expect(!FileManager.default.fileExists(atPath: good.folder + "/o"))
    }

    /// `--answer generated` with the native engine: pixel mode by default, greedy answers through
    /// the seam recorded per cell with their finish reason and usage; a rerun reuses every cell.
    @Test func generatedWithTheNativeEngine() throws {
        let clip = try Clip.cfr10.path
        let (folder, dataset) = try Self.needles("niah-generated")
        let out = folder + "/o"
        let args = ["niah", "--model", Self.model, "--answer", "generated", "--max-new-tokens", "3", "--haystack", clip,
                    "--needles", dataset, "--out", out, "--min-frames", "1", "--max-frames", "2", "--frame-interval", "1",
                    "--depth-interval", "1", "--threads", "1"]
        var r = try densecap(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("Average Accuracy: "))
        let run = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
        #expect(run.contains("\"answer\" : \"generated\"") && run.contains("\"mode\" : \"pixel\"") && run.contains("\"maxNewTokens\" : 3"))
        let cell = try String(contentsOfFile: out + "/cells/frame_2_depth_100.json", encoding: .utf8)
        #expect(cell.contains("\"finishReason\"") && cell.contains("\"completionTokens\"") && !cell.contains("answerIDs"))
        r = try densecap(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("0 cells computed, 4 reused, 0 refused; haystack frames: 0 computed, 2 cached"))
    }
}
