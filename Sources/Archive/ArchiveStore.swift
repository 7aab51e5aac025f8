import Foundation

/// The job store behind every archive command. Two implementations share one schema and one list
/// of migrations (`Schema`): `SQLiteStore` (embedded, one file) and `PostgresStore` (several
/// machines). Every state change is one transaction; completion and failure are fenced on the
/// lease token, so a worker that lost its claim cannot overwrite the new owner's result.
public protocol ArchiveStore: Sendable {
    /// Where the store lives, for messages.
    var location: String { get }

    func loadSettings() async throws -> ArchiveSettings?
    /// Records the settings; a second `init` with different settings throws `settingsDiffer`.
    func saveSettings(_ settings: ArchiveSettings) async throws

    /// The recorded fingerprint of `path`, to skip hashing files whose size and mtime are unchanged.
    func fingerprint(of path: String) async throws -> FileFingerprint?
    /// Registers files: new ones pending; a changed one (size, mtime or hash) pending again, with
    /// its outputs, events and counters cleared; an unchanged one untouched.
    func register(_ files: [FileFingerprint]) async throws -> RegisterSummary

    /// Claims the first pending file, or one whose lease expired (counting a crash; after
    /// `maxCrashes` the file is failed instead).
    func claim(_ request: ClaimRequest) async throws -> ClaimResult
    /// Extends a lease; nil when it was lost (expired and reclaimed, or the file re-registered).
    func renew(_ lease: Lease, leaseSeconds: Double) async throws -> Lease?
    /// Records `outcome` if `lease` still holds the file and then, when `next` is given, claims the
    /// next file in the same transaction: one commit a file for a worker that goes on. A lost lease
    /// is `.refused`: nothing written, nothing claimed.
    func finish(_ lease: Lease, _ outcome: FileOutcome, seconds: Double, thenClaim next: ClaimRequest?) async throws -> FinishResult
    /// A worker died: its running files go back to pending with a crash counted (failed after
    /// `maxCrashes`). Returns how many files it held.
    func abandon(owner: String, maxCrashes: Int) async throws -> Int
    /// Failed files (all, or those in `paths`) become pending with fresh counters.
    func retry(paths: [String]?) async throws -> Int

    func files() async throws -> [FileRecord]
    func outputs(of fileID: Int64) async throws -> [String]
    func events(of fileID: Int64) async throws -> [ArchivedEvent]
    func status() async throws -> ArchiveStatus

    /// Stores captions made outside the archive (densecap JSON): the file is recorded as done with
    /// these events, replacing earlier ones.
    func importEvents(_ file: FileFingerprint, events: [ArchivedEvent], outputs: [String]) async throws

    func search(_ query: SearchQuery) async throws -> [SearchHit]

    func close() async throws
}

extension ArchiveStore {
    public func claim(owner: String, leaseSeconds: Double, maxCrashes: Int) async throws -> ClaimResult {
        try await claim(ClaimRequest(owner: owner, leaseSeconds: leaseSeconds, maxCrashes: maxCrashes))
    }

    /// Records a result if `lease` still holds the file; false (and nothing written) otherwise.
    public func complete(_ lease: Lease, result: ProcessedFile, seconds: Double) async throws -> Bool {
        try await finish(lease, .done(result), seconds: seconds, thenClaim: nil) != .refused
    }

    /// Records a failure if `lease` still holds the file; false otherwise.
    public func fail(_ lease: Lease, failure: ProcessingFailure, seconds: Double) async throws -> Bool {
        try await finish(lease, .failed(failure), seconds: seconds, thenClaim: nil) != .refused
    }
}

/// `densecap search`'s question.
public struct SearchQuery: Codable, Equatable, Sendable {
    /// Words, all of which must appear (stemmed: "trucks" finds "truck").
    public var text: String
    /// A glob on the file: matched against the whole path, or the file name when it has no '/'.
    public var fileGlob: String?
    /// Events starting at or after this offset into their file (seconds).
    public var startAfter: Double?
    /// Events starting at or before this offset into their file (seconds).
    public var startBefore: Double?
    /// Files modified (recorded) at or after this time (seconds since 1970).
    public var fileAfter: Double?
    /// Files modified (recorded) at or before this time (seconds since 1970).
    public var fileBefore: Double?
    public var limit: Int

    public init(text: String, fileGlob: String? = nil, startAfter: Double? = nil, startBefore: Double? = nil,
                fileAfter: Double? = nil, fileBefore: Double? = nil, limit: Int = 20) {
        self.text = text
        self.fileGlob = fileGlob
        self.startAfter = startAfter
        self.startBefore = startBefore
        self.fileAfter = fileAfter
        self.fileBefore = fileBefore
        self.limit = limit
    }

    /// The words of `text` (letters and digits), lowercased; what both stores search for.
    public var words: [String] {
        text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
    }
}

public struct SearchHit: Codable, Equatable, Sendable {
    public var path: String
    public var start: Double
    public var end: Double
    /// Higher is better (SQLite: −bm25; PostgreSQL: ts_rank).
    public var score: Double
    /// The caption around the matches, each match between `SearchHit.markStart` and `markEnd`.
    public var snippet: String
    public var caption: String
    public var keyframe: String?

    /// Marks around matched words in `snippet` (control characters no caption contains).
    public static let markStart = "\u{2}"
    public static let markEnd = "\u{3}"

    /// The snippet with the marks replaced.
    public func snippet(open: String, close: String) -> String {
        snippet.replacingOccurrences(of: Self.markStart, with: open).replacingOccurrences(of: Self.markEnd, with: close)
    }
}

/// Opens the store a `--store` value names: `postgres://…` (or `postgresql://…`), else a folder
/// holding `archive.sqlite` (created when `create`), or a path ending in `.sqlite`.
public func openStore(_ location: String, create: Bool) async throws -> any ArchiveStore {
    if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
        return try await PostgresStore(url: location)
    }
    let file = location.hasSuffix(".sqlite") ? location : (location as NSString).appendingPathComponent(SQLiteStore.fileName)
    if !create, !FileManager.default.fileExists(atPath: file) { throw ArchiveError.notInitialised(location) }
    return try SQLiteStore(path: file)
}

/// The schema, as one ordered list of migrations both stores apply; `{ID}` and `{BOOL_FALSE}`
/// are the only words that differ, and search has one migration per dialect (FTS5 vs tsvector).
enum Schema {
    enum Dialect: Sendable { case sqlite, postgres }

    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: @Sendable (Dialect) -> [String]
    }

    static let migrations: [Migration] = [
        Migration(version: 1, name: "settings, files, outputs, events") { _ in
            [
                "CREATE TABLE archive_settings (id INTEGER PRIMARY KEY, json TEXT NOT NULL)",
                """
                CREATE TABLE files (
                    id {ID}, path TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                    size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL, hash TEXT NOT NULL,
                    state TEXT NOT NULL DEFAULT 'pending',
                    attempts INTEGER NOT NULL DEFAULT 0, crashes INTEGER NOT NULL DEFAULT 0,
                    completions INTEGER NOT NULL DEFAULT 0,
                    error TEXT, exit_category TEXT, damaged BOOLEAN NOT NULL DEFAULT FALSE,
                    lease_token TEXT, lease_owner TEXT, lease_expires DOUBLE PRECISION,
                    started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, seconds DOUBLE PRECISION)
                """,
                "CREATE INDEX files_state ON files (state, id)",
                "CREATE INDEX files_owner ON files (lease_owner)",
                """
                CREATE TABLE outputs (
                    file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
                    path TEXT NOT NULL, PRIMARY KEY (file_id, path))
                """,
                """
                CREATE TABLE events (
                    id {ID}, file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
                    idx INTEGER NOT NULL, start_s DOUBLE PRECISION NOT NULL, end_s DOUBLE PRECISION NOT NULL,
                    start_exact TEXT NOT NULL, end_exact TEXT NOT NULL, kind TEXT NOT NULL,
                    caption TEXT, keyframe TEXT)
                """,
                "CREATE INDEX events_file ON events (file_id, idx)",
            ]
        },
        Migration(version: 2, name: "caption search") { dialect in
            switch dialect {
            case .sqlite:
                // External-content FTS5 over events.caption, kept in step by triggers.
                return [
                    "CREATE VIRTUAL TABLE events_fts USING fts5(caption, content='events', content_rowid='id', tokenize='porter unicode61')",
                    "CREATE TRIGGER events_ai AFTER INSERT ON events BEGIN INSERT INTO events_fts (rowid, caption) VALUES (new.id, new.caption); END",
                    "CREATE TRIGGER events_ad AFTER DELETE ON events BEGIN INSERT INTO events_fts (events_fts, rowid, caption) VALUES ('delete', old.id, old.caption); END",
                    "CREATE TRIGGER events_au AFTER UPDATE ON events BEGIN INSERT INTO events_fts (events_fts, rowid, caption) VALUES ('delete', old.id, old.caption); INSERT INTO events_fts (rowid, caption) VALUES (new.id, new.caption); END",
                ]
            case .postgres:
                return [
                    "ALTER TABLE events ADD COLUMN caption_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(caption, ''))) STORED",
                    "CREATE INDEX events_caption_tsv ON events USING GIN (caption_tsv)",
                ]
            }
        },
    ]

    static func statements(_ m: Migration, _ dialect: Dialect) -> [String] {
        m.statements(dialect).map {
            $0.replacingOccurrences(of: "{ID}", with: dialect == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY")
        }
    }

    static let migrationsTable = "CREATE TABLE IF NOT EXISTS archive_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"

    /// The one-line error recorded for a file whose workers kept dying.
    static func crashMessage(_ path: String, crashes: Int) -> String {
        "\(path): the worker died or lost its lease \(crashes) time\(crashes == 1 ? "" : "s") on this file; not retried (densecap archive retry)"
    }

    static let crashCategory = "crash"

    /// A fresh lease token.
    static func token() -> String { UUID().uuidString.lowercased() }

    static func name(of path: String) -> String { (path as NSString).lastPathComponent }

    /// A file glob as a POSIX regular expression anchored at both ends (PostgreSQL's `~`);
    /// `*` and `?` as SQLite's GLOB treats them, `[…]` passed through.
    static func globRegex(_ glob: String) -> String {
        var out = "^"
        for c in glob {
            switch c {
            case "*": out += ".*"
            case "?": out += "."
            case "[", "]": out.append(c)
            case ".", "(", ")", "+", "^", "$", "|", "{", "}", "\\": out += "\\\(c)"
            default: out.append(c)
            }
        }
        return out + "$"
    }
}
