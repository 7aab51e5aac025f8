import DenseCore
import Foundation

/// What the captioner keeps of one sampled frame: its time, the tower's pooled embedding (for
/// semantic boundaries) and the projected visual tokens (for captions).
public struct CachedFrame: Sendable, Equatable {
    public var time: MediaTime
    /// `[C]`: tower features averaged over the patches.
    public var embedding: [Float]
    /// `[S, H]`: `NVILAModel.projectFrame` of the tower features.
    public var tokens: Tensor
}

/// An append-only file of `CachedFrame`s, so that memory stays bounded whatever the video's
/// length (only the frames of the event being captioned are read back) and an interrupted run
/// resumes without running the vision tower again for frames it already saw.
///
/// Layout: a JSON header line (`key`, shapes), then fixed-size records:
/// `Int64 numerator, Int64 denominator` of the time, `C` Float32 embedding values, `S·H` Float32
/// tokens, all little-endian. A torn last record (a crash mid-write) is ignored on reopening.
/// The header's key names the model and every setting that changes the records; a cache with
/// another key is discarded.
public final class FrameCache {
    public let path: String
    public let embeddingWidth: Int
    public let tokenShape: [Int]
    private let handle: FileHandle
    private let headerLength: Int
    private var index: [MediaTime: Int] = [:]
    public private(set) var count = 0

    private var recordLength: Int { 16 + 4 * (embeddingWidth + tokenShape.reduce(1, *)) }

    /// Opens (or creates) the cache at `path` for records of these shapes under `key`.
    /// - Throws: `CaptionError.cache` when the file cannot be created or read.
    public init(path: String, key: String, embeddingWidth: Int, tokenShape: [Int]) throws {
        self.path = path
        self.embeddingWidth = embeddingWidth
        self.tokenShape = tokenShape
        let header = try JSONSerialization.data(
            withJSONObject: ["key": key, "embedding": embeddingWidth, "tokens": tokenShape], options: [.sortedKeys])
            + Data("\n".utf8)
        headerLength = header.count
        let fm = FileManager.default
        var reuse = false
        if let existing = fm.contents(atPath: path), existing.count >= header.count, existing.prefix(header.count) == header {
            reuse = true
        }
        if !reuse {
            guard fm.createFile(atPath: path, contents: header) else {
                throw CaptionError.cache(path: path, reason: "cannot create the frame cache")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw CaptionError.cache(path: path, reason: "cannot open the frame cache")
        }
        self.handle = handle
        if reuse { try loadIndex() }
    }

    deinit { try? handle.close() }

    private func loadIndex() throws {
        let size = try handle.seekToEnd()
        let records = (Int(size) - headerLength) / recordLength
        for r in 0..<records {
            try handle.seek(toOffset: UInt64(headerLength + r * recordLength))
            guard let data = try handle.read(upToCount: 16), data.count == 16 else { break }
            let (num, den) = data.withUnsafeBytes { ($0.loadUnaligned(as: Int64.self), $0.loadUnaligned(fromByteOffset: 8, as: Int64.self)) }
            guard den > 0 else { break }
            index[MediaTime(value: Int64(littleEndian: num), timescale: Int64(littleEndian: den))] = r
        }
        count = index.count
        // Drop a torn tail so appends land on a record boundary.
        try handle.truncate(atOffset: UInt64(headerLength + count * recordLength))
    }

    public func contains(_ time: MediaTime) -> Bool { index[time] != nil }

    /// Times of every cached frame, in no particular order.
    public var times: [MediaTime] { Array(index.keys) }

    /// Appends one frame (ignored when its time is already cached).
    public func append(_ frame: CachedFrame) throws {
        guard index[frame.time] == nil else { return }
        precondition(frame.embedding.count == embeddingWidth && frame.tokens.shape == tokenShape,
                     "FrameCache: embedding \(frame.embedding.count), tokens \(frame.tokens.shape); expected \(embeddingWidth), \(tokenShape)")
        var data = Data(capacity: recordLength)
        withUnsafeBytes(of: frame.time.rational.numerator.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: frame.time.rational.denominator.littleEndian) { data.append(contentsOf: $0) }
        frame.embedding.withUnsafeBytes { data.append(contentsOf: $0) }
        frame.tokens.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            throw CaptionError.cache(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
        index[frame.time] = count
        count += 1
    }

    /// The frame cached at `time`, or nil.
    public func frame(at time: MediaTime) throws -> CachedFrame? {
        guard let r = index[time] else { return nil }
        do {
            try handle.seek(toOffset: UInt64(headerLength + r * recordLength + 16))
            guard let data = try handle.read(upToCount: recordLength - 16), data.count == recordLength - 16 else {
                throw CaptionError.cache(path: path, reason: "record \(r) is short")
            }
            let floats = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return CachedFrame(time: time, embedding: Array(floats[..<embeddingWidth]),
                               tokens: Tensor(shape: tokenShape, scalars: Array(floats[embeddingWidth...])))
        } catch let error as CaptionError {
            throw error
        } catch {
            throw CaptionError.cache(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }
}
