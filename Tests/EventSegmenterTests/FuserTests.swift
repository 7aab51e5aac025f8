import Foundation
import DenseCore
import Testing

@testable import EventSegmenter

private func t(_ ms: Int64) -> MediaTime { MediaTime(value: ms, timescale: 1000) }
private func b(_ ms: Int64, _ kind: BoundaryKind, _ c: Double, _ detector: String = "d") -> Boundary {
    Boundary(time: t(ms), kind: kind, confidence: c, score: 1, detector: detector)
}
/// Frames every 250 ms over [0, ms).
private func frames(_ ms: Int64, energy: (Int64) -> Double = { _ in 0 }) -> [FrameRecord] {
    stride(from: 0, to: ms, by: 250).map { FrameRecord(time: t($0), energy: energy($0)) }
}

@Suite struct EventFuserTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let candidates: [Boundary]
        let expected: [(Int64, BoundaryKind)]
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(name: "empty", candidates: [], expected: []),
        Case(name: "close candidates fuse, the dissolve wins", candidates: [b(5000, .dissolve, 0.6), b(5250, .cut, 0.5)],
             expected: [(5000, .dissolve)]),
        Case(name: "close candidates fuse, the cut wins over motion", candidates: [b(5000, .motion, 0.9), b(5250, .cut, 0.5)],
             expected: [(5250, .cut)]),
        Case(name: "too close to the start or end", candidates: [b(250, .cut, 1), b(9750, .cut, 1)], expected: []),
        Case(name: "strongest first keeps the stronger of two", candidates: [b(4000, .cut, 0.9), b(4600, .motion, 0.5)],
             expected: [(4000, .cut)]),
        Case(name: "far apart both stay", candidates: [b(2000, .cut, 0.5), b(7000, .fade, 0.7)],
             expected: [(2000, .cut), (7000, .fade)]),
    ])
    func fuses(_ c: Case) {
        var config = FuserConfiguration()
        config.minimumLength = t(1000)
        let fused = EventFuser.fuse(c.candidates, start: .zero, end: t(10000), configuration: config)
        #expect(fused.map(\.time) == c.expected.map { t($0.0) })
        #expect(fused.map(\.kind) == c.expected.map(\.1))
    }

    /// Entering and leaving 1.25 s of black are cuts too; they belong to the fade.
    @Test func cutsAtTheEndsOfAFadeJoinIt() {
        let fade = Boundary(time: t(6500), kind: .fade, confidence: 0.9, score: 2, transitionStart: t(6000),
                            transitionEnd: t(7000), detector: "fade")
        let fused = EventFuser.fuse([b(6000, .cut, 1, "content"), fade, b(7250, .cut, 1, "content")],
                                    start: .zero, end: t(20000), configuration: FuserConfiguration())
        #expect(fused.map(\.time) == [t(6500)])
        #expect(fused.map(\.kind) == [.fade])
    }

    @Test func confidenceIsNoisyOrOverDetectors() {
        let fused = EventFuser.fuse([b(5000, .cut, 0.5, "a"), b(5000, .cut, 0.5, "b"), b(5100, .cut, 0.4, "a")],
                                    start: .zero, end: t(10000), configuration: FuserConfiguration())
        #expect(fused.count == 1)
        #expect(abs(fused[0].confidence - 0.75) < 1e-12)
        #expect(fused[0].detector == "a+b")
    }

    @Test func eventsCoverTheStreamWithMiddleKeyframes() {
        let events = EventFuser.events(boundaries: [b(4000, .cut, 0.8)], frames: frames(10000), end: t(10000),
                                       configuration: FuserConfiguration())
        #expect(events.map(\.start) == [t(0), t(4000)])
        #expect(events.map(\.end) == [t(4000), t(10000)])
        #expect(events.map(\.keyframe) == [t(2000), t(7000)])
        #expect(events.map(\.kind) == [.start, .cut])
        #expect(events.map(\.confidence) == [1, 0.8])
        #expect(events.allSatisfy { $0.isStatic })
    }

    @Test func longEventsSplitAtTheMaximum() {
        var config = FuserConfiguration()
        config.maximumLength = t(4000)
        let events = EventFuser.events(boundaries: [], frames: frames(10000), end: t(10000), configuration: config)
        // 10 s in ⌈10/4⌉ = 3 equal parts: 3.333… s, starting at the next frame (3.5 s, 6.75 s).
        #expect(events.map(\.start) == [t(0), t(3500), t(6750)])
        #expect(events.map(\.kind) == [.start, .split, .split])
        #expect(events.map(\.confidence) == [1, 0, 0])
    }

    @Test func gatingKeepsStaticStretchesWholeAndSkippable() {
        var config = FuserConfiguration()
        config.maximumLength = t(4000)
        config.gating = true
        config.skippableLength = t(5000)
        let moving = { (ms: Int64) in ms >= 6000 && ms < 8000 ? (ms == 7000 ? 0.2 : 0.05) : 0 }
        let events = EventFuser.events(boundaries: [b(6000, .motion, 0.9), b(8000, .motion, 0.9)],
                                       frames: frames(20000, energy: moving), end: t(20000), configuration: config)
        #expect(events.map(\.start) == [t(0), t(6000), t(8000)])
        #expect(events.map(\.skippable) == [true, false, true])
        #expect(events.map(\.isStatic) == [true, false, true])
        // Motion events show their peak of motion.
        #expect(events[1].keyframe == t(7000))
    }

    /// Gating marks only long still stretches skippable: a short quiet event between two motion
    /// events is captioned like any other.
    @Test func gatingSkipsOnlyLongStillStretches() {
        var config = FuserConfiguration()
        config.gating = true
        config.skippableLength = t(10000)
        let moving = { (ms: Int64) in (ms >= 2000 && ms < 4000) || (ms >= 7000 && ms < 9000) ? 0.05 : 0 }
        let events = EventFuser.events(
            boundaries: [b(2000, .motion, 0.9), b(4000, .motion, 0.9), b(7000, .motion, 0.9), b(9000, .motion, 0.9)],
            frames: frames(30000, energy: moving), end: t(30000), configuration: config)
        #expect(events.map(\.start) == [t(0), t(2000), t(4000), t(7000), t(9000)])
        #expect(events.map(\.isStatic) == [true, false, true, false, true])
        // 2 s and 3 s of quiet are not "long"; the last 21 s are.
        #expect(events.map(\.skippable) == [false, false, false, false, true])
    }

    /// Without the motion detector nothing is known to be still: no event is static or skippable.
    @Test func withoutMotionNothingIsStatic() {
        var config = FuserConfiguration()
        config.gating = true
        config.skippableLength = t(1000)
        let unknown = stride(from: Int64(0), to: 20000, by: 250).map { FrameRecord(time: t($0), energy: nil) }
        let events = EventFuser.events(boundaries: [b(8000, .cut, 0.9)], frames: unknown, end: t(20000), configuration: config)
        #expect(events.count == 2)
        #expect(events.allSatisfy { !$0.isStatic && !$0.skippable })
    }
}

@Suite struct EventSegmenterTests {
    @Test func solidColoursGiveOneEventEach() throws {
        let events = try Synth.segment(Synth.solid(200, 30, 30).times(8) + Synth.solid(30, 200, 30).times(8) + Synth.solid(30, 30, 200).times(8))
        #expect(events.map(\.start) == [Synth.time(0), Synth.time(8), Synth.time(16)])
        #expect(events.map(\.kind) == [.start, .cut, .cut])
        #expect(events.last?.end == Synth.time(24))
        #expect(events.allSatisfy { $0.confidence > 0.5 && $0.confidence <= 1 })
    }

    @Test func fadesAndDissolvesInOneStream() throws {
        let a = Synth.scene(1), b = Synth.scene(2), c = Synth.scene(3)
        let fade = (0..<4).map { Synth.scaled(a, 1 - Double($0) / 4) } + Synth.solid(0, 0, 0).times(2)
            + (1...4).map { Synth.scaled(b, Double($0) / 4) }
        let dissolve = (1...5).map { Synth.blend(b, c, Double($0) / 6) }
        let events = try Synth.segment(a.times(10) + fade + b.times(10) + dissolve + c.times(10))
        #expect(events.map(\.kind) == [.start, .fade, .dissolve])
    }

    /// Embeddings after all frames: the running mean restarts at the pixel cut, so the second
    /// shot's slowly drifting embeddings are judged against that shot alone.
    @Test func embeddingsAddSemanticBoundariesAndRestartAtCuts() throws {
        let s = EventSegmenter()
        let frames = Synth.solid(200, 30, 30).times(12) + Synth.solid(30, 30, 200).times(12)
        for (i, f) in frames.enumerated() { try s.process(f, at: Synth.time(i)) }
        // Shot 1: [1, 0, 0]; shot 2: [0, 1, 0], then [0, 0, 1] from frame 18 (a new event
        // inside the shot that no pixel detector sees).
        for i in 0..<24 {
            let e: [Float] = i < 12 ? [1, 0, 0] : (i < 18 ? [0, 1, 0] : [0, 0, 1])
            try s.process(embedding: e, at: Synth.time(i))
        }
        let events = try s.events()
        #expect(events.map(\.start) == [Synth.time(0), Synth.time(12), Synth.time(18)])
        #expect(events.map(\.kind) == [.start, .cut, .semantic])
        #expect(throws: SegmenterError.self) { try s.process(embedding: [1, 0, 0], at: Synth.time(3)) }
    }

    @Test func outOfOrderFramesThrow() throws {
        let s = EventSegmenter()
        try s.process(Synth.scene(1), at: Synth.time(2))
        #expect(throws: SegmenterError.self) { try s.process(Synth.scene(1), at: Synth.time(1)) }
    }

    @Test func nothingInNothingOut() throws {
        #expect(try EventSegmenter().events().isEmpty)
    }

    /// Embeddings interleaved with frames (the order the caption job's every-frame mode uses):
    /// the running mean still restarts at the cut, whose candidate the adaptive detector releases
    /// frames later. Embeddings u, v, w 36° apart in a plane (cosine distance 0.19 each step):
    /// v after the cut is not novel against u, w not against v; but w against the mean of u and
    /// v (54°, distance 0.41) would be — a boundary at frame 16 means the reset was missed.
    @Test func semanticResetAtCutsWhateverTheOrder() throws {
        let angle = { (deg: Double) -> [Float] in [Float(cos(deg * .pi / 180)), Float(sin(deg * .pi / 180)), 0] }
        let frames = Synth.scene(1).times(8) + Synth.scene(2).times(16)
        let embeddings = (0..<24).map { angle($0 < 8 ? 0 : ($0 < 16 ? 36 : 72)) }
        for interleaved in [true, false] {
            let s = EventSegmenter()
            for (i, f) in frames.enumerated() {
                try s.process(f, at: Synth.time(i))
                if interleaved { try s.process(embedding: embeddings[i], at: Synth.time(i)) }
            }
            if !interleaved { for i in 0..<24 { try s.process(embedding: embeddings[i], at: Synth.time(i)) } }
            let events = try s.events()
            #expect(events.map(\.start) == [Synth.time(0), Synth.time(8)], "interleaved: \(interleaved)")
            #expect(!events.contains { $0.kind == .semantic }, "interleaved: \(interleaved)")
        }
    }
}
