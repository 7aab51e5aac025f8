import Foundation
import Logging
import PostgresNIO

/// A real PostgreSQL server for the archive tests: the one `scripts/test.sh` started (its URL in
/// $DENSECAP_TEST_POSTGRES_URL), or else one this process starts itself with Debian's `initdb` and
/// `pg_ctl` in a temporary folder (as the `postgres` user when running as root), stopped at exit.
/// Each test gets a database of its own.
public enum TestPostgres {
    public static let environmentKey = "DENSECAP_TEST_POSTGRES_URL"

    /// Why PostgreSQL tests cannot run here, or nil when they can.
    public static var unavailableReason: String? {
        switch server {
        case .success: nil
        case .failure(let e): e.description
        }
    }

    /// A URL of a fresh, empty database on the server.
    public static func freshDatabase(_ label: String) async throws -> String {
        let base = try server.get()
        let name = "t_\(label.lowercased().filter { $0.isLetter || $0.isNumber })_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        var c = URLComponents(string: base)!
        let config = PostgresConnection.Configuration(
            host: c.host ?? "127.0.0.1", port: c.port ?? 5432, username: c.user ?? "postgres", password: c.password,
            database: "postgres", tls: .disable)
        let conn = try await PostgresConnection.connect(configuration: config, id: 1, logger: Logger(label: "test-postgres"))
        do {
            try await conn.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test-postgres"))
        } catch {
            try? await conn.close()
            throw error
        }
        try await conn.close()
        c.path = "/\(name)"
        return c.string!
    }

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    private static let server: Result<String, Unavailable> = {
        if let url = ProcessInfo.processInfo.environment[environmentKey], !url.isEmpty { return .success(url) }
        return Result { try startServer() }.mapError { $0 as? Unavailable ?? Unavailable(description: "\($0)") }
    }()

    nonisolated(unsafe) private static var dataFolder: String?
    nonisolated(unsafe) private static var runAs: [String] = []

    private static func startServer() throws -> String {
        guard let bin = postgresBin() else {
            throw Unavailable(description: "PostgreSQL tests skipped: no initdb found (install Debian's postgresql, or run scripts/test.sh, which does)")
        }
        let folder = NSTemporaryDirectory() + "densecap-pg-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
        if getuid() == 0 {
            runAs = ["/usr/sbin/runuser", "-u", "postgres", "--"]
            try shell(["/bin/chown", "postgres", folder])
        }
        let data = folder + "/data"
        try shell(runAs + ["\(bin)/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        let port = freePort()
        dataFolder = data
        try shell(runAs + ["\(bin)/pg_ctl", "-D", data, "-w", "-l", folder + "/log", "-o",
                           "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"])
        atexit {
            guard let data = TestPostgres.dataFolder, let bin = TestPostgres.postgresBin() else { return }
            _ = try? TestPostgres.shell(TestPostgres.runAs + ["\(bin)/pg_ctl", "-D", data, "-m", "immediate", "stop"])
            try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
        }
        return "postgres://postgres@127.0.0.1:\(port)/postgres"
    }

    static func postgresBin() -> String? {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for v in versions where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(v)/bin/initdb") {
            return "/usr/lib/postgresql/\(v)/bin"
        }
        return nil
    }

    /// A loopback port nobody listens on now.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a command, its output to a file, and waits for it with `waitpid` (posix_spawn, not
    /// Foundation's Process, whose exit detection waits for the server pg_ctl leaves running).
    @discardableResult
    static func shell(_ arguments: [String]) throws -> String {
        let log = NSTemporaryDirectory() + "densecap-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { try? FileManager.default.removeItem(atPath: log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard rc == 0 else { throw Unavailable(description: "PostgreSQL test server: cannot run \(arguments[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // Exited (low 7 bits 0) with status 0.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Unavailable(description: "PostgreSQL test server: \(arguments.joined(separator: " ")) failed: \(text.suffix(500))")
        }
        return text
    }
}
