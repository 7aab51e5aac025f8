import DenseCore
import Foundation
import TestClips
import Testing
import VideoIO

@Suite struct BadInputTests {
    func openError(_ path: String) -> VideoError? {
        do {
            _ = try VideoReader(path: path)
            return nil
        } catch let e as VideoError {
            return e
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    @Test(arguments: [
        (Clip.empty, VideoError.Kind.notMedia, "file is empty"),
        (.text, .notMedia, "not a recognised media file"),
        (.audioOnly, .noVideo, "no video stream (audio only)"),
        (.noDecoder, .unsupportedCodec, "unsupported video codec"),
        (.truncatedNoIndex, .notMedia, "not a recognised media file"),
    ])
    func oneLineErrorNamingTheFile(clip: Clip, kind: VideoError.Kind, message: String) throws {
        let path = try clip.path
        let error = try #require(openError(path))
        #expect(error.kind == kind)
        #expect(error.description.hasPrefix(path + ": "))
        #expect(error.description.contains(message))
        #expect(!error.description.contains("\n"))
    }

    @Test func missingAndUnreadable() throws {
        let missing = try #require(openError("/nonexistent/dir/clip.mp4"))
        #expect(missing.kind == .missing)
        #expect(missing.description == "/nonexistent/dir/clip.mp4: no such file")
        let folder = try #require(openError(NSTemporaryDirectory()))
        #expect(folder.kind == .unreadable)
        #expect(folder.reason == "is a directory")
        if getuid() != 0 {  // root reads anything
            let path = NSTemporaryDirectory() + "densecap-unreadable-\(getpid()).mp4"
            _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]), attributes: [.posixPermissions: 0])
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(openError(path)?.kind == .unreadable)
        }
    }

    @Test func probeReportsTheSameErrors() throws {
        #expect(throws: VideoError.self) { try VideoReader.probe(path: try Clip.audioOnly.path) }
        #expect(throws: VideoError.self) { try VideoReader.scanPackets(path: try Clip.empty.path) }
    }

    @Test func truncatedFileDecodesWhatExistsAndSaysWhereItEnds() throws {
        let (ticks, reader) = try decodedTicks(try Clip.truncated.path)
        let expected: [Int64] = (0..<10).map { Int64($0) * 1024 }
        #expect(ticks == expected)
        #expect(reader.report.truncatedAt == MediaTime(value: 9, timescale: 10))
        #expect(reader.report.declaredEnd == MediaTime(seconds: 3))
    }

    @Test func corruptPacketIsSkippedAndCounted() throws {
        let (ticks, reader) = try decodedTicks(try Clip.corruptBFrame.path)
        let expected: [Int64] = (0..<30).map { Int64($0) * 1024 }.filter { $0 != 12288 }
        #expect(ticks == expected)
        #expect(reader.report.rejectedPackets + reader.report.corruptPackets >= 1)
        #expect(reader.report.isDamaged)
        #expect(reader.report.truncatedAt == nil)
    }

    @Test func corruptKeyFrameLosesItsPicturesButNotTheStream() throws {
        let (ticks, reader) = try decodedTicks(try Clip.corruptKeyFrame.path)
        #expect(reader.report.isDamaged)
        #expect(ticks.count < 30)
        #expect(ticks.contains(29696))  // decoding recovers at the next key frame
        #expect(reader.report.lastFrameTime == MediaTime(pts: 29696, timeBase: Rational(1, 10240)))
    }
}

/// Seeded mutation of a small valid MP4: every variant must end in a typed error or a decoded
/// result — no crash, no hang, no other error type.
@Suite struct MutationFuzzTests {
    enum Outcome: Equatable { case error(VideoError.Kind), decoded(Int) }

    static func mutate(_ original: [UInt8], variant: Int) -> [UInt8] {
        var rng = SplitMix64(seed: 0xDE17_5CA9 &+ UInt64(variant))
        var bytes = original
        switch variant % 5 {
        case 0:  // flip a few random bytes anywhere
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case 1:  // hit the header (box sizes, sample tables) where parsers are most fragile
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<min(bytes.count, 1200), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case 2:  // truncate
            bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng))
        case 3:  // overwrite a run with 0xFF or 0x00
            let start = Int.random(in: 0..<bytes.count, using: &rng)
            let length = min(bytes.count - start, Int.random(in: 4...256, using: &rng))
            let fill: UInt8 = Bool.random(using: &rng) ? 0xFF : 0x00
            bytes.replaceSubrange(start..<start + length, with: repeatElement(fill, count: length))
        default:  // duplicate or drop a chunk
            let start = Int.random(in: 0..<bytes.count, using: &rng)
            let length = min(bytes.count - start, Int.random(in: 1...512, using: &rng))
            if Bool.random(using: &rng) {
                bytes.insert(contentsOf: bytes[start..<start + length], at: start)
            } else {
                bytes.removeSubrange(start..<start + length)
            }
        }
        return bytes
    }

    @Test func mutatedMP4sNeverCrashOrHang() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Clip.cfr10Clean.path)))
        let dir = NSTemporaryDirectory() + "densecap-fuzz-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var outcomes: [Outcome] = []
        let variants = 400
        for variant in 0..<variants {
            let path = dir + "/variant-\(variant).mp4"
            try Data(Self.mutate(original, variant: variant)).write(to: URL(fileURLWithPath: path))
            do {
                let reader = try VideoReader(path: path, options: DecodeOptions(threads: 1))
                var frames = 0
                while let frame = try reader.nextFrame() {
                    frames += 1
                    if frames == 1 { _ = try reader.image(from: frame, size: OutputSize(width: 16, height: 16)) }
                    // A valid clip has 30 frames; a mutation must not make decoding run away.
                    #expect(frames <= 10_000, "variant \(variant) decodes without end")
                    if frames > 10_000 { break }
                }
                _ = reader.seek(to: MediaTime(seconds: 1))
                _ = try reader.nextFrame()
                outcomes.append(.decoded(frames))
            } catch let error as VideoError {
                #expect(!error.description.contains("\n"), "variant \(variant): multi-line error")
                #expect(error.description.hasPrefix(path), "variant \(variant): error does not name the file")
                outcomes.append(.error(error.kind))
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        #expect(outcomes.count == variants)
        // The mutations must exercise both paths, or the test proves little.
        #expect(outcomes.contains { if case .error = $0 { true } else { false } })
        #expect(outcomes.contains { if case .decoded(let n) = $0 { n > 0 } else { false } })
    }
}
