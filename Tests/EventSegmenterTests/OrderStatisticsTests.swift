import DenseCore
import Testing

@testable import EventSegmenter

/// The motion detector's radix sort against its naive twin, the standard library's stable sort.
@Suite struct OrderStatisticsTests {
    /// Value sets the detector sorts, and harder ones: grid means (multiples of 1/25, many ties),
    /// residuals around zero with both zeros, a wide range of exponents, subnormals, infinities.
    static func values(_ kind: String, count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ -> Float in
            switch kind {
            case "grid": return Float(rng.next() % (255 * 25 + 1)) / 25
            case "residual":
                switch rng.next() % 8 {
                case 0: return 0
                case 1: return -0.0
                default: return Float(Int(rng.next() % 2001) - 1000) / 37
                }
            case "wide":
                let exponent = Int(rng.next() % 200) - 100
                return Float(sign: rng.next() % 2 == 0 ? .plus : .minus, exponent: exponent, significand: Float(1 + rng.nextUnit()))
            default:
                let specials: [Float] = [.infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                                         .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0, -0.0, 1, -1]
                return specials[Int(rng.next() % UInt64(specials.count))]
            }
        }
    }

    @Test(arguments: ["grid", "residual", "wide", "special"], [0, 1, 2, 3, 17, 288, 2304, 5000])
    func radixSortMatchesTheStableSortBitForBit(kind: String, count: Int) {
        for seed in UInt64(1)...5 {
            let input = Self.values(kind, count: count, seed: seed &* 7919 &+ UInt64(count))
            var fast = input, naive = input
            radixSort(&fast)
            comparisonSort(&naive)
            #expect(fast.map(\.bitPattern) == naive.map(\.bitPattern), "\(kind), \(count) values, seed \(seed)")
            // The sort may not lose or invent values: the same multiset, in order.
            #expect(fast.count == input.count)
            #expect(zip(fast, fast.dropFirst()).allSatisfy { $0 <= $1 })
        }
    }

    /// Both zeros compare equal, so a stable sort keeps them in input order: the radix sort too.
    @Test func zerosKeepTheirInputOrder() {
        var v: [Float] = [1, -0.0, 0, -1, -0.0, 0, 0]
        radixSort(&v)
        #expect(v.map(\.bitPattern) == ([-1, -0.0, 0, -0.0, 0, 0, 1] as [Float]).map(\.bitPattern))
    }

    /// The motion detector with its fits sorted by either kernel: the same energy frame by frame,
    /// the same boundaries, activities and overlays, on scenes with motion, lighting and noise.
    @Test func motionDetectorIsTheSameWithEitherSort() {
        var rng = SplitMix64(seed: 21)
        let frames = (0..<200).map { i -> RGBImage in
            let t = Double(i) / 4
            var image = Synth.scaled(Synth.scene(7), t < 30 ? 1 : 0.8 + 0.01 * (t - 30))
            if t >= 12 && t < 20 {
                image = Synth.square(on: image, x: Int((t - 12) * 6), y: 12, size: 9, colour: (230, 200, 40))
            }
            if t >= 38 && t < 44 {
                image = Synth.square(on: image, x: 50 - Int((t - 38) * 7), y: 20, size: 8, colour: (20, 20, 20))
            }
            return Synth.noisy(image, amplitude: 6, rng: &rng)
        }
        func run(_ sort: @escaping (inout [Float]) -> Void) -> (energies: [Double], boundaries: [Boundary], detector: MotionDetector) {
            let detector = MotionDetector(footage: .auto)
            detector.sortKernel = sort
            var energies: [Double] = [], boundaries: [Boundary] = []
            for f in Synth.analyzed(frames) {
                boundaries += detector.process(f)
                energies.append(detector.lastEnergy)
            }
            return (energies, boundaries + detector.finish(), detector)
        }
        let fast = run(radixSort), naive = run(comparisonSort)
        #expect(fast.energies == naive.energies)
        #expect(fast.boundaries == naive.boundaries)
        #expect(fast.detector.activities == naive.detector.activities)
        #expect(fast.detector.overlays == naive.detector.overlays)
        #expect(fast.detector.footage == naive.detector.footage)
        // The scenes exercise the fits: both objects are found, the lighting ramp is not.
        #expect(fast.detector.activities.count == 2)
        #expect(fast.energies.contains { $0 > 0 })
    }
}
