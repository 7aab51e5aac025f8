import Foundation

/// Why a tokenizer could not be loaded. Every message is one line naming the file and the key.
public enum TokenizerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Neither `tokenizer.json` nor `vocab.json` + `merges.txt` is in the directory.
    case missingFiles(directory: String)
    /// A file exists but cannot be read or is not valid JSON / text.
    case unreadable(file: String, reason: String)
    /// A required key is absent.
    case missingKey(file: String, key: String)
    /// A key holds a value of the wrong shape or an impossible value.
    case invalidValue(file: String, key: String, reason: String)
    /// A component `type` (or option) that densecap does not implement; never silently ignored.
    case unsupported(file: String, key: String, value: String)

    public var description: String {
        switch self {
        case .missingFiles(let directory):
            return "\(directory): no tokenizer.json and no vocab.json + merges.txt"
        case .unreadable(let file, let reason):
            return "\(file): unreadable: \(reason)"
        case .missingKey(let file, let key):
            return "\(file): missing key \(key)"
        case .invalidValue(let file, let key, let reason):
            return "\(file): \(key): \(reason)"
        case .unsupported(let file, let key, let value):
            return
                "\(file): \(key) \(value) is not supported (densecap implements Qwen2's byte-level BPE only)"
        }
    }
}
