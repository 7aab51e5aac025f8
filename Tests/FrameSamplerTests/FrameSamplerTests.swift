import DenseCore
import Foundation
import Logging
import TestClips
import Testing
import VideoIO

@testable import FrameSampler

let quietLogger: Logger = {
    var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}()

/// Runs the sampler to the end; returns (requested, chosen) times in seconds-rationals.
func sample(
    _ clip: Clip, _ policy: SamplingPolicy, window: TimeWindow = TimeWindow(), seek: SeekPolicy = SeekPolicy(),
    keyframesOnly: Bool = false
) throws -> (requested: [MediaTime?], chosen: [MediaTime], sampler: FrameSampler) {
    let reader = try VideoReader(path: try clip.path, options: DecodeOptions(keyframesOnly: keyframesOnly))
    let sampler = try FrameSampler(reader: reader, policy: policy, window: window, seekPolicy: seek, logger: quietLogger)
    var requested: [MediaTime?] = []
    var chosen: [MediaTime] = []
    while let s = try sampler.next() {
        #expect(s.index == chosen.count)
        if let r = s.requested { #expect(r <= s.time, "sample \(s.index) earlier than its time") }
        requested.append(s.requested)
        chosen.append(s.time)
    }
    return (requested, chosen, sampler)
}

func ms(_ values: [Int64]) -> [MediaTime] { values.map { MediaTime(value: $0, timescale: 1000) } }

@Suite struct SamplingRuleTests {
    @Test func sampleTimesAreExactRationals() {
        let t = sampleTimes(start: .zero, end: MediaTime(seconds: 1), rate: Rational(30000, 1001))
        #expect(t.count == 30)
        #expect(t[1] == MediaTime(value: 1001, timescale: 30000))
        #expect(t.last == MediaTime(value: 29029, timescale: 30000))
        #expect(sampleTimes(start: MediaTime(value: 5, timescale: 2), end: MediaTime(seconds: 4), rate: Rational(2)).map(\.rational)
            == [Rational(5, 2), Rational(3), Rational(7, 2)])
    }

    struct IndexGolden: Decodable {
        struct Case: Decodable {
            let frame_count: Int
            let samples: Int
            let indices: [Int]
        }
        let cases: [Case]
    }

    /// Golden from numpy (tools/gen_frame_indices.py): the reference's exact rounding, ties included.
    @Test func uniformIndicesMatchNumpy() throws {
        let url = try #require(Bundle.module.url(forResource: "frame_indices", withExtension: "json", subdirectory: "Fixtures"))
        let golden = try JSONDecoder().decode(IndexGolden.self, from: Data(contentsOf: url))
        #expect(golden.cases.count > 1000)
        for c in golden.cases {
            #expect(uniformFrameIndices(frameCount: c.frame_count, samples: c.samples) == c.indices, "n=\(c.frame_count) k=\(c.samples)")
        }
    }

    @Test func specExamples() {
        // nvila-spec §5.1: N=6, n=3 → [0,2,5]; N=8, n=3 → [0,4,7].
        #expect(uniformFrameIndices(frameCount: 6, samples: 3) == [0, 2, 5])
        #expect(uniformFrameIndices(frameCount: 8, samples: 3) == [0, 4, 7])
        #expect(uniformFrameIndices(frameCount: 0, samples: 3) == [])
        #expect(uniformFrameIndices(frameCount: 2, samples: 5) == [0, 0, 0, 1, 1])
    }
}

@Suite struct FrameSamplerTests {
    @Test func oneFPSOnTenFPS() throws {
        let (req, chosen, _) = try sample(.cfr10, .rate(Rational(1)))
        #expect(chosen == [0, 1, 2].map { MediaTime(seconds: $0) })
        #expect(req == [0, 1, 2].map { MediaTime(seconds: $0) })
    }

    @Test func ntscRateIsExact() throws {
        // 29.97 fps sampled at 30000/1001: every frame, each exactly on its own time.
        let (req, chosen, _) = try sample(.ntsc, .rate(Rational(30000, 1001)))
        #expect(chosen == (0..<60).map { MediaTime(value: Int64($0) * 1001, timescale: 30000) })
        #expect(req.compactMap { $0 } == chosen)
        // 1 fps on 29.97: t_k = k s → first frame at or after k s: 0, 30·1001/30000 = 1.001.
        let (_, ones, _) = try sample(.ntsc, .rate(Rational(1)))
        #expect(ones == [MediaTime.zero, MediaTime(value: 30030, timescale: 30000)])
    }

    @Test func variableRateTakesTheFirstFrameAtOrAfterEachTime() throws {
        // Frames at 0, 0.1, 0.2, 0.5, 0.55, 1.3, 2.0; samples every 0.25 s up to the last frame.
        let (req, chosen, _) = try sample(.vfr, .rate(Rational(4)))
        #expect(req.compactMap { $0 } == ms([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]))
        #expect(chosen == ms([0, 500, 500, 1300, 1300, 1300, 2000, 2000, 2000]))
    }

    @Test func repeatsAreFlagged() throws {
        let reader = try VideoReader(path: try Clip.vfr.path)
        let sampler = try FrameSampler(reader: reader, policy: .rate(Rational(4)), logger: quietLogger)
        var flags: [Bool] = []
        while let s = try sampler.next() { flags.append(s.repeatsPrevious) }
        #expect(flags == [false, false, true, false, true, true, false, true, true])
    }

    @Test func startTimeIsTheOrigin() throws {
        let (_, chosen, _) = try sample(.startOffsetMP4, .rate(Rational(5)))
        #expect(chosen == (0..<5).map { MediaTime(value: 25 + 2 * Int64($0), timescale: 10) })
        let (_, ts, _) = try sample(.startOffsetTS, .rate(Rational(5)))
        #expect(ts == chosen)
    }

    @Test func windowLimitsTheRange() throws {
        let window = TimeWindow(start: MediaTime(value: 5, timescale: 10), end: MediaTime(value: 21, timescale: 10))
        let (_, chosen, _) = try sample(.cfr10, .rate(Rational(2)), window: window)
        #expect(chosen == [5, 10, 15, 20].map { MediaTime(value: $0, timescale: 10) })
        let (_, every, _) = try sample(.cfr10, .every, window: TimeWindow(start: MediaTime(value: 27, timescale: 10)))
        #expect(every == [27, 28, 29].map { MediaTime(value: $0, timescale: 10) })
    }

    @Test func countPolicyUsesTheReferenceIndices() throws {
        // 30 frames, 8 samples → round(linspace(0, 29, 8)) = [0, 4, 8, 12, 17, 21, 25, 29].
        let (_, chosen, _) = try sample(.cfr10, .count(8))
        #expect(chosen == [0, 4, 8, 12, 17, 21, 25, 29].map { MediaTime(value: $0, timescale: 10) })
        // More samples than frames: duplicates, as the reference keeps them.
        let (_, dup, _) = try sample(.vfr, .count(10))
        #expect(dup == ms([0, 100, 100, 200, 500, 500, 550, 1300, 1300, 2000]))
        // Within a window, the count is over the frames inside it.
        let (_, windowed, _) = try sample(.cfr10, .count(3), window: TimeWindow(start: MediaTime(seconds: 1), end: MediaTime(seconds: 2)))
        #expect(windowed == [10, 14, 19].map { MediaTime(value: $0, timescale: 10) })
    }

    @Test func keyframesOnly() throws {
        let (_, every, _) = try sample(.cfr10, .every, keyframesOnly: true)
        #expect(every == [0, 1, 2].map { MediaTime(seconds: $0) })
        // --keyframes --fps 2: the rule applied to key frames.
        let (_, rate, _) = try sample(.ntsc, .rate(Rational(2)), keyframesOnly: true)
        #expect(rate == [0, 15015, 30030, 45045].map { MediaTime(value: $0, timescale: 30000) })
    }

    /// Seeking is an optimisation only: eager seeking, no seeking and the default choose the
    /// same frames, on an indexed container and on MPEG-TS (no index; imprecise seeks).
    @Test(arguments: [Clip.cfr10, .ntsc, .vfr, .cfr10TS, .startOffsetTS, .cfr10Timescale90k])
    func seekingNeverChangesTheFrames(clip: Clip) throws {
        for policy in [SamplingPolicy.rate(Rational(1, 2)), .rate(Rational(3, 2)), .count(4)] {
            let (_, sequential, s0) = try sample(clip, policy, seek: .never)
            let (_, eager, s1) = try sample(clip, policy, seek: .eager)
            let (_, normal, _) = try sample(clip, policy)
            #expect(s0.seekCount == 0)
            #expect(eager == sequential, "\(clip) \(policy)")
            #expect(normal == sequential, "\(clip) \(policy)")
            _ = s1
        }
        // Sparse sampling on the 3 s indexed clip seeks past whole GOPs.
        let (_, _, sparse) = try sample(.cfr10, .rate(Rational(1, 2)), seek: .eager)
        #expect(sparse.seekCount >= 1)
    }

    @Test func damagedStreamStillSamples() throws {
        let (_, chosen, sampler) = try sample(.corruptBFrame, .rate(Rational(10)))
        // The lost frame at 1.2 s is answered by the next one, 1.3 s.
        #expect(chosen.count == 30)
        #expect(chosen[12] == MediaTime(value: 13, timescale: 10))
        #expect(sampler.reader.report.isDamaged)
    }

    @Test func truncatedStreamStopsWhereTheDataEnds() throws {
        let (_, chosen, sampler) = try sample(.truncated, .rate(Rational(2)))
        #expect(chosen == [0, 5].map { MediaTime(value: $0, timescale: 10) })
        #expect(sampler.reader.report.truncatedAt == MediaTime(value: 9, timescale: 10))
    }
}

@Suite struct DiscardTests {
    /// The rule applied by hand to every decoded frame's time.
    func byRule(_ clip: Clip, rate: Rational) throws -> [MediaTime] {
        let reader = try VideoReader(path: try clip.path)
        var all: [MediaTime] = []
        while let f = try reader.nextFrame() { all.append(f.time) }
        var picked: [MediaTime] = []
        var k = 0
        while let t = sampleTime(k, start: all[0], rate: rate), let f = all.first(where: { $0 >= t }) {
            picked.append(f)
            k += 1
        }
        return picked
    }

    /// Skipping non-reference frames before each sample time changes nothing about the choice.
    @Test(arguments: [Clip.cfr10, .ntsc, .vfrBFrames, .cfr10Timescale90k, .cfr10TS])
    func skippingUselessFramesKeepsTheRule(clip: Clip) throws {
        for rate in [Rational(1), Rational(3), Rational(7, 2)] {
            let (_, chosen, _) = try sample(clip, .rate(rate), seek: .never)
            #expect(chosen == (try byRule(clip, rate: rate)), "\(clip) at \(rate)")
        }
    }

    @Test func sparseSamplingDecodesFewerFrames() throws {
        let (_, chosen, sampler) = try sample(.cfr10, .rate(Rational(1)), seek: .never)
        #expect(chosen.count == 3)
        // x264's non-reference B-frames before each sample time are never decoded.
        #expect(sampler.reader.report.framesDecoded < 25)
        #expect(!sampler.reader.report.isDamaged)
    }
}
