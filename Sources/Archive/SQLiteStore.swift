import Foundation
import GRDB

/// The embedded store: one SQLite file (WAL, so the workers of one machine read while one writes),
/// every change in an IMMEDIATE transaction, FTS5 for search.
public final class SQLiteStore: ArchiveStore {
    public static let fileName = "archive.sqlite"
    public let location: String
    private let pool: DatabasePool

    public init(path: String) throws {
        location = path
        var config = Configuration()
        // Workers and the supervisor share the file; a writer waits for another instead of failing.
        config.busyMode = .timeout(60)
        // WAL with synchronous=NORMAL: a commit survives any crash of the processes; a power cut
        // may lose the last commits, which only means those files are processed again.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            pool = try DatabasePool(path: path, configuration: config)
            try write { db in try Self.migrate(db) }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError.database("\(path): cannot open the archive: \(error)")
        }
    }

    private static func migrate(_ db: Database) throws {
        try db.execute(sql: Schema.migrationsTable)
        let applied = Set(try Int.fetchAll(db, sql: "SELECT version FROM archive_migrations"))
        for m in Schema.migrations where !applied.contains(m.version) {
            for sql in Schema.statements(m, .sqlite) { try db.execute(sql: sql) }
            try db.execute(sql: "INSERT INTO archive_migrations (version, name) VALUES (?, ?)", arguments: [m.version, m.name])
        }
    }

    private func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError.database("\(location): \(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch {
            throw ArchiveError.database("\(location): \(error)")
        }
    }

    private static func now() -> Double { Date().timeIntervalSince1970 }

    // MARK: - Settings and files

    public func loadSettings() async throws -> ArchiveSettings? {
        try read { db in
            guard let json = try String.fetchOne(db, sql: "SELECT json FROM archive_settings WHERE id = 1") else { return nil }
            return try JSONDecoder().decode(ArchiveSettings.self, from: Data(json.utf8))
        }
    }

    public func saveSettings(_ settings: ArchiveSettings) async throws {
        let json = String(decoding: try JSONEncoder.sorted.encode(settings), as: UTF8.self)
        try write { db in
            if let old = try String.fetchOne(db, sql: "SELECT json FROM archive_settings WHERE id = 1") {
                guard try JSONDecoder().decode(ArchiveSettings.self, from: Data(old.utf8)) == settings else {
                    throw ArchiveError.settingsDiffer(location)
                }
                return
            }
            try db.execute(sql: "INSERT INTO archive_settings (id, json) VALUES (1, ?)", arguments: [json])
        }
    }

    public func fingerprint(of path: String) async throws -> FileFingerprint? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT path, size, mtime, hash FROM files WHERE path = ?", arguments: [path]).map {
                FileFingerprint(path: $0["path"], size: $0["size"], mtime: $0["mtime"], hash: $0["hash"])
            }
        }
    }

    public func register(_ files: [FileFingerprint]) async throws -> RegisterSummary {
        try write { db in
            var summary = RegisterSummary()
            for f in files {
                if let row = try Row.fetchOne(db, sql: "SELECT id, size, mtime, hash FROM files WHERE path = ?", arguments: [f.path]) {
                    let same = row["size"] as Int64 == f.size && row["mtime"] as Double == f.mtime && row["hash"] as String == f.hash
                    if same { summary.unchanged += 1; continue }
                    let id: Int64 = row["id"]
                    // started_at stays: the next claim learns that a worker may have left partial outputs.
                    try db.execute(sql: "DELETE FROM events WHERE file_id = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM outputs WHERE file_id = ?", arguments: [id])
                    try db.execute(sql: """
                        UPDATE files SET size = ?, mtime = ?, hash = ?, state = 'pending', attempts = 0, crashes = 0,
                        completions = 0, error = NULL, exit_category = NULL, damaged = FALSE, lease_token = NULL,
                        lease_owner = NULL, lease_expires = NULL, finished_at = NULL, seconds = NULL
                        WHERE id = ?
                        """, arguments: [f.size, f.mtime, f.hash, id])
                    summary.changed += 1
                } else {
                    try db.execute(sql: "INSERT INTO files (path, name, size, mtime, hash) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [f.path, Schema.name(of: f.path), f.size, f.mtime, f.hash])
                    summary.added += 1
                }
            }
            return summary
        }
    }

    // MARK: - Leases

    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        try write { db in try Self.claim(db, request) }
    }

    private static func claim(_ db: Database, _ request: ClaimRequest) throws -> ClaimResult {
        let now = Self.now()
        // Expired leases whose next crash reaches the bound: failed, not reclaimed.
        let doomed = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT id, path, crashes FROM files WHERE state = 'running' AND lease_expires < ? AND crashes + 1 >= ?
            """), arguments: [now, request.maxCrashes])
        for row in doomed {
            let crashes = (row["crashes"] as Int) + 1
            try db.cachedStatement(sql: """
                UPDATE files SET state = 'failed', crashes = ?, error = ?, exit_category = ?, lease_token = NULL,
                lease_owner = NULL, lease_expires = NULL, finished_at = ? WHERE id = ?
                """).execute(arguments: [crashes, Schema.crashMessage(row["path"], crashes: crashes), Schema.crashCategory, now, row["id"] as Int64])
        }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT id, path, state, attempts, started_at IS NOT NULL AS claimed_before FROM files
            WHERE state = 'pending' OR (state = 'running' AND lease_expires < ?)
            ORDER BY id LIMIT 1
            """), arguments: [now])
        else {
            let next = try Double.fetchOne(db.cachedStatement(sql: "SELECT min(lease_expires) FROM files WHERE state = 'running'"))
            return next.map { .wait(seconds: max(0.05, $0 - now)) } ?? .finished
        }
        let lease = Lease(fileID: row["id"], path: row["path"], token: Schema.token(), owner: request.owner,
                          expires: now + request.leaseSeconds, attempt: (row["attempts"] as Int) + 1, claimedBefore: row["claimed_before"])
        let crashed = (row["state"] as String) == FileState.running.rawValue
        try db.cachedStatement(sql: """
            UPDATE files SET state = 'running', lease_token = ?, lease_owner = ?, lease_expires = ?,
            attempts = attempts + 1, crashes = crashes + ?, started_at = ? WHERE id = ?
            """).execute(arguments: [lease.token, request.owner, lease.expires, crashed ? 1 : 0, now, lease.fileID])
        return .claimed(lease)
    }

    public func renew(_ lease: Lease, leaseSeconds: Double) async throws -> Lease? {
        try write { db in
            var renewed = lease
            renewed.expires = Self.now() + leaseSeconds
            try db.cachedStatement(sql: "UPDATE files SET lease_expires = ? WHERE id = ? AND lease_token = ? AND state = 'running'")
                .execute(arguments: [renewed.expires, lease.fileID, lease.token])
            return db.changesCount == 1 ? renewed : nil
        }
    }

    public func finish(_ lease: Lease, _ outcome: FileOutcome, seconds: Double, thenClaim next: ClaimRequest?) async throws -> FinishResult {
        try write { db in
            switch outcome {
            case .done(let result):
                try db.cachedStatement(sql: """
                    UPDATE files SET state = 'done', completions = completions + 1, error = NULL, exit_category = NULL,
                    damaged = ?, lease_token = NULL, lease_owner = NULL, lease_expires = NULL, finished_at = ?, seconds = ?
                    WHERE id = ? AND lease_token = ? AND state = 'running'
                    """).execute(arguments: [result.damaged, Self.now(), seconds, lease.fileID, lease.token])
                guard db.changesCount == 1 else { return .refused }
                try Self.replaceEvents(db, fileID: lease.fileID, events: result.events, outputs: result.outputs)
            case .failed(let failure):
                try db.cachedStatement(sql: """
                    UPDATE files SET state = 'failed', error = ?, exit_category = ?, lease_token = NULL, lease_owner = NULL,
                    lease_expires = NULL, finished_at = ?, seconds = ? WHERE id = ? AND lease_token = ? AND state = 'running'
                    """).execute(arguments: [failure.message, failure.category, Self.now(), seconds, lease.fileID, lease.token])
                guard db.changesCount == 1 else { return .refused }
            }
            return .accepted(next: try next.map { try Self.claim(db, $0) })
        }
    }

    private static func replaceEvents(_ db: Database, fileID: Int64, events: [ArchivedEvent], outputs: [String]) throws {
        // Cached statements: a worker runs these for every file (compiled anew each time, they cost a
        // third of the store's time).
        try db.cachedStatement(sql: "DELETE FROM events WHERE file_id = ?").execute(arguments: [fileID])
        try db.cachedStatement(sql: "DELETE FROM outputs WHERE file_id = ?").execute(arguments: [fileID])
        let output = try db.cachedStatement(sql: "INSERT INTO outputs (file_id, path) VALUES (?, ?)")
        for path in Set(outputs).sorted() {
            try output.execute(arguments: [fileID, path])
        }
        let insert = try db.cachedStatement(sql: """
            INSERT INTO events (file_id, idx, start_s, end_s, start_exact, end_exact, kind, caption, keyframe)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for e in events {
            try insert.execute(arguments: [fileID, e.index, e.start, e.end, e.startExact, e.endExact, e.kind, e.caption, e.keyframe])
        }
    }

    public func abandon(owner: String, maxCrashes: Int) async throws -> Int {
        try write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, path, crashes FROM files WHERE state = 'running' AND lease_owner = ?", arguments: [owner])
            for row in rows {
                let crashes = (row["crashes"] as Int) + 1
                if crashes >= maxCrashes {
                    try db.execute(sql: """
                        UPDATE files SET state = 'failed', crashes = ?, error = ?, exit_category = ?, lease_token = NULL,
                        lease_owner = NULL, lease_expires = NULL, finished_at = ? WHERE id = ?
                        """, arguments: [crashes, Schema.crashMessage(row["path"], crashes: crashes), Schema.crashCategory, Self.now(), row["id"] as Int64])
                } else {
                    try db.execute(sql: """
                        UPDATE files SET state = 'pending', crashes = ?, lease_token = NULL, lease_owner = NULL, lease_expires = NULL
                        WHERE id = ?
                        """, arguments: [crashes, row["id"] as Int64])
                }
            }
            return rows.count
        }
    }

    public func retry(paths: [String]?) async throws -> Int {
        try write { db in
            let reset = """
                UPDATE files SET state = 'pending', attempts = 0, crashes = 0, error = NULL, exit_category = NULL,
                finished_at = NULL, seconds = NULL WHERE state = 'failed'
                """
            guard let paths else {
                try db.execute(sql: reset)
                return db.changesCount
            }
            var n = 0
            for p in paths {
                try db.execute(sql: reset + " AND path = ?", arguments: [p])
                n += db.changesCount
            }
            return n
        }
    }

    // MARK: - Reading

    public func files() async throws -> [FileRecord] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, path, size, mtime, hash, state, attempts, crashes, completions, error, exit_category, damaged,
                seconds, finished_at FROM files ORDER BY path
                """).map { r in
                FileRecord(id: r["id"], path: r["path"], size: r["size"], mtime: r["mtime"], hash: r["hash"],
                           state: FileState(rawValue: r["state"]) ?? .pending, attempts: r["attempts"], crashes: r["crashes"],
                           completions: r["completions"], error: r["error"], exitCategory: r["exit_category"],
                           damaged: r["damaged"], seconds: r["seconds"], finishedAt: r["finished_at"])
            }
        }
    }

    public func outputs(of fileID: Int64) async throws -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT path FROM outputs WHERE file_id = ? ORDER BY path", arguments: [fileID]) }
    }

    public func events(of fileID: Int64) async throws -> [ArchivedEvent] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT idx, start_s, end_s, start_exact, end_exact, kind, caption, keyframe FROM events WHERE file_id = ? ORDER BY idx
                """, arguments: [fileID]).map { r in
                ArchivedEvent(index: r["idx"], start: r["start_s"], end: r["end_s"], startExact: r["start_exact"],
                              endExact: r["end_exact"], kind: r["kind"], caption: r["caption"], keyframe: r["keyframe"])
            }
        }
    }

    public func status() async throws -> ArchiveStatus {
        try read { db in
            var counts: [FileState: Int] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM files GROUP BY state") {
                if let s = FileState(rawValue: r["state"]) { counts[s] = r["n"] }
            }
            let damaged = try Int.fetchOne(db, sql: "SELECT count(*) FROM files WHERE damaged") ?? 0
            let span = try Row.fetchOne(db, sql: """
                SELECT count(*) AS n, min(finished_at - seconds) AS first, max(finished_at) AS last FROM files
                WHERE state IN ('done', 'failed') AND seconds IS NOT NULL
                """)
            let errors = try Row.fetchAll(db, sql: """
                SELECT coalesce(exit_category, '') AS c, coalesce(error, '') AS e, count(*) AS n FROM files WHERE state = 'failed'
                GROUP BY exit_category, error ORDER BY n DESC, error LIMIT 10
                """).map { ArchiveStatus.ErrorCount(category: $0["c"], message: $0["e"], count: $0["n"]) }
            let n: Int = span?["n"] ?? 0
            let first: Double? = span?["first"]
            let last: Double? = span?["last"]
            return ArchiveStatus(counts: counts, damaged: damaged, throughput: ArchiveStatus.rate(count: n, first: first, last: last),
                                 errors: errors)
        }
    }

    public func importEvents(_ file: FileFingerprint, events: [ArchivedEvent], outputs: [String]) async throws {
        _ = try await register([file])
        try write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM files WHERE path = ?", arguments: [file.path]) else { return }
            try db.execute(sql: """
                UPDATE files SET state = 'done', completions = 1, error = NULL, exit_category = NULL, lease_token = NULL,
                lease_owner = NULL, lease_expires = NULL, finished_at = ? WHERE id = ?
                """, arguments: [Self.now(), id])
            try Self.replaceEvents(db, fileID: id, events: events, outputs: outputs)
        }
    }

    // MARK: - Search

    public func search(_ query: SearchQuery) async throws -> [SearchHit] {
        let words = query.words
        guard !words.isEmpty else { return [] }
        // Each word quoted: FTS5 syntax in the user's text (NEAR, -, :) is taken literally; all must match.
        let match = words.map { "\"\($0)\"" }.joined(separator: " ")
        var sql = """
            SELECT f.path, e.start_s, e.end_s, -bm25(events_fts) AS score,
                   snippet(events_fts, 0, '\(SearchHit.markStart)', '\(SearchHit.markEnd)', '…', 32) AS snippet,
                   e.caption, e.keyframe
            FROM events_fts JOIN events e ON e.id = events_fts.rowid JOIN files f ON f.id = e.file_id
            WHERE events_fts MATCH ?
            """
        var arguments: StatementArguments = [match]
        if let glob = query.fileGlob {
            sql += glob.contains("/") ? " AND f.path GLOB ?" : " AND f.name GLOB ?"
            arguments += [glob]
        }
        if let v = query.startAfter { sql += " AND e.start_s >= ?"; arguments += [v] }
        if let v = query.startBefore { sql += " AND e.start_s <= ?"; arguments += [v] }
        if let v = query.fileAfter { sql += " AND f.mtime >= ?"; arguments += [v] }
        if let v = query.fileBefore { sql += " AND f.mtime <= ?"; arguments += [v] }
        sql += " ORDER BY bm25(events_fts), f.path, e.start_s LIMIT ?"
        arguments += [query.limit]
        return try read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { r in
                SearchHit(path: r["path"], start: r["start_s"], end: r["end_s"], score: r["score"], snippet: r["snippet"] ?? "",
                          caption: r["caption"] ?? "", keyframe: r["keyframe"])
            }
        }
    }

    public func close() async throws {
        try pool.close()
    }
}

extension ArchiveStatus {
    static func rate(count: Int, first: Double?, last: Double?) -> Double? {
        guard count >= 2, let first, let last, last > first else { return nil }
        return Double(count) / (last - first)
    }
}

extension JSONEncoder {
    /// Keys sorted, so the same settings always encode to the same text.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
