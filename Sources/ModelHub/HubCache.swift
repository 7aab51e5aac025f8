import Foundation

/// The Hugging Face hub cache (huggingface_hub's layout, byte for byte):
///
///     <cache>/models--ORG--NAME/
///         blobs/<etag>                      file contents, named by the Hub's ETag
///         blobs/<etag>.incomplete           a download in progress (resumed with Range)
///         refs/<revision>                   the commit hash a branch or tag pointed to
///         snapshots/<commit>/<path>         relative symlinks ../../blobs/<etag>
///     <cache>/.locks/models--ORG--NAME/<etag>.lock   flock(2) per blob while it downloads
///
/// A cache filled by `huggingface_hub` is read as is, and it reads ours.
public struct HubCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// `models--ORG--NAME` (huggingface_hub `repo_folder_name`).
    public static func folderName(repo: String) -> String {
        (["models"] + repo.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    public func repoDirectory(_ repo: String) -> String { "\(directory)/\(Self.folderName(repo: repo))" }
    func blobPath(repo: String, etag: String) -> String { "\(repoDirectory(repo))/blobs/\(etag)" }
    func snapshotDirectory(repo: String, commit: String) -> String { "\(repoDirectory(repo))/snapshots/\(commit)" }
    func pointerPath(repo: String, commit: String, file: String) -> String {
        "\(snapshotDirectory(repo: repo, commit: commit))/\(file)"
    }
    func lockPath(repo: String, etag: String) -> String {
        "\(directory)/.locks/\(Self.folderName(repo: repo))/\(etag).lock"
    }

    // MARK: - Lookup

    /// The commit a revision names: itself for a commit hash, else the content of `refs/<revision>`.
    public func commit(for reference: ModelReference) -> String? {
        if reference.isCommitHash { return reference.revision }
        let path = "\(repoDirectory(reference.repo))/refs/\(reference.revision)"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.isEmpty ? nil : commit
    }

    /// The snapshot folder of a cached revision, or nil when the revision is not cached.
    ///
    /// A pull writes `refs/<revision>` only after every file is in place, so a ref means a whole
    /// snapshot; for a commit hash it is the snapshot folder with at least one file in it (which
    /// `ModelHub.resolveModel` checks against the Hub's file list when online).
    public func snapshot(for reference: ModelReference) -> String? {
        guard let commit = commit(for: reference) else { return nil }
        let path = snapshotDirectory(repo: reference.repo, commit: commit)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path), !entries.isEmpty else {
            return nil
        }
        return path
    }

    /// True when the snapshot has `file` and the blob it points to exists.
    func hasFile(repo: String, commit: String, file: String) -> Bool {
        FileManager.default.fileExists(atPath: pointerPath(repo: repo, commit: commit, file: file))
    }

    // MARK: - Writing

    /// Makes `snapshots/<commit>/<file>` a relative symlink to `blobs/<etag>`.
    func link(repo: String, commit: String, file: String, etag: String) throws {
        let pointer = pointerPath(repo: repo, commit: commit, file: file)
        let parent = (pointer as NSString).deletingLastPathComponent
        try createDirectory(parent, repo: repo, file: file)
        // snapshots/<commit>/a/b.json → ../../../blobs/<etag>: one ".." per folder below the repo.
        let depth = 2 + file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "blobs/\(etag)"
        unlink(pointer)
        if symlink(target, pointer) != 0 {
            let code = errno
            // Another process linked the same blob between the unlink and here: nothing to do.
            if code == EEXIST, (try? FileManager.default.destinationOfSymbolicLink(atPath: pointer)) == target { return }
            throw HubCache.error(code, repo: repo, file: file, doing: "cannot link \(pointer)")
        }
    }

    /// Writes `refs/<revision>` through a temporary file and a rename.
    func writeRef(repo: String, revision: String, commit: String) throws {
        let path = "\(repoDirectory(repo))/refs/\(revision)"
        if (try? String(contentsOfFile: path, encoding: .utf8)) == commit { return }
        try createDirectory((path as NSString).deletingLastPathComponent, repo: repo, file: nil)
        let temp = "\(path).\(UUID().uuidString.prefix(8).lowercased()).tmp"
        do {
            try Data(commit.utf8).write(to: URL(fileURLWithPath: temp))
        } catch {
            throw HubCache.error(HubCache.posixCode(error) ?? EIO, repo: repo, file: nil, doing: "cannot write \(path)")
        }
        if rename(temp, path) != 0 {
            let code = errno
            unlink(temp)
            throw HubCache.error(code, repo: repo, file: nil, doing: "cannot write \(path)")
        }
    }

    func createDirectory(_ path: String, repo: String, file: String?) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw HubCache.error(
                HubCache.posixCode(error) ?? EIO, repo: repo, file: file, doing: "cannot create \(path)")
        }
    }

    // MARK: - Listing and removal

    /// Every cached model, sorted by repo id.
    public func list() throws -> [CachedModel] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory) else { return [] }
        let names: [String]
        do {
            names = try fm.contentsOfDirectory(atPath: directory)
        } catch {
            throw HubCache.error(
                HubCache.posixCode(error) ?? EIO, repo: directory, file: nil, doing: "cannot read the cache")
        }
        return names.filter { $0.hasPrefix("models--") }.sorted().compactMap { name in
            // huggingface_hub's scan_cache_dir: "models--ORG--NAME" → "ORG/NAME".
            let repo = name.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
            return model(repo: repo, folder: "\(directory)/\(name)")
        }
    }

    /// The cached model `repo`, or nil when nothing of it is cached.
    public func model(repo: String) -> CachedModel? {
        let folder = repoDirectory(repo)
        guard FileManager.default.fileExists(atPath: folder) else { return nil }
        return model(repo: repo, folder: folder)
    }

    private func model(repo: String, folder: String) -> CachedModel {
        let fm = FileManager.default
        var blobSizes: [String: Int64] = [:]
        for name in (try? fm.contentsOfDirectory(atPath: "\(folder)/blobs")) ?? [] where !name.hasSuffix(".incomplete")
        {
            blobSizes[name] = fileSize("\(folder)/blobs/\(name)") ?? 0
        }
        var refsByCommit: [String: [String]] = [:]
        let refsRoot = "\(folder)/refs"
        if let enumerator = fm.enumerator(atPath: refsRoot) {
            for case let ref as String in enumerator {
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: "\(refsRoot)/\(ref)", isDirectory: &isDirectory), !isDirectory.boolValue,
                    let commit = try? String(contentsOfFile: "\(refsRoot)/\(ref)", encoding: .utf8)
                else { continue }
                refsByCommit[commit.trimmingCharacters(in: .whitespacesAndNewlines), default: []].append(ref)
            }
        }
        var revisions: [CachedRevision] = []
        let snapshotsRoot = "\(folder)/snapshots"
        for commit in ((try? fm.contentsOfDirectory(atPath: snapshotsRoot)) ?? []).sorted() {
            let root = "\(snapshotsRoot)/\(commit)"
            var files = 0
            var blobs = Set<String>()
            var size: Int64 = 0
            let enumerator = fm.enumerator(atPath: root)
            while let relative = enumerator?.nextObject() as? String {
                let path = "\(root)/\(relative)"
                guard let destination = try? fm.destinationOfSymbolicLink(atPath: path) else {
                    // A plain file (caches made where symlinks are unsupported hold copies).
                    var isDirectory: ObjCBool = false
                    if fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                        files += 1
                        size += fileSize(path) ?? 0
                    }
                    continue
                }
                files += 1
                let blob = (destination as NSString).lastPathComponent
                if blobs.insert(blob).inserted { size += blobSizes[blob] ?? 0 }
            }
            revisions.append(
                CachedRevision(
                    commit: commit, refs: (refsByCommit[commit] ?? []).sorted(), path: root, files: files,
                    sizeOnDisk: size))
        }
        let incomplete = ((try? fm.contentsOfDirectory(atPath: "\(folder)/blobs")) ?? []).filter {
            $0.hasSuffix(".incomplete")
        }
        return CachedModel(
            repo: repo, path: folder, sizeOnDisk: blobSizes.values.reduce(0, +), revisions: revisions,
            incompleteDownloads: incomplete.count)
    }

    /// Deletes the whole cached repo (all revisions, its blobs and its lock files).
    /// - Returns: the bytes freed, or nil when the repo was not cached.
    @discardableResult
    public func remove(repo: String) throws -> Int64? {
        guard let cached = model(repo: repo) else { return nil }
        for path in [cached.path, "\(directory)/.locks/\(Self.folderName(repo: repo))"]
        where FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw HubCache.error(
                    HubCache.posixCode(error) ?? EIO, repo: repo, file: nil, doing: "cannot remove \(path)")
            }
        }
        return cached.sizeOnDisk
    }

    /// Free bytes on the file system that holds (or will hold) the cache.
    func freeBytes() -> Int64? {
        var path = directory
        while !FileManager.default.fileExists(atPath: path), path != "/", !path.isEmpty {
            path = (path as NSString).deletingLastPathComponent
        }
        var info = statvfs()
        guard statvfs(path.isEmpty ? "." : path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Deletes one revision: its snapshot, the refs that point at it and the blobs no other
    /// snapshot uses (the whole repo when it was the last one).
    /// - Returns: the bytes freed, or nil when the revision is not cached.
    @discardableResult
    public func remove(_ reference: ModelReference) throws -> Int64? {
        guard let commit = commit(for: reference),
            FileManager.default.fileExists(atPath: snapshotDirectory(repo: reference.repo, commit: commit)),
            let cached = model(repo: reference.repo)
        else { return nil }
        if cached.revisions.count == 1 { return try remove(repo: reference.repo) }
        let fm = FileManager.default
        let folder = repoDirectory(reference.repo)
        func delete(_ path: String) throws {
            do {
                try fm.removeItem(atPath: path)
            } catch {
                throw HubCache.error(
                    HubCache.posixCode(error) ?? EIO, repo: reference.description, file: nil,
                    doing: "cannot remove \(path)")
            }
        }
        // Blobs the other snapshots still point to stay.
        var kept = Set<String>()
        for other in cached.revisions where other.commit != commit {
            let enumerator = fm.enumerator(atPath: other.path)
            while let relative = enumerator?.nextObject() as? String {
                if let target = try? fm.destinationOfSymbolicLink(atPath: "\(other.path)/\(relative)") {
                    kept.insert((target as NSString).lastPathComponent)
                }
            }
        }
        var freed: Int64 = 0
        let snapshot = snapshotDirectory(repo: reference.repo, commit: commit)
        let enumerator = fm.enumerator(atPath: snapshot)
        var blobs = Set<String>()
        while let relative = enumerator?.nextObject() as? String {
            if let target = try? fm.destinationOfSymbolicLink(atPath: "\(snapshot)/\(relative)") {
                blobs.insert((target as NSString).lastPathComponent)
            }
        }
        for blob in blobs.subtracting(kept) {
            let path = "\(folder)/blobs/\(blob)"
            guard let size = fileSize(path) else { continue }
            try delete(path)
            freed += size
        }
        try delete(snapshot)
        for revision in cached.revisions where revision.commit == commit {
            for ref in revision.refs { try delete("\(folder)/refs/\(ref)") }
        }
        return freed
    }

    // MARK: - Errors

    /// The POSIX code behind a Foundation error, if any.
    static func posixCode(_ error: Error) -> Int32? {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        switch ns.code {
        case NSFileWriteOutOfSpaceError: return ENOSPC
        case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return EACCES
        default: return nil
        }
    }

    static func error(_ code: Int32, repo: String, file: String?, doing: String) -> HubError {
        let kind: HubError.Kind
        switch code {
        case ENOSPC, EDQUOT: kind = .diskFull
        case EACCES, EPERM, EROFS: kind = .permissionDenied
        default: kind = .io
        }
        return HubError(kind, repo: repo, file: file, reason: "\(doing): \(String(cString: strerror(code)))")
    }
}

/// Decimal units, as the Hub shows sizes: 512 B, 1.50 kB, 12.3 MB, 4.21 GB.
public func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    return String(format: value < 10 ? "%.2f" : "%.1f", value) + " " + units[unit]
}

func fileSize(_ path: String) -> Int64? {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : nil
}

/// One repo in the cache.
public struct CachedModel: Sendable, Codable {
    public let repo: String
    /// `<cache>/models--ORG--NAME`.
    public let path: String
    /// Bytes of all complete blobs (shared between revisions, counted once).
    public let sizeOnDisk: Int64
    public let revisions: [CachedRevision]
    /// `.incomplete` blobs left by an interrupted download (resumed by the next pull).
    public let incompleteDownloads: Int

    enum CodingKeys: String, CodingKey {
        case repo, path, revisions
        case sizeOnDisk = "size_on_disk"
        case incompleteDownloads = "incomplete_downloads"
    }
}

/// One snapshot of a cached repo.
public struct CachedRevision: Sendable, Codable {
    public let commit: String
    /// Branches and tags that point at this commit (`refs/`).
    public let refs: [String]
    /// `snapshots/<commit>`: the directory `--model` resolves to.
    public let path: String
    public let files: Int
    public let sizeOnDisk: Int64

    enum CodingKeys: String, CodingKey {
        case commit, refs, path, files
        case sizeOnDisk = "size_on_disk"
    }
}
