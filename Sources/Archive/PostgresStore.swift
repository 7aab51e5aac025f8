import Foundation
import Logging
import PostgresNIO

/// The shared store: one PostgreSQL database that the workers of several machines point at.
/// Claims take `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on each other's rows;
/// times come from the server's clock, so machines with skewed clocks agree on lease expiry.
public final class PostgresStore: ArchiveStore {
    public let location: String
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or `?host=/socket/folder` for a Unix socket.
    public init(url: String, logger: Logger = Logger(label: "densecap.archive.postgres", factory: { _ in SwiftLogNoOpLogHandler() })) async throws {
        location = Self.redacted(url)
        self.logger = logger
        let config = try Self.configuration(url)
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
        do {
            try await migrate()
        } catch {
            runner.cancel()
            throw ArchiveError.database("\(location): cannot open the archive: \(Self.describe(error))")
        }
    }

    static func configuration(_ url: String) throws -> PostgresClient.Configuration {
        guard let c = URLComponents(string: url), let user = c.user, !user.isEmpty else {
            throw ArchiveError.badStore("\(redacted(url)): not a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")
        }
        let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        let socketFolder = c.queryItems?.first(where: { $0.name == "host" })?.value
        var config: PostgresClient.Configuration
        if let socketFolder, socketFolder.hasPrefix("/") {
            let port = c.port ?? 5432
            config = .init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: user, password: c.password,
                           database: database.isEmpty ? nil : database)
        } else {
            config = .init(host: c.host ?? "localhost", port: c.port ?? 5432, username: user, password: c.password,
                           database: database.isEmpty ? nil : database, tls: .disable)
        }
        config.options.maximumConnections = 4
        return config
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? url
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            return "\(e.code)"
        }
        if let e = error as? PostgresTransactionError {
            return describe(e.closureError ?? e.commitError ?? e.beginError ?? error)
        }
        return "\(error)"
    }

    private func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { try await body($0) }
        } catch let error as PostgresTransactionError {
            if let e = error.closureError as? ArchiveError { throw e }
            throw ArchiveError.database("\(location): \(Self.describe(error))")
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError.database("\(location): \(Self.describe(error))")
        }
    }

    private func rows(_ conn: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRow] {
        try await conn.query(query, logger: logger).collect()
    }

    private func now(_ conn: PostgresConnection) async throws -> Double {
        let r = try await rows(conn, "SELECT extract(epoch FROM clock_timestamp())::float8")
        return try r[0].decode(Double.self)
    }

    private func migrate() async throws {
        try await transaction { conn in
            // Workers starting together: one migrates, the others wait here and find it done.
            _ = try await rows(conn, "SELECT pg_advisory_xact_lock(727170111)")
            _ = try await rows(conn, PostgresQuery(unsafeSQL: Schema.migrationsTable))
            let applied = Set(try await rows(conn, "SELECT version FROM archive_migrations").map { try $0.decode(Int.self) })
            for m in Schema.migrations where !applied.contains(m.version) {
                for sql in Schema.statements(m, .postgres) { _ = try await rows(conn, PostgresQuery(unsafeSQL: sql)) }
                _ = try await rows(conn, "INSERT INTO archive_migrations (version, name) VALUES (\(m.version), \(m.name))")
            }
        }
    }

    // MARK: - Settings and files

    public func loadSettings() async throws -> ArchiveSettings? {
        try await transaction { conn in
            guard let row = try await rows(conn, "SELECT json FROM archive_settings WHERE id = 1").first else { return nil }
            return try JSONDecoder().decode(ArchiveSettings.self, from: Data(try row.decode(String.self).utf8))
        }
    }

    public func saveSettings(_ settings: ArchiveSettings) async throws {
        let json = String(decoding: try JSONEncoder.sorted.encode(settings), as: UTF8.self)
        let location = self.location
        try await transaction { conn in
            _ = try await rows(conn, "LOCK TABLE archive_settings IN EXCLUSIVE MODE")
            if let row = try await rows(conn, "SELECT json FROM archive_settings WHERE id = 1").first {
                let old = try JSONDecoder().decode(ArchiveSettings.self, from: Data(try row.decode(String.self).utf8))
                guard old == settings else { throw ArchiveError.settingsDiffer(location) }
                return
            }
            _ = try await rows(conn, "INSERT INTO archive_settings (id, json) VALUES (1, \(json))")
        }
    }

    public func fingerprint(of path: String) async throws -> FileFingerprint? {
        try await transaction { conn in
            try await rows(conn, "SELECT path, size, mtime, hash FROM files WHERE path = \(path)").first.map {
                let (p, s, m, h) = try $0.decode((String, Int64, Double, String).self)
                return FileFingerprint(path: p, size: s, mtime: m, hash: h)
            }
        }
    }

    public func register(_ files: [FileFingerprint]) async throws -> RegisterSummary {
        try await transaction { conn in
            var summary = RegisterSummary()
            for f in files {
                if let row = try await rows(conn, "SELECT id, size, mtime, hash FROM files WHERE path = \(f.path) FOR UPDATE").first {
                    let (id, size, mtime, hash) = try row.decode((Int64, Int64, Double, String).self)
                    if size == f.size && mtime == f.mtime && hash == f.hash { summary.unchanged += 1; continue }
                    // started_at stays: the next claim learns that a worker may have left partial outputs.
                    _ = try await rows(conn, "DELETE FROM events WHERE file_id = \(id)")
                    _ = try await rows(conn, "DELETE FROM outputs WHERE file_id = \(id)")
                    _ = try await rows(conn, """
                        UPDATE files SET size = \(f.size), mtime = \(f.mtime), hash = \(f.hash), state = 'pending', attempts = 0,
                        crashes = 0, completions = 0, error = NULL, exit_category = NULL, damaged = FALSE, lease_token = NULL,
                        lease_owner = NULL, lease_expires = NULL, finished_at = NULL, seconds = NULL
                        WHERE id = \(id)
                        """)
                    summary.changed += 1
                } else {
                    let inserted = try await rows(conn, """
                        INSERT INTO files (path, name, size, mtime, hash) VALUES (\(f.path), \(Schema.name(of: f.path)), \(f.size), \(f.mtime), \(f.hash))
                        ON CONFLICT (path) DO NOTHING RETURNING id
                        """)
                    if inserted.isEmpty { summary.unchanged += 1 } else { summary.added += 1 }
                }
            }
            return summary
        }
    }

    // MARK: - Leases

    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        try await transaction { conn in try await claim(conn, request, now: try await now(conn)) }
    }

    private func claim(_ conn: PostgresConnection, _ request: ClaimRequest, now: Double) async throws -> ClaimResult {
        // Expired leases whose next crash reaches the bound: failed, not reclaimed.
        let doomed = try await rows(conn, """
            SELECT id, path, crashes FROM files WHERE state = 'running' AND lease_expires < \(now) AND crashes + 1 >= \(request.maxCrashes)
            FOR UPDATE SKIP LOCKED
            """)
        for row in doomed {
            let (id, path, old) = try row.decode((Int64, String, Int).self)
            let crashes = old + 1
            _ = try await rows(conn, """
                UPDATE files SET state = 'failed', crashes = \(crashes), error = \(Schema.crashMessage(path, crashes: crashes)),
                exit_category = \(Schema.crashCategory), lease_token = NULL, lease_owner = NULL, lease_expires = NULL,
                finished_at = \(now) WHERE id = \(id)
                """)
        }
        let token = Schema.token()
        let expires = now + request.leaseSeconds
        let claimed = try await rows(conn, """
            WITH c AS (
                SELECT id, state AS old_state, started_at IS NOT NULL AS claimed_before FROM files
                WHERE state = 'pending' OR (state = 'running' AND lease_expires < \(now))
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            UPDATE files f SET state = 'running', lease_token = \(token), lease_owner = \(request.owner), lease_expires = \(expires),
                attempts = f.attempts + 1, crashes = f.crashes + CASE WHEN c.old_state = 'running' THEN 1 ELSE 0 END,
                started_at = \(now)
            FROM c WHERE f.id = c.id RETURNING f.id, f.path, f.attempts, c.claimed_before
            """)
        if let row = claimed.first {
            let (id, path, attempt, before) = try row.decode((Int64, String, Int, Bool).self)
            return .claimed(Lease(fileID: id, path: path, token: token, owner: request.owner, expires: expires, attempt: attempt,
                                  claimedBefore: before))
        }
        // Nothing free: rows locked by a concurrent claim count as running, so wait briefly.
        let (next, locked) = try await rows(conn, """
            SELECT min(lease_expires), count(*) FILTER (WHERE state = 'pending') FROM files WHERE state IN ('running', 'pending')
            """)[0].decode((Double?, Int).self)
        if locked > 0 { return .wait(seconds: 0.05) }
        return next.map { .wait(seconds: max(0.05, $0 - now)) } ?? .finished
    }

    public func renew(_ lease: Lease, leaseSeconds: Double) async throws -> Lease? {
        try await transaction { conn in
            let now = try await now(conn)
            var renewed = lease
            renewed.expires = now + leaseSeconds
            let r = try await rows(conn, """
                UPDATE files SET lease_expires = \(renewed.expires) WHERE id = \(lease.fileID) AND lease_token = \(lease.token)
                AND state = 'running' RETURNING id
                """)
            return r.count == 1 ? renewed : nil
        }
    }

    public func finish(_ lease: Lease, _ outcome: FileOutcome, seconds: Double, thenClaim next: ClaimRequest?) async throws -> FinishResult {
        try await transaction { conn in
            let now = try await now(conn)
            switch outcome {
            case .done(let result):
                let r = try await rows(conn, """
                    UPDATE files SET state = 'done', completions = completions + 1, error = NULL, exit_category = NULL,
                    damaged = \(result.damaged), lease_token = NULL, lease_owner = NULL, lease_expires = NULL,
                    finished_at = \(now), seconds = \(seconds)
                    WHERE id = \(lease.fileID) AND lease_token = \(lease.token) AND state = 'running' RETURNING id
                    """)
                guard r.count == 1 else { return .refused }
                try await replaceEvents(conn, fileID: lease.fileID, events: result.events, outputs: result.outputs)
            case .failed(let failure):
                let r = try await rows(conn, """
                    UPDATE files SET state = 'failed', error = \(failure.message), exit_category = \(failure.category),
                    lease_token = NULL, lease_owner = NULL, lease_expires = NULL, finished_at = \(now), seconds = \(seconds)
                    WHERE id = \(lease.fileID) AND lease_token = \(lease.token) AND state = 'running' RETURNING id
                    """)
                guard r.count == 1 else { return .refused }
            }
            guard let next else { return .accepted(next: nil) }
            return .accepted(next: try await claim(conn, next, now: now))
        }
    }

    private func replaceEvents(_ conn: PostgresConnection, fileID: Int64, events: [ArchivedEvent], outputs: [String]) async throws {
        _ = try await rows(conn, "DELETE FROM events WHERE file_id = \(fileID)")
        _ = try await rows(conn, "DELETE FROM outputs WHERE file_id = \(fileID)")
        let paths = Set(outputs).sorted()
        if !paths.isEmpty {
            _ = try await rows(conn, "INSERT INTO outputs (file_id, path) SELECT \(fileID), unnest(\(paths)::text[])")
        }
        // One statement per batch of events: arrays unnested server-side ('' stands for no caption).
        for chunk in stride(from: 0, to: events.count, by: 2000).map({ Array(events[$0..<min($0 + 2000, events.count)]) }) {
            _ = try await rows(conn, """
                INSERT INTO events (file_id, idx, start_s, end_s, start_exact, end_exact, kind, caption, keyframe)
                SELECT \(fileID), i, s, e, se, ee, k, NULLIF(c, ''), NULLIF(kf, '')
                FROM unnest(\(chunk.map(\.index))::int[], \(chunk.map(\.start))::float8[],
                    \(chunk.map(\.end))::float8[], \(chunk.map(\.startExact))::text[], \(chunk.map(\.endExact))::text[],
                    \(chunk.map(\.kind))::text[], \(chunk.map { $0.caption ?? "" })::text[], \(chunk.map { $0.keyframe ?? "" })::text[])
                    AS t(i, s, e, se, ee, k, c, kf)
                """)
        }
    }

    public func abandon(owner: String, maxCrashes: Int) async throws -> Int {
        try await transaction { conn in
            let now = try await now(conn)
            let held = try await rows(conn, "SELECT id, path, crashes FROM files WHERE state = 'running' AND lease_owner = \(owner) FOR UPDATE")
            for row in held {
                let (id, path, old) = try row.decode((Int64, String, Int).self)
                let crashes = old + 1
                if crashes >= maxCrashes {
                    _ = try await rows(conn, """
                        UPDATE files SET state = 'failed', crashes = \(crashes), error = \(Schema.crashMessage(path, crashes: crashes)),
                        exit_category = \(Schema.crashCategory), lease_token = NULL, lease_owner = NULL, lease_expires = NULL,
                        finished_at = \(now) WHERE id = \(id)
                        """)
                } else {
                    _ = try await rows(conn, """
                        UPDATE files SET state = 'pending', crashes = \(crashes), lease_token = NULL, lease_owner = NULL,
                        lease_expires = NULL WHERE id = \(id)
                        """)
                }
            }
            return held.count
        }
    }

    public func retry(paths: [String]?) async throws -> Int {
        try await transaction { conn in
            let reset = """
                UPDATE files SET state = 'pending', attempts = 0, crashes = 0, error = NULL, exit_category = NULL,
                finished_at = NULL, seconds = NULL WHERE state = 'failed'
                """
            if let paths {
                return try await rows(conn, "\(unescaped: reset) AND path = ANY(\(paths)::text[]) RETURNING id").count
            }
            return try await rows(conn, "\(unescaped: reset) RETURNING id").count
        }
    }

    // MARK: - Reading

    public func files() async throws -> [FileRecord] {
        try await transaction { conn in
            try await rows(conn, """
                SELECT id, path, size, mtime, hash, state, attempts, crashes, completions, error, exit_category, damaged,
                seconds, finished_at FROM files ORDER BY path
                """).map { r in
                let (id, path, size, mtime, hash, state, attempts, crashes, completions, error, category, damaged, seconds, finished) =
                    try r.decode((Int64, String, Int64, Double, String, String, Int, Int, Int, String?, String?, Bool, Double?, Double?).self)
                return FileRecord(id: id, path: path, size: size, mtime: mtime, hash: hash, state: FileState(rawValue: state) ?? .pending,
                                  attempts: attempts, crashes: crashes, completions: completions, error: error,
                                  exitCategory: category, damaged: damaged, seconds: seconds, finishedAt: finished)
            }
        }
    }

    public func outputs(of fileID: Int64) async throws -> [String] {
        try await transaction { conn in
            try await rows(conn, "SELECT path FROM outputs WHERE file_id = \(fileID) ORDER BY path COLLATE \"C\"").map { try $0.decode(String.self) }
        }
    }

    public func events(of fileID: Int64) async throws -> [ArchivedEvent] {
        try await transaction { conn in
            try await rows(conn, """
                SELECT idx, start_s, end_s, start_exact, end_exact, kind, caption, keyframe FROM events
                WHERE file_id = \(fileID) ORDER BY idx
                """).map { r in
                let (i, s, e, se, ee, k, c, kf) = try r.decode((Int, Double, Double, String, String, String, String?, String?).self)
                return ArchivedEvent(index: i, start: s, end: e, startExact: se, endExact: ee, kind: k, caption: c, keyframe: kf)
            }
        }
    }

    public func status() async throws -> ArchiveStatus {
        try await transaction { conn in
            var counts: [FileState: Int] = [:]
            for r in try await rows(conn, "SELECT state, count(*) FROM files GROUP BY state") {
                let (s, n) = try r.decode((String, Int).self)
                if let state = FileState(rawValue: s) { counts[state] = n }
            }
            let damaged = try await rows(conn, "SELECT count(*) FROM files WHERE damaged")[0].decode(Int.self)
            let (n, first, last) = try await rows(conn, """
                SELECT count(*), min(finished_at - seconds), max(finished_at) FROM files
                WHERE state IN ('done', 'failed') AND seconds IS NOT NULL
                """)[0].decode((Int, Double?, Double?).self)
            let errors = try await rows(conn, """
                SELECT coalesce(exit_category, ''), coalesce(error, ''), count(*) AS n FROM files WHERE state = 'failed'
                GROUP BY exit_category, error ORDER BY n DESC, 2 LIMIT 10
                """).map { r in
                let (c, m, n) = try r.decode((String, String, Int).self)
                return ArchiveStatus.ErrorCount(category: c, message: m, count: n)
            }
            return ArchiveStatus(counts: counts, damaged: damaged, throughput: ArchiveStatus.rate(count: n, first: first, last: last), errors: errors)
        }
    }

    public func importEvents(_ file: FileFingerprint, events: [ArchivedEvent], outputs: [String]) async throws {
        _ = try await register([file])
        try await transaction { conn in
            guard let row = try await rows(conn, "SELECT id FROM files WHERE path = \(file.path) FOR UPDATE").first else { return }
            let id = try row.decode(Int64.self)
            let now = try await now(conn)
            _ = try await rows(conn, """
                UPDATE files SET state = 'done', completions = 1, error = NULL, exit_category = NULL, lease_token = NULL,
                lease_owner = NULL, lease_expires = NULL, finished_at = \(now) WHERE id = \(id)
                """)
            try await replaceEvents(conn, fileID: id, events: events, outputs: outputs)
        }
    }

    // MARK: - Search

    public func search(_ query: SearchQuery) async throws -> [SearchHit] {
        let words = query.words
        guard !words.isEmpty else { return [] }
        var binds = PostgresBindings()
        binds.append(words.joined(separator: " "))
        var sql = """
            SELECT f.path, e.start_s, e.end_s, ts_rank(e.caption_tsv, q)::float8 AS score,
                   ts_headline('english', e.caption, q, 'StartSel=\(SearchHit.markStart), StopSel=\(SearchHit.markEnd), MaxWords=32, MinWords=15') AS snippet,
                   e.caption, e.keyframe
            FROM events e JOIN files f ON f.id = e.file_id, plainto_tsquery('english', $1) q
            WHERE e.caption_tsv @@ q
            """
        func bind(_ clause: String, _ value: some PostgresDynamicTypeEncodable) {
            binds.append(value)
            sql += clause.replacingOccurrences(of: "$?", with: "$\(binds.count)")
        }
        if let glob = query.fileGlob { bind(glob.contains("/") ? " AND f.path ~ $?" : " AND f.name ~ $?", Schema.globRegex(glob)) }
        if let v = query.startAfter { bind(" AND e.start_s >= $?", v) }
        if let v = query.startBefore { bind(" AND e.start_s <= $?", v) }
        if let v = query.fileAfter { bind(" AND f.mtime >= $?", v) }
        if let v = query.fileBefore { bind(" AND f.mtime <= $?", v) }
        bind(" ORDER BY score DESC, f.path, e.start_s LIMIT $?", query.limit)
        let q = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try await transaction { conn in
            try await rows(conn, q).map { r in
                let (path, start, end, score, snippet, caption, keyframe) = try r.decode((String, Double, Double, Double, String, String, String?).self)
                return SearchHit(path: path, start: start, end: end, score: score, snippet: snippet, caption: caption,
                                 keyframe: keyframe)
            }
        }
    }

    public func close() async throws {
        runner.cancel()
    }
}
