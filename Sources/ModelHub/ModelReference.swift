/// A model on the Hub: `org/name`, optionally pinned with `@revision` (a branch, a tag or a commit).
public struct ModelReference: Sendable, Hashable, CustomStringConvertible {
    public static let defaultRevision = "main"

    /// `org/name`.
    public let repo: String
    /// A branch, a tag or a commit hash; `main` unless given.
    public let revision: String

    public init(repo: String, revision: String = ModelReference.defaultRevision) throws {
        guard Self.isRepoID(repo) else {
            throw HubError(
                .invalidReference, repo: repo,
                reason: "not a model id; expected ORG/NAME (letters, digits, '-', '_', '.')")
        }
        guard !revision.isEmpty, !revision.hasPrefix("/"), !revision.split(separator: "/").contains(".."),
            !revision.contains("\0")
        else {
            throw HubError(.invalidReference, repo: repo, reason: "invalid revision '\(revision)'")
        }
        self.repo = repo
        self.revision = revision
    }

    /// Parses `org/name` or `org/name@revision`.
    public init(parsing spec: String) throws {
        if let at = spec.firstIndex(of: "@") {
            try self.init(repo: String(spec[..<at]), revision: String(spec[spec.index(after: at)...]))
        } else {
            try self.init(repo: spec)
        }
    }

    public var description: String { revision == Self.defaultRevision ? repo : "\(repo)@\(revision)" }

    /// True when the revision is a full commit hash (immutable: no ref is stored for it).
    public var isCommitHash: Bool { Self.isCommitHash(revision) }

    static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The Hub's rule for repo ids (huggingface_hub `validate_repo_id`): `namespace/name`, each of
    /// letters, digits, `-`, `_`, `.`, not starting or ending with `-` or `.`, without `--` or `..`.
    public static func isRepoID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            guard !part.isEmpty, part.count <= 96, !part.contains("--"), !part.contains("..") else { return false }
            guard let first = part.first, let last = part.last, first != "-", first != ".", last != "-", last != "."
            else { return false }
            return part.unicodeScalars.allSatisfy {
                ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                    || "-_.".unicodeScalars.contains($0)
            }
        }
    }
}
