import DenseCore
import Foundation
import Synchronization
import Testing
import VideoIO

@testable import EventSegmenter

/// Still-camera clips with known motion, made at test time by `tools/motion_clips.sh` (the ffmpeg
/// CLI; the same recipes bench/motion.sh uses): 256×144, 4 fps, 30 s, so every frame is an
/// analysis frame. The object crosses from 10 to 16 s (see the script for every family).
enum MotionClips {
    static let directory: String = {
        let d = NSTemporaryDirectory() + "densecap-motion-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/motion_clips.sh").path
    private static let made = Mutex<Set<String>>([])

    /// The clip of `family` (made on first use) and its true events in seconds.
    static func clip(_ family: String) throws -> (path: String, truth: [(Double, Double)]) {
        let path = directory + "/\(family).mp4"
        try made.withLock { made in
            guard !made.contains(family) else { return }
            try run("/bin/bash", [script, family, path])
            made.insert(family)
        }
        let gt = try String(contentsOfFile: directory + "/\(family).gt", encoding: .utf8)
        let truth = gt.split(separator: "\n").map { line -> (Double, Double) in
            let v = line.split(separator: " ").map { Double($0)! }
            return (v[0], v[1])
        }
        return (path, truth)
    }

    /// A `width × height` PNG, white on the right half, black on the left.
    static func rightHalfMask(width: Int, height: Int) throws -> String {
        let path = directory + "/mask-\(width)x\(height).png"
        try run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=\(width)x\(height):d=1",
                           "-vf", "drawbox=x=iw/2:y=0:w=iw/2:h=ih:color=white:t=fill", "-frames:v", "1", path])
        return path
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ClipFailure(description: "\(tool) \(arguments.joined(separator: " ")): \(String(decoding: message, as: UTF8.self))")
        }
    }

    struct ClipFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Every frame of the clip through a segmenter; its events and the segmenter.
    static func segment(_ path: String, width: Int = 256, configure: (inout SegmenterConfiguration) -> Void = { _ in })
        throws -> (events: [Event], segmenter: EventSegmenter)
    {
        var c = SegmenterConfiguration()
        c.frameRate = 4
        configure(&c)
        let reader = try VideoReader(path: path)
        let segmenter = EventSegmenter(configuration: c, sourceSize: (reader.info.displaySize.width, reader.info.displaySize.height))
        while let frame = try reader.nextFrame() {
            try segmenter.process(try reader.image(from: frame, size: OutputSize(width: width)), at: frame.time)
        }
        return (try segmenter.events(end: MediaTime(seconds: 30)), segmenter)
    }

    static func motionEvents(_ events: [Event]) -> [(Double, Double)] {
        events.filter { $0.kind == .motion && !$0.isStatic }.map { ($0.start.seconds, $0.end.seconds) }
    }
}

@Suite struct MotionClipTests {
    /// One analysis frame at 4 fps.
    static let frame = 0.25

    /// Families with nothing but lighting, overlays, foliage, rain or noise: no motion event, no
    /// boundary of any kind, and the footage is recognised as still.
    @Test(arguments: ["still", "step", "ramp", "exposure", "irswitch", "clock", "foliage", "rain"])
    func nothingMovesNothingFound(family: String) throws {
        let (path, truth) = try MotionClips.clip(family)
        #expect(truth.isEmpty)
        let (events, segmenter) = try MotionClips.segment(path)
        #expect(MotionClips.motionEvents(events).isEmpty, "\(family): \(events.map { "\($0.kind)@\($0.start.seconds)" })")
        #expect(events.count == 1, "\(family): \(events.map { "\($0.kind)@\($0.start.seconds)" })")
        #expect(segmenter.footage == .still)
    }

    /// The object crossing, alone or during a lighting change, a clock, foliage or rain: exactly
    /// one motion event, its start and end within one analysis frame of the truth.
    @Test(arguments: ["object", "step-object", "ramp-object", "clock-object", "foliage-object", "rain-object"])
    func objectFoundExactly(family: String) throws {
        let (path, truth) = try MotionClips.clip(family)
        let (events, segmenter) = try MotionClips.segment(path)
        let found = MotionClips.motionEvents(events)
        #expect(found.count == 1, "\(family): \(found)")
        if let f = found.first, let t = truth.first {
            #expect(abs(f.0 - t.0) <= Self.frame, "\(family): start \(f.0), true \(t.0)")
            #expect(abs(f.1 - t.1) <= Self.frame + 1e-9 || (f.1 > t.1 && f.1 - t.1 <= Self.frame + 1e-9),
                    "\(family): end \(f.1), true \(t.1)")
        }
        #expect(segmenter.footage == .still)
    }

    /// The clock (top left) and the timecode (top right) are found and listed; nothing around
    /// the object or the still camera name is.
    @Test func clockOverlaysAreListed() throws {
        let (path, _) = try MotionClips.clip("clock-object")
        let (_, segmenter) = try MotionClips.segment(path)
        let boxes = segmenter.overlays.sorted { $0.x < $1.x }
        #expect(boxes.count == 2, "\(boxes)")
        #expect(boxes.allSatisfy { $0.y < 0.1 && $0.height < 0.2 && $0.width < 0.5 }, "\(boxes)")
        // The clock's text spans 0.02…0.56 of the width (its seconds tick), the timecode 0.7…0.98.
        if boxes.count == 2 {
            #expect(boxes[0].x > 0.02 && boxes[0].x + boxes[0].width < 0.6, "\(boxes)")
            #expect(boxes[1].x > 0.65 && boxes[1].x + boxes[1].width <= 1, "\(boxes)")
        }
    }

    /// With overlay finding off nothing is listed, and the clock and timecode still raise no
    /// motion: their cells learn their own wobble in the first seconds.
    @Test func clockWithoutOverlayFinding() throws {
        let (path, _) = try MotionClips.clip("clock")
        let (events, segmenter) = try MotionClips.segment(path) { $0.motion.findOverlays = false }
        #expect(MotionClips.motionEvents(events).isEmpty)
        #expect(segmenter.overlays.isEmpty)
    }

    /// A region of the right half (as fractions, as pixels, as a mask, or the left half excluded):
    /// the object crossing inside it is found, the one crossing outside is not.
    @Test(arguments: ["fractions", "pixels", "mask", "exclude"])
    func regionsWatchOnlyTheirPart(form: String) throws {
        let regions: MotionRegions
        switch form {
        case "fractions": regions = MotionRegions(include: [RegionRect(parsing: "0.5,0,0.5,1")!])
        case "pixels": regions = MotionRegions(include: [RegionRect(parsing: "128,0,128,144")!])
        case "mask":
            let png = try MotionClips.rightHalfMask(width: 640, height: 360)
            regions = MotionRegions(mask: MotionMask(path: png, image: try VideoReader.readImage(path: png)))
        default: regions = MotionRegions(exclude: [RegionRect(parsing: "0,0,0.5,1")!])
        }
        let (inside, truth) = try MotionClips.clip("roi-inside")
        let found = MotionClips.motionEvents(try MotionClips.segment(inside) { $0.regions = regions }.events)
        #expect(found.count == 1, "\(form): \(found)")
        if let f = found.first { #expect(abs(f.0 - truth[0].0) <= Self.frame, "\(form): \(f)") }
        let (outside, _) = try MotionClips.clip("roi-outside")
        #expect(MotionClips.motionEvents(try MotionClips.segment(outside) { $0.regions = regions }.events).isEmpty)
        // Without the region the crossing outside is motion: the region is what hides it.
        #expect(MotionClips.motionEvents(try MotionClips.segment(outside).events).count == 1)
    }

    /// Pixel regions follow the source size, whatever the analysis width.
    @Test func pixelRegionsScaleToTheAnalysisWidth() throws {
        let (inside, _) = try MotionClips.clip("roi-inside")
        let (outside, _) = try MotionClips.clip("roi-outside")
        let regions = MotionRegions(include: [RegionRect(parsing: "128,0,128,144")!])
        #expect(MotionClips.motionEvents(try MotionClips.segment(inside, width: 96) { $0.regions = regions }.events).count == 1)
        #expect(MotionClips.motionEvents(try MotionClips.segment(outside, width: 96) { $0.regions = regions }.events).isEmpty)
    }

    /// A panning camera (ffmpeg's testsrc2 pattern, 8 pixels a frame sideways) is film footage:
    /// no motion boundary, nothing gated.
    @Test func panningCameraIsFilm() throws {
        let path = MotionClips.directory + "/pan.mp4"
        try MotionClips.run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=512x288:r=4",
                                       "-vf", "crop=256:144:x='mod(n*8\\,256)':y=72", "-t", "12", "-c:v", "libx264",
                                       "-pix_fmt", "yuv420p", "-threads", "1", path])
        let (events, segmenter) = try MotionClips.segment(path)
        #expect(segmenter.footage == .film)
        #expect(!events.contains { $0.kind == .motion || $0.skippable })
    }

    @Test func paddingAndMinimumLength() throws {
        let (path, truth) = try MotionClips.clip("object")
        let padded = MotionClips.motionEvents(try MotionClips.segment(path) {
            $0.motion.pre = 1.5
            $0.motion.post = 2
        }.events)
        #expect(padded.count == 1)
        if let p = padded.first {
            #expect(abs(p.0 - (truth[0].0 - 1.5)) <= Self.frame, "\(p)")
            #expect(p.1 - truth[0].1 >= 2 && p.1 - truth[0].1 <= 2 + Self.frame + 1e-9, "\(p)")
        }
        let long = MotionClips.motionEvents(try MotionClips.segment(path) { $0.motion.minimumEvent = 7 }.events)
        #expect(long.isEmpty)
        let short = MotionClips.motionEvents(try MotionClips.segment(path) { $0.motion.minimumEvent = 5 }.events)
        #expect(short.count == 1)
    }
}

@Suite struct MotionUnitTests {
    @Test func regionParsing() {
        #expect(RegionRect(parsing: "0.5,0,0.5,1")?.unit == .normalized)
        #expect(RegionRect(parsing: "10, 20, 300, 200")?.unit == .pixels)
        #expect(RegionRect(parsing: "10,20,300")?.unit == nil)
        #expect(RegionRect(parsing: "10,20,0,5") == nil)
        #expect(RegionRect(parsing: "-1,0,5,5") == nil)
        #expect(RegionRect(parsing: "a,b,c,d") == nil)
    }

    /// A 1920×1080 source: the pixel rectangle of its right half watches the right half of any grid.
    @Test func watchedCellsScale() {
        let regions = MotionRegions(include: [RegionRect(x: 960, y: 0, width: 960, height: 1080, unit: .pixels)],
                                    exclude: [RegionRect(x: 0.75, y: 0, width: 0.25, height: 0.5, unit: .normalized)])
        let cells = regions.watchedCells(gridWidth: 64, gridHeight: 36, sourceWidth: 1920, sourceHeight: 1080)
        #expect(cells.filter { $0 }.count == 32 * 36 - 16 * 18)
        #expect(cells[0] == false && cells[63] == false && cells[35 * 64 + 63] == true && cells[35 * 64 + 31] == false)
    }

    @Test func maskBitsRoundTrip() throws {
        var px = [UInt8](repeating: 0, count: 600 * 10 * 3)
        for y in 0..<10 { for x in 300..<600 { for k in 0..<3 { px[3 * (y * 600 + x) + k] = 255 } } }
        let mask = MotionMask(path: "m.png", image: RGBImage(width: 600, height: 10, pixels: px))
        #expect(mask.width <= MotionMask.maximumWidth)
        #expect(!mask.isWatched(nx: 0.2, ny: 0.5) && mask.isWatched(nx: 0.8, ny: 0.5))
        #expect(abs(mask.watchedFraction - 0.5) < 0.02)
        let decoded = try JSONDecoder().decode(MotionMask.self, from: try JSONEncoder().encode(mask))
        #expect(decoded == mask)
    }

    struct PadCase: Sendable, CustomStringConvertible {
        let name: String
        let activities: [(Double, Double?)]
        let pre, post, minimum: Double
        let expected: [Double]
        var description: String { name }
    }

    @Test(arguments: [
        PadCase(name: "unpadded", activities: [(10, 16)], pre: 0, post: 0, minimum: 0, expected: [10, 16]),
        PadCase(name: "padded", activities: [(10, 16)], pre: 1.5, post: 2, minimum: 0, expected: [8.5, 18]),
        PadCase(name: "clamped to the stream", activities: [(1, 29)], pre: 2, post: 2, minimum: 0, expected: [0]),
        PadCase(name: "padding joins two", activities: [(10, 12), (14, 16)], pre: 1, post: 1.5, minimum: 0, expected: [9, 17.5]),
        PadCase(name: "apart stay apart", activities: [(10, 12), (16, 18)], pre: 1, post: 1, minimum: 0, expected: [9, 13, 15, 19]),
        PadCase(name: "short dropped", activities: [(10, 10.5), (20, 24)], pre: 0, post: 0, minimum: 1, expected: [20, 24]),
        PadCase(name: "open end", activities: [(20, nil)], pre: 1, post: 1, minimum: 0, expected: [19]),
    ])
    func motionEventPadding(c: PadCase) {
        let ms = { (s: Double) in MediaTime(value: Int64((s * 1000).rounded()), timescale: 1000) }
        let activities = c.activities.map { MotionActivity(start: ms($0.0), end: $0.1.map(ms), peak: 0.01) }
        let b = MotionEvents.boundaries(activities, pre: c.pre, post: c.post, minimumEvent: c.minimum, onFraction: 0.004,
                                        start: .zero, end: ms(30))
        #expect(b.map(\.time.seconds) == c.expected)
        #expect(b.allSatisfy { $0.kind == .motion })
    }

    /// Settings survive a JSON round trip (they are recorded in outputs and compared on resume).
    @Test func settingsAreCodable() throws {
        var m = MotionDetector.Configuration()
        m.sensitivity = .high
        m.pre = 1
        let regions = MotionRegions(include: [RegionRect(parsing: "1,2,3,4")!], exclude: [RegionRect(parsing: "0,0,0.5,0.5")!])
        #expect(try JSONDecoder().decode(MotionDetector.Configuration.self, from: JSONEncoder().encode(m)) == m)
        #expect(try JSONDecoder().decode(MotionRegions.self, from: JSONEncoder().encode(regions)) == regions)
        #expect(try JSONDecoder().decode(FootageMode.self, from: JSONEncoder().encode(FootageMode.still)) == .still)
    }
}
