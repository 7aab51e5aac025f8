import DenseCore
import Testing

@testable import EventSegmenter

@Suite struct FrameAnalysisTests {
    /// OpenCV COLOR_RGB2HSV values for 8-bit pixels.
    @Test(arguments: [
        ((255, 0, 0), (0, 255, 255)), ((0, 255, 0), (60, 255, 255)), ((0, 0, 255), (120, 255, 255)),
        ((128, 128, 128), (0, 0, 128)), ((255, 255, 0), (30, 255, 255)), ((255, 0, 255), (150, 255, 255)),
        ((0, 0, 0), (0, 0, 0)),
    ])
    func hsvMatchesOpenCV(rgb: (Int, Int, Int), expected: (Int, Int, Int)) {
        let (h, s, v) = hsv(rgb.0, rgb.1, rgb.2)
        #expect([Int(h), Int(s), Int(v)] == [expected.0, expected.1, expected.2])
    }

    /// The branch-free HSV of the analysis loop against the plain one, on every 5th RGB triple.
    @Test func branchlessHSVMatchesPlain() {
        let inv: [Int] = (0..<256).map { $0 == 0 ? 0 : (1 << 24) / $0 + 1 }
        inv.withUnsafeBufferPointer { p in
            var mismatches = 0
            for r in stride(from: 0, to: 256, by: 5) {
                for g in stride(from: 0, to: 256, by: 5) {
                    for b in stride(from: 0, to: 256, by: 5) where hsv(r, g, b, reciprocals: p) != hsvBranchless(r, g, b, reciprocals: p) {
                        mismatches += 1
                    }
                }
            }
            #expect(mismatches == 0)
        }
    }

    /// The C pass of frame analysis against `hsv` and the BT.601 luma formula on every RGB triple
    /// (one red level per call: 65,536 pixels).
    @Test func analysisKernelMatchesPlainOnEveryTriple() {
        let n = 256 * 256
        var h = [UInt8](repeating: 0, count: n), s = h, v = h, y = h
        var counts = [UInt32](repeating: 0, count: AnalyzedFrame.lumaBins)
        var mismatches = 0
        for r in 0..<256 {
            var rgb = [UInt8](repeating: 0, count: 3 * n)
            for i in 0..<n {
                rgb[3 * i] = UInt8(r)
                rgb[3 * i + 1] = UInt8(i >> 8)
                rgb[3 * i + 2] = UInt8(i & 255)
            }
            _ = analyzeRGB(rgb, hue: &h, saturation: &s, value: &v, luma: &y, histogram: &counts)
            for i in 0..<n {
                let g = i >> 8, b = i & 255
                let expected = hsv(r, g, b)
                let l = UInt8((77 * r + 150 * g + 29 * b + 128) >> 8)
                if expected != (h[i], s[i], v[i]) || l != y[i] { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    /// Histogram and luma sum of the C pass against a plain count, on random images of odd sizes.
    @Test func analysisKernelHistogramMatchesPlain() {
        var generator = SystemRandomNumberGenerator()
        for n in [1, 7, 64, 1001, 320 * 180] {
            let rgb = (0..<(3 * n)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var h = [UInt8](repeating: 0, count: n), s = h, v = h, y = h
            var counts = [UInt32](repeating: 7, count: AnalyzedFrame.lumaBins)
            let sum = analyzeRGB(rgb, hue: &h, saturation: &s, value: &v, luma: &y, histogram: &counts)
            var expectedCounts = [UInt32](repeating: 0, count: AnalyzedFrame.lumaBins)
            var expectedSum = 0
            for i in 0..<n {
                let l = (77 * Int(rgb[3 * i]) + 150 * Int(rgb[3 * i + 1]) + 29 * Int(rgb[3 * i + 2]) + 128) >> 8
                expectedSum += l
                expectedCounts[l >> 2] += 1
            }
            #expect(sum == expectedSum)
            #expect(counts == expectedCounts)
        }
    }

    @Test func scoresOfIdenticalAndDifferentFrames() {
        let f = Synth.analyzed([Synth.solid(255, 0, 0), Synth.solid(255, 0, 0), Synth.solid(0, 0, 255)])
        #expect(contentScore(f[0], f[1]) == 0)
        // ΔH = 120, ΔS = 0, ΔV = 0 → 40.
        #expect(contentScore(f[1], f[2]) == 40)
        #expect(histogramDistance(f[0], f[1]) == 0)
        #expect(f[0].signature.isEmpty)  // a flat frame has no shape
        #expect(!Synth.analyzed([Synth.scene(1)])[0].signature.isEmpty)
    }

    @Test func edgesMarkBlockBorders() {
        let f = AnalyzedFrame(index: 0, time: .zero, image: Synth.scene(3), edges: true)
        let marked = f.edges.reduce(0) { $0 + Int($1) }
        #expect(marked > 0 && marked < f.edges.count)
        #expect(AnalyzedFrame(index: 0, time: .zero, image: Synth.solid(9, 9, 9), edges: true).edges.allSatisfy { $0 == 0 })
    }
}

@Suite struct PixelDetectorTests {
    @Test func contentDetectorCutsBetweenSolidColours() {
        let cuts = Synth.run(ContentDetector(), Synth.solid(200, 30, 30).times(10) + Synth.solid(30, 30, 200).times(10))
        #expect(cuts.map(\.time) == [Synth.time(10)])
        #expect(cuts[0].kind == .cut && cuts[0].confidence > 0.5)
    }

    @Test func contentDetectorIgnoresNoise() {
        var rng = SplitMix64(seed: 7)
        let frames = (0..<20).map { _ in Synth.noisy(Synth.scene(1), amplitude: 6, rng: &rng) }
        #expect(Synth.run(ContentDetector(), frames).isEmpty)
    }

    @Test func histogramDetectorCutsOnLumaDistribution() {
        let cuts = Synth.run(HistogramDetector(), Synth.solid(30, 30, 30).times(5) + Synth.solid(220, 220, 220).times(5))
        #expect(cuts.map(\.time) == [Synth.time(5)])
        // The same luma in another hue keeps the histogram: not a cut for this detector.
        #expect(Synth.run(HistogramDetector(), Synth.solid(200, 30, 30).times(5) + Synth.solid(30, 117, 30).times(5)).isEmpty)
    }

    /// A square moving fast over a scene: large steady scores, which the ratio ignores; a cut in it.
    @Test func adaptiveDetectorIgnoresSteadyMotionButCuts() {
        let moving = (0..<24).map { Synth.square(on: Synth.scene(1), x: $0 * 2, y: 8, size: 20, colour: (255, 255, 255)) }
        #expect(Synth.run(AdaptiveDetector(), moving).isEmpty)
        let cut = Array(moving[0..<12]) + (12..<24).map {
            Synth.square(on: Synth.scene(2), x: $0 * 2, y: 8, size: 20, colour: (255, 255, 255))
        }
        #expect(Synth.run(AdaptiveDetector(), cut).map(\.time) == [Synth.time(12)])
        // The last frames are judged at the end with the neighbours they have.
        #expect(Synth.run(AdaptiveDetector(), Synth.scene(1).times(8) + Synth.scene(2).times(1)).map(\.time) == [Synth.time(8)])
    }

    @Test func fadeThroughBlackIsOneBoundaryInTheMiddle() {
        let a = Synth.scene(1), b = Synth.scene(2)
        let out = (0..<4).map { Synth.scaled(a, 1 - Double($0) / 4) }
        let black = Synth.solid(0, 0, 0).times(3)
        let inn = (1...4).map { Synth.scaled(b, Double($0) / 4) }
        let frames = a.times(6) + out + black + inn + b.times(6)
        let found = Synth.run(FadeDetector(), frames)
        #expect(found.count == 1)
        #expect(found.first?.kind == .fade)
        // Dark frames: the fade-out's last step (gain 0.25 → mean luma about 0.25·130) is not black;
        // black frames are 10, 11, 12, so the middle is 11.
        #expect(found.first?.time == Synth.time(11))
        #expect(found.first?.transitionStart == Synth.time(10))
    }

    @Test func openingInBlackIsNoFadeButEndingInBlackIs() {
        let frames = Synth.solid(0, 0, 0).times(4) + Synth.scene(1).times(6) + Synth.solid(0, 0, 0).times(4)
        #expect(Synth.run(FadeDetector(), frames).map(\.time) == [Synth.time(10)])
        #expect(Synth.run(FadeDetector(), Synth.solid(0, 0, 0).times(4) + Synth.scene(1).times(6)).isEmpty)
    }

    @Test func dissolveIsFoundAtItsMiddle() {
        let a = Synth.scene(1), b = Synth.scene(2)
        let frames = a.times(8) + (1...4).map { Synth.blend(a, b, Double($0) / 5) } + b.times(8)
        let found = Synth.run(DissolveDetector(span: 8), frames)
        #expect(found.count == 1)
        #expect(found.first?.kind == .dissolve)
        // Blend frames 8…11 have α = 0.2 … 0.8; α ≥ ½ first at frame 10.
        #expect(found.first?.time == Synth.time(10))
    }

    @Test func dissolveIgnoresCutsMotionAndLighting() {
        let a = Synth.scene(1), b = Synth.scene(2)
        #expect(Synth.run(DissolveDetector(span: 6), a.times(8) + b.times(8)).isEmpty)
        let moving = (0..<20).map { Synth.square(on: a, x: $0 * 3, y: 4, size: 24, colour: (250, 250, 250)) }
        #expect(Synth.run(DissolveDetector(span: 6), moving).isEmpty)
        let ramp = (0..<20).map { Synth.scaled(a, 0.5 + Double($0) / 20) }
        #expect(Synth.run(DissolveDetector(span: 6), ramp).isEmpty)
        // A bright figure crossing a dark, low-contrast scene (a surveillance camera at dusk).
        let dusk = Synth.scaled(a, 0.25)
        let figure = (0..<20).map { Synth.square(on: dusk, x: $0 * 3, y: 10, size: 12, colour: (230, 200, 60)) }
        #expect(Synth.run(DissolveDetector(span: 6), figure).isEmpty)
    }
}

@Suite struct MotionDetectorTests {
    /// 40 s of a noisy still scene at 4 fps; a person-sized square walks in at 20 s, out by 25 s.
    @Test func personEnteringIsAnEvent() {
        var rng = SplitMix64(seed: 11)
        let frames = (0..<160).map { i -> RGBImage in
            let base = Synth.scene(5)
            let t = Double(i) / 4
            let withPerson = t >= 20 && t < 25
                ? Synth.square(on: base, x: Int((t - 20) * 10), y: 10, size: 10, colour: (20, 20, 20)) : base
            return Synth.noisy(withPerson, amplitude: 5, rng: &rng)
        }
        let found = Synth.run(MotionDetector(), frames)
        #expect(found.count == 2)
        #expect(found.allSatisfy { $0.kind == .motion })
        #expect(found.first?.time == MediaTime(seconds: 20))
        #expect(found.last.map { $0.time.seconds >= 25 && $0.time.seconds < 26 } == true)
    }

    @Test func lightingChangeIsNotAnEvent() {
        var rng = SplitMix64(seed: 12)
        // Brightness ramps from 60 % to 120 % over 10 s, then steps by +15 % and then by +20 levels.
        let frames = (0..<200).map { i -> RGBImage in
            let t = Double(i) / 4
            let gain = t < 10 ? 0.6 : (t < 20 ? 0.6 + 0.6 * (t - 10) / 10 : (t < 30 ? 1.2 : 1.35))
            var image = Synth.scaled(Synth.scene(5), gain)
            if t >= 40 { image = RGBImage(width: image.width, height: image.height, pixels: image.pixels.map { UInt8(min(255, Int($0) + 20)) }) }
            return Synth.noisy(image, amplitude: 5, rng: &rng)
        }
        #expect(Synth.run(MotionDetector(), frames).isEmpty)
    }

    @Test func filmMotionWithoutQuietReportsNothing() {
        let frames = (0..<80).map { Synth.square(on: Synth.scene(1), x: ($0 * 3) % 60, y: 4, size: 12, colour: (255, 0, 0)) }
        #expect(Synth.run(MotionDetector(), frames).isEmpty)
    }
}

@Suite struct FlashFilterTests {
    @Test func flashDoesNotCut() throws {
        let a = Synth.scene(1)
        let frames = a.times(10) + [Synth.solid(255, 255, 255)] + a.times(10)
        let events = try Synth.segment(frames)
        #expect(events.count == 1)
    }

    @Test func flashFollowedByARealCutStillCuts() throws {
        let a = Synth.scene(1), b = Synth.scene(2)
        let frames = a.times(10) + [Synth.scaled(a, 1.9)] + a.times(10) + b.times(10)
        let events = try Synth.segment(frames)
        #expect(events.map(\.start) == [Synth.time(0), Synth.time(21)])
        #expect(events.last?.kind == .cut)
    }

    @Test func cutWithoutReturnPasses() {
        let f = Synth.analyzed(Synth.scene(1).times(4) + Synth.scene(2).times(4))
        let filter = FlashFilter(window: MediaTime(value: 1, timescale: 2))
        var out: [Boundary] = []
        for frame in f {
            out += filter.observe(frame)
            if frame.index == 4 { filter.submit(Boundary(time: frame.time, kind: .cut, confidence: 1, score: 60, detector: "t")) }
        }
        out += filter.finish()
        #expect(out.map(\.time) == [Synth.time(4)])
    }
}

@Suite struct SemanticNoveltyTests {
    @Test func boundaryWhereEmbeddingsTurn() throws {
        let rows: [[Float]] = Array(repeating: [1, 0.1, 0], count: 5) + Array(repeating: [0, 1, 0.2], count: 5)
        let times = (0..<10).map { Synth.time($0) }
        let found = try SemanticNoveltyDetector().boundaries(embeddings: rows, times: times)
        #expect(found.map(\.time) == [Synth.time(5)])
        #expect(found[0].kind == .semantic)
        let tensor = Tensor(shape: [10, 3], scalars: rows.flatMap { $0 })
        #expect(try SemanticNoveltyDetector().boundaries(embeddings: tensor, times: times) == found)
    }

    @Test func scaleDoesNotMatterAndBadInputThrows() throws {
        let d = SemanticNoveltyDetector()
        #expect(try d.process(embedding: [1, 1], at: Synth.time(0)) == nil)
        #expect(try d.process(embedding: [5, 5], at: Synth.time(1)) == nil)
        #expect(d.lastNovelty.magnitude < 1e-9)
        #expect(throws: SegmenterError.self) { try d.process(embedding: [1, 2, 3], at: Synth.time(2)) }
        #expect(throws: SegmenterError.self) { try d.process(embedding: [0, 0], at: Synth.time(3)) }
    }
}
