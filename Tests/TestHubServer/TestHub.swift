import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny model repo served the way the Hub serves it.
public struct FixtureFile: Sendable {
    public let path: String
    public let bytes: [UInt8]
    /// Stored in LFS: the resolve URL redirects to the "CDN" server and the ETag is the sha256.
    public let lfs: Bool

    public init(path: String, bytes: [UInt8], lfs: Bool) {
        self.path = path
        self.bytes = bytes
        self.lfs = lfs
    }

    /// git's blob id, sha1("blob <size>\0" + bytes), the Hub's ETag for a file kept in git.
    public var gitBlobID: String {
        var sha1 = Insecure.SHA1()
        sha1.update(data: Data("blob \(bytes.count)\0".utf8))
        sha1.update(data: bytes)
        return hex(sha1.finalize())
    }
    public var sha256: String { hex(SHA256.hash(data: bytes)) }
    /// What the Hub sends as X-Linked-Etag (LFS) or ETag (git).
    public var etag: String { lfs ? sha256 : gitBlobID }
}

public func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    digest.map { String(format: "%02x", $0) }.joined()
}

public struct FixtureRepo: Sendable {
    public var revisions: [String: (commit: String, files: [FixtureFile])]
    /// Needs `Authorization: Bearer good-token`; without it the Hub answers 401 (private) or 403 (gated).
    public var access: Access
    public enum Access: Sendable { case `public`, `private`, gated }

    public init(revisions: [String: (commit: String, files: [FixtureFile])], access: Access = .public) {
        self.revisions = revisions
        self.access = access
    }
}

/// One request as the server saw it.
public struct LoggedRequest: Sendable {
    public let server: String  // "hub" or "cdn"
    public let method: String
    public let path: String
    public let range: String?
    public let authorization: String?
}

/// What the servers serve and what they saw; shared by both servers' connections.
public final class HubState: Sendable {
    public struct Faults {
        /// Drop the connection after this many body bytes of the next GET of a CDN blob (sha256 → bytes).
        public var dropOnce: [String: Int] = [:]
        /// Drop every GET of this CDN blob after this many bytes.
        public var dropAlways: [String: Int] = [:]
        /// Answer the next GET of these CDN blobs with 403, as storage does once a signed URL expired.
        public var expireOnce: Set<String> = []
        /// Answer the next N requests to the model API with 500.
        public var apiFailures = 0
    }

    private struct State {
        var repos: [String: FixtureRepo] = [:]
        var renamed: [String: String] = [:]
        var faults = Faults()
        public var log: [LoggedRequest] = []
        var cdnPort = 0
    }

    private let state = Mutex(State())

    public func addRepo(_ name: String, _ repo: FixtureRepo) { state.withLock { $0.repos[name] = repo } }
    public func rename(_ old: String, to new: String) { state.withLock { $0.renamed[old] = new } }
    func setCDNPort(_ port: Int) { state.withLock { $0.cdnPort = port } }
    public func faults(_ change: (inout Faults) -> Void) { state.withLock { change(&$0.faults) } }
    public var log: [LoggedRequest] { state.withLock { $0.log } }
    public func clearLog() { state.withLock { $0.log = [] } }

    struct Reply {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        var dropAfter: Int?
    }

    func respond(server: String, head: HTTPRequestHead) -> Reply {
        state.withLock { s in
            let auth = head.headers.first(name: "Authorization")
            s.log.append(
                LoggedRequest(
                    server: server, method: "\(head.method)", path: head.uri, range: head.headers.first(name: "Range"),
                    authorization: auth))
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let parts = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
            if server == "cdn" { return Self.cdn(&s, parts: parts, head: head) }
            if parts.count >= 6, parts[0] == "api", parts[1] == "models", parts[4] == "revision" {
                return Self.api(
                    &s, repo: "\(parts[2])/\(parts[3])", revision: parts[5...].joined(separator: "/"), auth: auth)
            }
            if parts.count >= 5, parts[2] == "resolve" {
                return Self.resolve(
                    &s, repo: "\(parts[0])/\(parts[1])", revision: parts[3], file: parts[4...].joined(separator: "/"),
                    head: head, auth: auth)
            }
            return Reply(status: .notFound)
        }
    }

    private static func error(_ status: HTTPResponseStatus, code: String, _ message: String) -> Reply {
        Reply(
            status: status,
            headers: [("X-Error-Code", code), ("X-Error-Message", message), ("Content-Type", "application/json")],
            body: Array("{\"error\":\"\(message)\"}".utf8))
    }

    private static func access(_ repo: FixtureRepo, auth: String?) -> Reply? {
        guard repo.access != .public, auth != "Bearer good-token" else { return nil }
        return repo.access == .private
            ? error(.unauthorized, code: "RepoNotFound", "Repository not found")
            : error(.forbidden, code: "GatedRepo", "Access to model is restricted")
    }

    private static func api(_ s: inout State, repo name: String, revision: String, auth: String?) -> Reply {
        if s.faults.apiFailures > 0 {
            s.faults.apiFailures -= 1
            return Reply(status: .internalServerError, body: Array("{\"error\":\"Internal Error\"}".utf8))
        }
        if let new = s.renamed[name] {
            return Reply(status: .temporaryRedirect, headers: [("Location", "/api/models/\(new)/revision/\(revision)")])
        }
        guard let repo = s.repos[name] else { return error(.notFound, code: "RepoNotFound", "Repository not found") }
        if let denied = access(repo, auth: auth) { return denied }
        guard let rev = Self.revision(repo, revision) else {
            return error(.notFound, code: "RevisionNotFound", "Invalid rev id: \(revision)")
        }
        let siblings = rev.files.map { f -> [String: Any] in
            var entry: [String: Any] = ["rfilename": f.path, "size": f.bytes.count, "blobId": f.gitBlobID]
            if f.lfs { entry["lfs"] = ["size": f.bytes.count, "sha256": f.sha256, "pointerSize": 134] }
            return entry
        }
        let json: [String: Any] = [
            "id": name, "modelId": name, "sha": rev.commit, "private": repo.access == .private, "siblings": siblings,
        ]
        return Reply(
            status: .ok, headers: [("Content-Type", "application/json")],
            body: Array(try! JSONSerialization.data(withJSONObject: json)))
    }

    private static func revision(_ repo: FixtureRepo, _ revision: String) -> (commit: String, files: [FixtureFile])? {
        repo.revisions[revision] ?? repo.revisions.values.first { $0.commit == revision }
    }

    private static func resolve(
        _ s: inout State, repo name: String, revision: String, file: String, head: HTTPRequestHead, auth: String?
    ) -> Reply {
        if let new = s.renamed[name] {
            // Relative, as the Hub redirects a renamed repo.
            return Reply(status: .temporaryRedirect, headers: [("Location", "/\(new)/resolve/\(revision)/\(file)")])
        }
        guard let repo = s.repos[name] else { return error(.notFound, code: "RepoNotFound", "Repository not found") }
        if let denied = access(repo, auth: auth) { return denied }
        guard let rev = Self.revision(repo, revision) else {
            return error(.notFound, code: "RevisionNotFound", "Invalid rev id")
        }
        guard let f = rev.files.first(where: { $0.path == file }) else {
            var reply = error(.notFound, code: "EntryNotFound", "Entry not found")
            reply.headers.append(("X-Repo-Commit", rev.commit))
            return reply
        }
        if f.lfs {
            // An absolute redirect to another host:port, like the Hub's to its LFS storage.
            return Reply(
                status: .found,
                headers: [
                    ("Location", "http://127.0.0.1:\(s.cdnPort)/blobs/\(f.sha256)?X-Amz-Signature=abc"),
                    ("X-Repo-Commit", rev.commit), ("X-Linked-Etag", "\"\(f.sha256)\""),
                    ("X-Linked-Size", "\(f.bytes.count)"),
                    ("ETag", "W/\"\(f.gitBlobID)\""), ("Content-Length", "0"),
                ])
        }
        return ranged(f.bytes, head: head, headers: [("X-Repo-Commit", rev.commit), ("ETag", "\"\(f.gitBlobID)\"")])
    }

    private static func cdn(_ s: inout State, parts: [String], head: HTTPRequestHead) -> Reply {
        guard parts.count == 2, parts[0] == "blobs",
            let f = s.repos.values.flatMap({ $0.revisions.values.flatMap { $0.files } }).first(where: {
                $0.lfs && $0.sha256 == parts[1]
            })
        else { return Reply(status: .notFound) }
        var reply = ranged(f.bytes, head: head, headers: [("ETag", "\"\(f.sha256)\"")])
        if head.method == .GET, s.faults.expireOnce.remove(f.sha256) != nil {
            return Reply(status: .forbidden, body: Array("<Error><Code>AccessDenied</Code></Error>".utf8))
        }
        if head.method == .GET {
            if let n = s.faults.dropOnce.removeValue(forKey: f.sha256) { reply.dropAfter = n }
            if let n = s.faults.dropAlways[f.sha256] { reply.dropAfter = n }
        }
        return reply
    }

    /// 200 with the whole body, or 206/416 for `Range: bytes=N-[M]`.
    private static func ranged(_ bytes: [UInt8], head: HTTPRequestHead, headers: [(String, String)]) -> Reply {
        var headers = headers + [("Accept-Ranges", "bytes")]
        guard let range = head.headers.first(name: "Range"), range.hasPrefix("bytes=") else {
            return Reply(status: .ok, headers: headers, body: bytes)
        }
        let bounds = range.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
        let start = Int(bounds.first ?? "") ?? 0
        let end =
            bounds.count > 1 ? Int(bounds[1]).map { min($0, bytes.count - 1) } ?? (bytes.count - 1) : bytes.count - 1
        guard start < bytes.count, start <= end else {
            return Reply(status: .rangeNotSatisfiable, headers: headers + [("Content-Range", "bytes */\(bytes.count)")])
        }
        headers.append(("Content-Range", "bytes \(start)-\(end)/\(bytes.count)"))
        return Reply(status: .partialContent, headers: headers, body: Array(bytes[start...end]))
    }
}

/// Serves `HubState` over HTTP/1.1 on one channel: writes the head and the body, or only part of
/// the body and then closes the connection.
private final class HubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: String
    private let state: HubState
    private var head: HTTPRequestHead?

    init(server: String, state: HubState) {
        self.server = server
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let reply = state.respond(server: server, head: head)
            var headers = HTTPHeaders(reply.headers)
            if !headers.contains(name: "Content-Length") {
                headers.add(name: "Content-Length", value: "\(reply.body.count)")
            }
            let keepAlive = head.isKeepAlive && reply.dropAfter == nil
            if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: reply.status, headers: headers))),
                promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            if head.method != .HEAD, !reply.body.isEmpty {
                let count = min(reply.body.count, reply.dropAfter ?? reply.body.count)
                let buffer = context.channel.allocator.buffer(bytes: reply.body[0..<count])
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            if reply.dropAfter != nil {
                // Mid-body: once the bytes are handed to the kernel, close; the client sees the
                // connection end before Content-Length bytes.
                let flushed = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))), promise: flushed)
                flushed.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
                return
            }
            let done = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
            if !keepAlive { done.futureResult.whenComplete { _ in bound.value.close(promise: nil) } }
        }
    }
}

/// The Hub (API and resolve URLs) and its "CDN" on two loopback ports of this process.
public final class TestHub: Sendable {
    public let state: HubState
    private let hub: Channel
    private let cdn: Channel

    private init(state: HubState, hub: Channel, cdn: Channel) {
        self.state = state
        self.hub = hub
        self.cdn = cdn
    }

    public static func start() async throws -> TestHub {
        let state = HubState()
        let hub = try await bind("hub", state: state)
        let cdn = try await bind("cdn", state: state)
        state.setCDNPort(cdn.localAddress?.port ?? 0)
        return TestHub(state: state, hub: hub, cdn: cdn)
    }

    private static func bind(_ server: String, state: HubState) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HubHandler(server: server, state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    public var endpoint: String { "http://127.0.0.1:\(hub.localAddress?.port ?? 0)" }

    public func stop() async {
        try? await hub.close()
        try? await cdn.close()
    }
}
