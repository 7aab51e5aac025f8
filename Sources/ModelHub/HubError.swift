/// A Hub or cache failure, reported as one line naming the repo (and file) and the cause.
public struct HubError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Not an `org/name[@revision]` id.
        case invalidReference
        /// 404: the repo, the revision or the file does not exist.
        case notFound
        /// 401/403: private or gated; a token with access is needed.
        case unauthorized
        /// HF_HUB_OFFLINE is set and the model is not in the cache.
        case offline
        /// The Hub could not be reached, kept failing (5xx, 429) or dropped the connection.
        case network
        /// The downloaded bytes do not match the size or hash the Hub announced.
        case corrupt
        /// The server answered, but not as the Hub does (no commit, no ETag, bad JSON).
        case protocolError
        /// The cache cannot be written: no space left on the device.
        case diskFull
        /// The cache cannot be written or read: permission denied.
        case permissionDenied
        /// Any other file-system failure in the cache.
        case io
    }

    public let kind: Kind
    public let repo: String
    public let file: String?
    public let reason: String

    public init(_ kind: Kind, repo: String, file: String? = nil, reason: String) {
        self.kind = kind
        self.repo = repo
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(repo)\(file.map { "/\($0)" } ?? ""): \(reason)" }
}
