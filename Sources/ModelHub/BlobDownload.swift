import Crypto
import Foundation
import NIOCore

/// Downloads one blob into `blobs/<etag>`: bytes go to `blobs/<etag>.incomplete` (resumed with
/// Range after a dropped connection or an interrupted run), are checked against the size and the
/// ETag's hash, and the file is renamed into place only then, so a blob name never holds a
/// partial or wrong file.
struct BlobDownload {
    let client: HubClient
    let cache: HubCache
    let repo: String
    let file: String
    private(set) var metadata: FileMetadata
    /// Called with the count of new bytes as they arrive (negative when a restart drops bytes).
    let progress: @Sendable (Int64) -> Void

    mutating func run() async throws {
        let blob = cache.blobPath(repo: repo, etag: metadata.etag)
        let incomplete = blob + ".incomplete"
        try cache.createDirectory((blob as NSString).deletingLastPathComponent, repo: repo, file: file)
        let lock = try await BlobLock.acquire(
            cache.lockPath(repo: repo, etag: metadata.etag), cache: cache, repo: repo, file: file, client: client)
        defer { lock.release() }
        if FileManager.default.fileExists(atPath: blob) { return }  // another process finished it

        let fd = open(incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubCache.error(errno, repo: repo, file: file, doing: "cannot write \(incomplete)") }
        defer {
            close(fd)
            // Nothing to resume from: leave no empty .incomplete behind (a failure, a cancellation).
            if fileSize(incomplete) == 0 { unlink(incomplete) }
        }
        var digest = BlobDigest(etag: metadata.etag, size: metadata.size)
        var offset = try resumeOffset(fd: fd, path: incomplete, digest: &digest)
        if offset > 0 {
            client.logger.debug("\(repo)/\(file): resuming at byte \(offset) of \(metadata.size)")
            progress(offset)
        }

        var failuresWithoutProgress = 0
        var refreshed = false
        while offset < metadata.size {
            let before = offset
            do {
                try await fetch(fd: fd, offset: &offset, digest: &digest, path: incomplete)
            } catch let error as HubError where error.kind == .unauthorized && !metadata.sendsToken && !refreshed {
                // The storage host's signed URL expired (a long download, or a resume much later):
                // ask the Hub for a fresh one, once.
                let fresh = try await client.metadata(repo: repo, commit: metadata.commit, file: file)
                guard fresh.etag == metadata.etag, fresh.size == metadata.size else { throw error }
                client.logger.debug("\(repo)/\(file): \(error.reason); retrying with a new download URL")
                metadata = fresh
                refreshed = true
            } catch let error as Retryable {
                failuresWithoutProgress = offset > before ? 1 : failuresWithoutProgress + 1
                guard failuresWithoutProgress < client.configuration.attempts else {
                    // The cache stays consistent: the partial bytes wait in .incomplete for the next pull.
                    throw error.final(attempts: failuresWithoutProgress)
                }
                client.logger.debug("\(error.error); resuming at byte \(offset)")
                try await Task.sleep(for: client.configuration.retryDelay * (1 << min(failuresWithoutProgress - 1, 10)))
            }
        }
        if offset > metadata.size {
            try restart(fd: fd, offset: &offset, digest: &digest, path: incomplete)
            throw HubError(
                .corrupt, repo: repo, file: file,
                reason: "the server sent more than the \(metadata.size) bytes announced")
        }
        if let (expected, actual) = digest.mismatch() {
            try restart(fd: fd, offset: &offset, digest: &digest, path: incomplete)
            throw HubError(
                .corrupt, repo: repo, file: file,
                reason:
                    "\(digest.name) mismatch: expected \(expected), got \(actual); the download was discarded, pull again"
            )
        }
        guard fsync(fd) == 0 else {
            throw HubCache.error(errno, repo: repo, file: file, doing: "cannot write \(incomplete)")
        }
        if rename(incomplete, blob) != 0 {
            throw HubCache.error(errno, repo: repo, file: file, doing: "cannot move \(incomplete) into place")
        }
    }

    /// Bytes already in `.incomplete` (hashed again so the final check covers the whole file).
    private func resumeOffset(fd: Int32, path: String, digest: inout BlobDigest) throws -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw HubCache.error(errno, repo: repo, file: file, doing: "cannot read \(path)")
        }
        var size = Int64(info.st_size)
        if size > metadata.size {
            var zero: Int64 = 0
            try restart(fd: fd, offset: &zero, digest: &digest, path: path)
            size = 0
        }
        guard size > 0 else { return 0 }
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var done: Int64 = 0
        while done < size {
            let n = buffer.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress, min(chunk, Int(size - done)), off_t(done))
            }
            guard n > 0 else {
                if n < 0 { throw HubCache.error(errno, repo: repo, file: file, doing: "cannot read \(path)") }
                break
            }
            buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            done += Int64(n)
        }
        return done
    }

    /// Empties `.incomplete` for a download from byte 0.
    private func restart(fd: Int32, offset: inout Int64, digest: inout BlobDigest, path: String) throws {
        guard ftruncate(fd, 0) == 0 else {
            throw HubCache.error(errno, repo: repo, file: file, doing: "cannot write \(path)")
        }
        progress(-offset)
        offset = 0
        digest = BlobDigest(etag: metadata.etag, size: metadata.size)
    }

    /// One GET from `offset`, appending to the file until the body ends or the connection drops.
    private func fetch(fd: Int32, offset: inout Int64, digest: inout BlobDigest, path: String) async throws {
        let url = metadata.location
        let response = try await client.get(metadata, offset: offset, repo: repo, file: file)
        switch response.status.code {
        case 200:
            if offset > 0 {
                client.logger.debug("\(repo)/\(file): the server ignored Range; downloading from the start")
                try restart(fd: fd, offset: &offset, digest: &digest, path: path)
            }
        case 206:
            let start = response.headers.first(name: "Content-Range").flatMap(contentRangeStart)
            if start != offset {
                try restart(fd: fd, offset: &offset, digest: &digest, path: path)
                throw Retryable(
                    HubError(
                        .network, repo: repo, file: file,
                        reason: "the server answered a range request with the wrong range"))
            }
        case 416 where offset >= metadata.size:
            return
        case 416:
            try restart(fd: fd, offset: &offset, digest: &digest, path: path)
            throw Retryable(HubError(.network, repo: repo, file: file, reason: "the server refused to resume (416)"))
        default:
            throw try await client.statusError(response, repo: repo, file: file, revision: metadata.commit)
        }
        try await client.network(repo: repo, file: file, url: url) {
            for try await buffer in response.body {
                try Task.checkCancellation()
                try buffer.withUnsafeReadableBytes { raw in
                    try writeAll(fd: fd, raw, at: offset, path: path)
                    digest.update(raw)
                }
                offset += Int64(buffer.readableBytes)
                progress(Int64(buffer.readableBytes))
            }
        }
        if offset < metadata.size {
            throw Retryable(
                HubError(
                    .network, repo: repo, file: file,
                    reason: "the connection closed at byte \(offset) of \(metadata.size)"))
        }
    }

    private func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64, path: String) throws {
        var written = 0
        while written < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset + Int64(written)))
            if n < 0 {
                if errno == EINTR { continue }
                throw HubCache.error(errno, repo: repo, file: file, doing: "cannot write \(path)")
            }
            written += n
        }
    }
}

/// `bytes 100-199/200` → 100.
func contentRangeStart(_ header: String) -> Int64? {
    guard header.hasPrefix("bytes ") else { return nil }
    let range = header.dropFirst(6).prefix { $0 != "/" }
    return range.split(separator: "-").first.flatMap { Int64($0) }
}

/// The check an ETag allows: an LFS file's ETag is the sha256 of its bytes; a git file's is the
/// git blob sha1, sha1("blob <size>\0" + bytes). Any other ETag is only checked by size.
struct BlobDigest {
    private enum Hasher {
        case sha256(SHA256)
        case gitSHA1(Insecure.SHA1)
        case none
    }

    private var hasher: Hasher
    private let expected: String

    init(etag: String, size: Int64) {
        expected = etag.lowercased()
        let isHex = expected.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        if isHex && expected.utf8.count == 64 {
            hasher = .sha256(SHA256())
        } else if isHex && expected.utf8.count == 40 {
            var sha1 = Insecure.SHA1()
            sha1.update(data: Array("blob \(size)\0".utf8))
            hasher = .gitSHA1(sha1)
        } else {
            hasher = .none
        }
    }

    var name: String {
        switch hasher {
        case .sha256: "sha256"
        case .gitSHA1: "git blob sha1"
        case .none: "size"
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch hasher {
        case .sha256(var h):
            h.update(bufferPointer: bytes)
            hasher = .sha256(h)
        case .gitSHA1(var h):
            h.update(bufferPointer: bytes)
            hasher = .gitSHA1(h)
        case .none: break
        }
    }

    /// (expected, actual) when the hash differs from the ETag.
    func mismatch() -> (String, String)? {
        let actual: String
        switch hasher {
        case .sha256(let h): actual = h.finalize().map { String(format: "%02x", $0) }.joined()
        case .gitSHA1(let h): actual = h.finalize().map { String(format: "%02x", $0) }.joined()
        case .none: return nil
        }
        return actual == expected ? nil : (expected, actual)
    }
}

/// An exclusive flock(2) on `.locks/models--ORG--NAME/<etag>.lock`, the lock huggingface_hub
/// takes, so densecap and the HF tools never write the same blob at once.
final class BlobLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func acquire(_ path: String, cache: HubCache, repo: String, file: String, client: HubClient) async throws
        -> BlobLock
    {
        try cache.createDirectory((path as NSString).deletingLastPathComponent, repo: repo, file: file)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubCache.error(errno, repo: repo, file: file, doing: "cannot open \(path)") }
        var waited = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let code = errno
                close(fd)
                throw HubCache.error(code, repo: repo, file: file, doing: "cannot lock \(path)")
            }
            if !waited {
                client.logger.info("\(repo)/\(file): waiting for another download of the same file (\(path))")
                waited = true
            }
            do {
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                close(fd)
                throw error
            }
        }
        return BlobLock(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
