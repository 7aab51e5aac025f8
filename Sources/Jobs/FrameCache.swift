import DenseCore
import Foundation

/// What the captioner keeps of one model frame: the grid time it answers, the decoded frame's
/// time, the tower's pooled embedding (for semantic boundaries) and the projected visual tokens
/// (for captions).
public struct CachedFrame: Sendable, Equatable {
    /// The grid time t_k this frame answers (the first decoded frame at or after it).
    public var requested: MediaTime
    /// The decoded frame's presentation time.
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
/// Layout: a JSON header line (`key`, shapes, format), then fixed-size records: the requested and
/// the decoded time as `Int64 numerator, Int64 denominator` each, `C` Float32 embedding values,
/// `S·H` Float32 tokens, all little-endian. A torn last record (a crash mid-write) is dropped on
/// reopening. The header's key names the input's content, the model and every setting that
/// changes the records; a cache with another key is discarded. Reopening reads the header and the
/// records' 32-byte time prefixes only.
public final class FrameCache {
    public let path: String
    public let embeddingWidth: Int
    public let tokenShape: [Int]
    private let handle: FileHandle
    private let headerLength: Int
    private var index: [MediaTime: Int] = [:]
    public private(set) var count = 0

    private static let timeBytes = 32
    private var recordLength: Int { FrameCache.timeBytes + 4 * (embeddingWidth + tokenShape.reduce(1, *)) }

    /// Opens (or creates) the cache at `path` for records of these shapes under `key`.
    /// - Throws: `JobError.state` when the file cannot be created or read.
    public init(path: String, key: String, embeddingWidth: Int, tokenShape: [Int]) throws {
        self.path = path
        self.embeddingWidth = embeddingWidth
        self.tokenShape = tokenShape
        let header = try JSONSerialization.data(
            withJSONObject: ["format": "densecap-frames-2", "key": key, "embedding": embeddingWidth, "tokens": tokenShape],
            options: [.sortedKeys]) + Data("\n".utf8)
        headerLength = header.count
        var reuse = false
        if let existing = FileHandle(forReadingAtPath: path) {
            reuse = (try? existing.read(upToCount: header.count)) == header
            try? existing.close()
        }
        if !reuse {
            guard FileManager.default.createFile(atPath: path, contents: header) else {
                throw JobError.state(path: path, reason: "cannot create the frame cache")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw JobError.state(path: path, reason: "cannot open the frame cache")
        }
        self.handle = handle
        if reuse { try loadIndex() }
    }

    deinit { try? handle.close() }

    private func loadIndex() throws {
        do {
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
        } catch {
            throw JobError.state(path: path, reason: "cannot read the frame cache: \(error.localizedDescription)")
        }
    }

    public func contains(_ requested: MediaTime) -> Bool { index[requested] != nil }

    /// Appends one frame (ignored when its requested time is already cached).
    public func append(_ frame: CachedFrame) throws {
        guard index[frame.requested] == nil else { return }
        precondition(frame.embedding.count == embeddingWidth && frame.tokens.shape == tokenShape,
                     "FrameCache: embedding \(frame.embedding.count), tokens \(frame.tokens.shape); expected \(embeddingWidth), \(tokenShape)")
        var data = Data(capacity: recordLength)
        for t in [frame.requested, frame.time] {
            withUnsafeBytes(of: t.rational.numerator.littleEndian) { data.append(contentsOf: $0) }
            withUnsafeBytes(of: t.rational.denominator.littleEndian) { data.append(contentsOf: $0) }
        }
        frame.embedding.withUnsafeBytes { data.append(contentsOf: $0) }
        frame.tokens.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            throw JobError.state(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
        index[frame.requested] = count
        count += 1
    }

    /// The frame cached for grid time `requested`, or nil.
    public func frame(at requested: MediaTime) throws -> CachedFrame? {
        guard let (time, floats) = try read(requested, floats: embeddingWidth + tokenShape.reduce(1, *)) else { return nil }
        return CachedFrame(requested: requested, time: time, embedding: Array(floats[..<embeddingWidth]),
                           tokens: Tensor(shape: tokenShape, scalars: Array(floats[embeddingWidth...])))
    }

    /// The decoded time and embedding cached for grid time `requested`, or nil; reads the
    /// record's first `16 + 4·C` bytes only, not its tokens (what semantic boundaries need).
    public func embedding(at requested: MediaTime) throws -> (time: MediaTime, embedding: [Float])? {
        try read(requested, floats: embeddingWidth)
    }

    /// The decoded time and the first `floats` values of a record.
    private func read(_ requested: MediaTime, floats count: Int) throws -> (MediaTime, [Float])? {
        guard let r = index[requested] else { return nil }
        let length = 16 + 4 * count
        do {
            try handle.seek(toOffset: UInt64(headerLength + r * recordLength + 16))
            guard let data = try handle.read(upToCount: length), data.count == length else {
                throw JobError.state(path: path, reason: "record \(r) is short")
            }
            let (num, den) = data.withUnsafeBytes { ($0.loadUnaligned(as: Int64.self), $0.loadUnaligned(fromByteOffset: 8, as: Int64.self)) }
            guard den > 0 else { throw JobError.state(path: path, reason: "record \(r) has a bad time") }
            let floats = data.dropFirst(16).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return (MediaTime(value: Int64(littleEndian: num), timescale: Int64(littleEndian: den)), floats)
        } catch let error as JobError {
            throw error
        } catch {
            throw JobError.state(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }
}
