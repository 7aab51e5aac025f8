import Testing

@testable import DenseCore

@Suite struct RationalTests {
    @Test(arguments: [
        ("30000/1001", Rational(30000, 1001)), ("29.97", Rational(2997, 100)), ("2", Rational(2)),
        ("-1.5", Rational(-3, 2)), (".25", Rational(1, 4)), ("0.5/2", Rational(1, 4)), (" 10 ", Rational(10)),
        ("4/6", Rational(2, 3)),
    ])
    func parsesExactly(text: String, expected: Rational) {
        #expect(Rational(parsing: text) == expected)
    }

    @Test(arguments: ["", "abc", "1/0", "1.2.3", "--1", "1e3", ".", "99999999999999999999"])
    func rejectsNonsense(text: String) {
        #expect(Rational(parsing: text) == nil)
    }

    @Test func reducesAndOrders() {
        #expect(Rational(6, -4) == Rational(-3, 2))
        #expect(Rational(-3, 2).denominator == 2)
        #expect(Rational(1, 3) < Rational(34, 100))
        #expect(Rational(1001, 30000) + Rational(1001, 30000) == Rational(1001, 15000))
        #expect(Rational(-7, 2).floor == -4)
        #expect(Rational(7, 2).floor == 3)
    }

    @Test func overflowIsReportedNotTrapped() {
        let big = Rational(Int64.max - 1, 1)
        #expect(big.multiplied(by: Rational(3)) == nil)
        #expect(big.adding(big) == nil)
        #expect(Rational.one.dividedBy(.zero) == nil)
    }
}

@Suite struct MediaTimeTests {
    @Test func comesFromPTSTimesTimeBase() {
        let t = MediaTime(pts: 1001 * 7, timeBase: Rational(1, 30000))!
        #expect(t == MediaTime(value: 7007, timescale: 30000))
        #expect(t.rational == Rational(7007, 30000))
        // Exact equality across time bases: 25600/10240 == 2500/1000 == 225000/90000.
        #expect(MediaTime(pts: 25600, timeBase: Rational(1, 10240)) == MediaTime(pts: 225_000, timeBase: Rational(1, 90000)))
    }

    @Test(arguments: [
        (Rational(12345, 1000), Int64(12345), "00:00:12.345", "12.345"),
        (Rational(123459, 10000), 12345, "00:00:12.345", "12.345"),  // truncated, not rounded
        (Rational(1001, 30000), 33, "00:00:00.033", "0.033"),
        (Rational(3_725_500, 1000), 3_725_500, "01:02:05.500", "3725.500"),
        (Rational(-1, 3), -334, "-00:00:00.334", "-0.334"),  // toward −∞
    ])
    func formatsFromIntegerMilliseconds(time: Rational, ms: Int64, timecode: String, seconds: String) {
        let t = MediaTime(time)
        #expect(t.milliseconds == ms)
        #expect(t.timecode == timecode)
        #expect(t.secondsString == seconds)
    }

    @Test(arguments: [
        ("12.5", Rational(25, 2)), ("30000/1001", Rational(30000, 1001)), ("1:02.5", Rational(125, 2)),
        ("1:02:03.25", Rational(14893, 4)), ("0:00", Rational.zero),
    ])
    func parsesUserTimes(text: String, expected: Rational) {
        #expect(MediaTime(parsing: text)?.rational == expected)
    }

    @Test(arguments: ["1:60", "1:-2", "a:00", "1::2", "1:2:3:4", ""])
    func rejectsBadTimes(text: String) {
        #expect(MediaTime(parsing: text) == nil)
    }

    @Test func ticksRoundDown() {
        let t = MediaTime(value: 1, timescale: 3)
        #expect(t.ticks(in: Rational(1, 1000)) == 333)
        #expect(MediaTime(seconds: 2).ticks(in: Rational(1, 10240)) == 20480)
    }
}

@Suite struct RGBImageTests {
    /// 3×2 image whose pixel (x, y) holds (x, y, 10x+y).
    func sample() -> RGBImage {
        var p: [UInt8] = []
        for y in 0..<2 { for x in 0..<3 { p += [UInt8(x), UInt8(y), UInt8(10 * x + y)] } }
        return RGBImage(width: 3, height: 2, pixels: p)
    }

    @Test func rotatesClockwise() {
        let r = sample().rotated(clockwiseQuarterTurns: 1)
        #expect((r.width, r.height) == (2, 3))
        // Clockwise: the bottom-left source pixel (0, 1) becomes the top-left.
        #expect(r[0, 0] == (0, 1, 1))
        #expect(r[1, 0] == (0, 0, 0))
        #expect(r[0, 2] == (2, 1, 21))
    }

    @Test func quarterTurnsCompose() {
        let s = sample()
        #expect(s.rotated(clockwiseQuarterTurns: 4) == s)
        #expect(s.rotated(clockwiseQuarterTurns: 1).rotated(clockwiseQuarterTurns: 3) == s)
        #expect(s.rotated(clockwiseQuarterTurns: 2) == s.rotated(clockwiseQuarterTurns: -2))
        #expect(s.rotated(clockwiseQuarterTurns: 2)[0, 0] == (2, 1, 21))
        #expect(s.mirroredHorizontally()[0, 0] == (2, 0, 20))
    }
}
