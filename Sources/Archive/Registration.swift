import Crypto
import Foundation

/// `archive add`: the files named (folders expanded, recursively on request, filtered by a glob on
/// the file name) and their fingerprints.
public enum ArchiveScanner {
    /// Absolute paths of the regular files under `paths`, sorted; hidden files and folders skipped.
    public static func files(_ paths: [String], recursive: Bool, glob: String?) throws -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        func accept(_ path: String) {
            let name = (path as NSString).lastPathComponent
            if let glob, fnmatch(glob, name, 0) != 0 { return }
            out.append(path)
        }
        for raw in paths {
            let path = absolute(raw)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ArchiveError.badInput("\(raw): no such file or folder") }
            guard isDir.boolValue else { accept(path); continue }
            guard let entries = try? fm.contentsOfDirectory(atPath: path) else { throw ArchiveError.badInput("\(raw): cannot read the folder") }
            for entry in entries.sorted() where !entry.hasPrefix(".") {
                let child = (path as NSString).appendingPathComponent(entry)
                var childIsDir: ObjCBool = false
                guard fm.fileExists(atPath: child, isDirectory: &childIsDir) else { continue }
                if childIsDir.boolValue {
                    if recursive { out += try files([child], recursive: true, glob: glob) }
                } else {
                    accept(child)
                }
            }
        }
        return Array(Set(out)).sorted()
    }

    /// `archive add`: registers the files under `paths`, hashing only new or changed ones.
    public static func add(_ paths: [String], recursive: Bool, glob: String?, to store: any ArchiveStore) async throws -> RegisterSummary {
        var prints: [FileFingerprint] = []
        for f in try files(paths, recursive: recursive, glob: glob) {
            prints.append(try fingerprint(f, known: try await store.fingerprint(of: f)))
        }
        return try await store.register(prints)
    }

    public static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (full as NSString).standardizingPath
    }

    /// Size, mtime and SHA-256 of `path`; the hash of `known` is reused when size and mtime match
    /// (re-adding an unchanged tree reads no content).
    public static func fingerprint(_ path: String, known: FileFingerprint?) throws -> FileFingerprint {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ArchiveError.badInput("\(path): cannot read (\(String(cString: strerror(errno))))") }
        let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        let size = Int64(st.st_size)
        if let known, known.size == size, known.mtime == mtime {
            return FileFingerprint(path: path, size: size, mtime: mtime, hash: known.hash)
        }
        return FileFingerprint(path: path, size: size, mtime: mtime, hash: try sha256(path))
    }

    static func sha256(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ArchiveError.badInput("\(path): cannot open for reading") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Captions made outside an archive: densecap's `<name>.events.json` (schema in README), read into
/// the store's events.
public enum CaptionImport {
    public struct Document: Equatable, Sendable {
        /// The video the captions describe (`video.path`, made absolute against the JSON's folder).
        public var video: String
        public var events: [ArchivedEvent]
    }

    /// `archive import`: stores the events of each JSON file under its video (recorded by name, with
    /// the JSON's mtime, when the video is not here). Returns how many events were stored.
    public static func importFiles(_ jsonPaths: [String], into store: any ArchiveStore) async throws -> Int {
        var events = 0
        for path in jsonPaths {
            let doc = try read(path)
            let video: FileFingerprint
            if FileManager.default.fileExists(atPath: doc.video) {
                video = try ArchiveScanner.fingerprint(doc.video, known: try await store.fingerprint(of: doc.video))
            } else {
                video = FileFingerprint(path: doc.video, size: 0, mtime: try ArchiveScanner.fingerprint(path, known: nil).mtime, hash: "")
            }
            try await store.importEvents(video, events: doc.events, outputs: [ArchiveScanner.absolute(path)])
            events += doc.events.count
        }
        return events
    }

    public static func read(_ jsonPath: String) throws -> Document {
        guard let data = FileManager.default.contents(atPath: jsonPath) else { throw ArchiveError.badInput("\(jsonPath): cannot read") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let video = object["video"] as? [String: Any], let videoPath = video["path"] as? String,
            let events = object["events"] as? [[String: Any]]
        else { throw ArchiveError.badInput("\(jsonPath): not a densecap events JSON (needs video.path and events)") }
        let folder = (ArchiveScanner.absolute(jsonPath) as NSString).deletingLastPathComponent
        func resolved(_ p: String) -> String { p.hasPrefix("/") ? p : ((folder as NSString).appendingPathComponent(p) as NSString).standardizingPath }
        var out: [ArchivedEvent] = []
        for (i, e) in events.enumerated() {
            guard let start = (e["start"] as? NSNumber)?.doubleValue, let end = (e["end"] as? NSNumber)?.doubleValue else {
                throw ArchiveError.badInput("\(jsonPath): event \(i) has no start/end")
            }
            out.append(ArchivedEvent(
                index: (e["index"] as? Int) ?? i, start: start, end: end,
                startExact: e["start_exact"] as? String ?? String(start), endExact: e["end_exact"] as? String ?? String(end),
                kind: e["kind"] as? String ?? "", caption: e["caption"] as? String,
                keyframe: (e["thumbnail"] as? String).map(resolved)))
        }
        return Document(video: videoPath.hasPrefix("/") ? videoPath : ArchiveScanner.absolute(videoPath), events: out)
    }
}
