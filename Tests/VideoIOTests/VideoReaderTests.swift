import DenseCore
import TestClips
import Testing
import VideoIO

/// Decodes every frame of `path` and returns the PTS of each in the stream's time base.
func decodedTicks(_ path: String, options: DecodeOptions = DecodeOptions()) throws -> (ticks: [Int64], reader: VideoReader) {
    let reader = try VideoReader(path: path, options: options)
    var ticks: [Int64] = []
    while let f = try reader.nextFrame() {
        let r = f.time.rational.dividedBy(reader.info.timeBase)!
        #expect(r.denominator == 1, "time \(f.time) is not a whole number of ticks")
        ticks.append(r.numerator)
    }
    return (ticks, reader)
}

@Suite struct ProbeTests {
    @Test func constantRateMP4() throws {
        let info = try VideoReader.probe(path: try Clip.cfr10.path)
        #expect(info.codec == "h264")
        #expect(info.container.contains("mp4"))
        #expect((info.width, info.height) == (64, 48))
        #expect(info.timeBase == Rational(1, 10240))
        #expect(info.startTime == .zero)
        #expect(info.duration == MediaTime(seconds: 3))
        #expect(info.averageFrameRate == Rational(10))
        #expect(info.realFrameRate == Rational(10))
        #expect(!info.isVariableFrameRate)
        #expect(info.frameCount == 30)
        #expect(info.rotation == 0)
        #expect(info.sampleAspectRatio == .one)
        #expect(info.pixelFormat == "yuv420p")
        #expect(info.bitRate ?? 0 > 0)
        #expect(info.audioStreams == 0)
    }

    @Test func ntscRate() throws {
        let info = try VideoReader.probe(path: try Clip.ntsc.path)
        #expect(info.timeBase == Rational(1, 30000))
        #expect(info.averageFrameRate == Rational(30000, 1001))
        #expect(info.duration == MediaTime(value: 60060, timescale: 30000))
    }

    @Test func variableRateIsDetected() throws {
        let info = try VideoReader.probe(path: try Clip.vfr.path)
        #expect(info.realFrameRate == Rational(20))
        #expect(info.averageFrameRate == Rational(10, 3))
        #expect(info.isVariableFrameRate)
        let scan = try VideoReader.scanPackets(path: try Clip.vfr.path)
        #expect(scan.isVariableFrameRate)
        #expect(scan.frameCount == 7)
        #expect(scan.minFrameDuration == MediaTime(value: 50, timescale: 1000))
        #expect(scan.maxFrameDuration == MediaTime(value: 750, timescale: 1000))
        // Matroska headers hide it (avg = real = 10/1); the packet scan does not.
        #expect(!(try VideoReader.probe(path: try Clip.vfrMatroska.path)).isVariableFrameRate)
        #expect(try VideoReader.scanPackets(path: try Clip.vfrMatroska.path).isVariableFrameRate)
        #expect(!(try VideoReader.scanPackets(path: try Clip.ntsc.path)).isVariableFrameRate)
    }

    @Test(arguments: [(Clip.rotated90, 270), (.rotated180, 180), (.rotated270, 90), (.base1s, 0)])
    func rotationFromDisplayMatrix(clip: Clip, clockwise: Int) throws {
        let info = try VideoReader.probe(path: try clip.path)
        #expect(info.rotation == clockwise)
        #expect((info.width, info.height) == (64, 48))
        let display = info.displaySize
        #expect(clockwise % 180 == 0 ? display == (64, 48) : display == (48, 64))
    }

    @Test func sampleAspectRatio() throws {
        let info = try VideoReader.probe(path: try Clip.sar2.path)
        #expect(info.sampleAspectRatio == Rational(2))
        #expect(info.displaySize == (128, 48))
    }

    @Test(arguments: [
        (Clip.startOffsetMP4, Rational(1, 10240)), (.startOffsetMatroska, Rational(1, 1000)),
        (.startOffsetTS, Rational(1, 90000)),
    ])
    func nonZeroStart(clip: Clip, timeBase: Rational) throws {
        let info = try VideoReader.probe(path: try clip.path)
        #expect(info.timeBase == timeBase)
        #expect(info.startTime == MediaTime(value: 5, timescale: 2))
    }

    @Test func packetScanCountsAndKeyFrames() throws {
        let scan = try VideoReader.scanPackets(path: try Clip.cfr10.path)
        #expect(scan.frameCount == 30)
        #expect(scan.keyTimes == [0, 1, 2].map { MediaTime(seconds: $0) })
        #expect(scan.presentationTimes == (0..<30).map { MediaTime(value: Int64($0), timescale: 10) })
        #expect(!scan.endedEarly)
    }
}

@Suite struct DecodeTimestampTests {
    static func series(_ start: Int64, _ step: Int64, _ count: Int) -> [Int64] {
        (0..<Int64(count)).map { start + $0 * step }
    }

    static let vfrTicks: [Int64] = [0, 100, 200, 500, 550, 1300, 2000]

    @Test(arguments: [
        (Clip.cfr10, series(0, 1024, 30)),
        (Clip.cfr10Timescale90k, series(0, 9000, 30)),
        (Clip.ntsc, series(0, 1001, 60)),
        (Clip.vfr, vfrTicks),
        (Clip.vfrBFrames, vfrTicks),
        (Clip.vfrMatroska, vfrTicks),
        (Clip.startOffsetMP4, series(25600, 1024, 10)),
        (Clip.startOffsetMatroska, series(2500, 100, 10)),
        (Clip.startOffsetTS, series(225_000, 9000, 10)),
        (Clip.cfr10TS, series(144_000, 9000, 30)),
    ] as [(Clip, [Int64])])
    func presentationTimesAreExact(clip: Clip, expected: [Int64]) throws {
        let (ticks, reader) = try decodedTicks(try clip.path)
        #expect(ticks == expected)
        #expect(!reader.report.isDamaged)
        #expect(reader.report.truncatedAt == nil)
        #expect(reader.report.framesDecoded == expected.count)
    }

    @Test func keyframesOnlySkipsEverythingElse() throws {
        let (ticks, _) = try decodedTicks(try Clip.cfr10.path, options: DecodeOptions(keyframesOnly: true))
        #expect(ticks == [0, 10240, 20480])
        let (ntsc, _) = try decodedTicks(try Clip.ntsc.path, options: DecodeOptions(keyframesOnly: true))
        #expect(ntsc == [0, 15015, 30030, 45045])
    }

    @Test func singleThreadedDecodeGivesTheSameFrames() throws {
        let (one, _) = try decodedTicks(try Clip.cfr10.path, options: DecodeOptions(threads: 1))
        let (auto, _) = try decodedTicks(try Clip.cfr10.path, options: DecodeOptions(threads: 0))
        #expect(one == auto)
    }

    @Test func seekLandsOnThePrecedingKeyFrame() throws {
        let reader = try VideoReader(path: try Clip.cfr10.path)
        #expect(reader.hasKeyframeIndex)
        #expect(reader.keyframeTime(atOrBefore: MediaTime(value: 15, timescale: 10))?.seconds ?? -1 <= 1.0)
        #expect(reader.seek(to: MediaTime(value: 15, timescale: 10)))
        let first = try #require(try reader.nextFrame())
        #expect(first.time == MediaTime(seconds: 1))
        #expect(first.isKeyFrame)
        // Decoding forward after the seek continues frame by frame.
        #expect(try reader.nextFrame()?.time == MediaTime(value: 11, timescale: 10))
        // Seeking back after the end of the stream works too.
        while try reader.nextFrame() != nil {}
        #expect(reader.seek(to: .zero))
        #expect(try reader.nextFrame()?.time == .zero)
    }

    @Test(arguments: [Clip.cfr10, .cfr10TS, .startOffsetMatroska])
    func rewindStartsOver(clip: Clip) throws {
        let (all, _) = try decodedTicks(try clip.path)
        let reader = try VideoReader(path: try clip.path)
        while try reader.nextFrame() != nil {}
        reader.rewind()
        var again: [MediaTime] = []
        while let f = try reader.nextFrame() { again.append(f.time) }
        #expect(again.count == all.count)
        #expect(again.first == MediaTime(pts: all[0], timeBase: reader.info.timeBase))
    }

    @Test func mpegTSHasNoIndexButSeeks() throws {
        let reader = try VideoReader(path: try Clip.cfr10TS.path)
        #expect(!reader.hasKeyframeIndex)
        #expect(reader.keyframeTime(atOrBefore: MediaTime(seconds: 3)) == nil)
        // Without an index FFmpeg bisects by byte position: the landing is approximate (the
        // sampler backs off when it lands late), but decoding goes on from a valid frame.
        #expect(reader.seek(to: MediaTime(value: 20, timescale: 10)))
        let f = try #require(try reader.nextFrame())
        #expect(f.time >= MediaTime(value: 16, timescale: 10))
        #expect(f.time <= MediaTime(value: 45, timescale: 10))
    }
}

@Suite struct ConversionTests {
    func firstImage(_ clip: Clip, size: OutputSize = OutputSize()) throws -> RGBImage {
        let reader = try VideoReader(path: try clip.path)
        let frame = try #require(try reader.nextFrame())
        return try reader.image(from: frame, size: size)
    }

    @Test func displaySizeByDefault() throws {
        #expect(try firstImage(.base1s).width == 64)
        let sar = try firstImage(.sar2)
        #expect((sar.width, sar.height) == (128, 48))
        let rot = try firstImage(.rotated90)
        #expect((rot.width, rot.height) == (48, 64))
    }

    @Test func explicitAndAspectKeepingSizes() throws {
        let exact = try firstImage(.base1s, size: OutputSize(width: 32, height: 32))
        #expect((exact.width, exact.height) == (32, 32))
        let byWidth = try firstImage(.sar2, size: OutputSize(width: 64))
        #expect((byWidth.width, byWidth.height) == (64, 24))
        let rotated = try firstImage(.rotated90, size: OutputSize(width: 24))
        #expect((rotated.width, rotated.height) == (24, 32))
    }

    /// Rotation must turn the picture, not just swap the size: compare against the unrotated
    /// frame turned by hand (both converted at the same pre-rotation size).
    @Test(arguments: [(Clip.rotated90, 3), (.rotated180, 2), (.rotated270, 1)])
    func rotationTurnsThePicture(clip: Clip, clockwiseTurns: Int) throws {
        let upright = try firstImage(.base1s)
        let turned = try firstImage(clip)
        #expect(turned == upright.rotated(clockwiseQuarterTurns: clockwiseTurns))
    }

    @Test func colorsAreRight() throws {
        // testsrc2's frame is mostly saturated colour bars; the conversion must produce RGB, not BGR
        // or YUV: the mean of each channel is in range and the image is not grey.
        let image = try firstImage(.base1s)
        var sums = [0, 0, 0]
        for i in stride(from: 0, to: image.pixels.count, by: 3) {
            for c in 0..<3 { sums[c] += Int(image.pixels[i + c]) }
        }
        #expect(Set(sums).count > 1)
        #expect(image.pixels.count == 64 * 48 * 3)
    }

    @Test(arguments: [
        ("448x448", OutputSize(width: 448, height: 448)), ("448", OutputSize(width: 448)),
        ("448x", OutputSize(width: 448)), ("x224", OutputSize(height: 224)), ("448x-1", OutputSize(width: 448)),
    ])
    func parsesSizes(text: String, expected: OutputSize) {
        #expect(OutputSize(parsing: text) == expected)
    }

    @Test(arguments: ["", "x", "0x10", "axb", "10x10x10", "-5", "99999x1"])
    func rejectsBadSizes(text: String) {
        #expect(OutputSize(parsing: text) == nil)
    }

    @Test func encodesPNG() throws {
        let png = try PNGEncoder().encode(try firstImage(.base1s))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }
}
