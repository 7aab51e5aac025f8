import DenseCore
import Foundation
import Testing

@testable import EventSegmenter

/// The probe finds semantic changes with about log₂ n embeddings, and none where there is none.
@Suite struct SemanticProbeTests {
    static func t(_ i: Int) -> MediaTime { MediaTime(Rational(Int64(i))) }

    /// Embeddings that change from one unit vector to another at each index in `changes`.
    static func run(count: Int, changes: [Int], minimumLength: Int = 1) throws -> (boundaries: [Boundary], probed: [Int]) {
        var probed: [Int] = []
        let probe = SemanticProbe(threshold: 0.25, minimumLength: t(minimumLength))
        let found = try probe.boundaries(count: count, start: t(0), end: t(count)) { i in
            probed.append(i)
            let segment = changes.filter { $0 <= i }.count
            var e = [Float](repeating: 0, count: 8)
            e[segment] = 1
            return (t(i), e)
        }
        return (found, probed)
    }

    @Test func oneChangeIsFoundExactlyWithLogarithmicProbes() throws {
        for change in [1, 7, 500, 998, 999] {
            let (found, probed) = try Self.run(count: 1000, changes: [change])
            #expect(found.map(\.time) == [Self.t(change)], "change at \(change)")
            #expect(found.allSatisfy { $0.kind == .semantic })
            #expect(Set(probed).count == probed.count, "an index embedded twice")
            #expect(probed.count <= 2 + 11, "\(probed.count) probes for 1000 frames")  // ends + ⌈log₂ 999⌉ + 1
        }
    }

    /// Ends that agree cost two embeddings (the caption uses both anyway) and give no boundary.
    @Test func noChangeCostsTwoProbes() throws {
        let (found, probed) = try Self.run(count: 3600, changes: [])
        #expect(found.isEmpty)
        #expect(probed.sorted() == [0, 3599])
    }

    @Test func severalChangesAreAllFound() throws {
        let (found, probed) = try Self.run(count: 600, changes: [100, 250, 420])
        #expect(found.map(\.time) == [Self.t(100), Self.t(250), Self.t(420)])
        #expect(probed.count < 40)
    }

    /// Boundaries keep the minimum event length from the ends and from each other.
    @Test func minimumLengthIsKept() throws {
        let (found, _) = try Self.run(count: 100, changes: [2, 50], minimumLength: 5)
        #expect(found.map(\.time) == [Self.t(50)])
    }

    @Test func shortEventsAreNotProbed() throws {
        let (found, probed) = try Self.run(count: 1, changes: [])
        #expect(found.isEmpty && probed.isEmpty)
    }

    @Test func cosineDistanceOfKnownVectors() {
        #expect(cosineDistance([1, 0], [1, 0]) == 0)
        #expect(abs(cosineDistance([1, 0], [0, 2]) - 1) < 1e-12)
        #expect(abs(cosineDistance([1, 0], [-3, 0]) - 2) < 1e-12)
        #expect(cosineDistance([0, 0], [1, 0]) == 0)
    }
}
