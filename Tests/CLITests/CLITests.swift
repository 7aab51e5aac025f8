import Foundation
import TestClips
import Testing

/// The densecap binary built next to this test bundle (or $DENSECAP_BIN).
let densecapBinary: String = {
    if let env = ProcessInfo.processInfo.environment["DENSECAP_BIN"] { return env }
    var dir = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("densecap").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return "densecap"
}()

func densecap(_ arguments: String...) throws -> ProcessResult {
    try runProcess(densecapBinary, arguments)
}

func densecap(_ arguments: [String]) throws -> ProcessResult {
    try runProcess(densecapBinary, arguments)
}

func temporaryFolder(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "densecap-cli-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: path)
    return path
}

func json(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

@Suite struct ProbeCommandTests {
    @Test func jsonHasExactFacts() throws {
        let r = try densecap("probe", "--json", "--scan", try Clip.vfr.path)
        #expect(r.status == 0)
        let o = try json(r.stdoutData)
        #expect(o["time_base"] as? String == "1/1000")
        #expect(o["real_frame_rate"] as? String == "20")
        #expect(o["average_frame_rate"] as? String == "10/3")
        #expect(o["variable_frame_rate"] as? Bool == true)
        #expect(o["frame_count"] as? Int == 7)
        #expect(o["frame_count_source"] as? String == "packets")
        #expect(o["key_frames"] as? Int == 1)
        #expect((o["duration"] as? [String: Any])?["time"] as? String == "21/10")
        #expect(r.stderr.isEmpty)
    }

    @Test func tableForRotatedAndAnamorphicClips() throws {
        let r = try densecap("probe", try Clip.rotated90.path, try Clip.sar2.path)
        #expect(r.status == 0)
        #expect(r.stdout.contains("48x64 (SAR 1:1, rotation 270°)"))
        #expect(r.stdout.contains("128x48 (SAR 2:1, rotation 0°)"))
    }

    @Test func oneBadFileDoesNotStopTheOthers() throws {
        let good = try Clip.cfr10.path
        let r = try densecap("probe", "--json", "/nonexistent/a.mp4", good, try Clip.audioOnly.path)
        // 66 (missing) and 65 (no video) are equally severe: the higher code, whatever the order.
        #expect(r.status == 66)
        #expect(try densecap("probe", "--json", try Clip.audioOnly.path, good, "/nonexistent/a.mp4").status == 66)
        let list = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list.first?["path"] as? String == good)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0] == "densecap: error: /nonexistent/a.mp4: no such file")
        #expect(lines[1].hasSuffix(": no video stream (audio only)"))
    }
}

@Suite struct FramesCommandTests {
    @Test func writesPNGsAndAnExactIndex() throws {
        let out = temporaryFolder("ntsc")
        let r = try densecap("frames", try Clip.ntsc.path, "--fps", "2", "--size", "32x24", "--out", out)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(!r.stderr.contains("\r"))  // no progress bar when stderr is not a terminal
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(files == [
            "frame_000000_000000.000.png", "frame_000001_000000.500.png", "frame_000002_000001.001.png",
            "frame_000003_000001.501.png", "index.json",
        ])
        let index = try json(Data(contentsOf: URL(fileURLWithPath: out + "/index.json")))
        let frames = try #require(index["frames"] as? [[String: Any]])
        #expect(frames.map { $0["pts"] as? Int } == [0, 15015, 30030, 45045])
        #expect(frames.map { ($0["time"] as? [String: Any])?["time"] as? String } == ["0", "1001/2000", "1001/1000", "3003/2000"])
        #expect(frames.map { ($0["requested"] as? [String: Any])?["time"] as? String } == ["0", "1/2", "1", "3/2"])
        #expect(frames.allSatisfy { $0["width"] as? Int == 32 && $0["height"] as? Int == 24 })
        #expect(index["complete"] as? Bool == true)
    }

    @Test func rerunSkipsFinishedWorkAndForceRedoesIt() throws {
        let out = temporaryFolder("resume")
        let clip = try Clip.cfr10.path
        #expect(try densecap("frames", clip, "--fps", "1", "--out", out).status == 0)
        let index = out + "/index.json"
        let before = try FileManager.default.attributesOfItem(atPath: index)[.modificationDate] as? Date
        // An interrupted run leaves frames but no index; a rerun must redo it.
        let again = try densecap("frames", clip, "--fps", "1", "--out", out)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already done"))
        #expect(try FileManager.default.attributesOfItem(atPath: index)[.modificationDate] as? Date == before)
        // Different settings are not "done".
        #expect(!(try densecap("frames", clip, "--fps", "2", "--out", out)).stderr.contains("already done"))
        #expect(!(try densecap("frames", clip, "--fps", "2", "--out", out, "--force")).stderr.contains("already done"))
        // The 2 fps run replaced the 1 fps frames instead of mixing with them.
        let pngs = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".png") }
        #expect(pngs.count == 6)
        try FileManager.default.removeItem(atPath: index)
        #expect(!(try densecap("frames", clip, "--fps", "2", "--out", out)).stderr.contains("already done"))
        #expect(FileManager.default.fileExists(atPath: index))
    }

    @Test func rawFramesToStdout() throws {
        let r = try densecap("frames", try Clip.cfr10.path, "--keyframes", "--size", "16x8", "--format", "rgb24", "--out", "-")
        #expect(r.status == 0)
        #expect(r.stdoutData.count == 3 * 16 * 8 * 3)
    }

    @Test func rotatedFramesHaveDisplayOrientation() throws {
        let out = temporaryFolder("rot")
        #expect(try densecap("frames", try Clip.rotated90.path, "--frames", "1", "--out", out).status == 0)
        let index = try json(Data(contentsOf: URL(fileURLWithPath: out + "/index.json")))
        let frame = try #require((index["frames"] as? [[String: Any]])?.first)
        #expect(frame["width"] as? Int == 48)
        #expect(frame["height"] as? Int == 64)
    }

    @Test func truncatedInputWritesWhatExistsAndExitsThree() throws {
        let out = temporaryFolder("trunc")
        let clip = try Clip.truncated.path
        let r = try densecap("frames", clip, "--fps", "2", "--out", out)
        #expect(r.status == 3)
        #expect(r.stderr.contains("densecap: warning: \(clip): truncated: decodable up to 0.900 s of 3.000 s"))
        let index = try json(Data(contentsOf: URL(fileURLWithPath: out + "/index.json")))
        #expect((index["frames"] as? [Any])?.count == 2)
        #expect(((index["decode"] as? [String: Any])?["truncated_at"] as? [String: Any])?["time"] as? String == "9/10")
    }

    @Test func damagedInputIsCountedAndWarned() throws {
        let clip = try Clip.corruptBFrame.path
        let r = try densecap("frames", clip, "--fps", "1", "--out", temporaryFolder("damaged"))
        #expect(r.status == 3)
        #expect(r.stderr.contains("densecap: warning: \(clip): damaged stream:"))
    }

    @Test(arguments: [
        (Clip.empty, Int32(65), "file is empty (0 bytes)"), (.text, 65, "not a recognised media file"),
        (.audioOnly, 65, "no video stream (audio only)"), (.noDecoder, 69, "unsupported video codec"),
        (.truncatedNoIndex, 65, "not a recognised media file"),
    ])
    func badInputGetsOneLineAndADocumentedCode(clip: Clip, code: Int32, message: String) throws {
        let path = try clip.path
        let r = try densecap("frames", path, "--fps", "1", "--out", temporaryFolder("bad"))
        #expect(r.status == code)
        #expect(r.stderr.hasPrefix("densecap: error: \(path): "))
        #expect(r.stderr.contains(message))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func batchGoesOnPastABrokenFile() throws {
        let out = temporaryFolder("batch")
        let r = try densecap("frames", try Clip.empty.path, try Clip.cfr10.path, "--fps", "1", "--out", out)
        #expect(r.status == 65)
        #expect(FileManager.default.fileExists(atPath: out + "/cfr10/index.json"))
        #expect(!FileManager.default.fileExists(atPath: out + "/empty/index.json"))
    }

    @Test func missingInputAndUnwritableOutput() throws {
        #expect(try densecap("frames", "/nonexistent.mp4", "--fps", "1", "--out", temporaryFolder("x")).status == 66)
        let r = try densecap("frames", try Clip.cfr10.path, "--fps", "1", "--out", "/dev/null/frames")
        #expect(r.status == 73)
        #expect(r.stderr.hasPrefix("densecap: error: /dev/null/frames: cannot create folder"))
    }

    @Test func usageErrors() throws {
        let clip = try Clip.cfr10.path
        #expect(try densecap("frames", clip, "--out", "x").status == 64)
        #expect(try densecap("frames", clip, "--fps", "0", "--out", "x").status == 64)
        #expect(try densecap("frames", clip, "--fps", "1", "--frames", "3", "--out", "x").status == 64)
        #expect(try densecap("frames", clip, "--fps", "1", "--start", "3", "--end", "2", "--out", "x").status == 64)
        #expect(try densecap("frames", clip, "--fps", "1", "--out", "-").status == 64)  // stdout needs rgb24
    }
}

@Suite struct DoctorCommandTests {
    @Test func reportsBLASAndFFmpeg() throws {
        let r = try densecap("doctor")
        #expect(r.status == 0)
        #expect(r.stdout.contains("blas kernels"))
        #expect(r.stdout.contains("blas selection"))
        #expect(r.stdout.contains("libavcodec"))
    }

    @Test func userOverrideIsHonoured() throws {
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = nil
        env["DENSECAP_BLAS_CORETYPE"] = "Haswell"
        let r = try runProcess(densecapBinary, ["doctor"], environment: env)
        #expect(r.stdout.contains("blas kernels    Haswell"))
        #expect(r.stdout.contains("set by densecap"))
    }
}
