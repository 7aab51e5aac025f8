import Crypto
import Foundation

/// What an input file was when a job read it: a changed file is a different input.
public struct InputIdentity: Codable, Equatable, Sendable {
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var modified: Int64
    /// SHA-256 of the whole file, hex.
    public var sha256: String

    /// Reads the file's identity. The content hash is computed only when size or modification
    /// time differ from `known` (a touched or copied file with the same bytes keeps its work).
    /// - Throws: `JobError.input` when the file cannot be read.
    public static func of(_ path: String, known: InputIdentity? = nil) throws -> InputIdentity {
        var st = stat()
        guard stat(path, &st) == 0 else { throw JobError.input(path: path, reason: String(cString: strerror(errno))) }
        let size = Int64(st.st_size)
        let modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        if let known, known.size == size, known.modified == modified { return known }
        return InputIdentity(size: size, modified: modified, sha256: try fileSHA256(path))
    }

    /// Equal content (the modification time may differ).
    public func sameContent(as other: InputIdentity) -> Bool { size == other.size && sha256 == other.sha256 }
}

/// SHA-256 of a file, read in 4 MiB blocks. - Throws: `JobError.input`.
func fileSHA256(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw JobError.input(path: path, reason: "cannot open for reading")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    do {
        while let block = try handle.read(upToCount: 4 << 20), !block.isEmpty { hasher.update(data: block) }
    } catch {
        throw JobError.input(path: path, reason: "cannot read: \(error.localizedDescription)")
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

/// What identifies a checkpoint: the Hub commit it was resolved to, else a hash of its files.
public enum ModelIdentity {
    /// `hf:<commit>` for a folder inside a Hugging Face cache snapshot (the commit names its
    /// content); otherwise `sha256:<hex>` over every file's relative path, size and bytes, so a
    /// replaced weight file is a different model.
    public static func of(directory: String) throws -> String {
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().standardizedFileURL.path
        let parts = resolved.split(separator: "/")
        if let i = parts.lastIndex(of: "snapshots"), i + 1 < parts.count, parts[i + 1].count == 40,
            parts[i + 1].allSatisfy(\.isHexDigit), i > 0, parts[i - 1].hasPrefix("models--")
        {
            let sub = parts[(i + 2)...].joined(separator: "/")
            return "hf:\(parts[i - 1].dropFirst("models--".count).replacingOccurrences(of: "--", with: "/"))@\(parts[i + 1])"
                + (sub.isEmpty ? "" : ":\(sub)")
        }
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: directory) else {
            throw JobError.input(path: directory, reason: "cannot list the model folder")
        }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            guard !name.hasPrefix(".") else { continue }
            var isDirectory: ObjCBool = false
            let full = (directory as NSString).appendingPathComponent(relative)
            if fm.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue { files.append(relative) }
        }
        var hasher = SHA256()
        for relative in files.sorted() {
            let digest = try fileSHA256((directory as NSString).appendingPathComponent(relative))
            hasher.update(data: Data("\(relative)\u{0}\(digest)\n".utf8))
        }
        return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
