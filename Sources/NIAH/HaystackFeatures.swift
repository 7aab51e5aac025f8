import Crypto
import DenseCore
import Foundation
import FrameSampler
import Logging
import VideoIO

/// The haystack's frames as projected tokens, computed once and kept on disk; every cell reads
/// the frames it needs from a memory mapping, so RAM holds one cell's prompt whatever the
/// haystack's length, and an interrupted extraction resumes where it stopped.
///
/// Layout: a JSON header line (`key`, `tokens` = [S, H]) padded with spaces to 64 bytes, then fixed
/// records `Int64 numerator, Int64 denominator` of the frame's time and `S·H` Float32, all
/// little-endian. A torn last record is dropped on reopening; another key starts the file afresh.
///
/// Generated mode keeps the decoded frames themselves the same way (`pixels: true`): records of
/// `H·W·3` bytes of RGB, `tokens` = [H, W, 3].
final class FeatureStore {
    let path: String
    let tokenShape: [Int]
    /// Bytes per scalar: 4 (Float32 tokens) or 1 (RGB pixels).
    private let scalarBytes: Int
    private let headerLength: Int
    private(set) var count = 0
    private var writer: FileHandle?
    private var mapping: Data?

    private var recordLength: Int { 16 + scalarBytes * tokenShape.reduce(1, *) }

    /// - Parameter pixels: records are RGB8 pictures of shape `[H, W, 3]` instead of Float32 tokens
    init(path: String, key: String, tokenShape: [Int], pixels: Bool = false) throws {
        self.path = path
        self.tokenShape = tokenShape
        scalarBytes = pixels ? 1 : 4
        var header = try JSONSerialization.data(withJSONObject: ["key": key, "tokens": tokenShape], options: [.sortedKeys])
        header += Data(repeating: 0x20, count: 63 - header.count % 64) + Data("\n".utf8)
        headerLength = header.count
        let fm = FileManager.default
        let existing = FileHandle(forReadingAtPath: path)
        let prefix = try existing?.read(upToCount: header.count)
        try existing?.close()
        if prefix != header {
            guard fm.createFile(atPath: path, contents: header) else {
                throw NIAHError(.output, path, "cannot create the haystack feature cache")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw NIAHError(.output, path, "cannot open the haystack feature cache")
        }
        let size = Int(try handle.seekToEnd())
        count = (size - headerLength) / recordLength
        try handle.truncate(atOffset: UInt64(headerLength + count * recordLength))
        writer = handle
    }

    deinit { try? writer?.close() }

    func append(time: MediaTime, tokens: Tensor) throws {
        precondition(tokens.shape == tokenShape && scalarBytes == 4, "FeatureStore: tokens \(tokens.shape), expected \(tokenShape)")
        try tokens.scalars.withUnsafeBytes { try append(time: time, payload: $0) }
    }

    /// - Throws: `NIAHError.data` when the picture's size is not the store's (a stream that
    ///   changes size mid-way)
    func append(time: MediaTime, image: RGBImage) throws {
        precondition(scalarBytes == 1, "FeatureStore: a picture appended to a token store")
        guard [image.height, image.width, 3] == tokenShape else {
            throw NIAHError(.data, path, "a haystack frame at \(time.secondsString) s is \(image.width)×\(image.height), expected \(tokenShape[1])×\(tokenShape[0])")
        }
        try image.pixels.withUnsafeBytes { try append(time: time, payload: $0) }
    }

    private func append(time: MediaTime, payload: UnsafeRawBufferPointer) throws {
        guard let writer else { preconditionFailure("FeatureStore: append after finishing") }
        var data = Data(capacity: recordLength)
        withUnsafeBytes(of: time.rational.numerator.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: time.rational.denominator.littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: payload)
        do {
            try writer.write(contentsOf: data)
        } catch {
            throw NIAHError(.output, path, "cannot write: \(error.localizedDescription)")
        }
        count += 1
    }

    /// Flushes and maps the file for reading; appends end here.
    func finish() throws {
        try writer?.synchronize()
        try writer?.close()
        writer = nil
        do {
            mapping = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw NIAHError(.output, path, "cannot map the haystack feature cache: \(error.localizedDescription)")
        }
    }

    private func record(_ i: Int) -> Int {
        precondition(mapping != nil && i >= 0 && i < count, "FeatureStore: record \(i) of \(count) (mapped: \(mapping != nil))")
        return headerLength + i * recordLength
    }

    /// Time of frame `i`.
    func time(_ i: Int) -> MediaTime {
        mapping!.withUnsafeBytes { p in
            let o = record(i)
            return MediaTime(value: Int64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: Int64.self)),
                             timescale: Int64(littleEndian: p.loadUnaligned(fromByteOffset: o + 8, as: Int64.self)))
        }
    }

    /// Tokens of frame `i`. - Returns: `[S, H]`
    func tokens(_ i: Int) -> Tensor {
        let n = tokenShape.reduce(1, *)
        return mapping!.withUnsafeBytes { p in
            let base = p.baseAddress! + record(i) + 16
            var t = Tensor(uninitialized: tokenShape)
            t.scalars.withUnsafeMutableBytes { dst in dst.copyMemory(from: UnsafeRawBufferPointer(start: base, count: 4 * n)) }
            return t
        }
    }

    /// Picture of frame `i` (a pixel store).
    func image(_ i: Int) -> RGBImage {
        let n = tokenShape.reduce(1, *)
        return mapping!.withUnsafeBytes { p in
            let base = p.baseAddress! + record(i) + 16
            return RGBImage(width: tokenShape[1], height: tokenShape[0], pixels: Array(UnsafeRawBufferPointer(start: base, count: n)))
        }
    }
}

/// How haystack frames are chosen, as recorded.
public enum HaystackSampling: Equatable, Sendable, CustomStringConvertible {
    /// The references' rule: decoded frames `range(0, n, step)`, step = `round(avg_fps)`.
    case everyNth(Int)
    /// Frames at `start + k / rate` (densecap's sampler).
    case rate(Rational)

    public var description: String {
        switch self {
        case .everyNth(let step): return "every \(step)th decoded frame (range(0, n, round(avg_fps)))"
        case .rate(let r): return "\(r) fps"
        }
    }
}

/// The haystack's identity and sampling: what `run.json` records about it.
public struct HaystackInfo: Sendable {
    public var path: String
    public var sha256: String
    public var sampling: HaystackSampling
    public var displaySize: (width: Int, height: Int)
    public var averageFrameRate: Rational?
    public var duration: MediaTime?
}

enum Haystack {
    /// Opens the video and decides the sampling (no decoding beyond the header).
    static func inspect(path: String, fps: Rational?) throws -> HaystackInfo {
        guard FileManager.default.fileExists(atPath: path) else { throw NIAHError(.missing, path, "haystack video not found") }
        let reader = try VideoReader(path: path)
        let info = reader.info
        let sampling: HaystackSampling
        if let fps {
            sampling = .rate(fps)
        } else {
            guard let rate = info.averageFrameRate ?? info.realFrameRate, !rate.isZero else {
                throw NIAHError(.data, path, "the stream states no frame rate; pass --fps")
            }
            // decord's get_avg_fps() is the stream's average rate; Python's round() is half-to-even.
            sampling = .everyNth(max(1, Int(rate.doubleValue.rounded(.toNearestOrEven))))
        }
        return HaystackInfo(path: path, sha256: try sha256(file: path), sampling: sampling, displaySize: info.displaySize,
                            averageFrameRate: info.averageFrameRate, duration: info.duration)
    }

    /// Frames the sampling can give, estimated from the container's duration (nil when unknown).
    static func estimatedFrames(_ info: HaystackInfo) -> Int? {
        guard let d = info.duration?.seconds, d > 0 else { return nil }
        switch info.sampling {
        case .everyNth(let step):
            guard let r = info.averageFrameRate?.doubleValue else { return nil }
            return Int((d * r / Double(step)).rounded(.up))
        case .rate(let r): return Int((d * r.doubleValue).rounded(.up))
        }
    }

    /// Fills `store` up to `frames` sampled frames, running `append` (the frame's time and
    /// picture into the store) on those not there yet.
    /// - Returns: frames computed in this call.
    /// - Throws: `NIAHError.data` when the video ends before `frames` samples.
    static func extract(
        _ info: HaystackInfo, frames needed: Int, into store: FeatureStore, logger: Logger,
        append: (MediaTime, RGBImage) throws -> Void, progress: (Int, Int) -> Void
    ) throws -> Int {
        guard store.count < needed else { return 0 }
        let reader = try VideoReader(path: info.path)
        var sampled = 0, computed = 0
        func take(_ frame: VideoFrame) throws {
            defer { sampled += 1 }
            guard sampled >= store.count else { return }  // cached by an earlier run
            try append(frame.time, try reader.image(from: frame))
            computed += 1
            progress(sampled + 1, needed)
        }
        switch info.sampling {
        case .everyNth(let step):
            var index = 0
            while sampled < needed, let frame = try reader.nextFrame() {
                if index % step == 0 { try take(frame) }
                index += 1
            }
        case .rate(let rate):
            let sampler = try FrameSampler(reader: reader, policy: .rate(rate), logger: logger)
            while sampled < needed, let s = try sampler.next() {
                try take(s.frame)
            }
        }
        guard sampled >= needed else {
            throw NIAHError(.data, info.path, "haystack shorter than the sweep: \(sampled) frames at \(info.sampling), --max-frames needs \(needed)")
        }
        return computed
    }

    static func sha256(file path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw NIAHError(.missing, path, "cannot read") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// sha256 over strings and bytes fed in order.
struct SHA256Hasher {
    private var hasher = SHA256()
    mutating func update(_ text: String) { hasher.update(data: Data(text.utf8)) }
    mutating func update(_ data: Data) { hasher.update(data: data) }
    func hex() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}
