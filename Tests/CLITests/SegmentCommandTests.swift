import Foundation
import TestClips
import Testing

/// Red 2 s → blue 2 s → green 2 s at 10 fps, 64×36, made with the ffmpeg CLI.
let threeColours: String = {
    let path = NSTemporaryDirectory() + "densecap-cli-colours-\(getpid()).mp4"
    if !FileManager.default.fileExists(atPath: path) {
        _ = try? runProcess("ffmpeg", [
            "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x36:r=10:d=2", "-f", "lavfi",
            "-i", "color=c=blue:s=64x36:r=10:d=2", "-f", "lavfi", "-i", "color=c=green:s=64x36:r=10:d=2",
            "-filter_complex", "[0][1][2]concat=n=3:v=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10",
            "-bf", "0", path,
        ])
    }
    return path
}()

@Suite struct SegmentCommandTests {
    @Test func jsonOnStdoutWithExactBoundaries() throws {
        let r = try densecap("segment", threeColours, "--fps", "all", "-q")
        #expect(r.status == 0, "\(r.stderr)")
        let o = try json(r.stdoutData)
        #expect(o["schema"] as? String == "densecap.events/1")
        let events = try #require(o["events"] as? [[String: Any]])
        #expect(events.map { $0["start_exact"] as? String } == ["0", "2", "4"])
        #expect(events.map { $0["kind"] as? String } == ["start", "cut", "cut"])
        #expect(events.last?["end_exact"] as? String == "6")
    }

    /// At 0.7 fps the frames that answer the samples are 0, 1.5, 2.9, 4.3 and 5.8 s; --refine
    /// finds the cuts at 2 and 4 s. (Red → blue scores 40: PySceneDetect's threshold 27 is needed
    /// with so few frames for the adaptive ratio to see it.)
    @Test func refineMovesCutsToTheExactFrame() throws {
        let coarse = try json(try densecap("segment", threeColours, "--fps", "0.7", "--threshold", "27", "-q").stdoutData)
        let fine = try json(try densecap("segment", threeColours, "--fps", "0.7", "--threshold", "27", "--refine", "-q").stdoutData)
        let starts = { (o: [String: Any]) in (o["events"] as? [[String: Any]])?.map { $0["start_exact"] as? String } }
        #expect(starts(coarse) == ["0", "29/10", "43/10"])
        #expect(starts(fine) == ["0", "2", "4"])
    }

    @Test func filesThumbnailsAndResume() throws {
        let out = temporaryFolder("segment")
        let r = try densecap("segment", threeColours, "--out", out, "--thumbnails", "--formats", "json,csv,srt,vtt,activitynet,html")
        #expect(r.status == 0, "\(r.stderr)")
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        for suffix in ["events.json", "events.csv", "srt", "vtt", "activitynet.json", "html", "thumbs"] {
            #expect(files.contains("\(name).\(suffix)"), "\(suffix) missing")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/\(name).thumbs").count == 3)
        let csv = try String(contentsOfFile: out + "/\(name).events.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 4)
        let again = try densecap("segment", threeColours, "--out", out, "--thumbnails", "--formats", "json,csv,srt,vtt,activitynet,html")
        #expect(again.stderr.contains("already done"))
    }

    @Test func oneBrokenFileDoesNotStopTheBatch() throws {
        let r = try densecap("segment", "/nonexistent/a.mp4", threeColours, try Clip.audioOnly.path, "--format", "csv")
        #expect(r.status == 66)  // 66 (missing) and 65 (no video) tie in severity: the higher code
        #expect(r.stdout.split(separator: "\n").count == 4)  // header + the good file's 3 events
        #expect(r.stderr.contains("/nonexistent/a.mp4: no such file"))
    }

    @Test func evalScoresAgainstACutList() throws {
        let out = temporaryFolder("eval")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let pred = out + "/pred.json"
        let r = try densecap("segment", threeColours, "-q")
        try r.stdoutData.write(to: URL(fileURLWithPath: pred))
        try "2.0\n4.1\n5.0\n".write(toFile: out + "/gold.txt", atomically: true, encoding: .utf8)
        let e = try densecap("eval", "--pred", pred, "--gold", out + "/gold.txt", "--json")
        #expect(e.status == 0, "\(e.stderr)")
        let b = try #require(try json(e.stdoutData)["boundaries"] as? [String: Any])
        #expect(b["true_positives"] as? Int == 2)
        #expect(b["false_negatives"] as? Int == 1)
        #expect(b["false_positives"] as? Int == 0)
        #expect(try densecap("eval", "--pred", out + "/missing.json", "--gold", out + "/gold.txt").status == 66)
    }

    /// Chunked decoding on two threads (the default for a rate) gives exactly the sequential result,
    /// here with 0.7-second chunks so that the 6-second clip has several seams.
    @Test func parallelChunksEqualSequential() throws {
        let parallel = try runProcess(densecapBinary, ["segment", threeColours, "--fps", "3", "-q"],
                                      environment: ProcessInfo.processInfo.environment.merging(["DENSECAP_DECODE_CHUNK_SECONDS": "0.7"]) { $1 })
        let sequential = try densecap("segment", threeColours, "--fps", "3", "-q", "--threads", "2")
        #expect(parallel.status == 0 && sequential.status == 0, "\(parallel.stderr)")
        #expect(parallel.stdout == sequential.stdout)
        #expect(try json(parallel.stdoutData)["events"].map { ($0 as? [Any])?.count } == 3)
    }
}
