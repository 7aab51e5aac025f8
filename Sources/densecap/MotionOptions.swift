import ArgumentParser
import EventSegmenter
import Foundation
import VideoIO

/// Surveillance options of the motion detector: regions, mask, sensitivity, footage mode, padding.
struct MotionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Watch only this rectangle x,y,w,h (repeatable): source pixels, or fractions 0–1 when all four are ≤ 1.",
        valueName: "x,y,w,h"))
    var roi: [String] = []

    @Option(help: ArgumentHelp("Ignore motion in this rectangle x,y,w,h (repeatable; as --roi).", valueName: "x,y,w,h"))
    var exclude: [String] = []

    @Option(help: ArgumentHelp("Picture of where to watch: white is watched, black ignored (PNG, JPEG, …; any size).",
                               valueName: "file"))
    var mask: String?

    @Option(help: "Motion sensitivity: low (ignores foliage, rain, small objects), medium, high (small faint objects; more false alarms).")
    var sensitivity: MotionSensitivity = .medium

    @Option(help: "Footage: auto (decided from the first seconds), still (fixed camera, as --still) or film.")
    var footage: FootageMode = .auto

    @Flag(inversion: .prefixedNo, help: "Find burned-in overlays (clocks, timecodes) and ignore motion in them.")
    var overlays = true

    @Option(help: ArgumentHelp("Seconds added before each motion event (DVR-Scan's time-before).", valueName: "seconds"))
    var pre: Double = 0

    @Option(help: ArgumentHelp("Seconds added after each motion event (DVR-Scan's time-post).", valueName: "seconds"))
    var post: Double = 0

    @Option(help: ArgumentHelp("Drop motion shorter than this many seconds.", valueName: "seconds"))
    var minEvent: Double = 0

    func validate() throws {
        _ = try rectangles(roi, flag: "--roi")
        _ = try rectangles(exclude, flag: "--exclude")
        for (flag, value) in [("--pre", pre), ("--post", post), ("--min-event", minEvent)] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(flag) must be a non-negative number of seconds, got \(value)")
        }
        if let mask, !FileManager.default.fileExists(atPath: mask) { throw ValidationError("--mask \(mask): no such file") }
    }

    private func rectangles(_ texts: [String], flag: String) throws -> [RegionRect] {
        try texts.map {
            guard let r = RegionRect(parsing: $0) else {
                throw ValidationError("\(flag) takes x,y,w,h (four non-negative numbers, w and h > 0), got '\($0)'")
            }
            return r
        }
    }

    /// Sets the motion settings of `c`; `still` is the command's `--still`. Reads the mask (a
    /// broken one throws a `VideoError` naming it).
    func apply(to c: inout SegmenterConfiguration, still: Bool) throws {
        c.regions = MotionRegions(include: try rectangles(roi, flag: "--roi"), exclude: try rectangles(exclude, flag: "--exclude"),
                                  mask: try mask.map { MotionMask(path: $0, image: try VideoReader.readImage(path: $0)) })
        if let m = c.regions.mask, m.watchedFraction == 0 {
            throw ValidationError("--mask \(m.path): nothing is white, so nothing would be watched")
        }
        c.motion.sensitivity = sensitivity
        c.motion.findOverlays = overlays
        c.motion.pre = pre
        c.motion.post = post
        c.motion.minimumEvent = minEvent
        c.footage = still ? .still : footage
    }
}

extension MotionSensitivity: ExpressibleByArgument {}
extension FootageMode: ExpressibleByArgument {}
