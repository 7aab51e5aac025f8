import Foundation
import TestClips
import Testing

/// The object crossing the right half of a still scene (`tools/motion_clips.sh roi-inside`, 30 s
/// at 4 fps; it crosses from 10 to 16 s), made once per test process.
let rightHalfCrossing: String = {
    let path = NSTemporaryDirectory() + "densecap-cli-roi-inside-\(getpid()).mp4"
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/motion_clips.sh").path
    if !FileManager.default.fileExists(atPath: path) { _ = try? runProcess("/bin/bash", [script, "roi-inside", path]) }
    return path
}()

@Suite struct MotionOptionsTests {
    /// Regions and padding reach the detector and the settings; the footage mode found is written.
    @Test func regionsPaddingAndFootageInTheOutput() throws {
        let watched = try densecap("segment", rightHalfCrossing, "--roi", "0.5,0,0.5,1", "--pre", "1", "-q")
        #expect(watched.status == 0, "\(watched.stderr)")
        let o = try json(watched.stdoutData)
        let settings = try #require(o["settings"] as? [String: String])
        // The settings value's encoding, flattened: every field of the region, the padding.
        #expect([settings["detection.segmenter.regions.include[0].x"], settings["detection.segmenter.regions.include[0].width"],
                 settings["detection.segmenter.regions.include[0].unit"]] == ["0.5", "0.5", "normalized"])
        #expect(settings["detection.segmenter.motion.pre"] == "1")
        #expect((o["analysis"] as? [String: String])?["footage"] == "still")
        let events = try #require(o["events"] as? [[String: Any]])
        let motion = events.filter { $0["kind"] as? String == "motion" && $0["static"] as? Bool == false }
        #expect(motion.map { $0["start_exact"] as? String } == ["9"])
        // Watching the left half (in source pixels) sees nothing.
        let left = try json(try densecap("segment", rightHalfCrossing, "--roi", "0,0,128,144", "-q").stdoutData)
        #expect((left["events"] as? [[String: Any]])?.count == 1)
    }

    @Test(arguments: [
        (["--roi", "1,2,3"], "--roi takes x,y,w,h"), (["--exclude", "0,0,-1,5"], "--exclude takes x,y,w,h"),
        (["--pre=-1"], "--pre must be a non-negative"), (["--mask", "/nonexistent/mask.png"], "--mask /nonexistent/mask.png: no such file"),
        (["--sensitivity", "extreme"], "sensitivity"),
    ])
    func badMotionOptionsFailWithOneLine(arguments: [String], message: String) throws {
        let r = try densecap(["segment", rightHalfCrossing] + arguments)
        #expect(r.status == 64)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
