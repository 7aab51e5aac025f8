import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// One revision of a model repo as the model API lists it.
public struct RepoInfo: Sendable {
    public let repo: String
    /// The commit the revision resolved to.
    public let commit: String
    public let files: [RepoFile]
}

/// One file of a revision.
public struct RepoFile: Sendable, Hashable {
    /// Path inside the repo (`llm/config.json`).
    public let path: String
    /// Bytes, when the API gave them (`?blobs=true`); the LFS size for LFS files.
    public let size: Int64?
}

/// What a HEAD on the file's resolve URL says (huggingface_hub `get_hf_file_metadata`).
struct FileMetadata: Sendable {
    let commit: String
    /// `X-Linked-Etag` (LFS: the sha256) over `ETag` (git: the blob sha1), without quotes or `W/`.
    let etag: String
    /// `X-Linked-Size` over `Content-Length` (the latter only when not redirected).
    let size: Int64
    /// Where to GET the bytes: the redirect target for LFS files, else the resolve URL reached.
    let location: String
    /// False when `location` is on another host than the resolve URL (a CDN): no token there.
    let sendsToken: Bool
}

/// The Hub's HTTP protocol on AsyncHTTPClient: the model API, file metadata, ranged downloads.
/// Redirects are followed by hand, as huggingface_hub does: relative ones (a renamed repo) keep
/// the token; one to another host (LFS storage) is the download URL and gets no token.
final class HubClient: Sendable {
    let configuration: HubConfiguration
    let logger: Logger
    private let http: HTTPClient

    init(configuration: HubConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var http = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(Int64(configuration.connectTimeout.nanoseconds)), read: .seconds(60)))
        http.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: - Requests

    private func headers(token: Bool, extra: [(String, String)] = []) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "User-Agent", value: "densecap/\(densecapHubUserAgentVersion); hf_hub/compatible")
        if token, let value = configuration.token { headers.add(name: "Authorization", value: "Bearer \(value)") }
        for (name, value) in extra { headers.add(name: name, value: value) }
        return headers
    }

    private func send(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        logger.debug("\(method) \(url)")
        // No overall deadline: a large file may take hours; stalls end through the read timeout.
        return try await http.execute(request, deadline: .distantFuture, logger: nil)
    }

    /// Runs `body` up to `configuration.attempts` times while it fails with a retryable error,
    /// waiting `retryDelay`, then twice as long, and so on.
    func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as Retryable {
                guard attempt < configuration.attempts else { throw error.final(attempts: attempt) }
                logger.debug("\(error.error); retrying (\(attempt)/\(configuration.attempts - 1))")
                try await Task.sleep(for: configuration.retryDelay * (1 << min(attempt - 1, 10)))
                attempt += 1
            }
        }
    }

    // MARK: - Model API

    /// `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`: the commit and the files.
    func repoInfo(_ reference: ModelReference) async throws -> RepoInfo {
        let url =
            "\(configuration.endpoint)/api/models/\(reference.repo)/revision/\(percentEncoded(reference.revision, keepingSlash: false))?blobs=true"
        let body: ByteBuffer = try await retrying {
            var current = url
            var response = try await network(repo: reference.repo, file: nil, url: current) {
                try await send(.GET, current, headers: headers(token: true))
            }
            // A renamed repo answers with a redirect to its new name on the same host.
            for _ in 0..<5 where (300...399).contains(response.status.code) {
                guard let location = response.headers.first(name: "Location"),
                    let next = absoluteURL(location, relativeTo: current),
                    hostAndPort(of: next) == hostAndPort(of: current)
                else { break }
                current = next
                response = try await network(repo: reference.repo, file: nil, url: current) {
                    try await send(.GET, current, headers: headers(token: true))
                }
            }
            guard response.status == .ok else {
                throw try await statusError(response, repo: reference.repo, file: nil, revision: reference.revision)
            }
            return try await network(repo: reference.repo, file: nil, url: current) {
                try await response.body.collect(upTo: 64 << 20)
            }
        }
        struct Info: Decodable {
            struct Sibling: Decodable {
                struct LFS: Decodable { let size: Int64? }
                let rfilename: String
                let size: Int64?
                let lfs: LFS?
            }
            let sha: String?
            let siblings: [Sibling]?
        }
        guard let info = try? JSONDecoder().decode(Info.self, from: Data(body.readableBytesView)), let sha = info.sha,
            ModelReference.isCommitHash(sha)
        else {
            throw HubError(
                .protocolError, repo: reference.repo,
                reason: "\(url) did not answer with the model API's JSON (no commit 'sha')")
        }
        let files = try (info.siblings ?? []).map { sibling in
            try validateRelativePath(sibling.rfilename, repo: reference.repo)
            return RepoFile(path: sibling.rfilename, size: sibling.lfs?.size ?? sibling.size)
        }
        return RepoInfo(repo: reference.repo, commit: sha, files: files)
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{path}` (huggingface_hub `hf_hub_url`).
    func resolveURL(repo: String, revision: String, file: String) -> String {
        "\(configuration.endpoint)/\(repo)/resolve/\(percentEncoded(revision, keepingSlash: false))/\(percentEncoded(file, keepingSlash: true))"
    }

    /// HEAD on the resolve URL, following relative redirects only (huggingface_hub
    /// `get_hf_file_metadata` and `_httpx_follow_relative_redirects`).
    func metadata(repo: String, commit: String, file: String) async throws -> FileMetadata {
        let start = resolveURL(repo: repo, revision: commit, file: file)
        return try await retrying {
            var url = start
            for _ in 0..<10 {
                let response = try await network(repo: repo, file: file, url: url) {
                    try await send(.HEAD, url, headers: headers(token: true, extra: [("Accept-Encoding", "identity")]))
                }
                let isRedirect = (300...399).contains(response.status.code)
                if isRedirect, let location = response.headers.first(name: "Location"),
                    URLComponents(string: location)?.host == nil
                {
                    // A renamed repo: same host, new path (the query is dropped, as huggingface_hub does).
                    guard var components = URLComponents(string: url), let target = URLComponents(string: location)
                    else { break }
                    components.percentEncodedPath = target.percentEncodedPath
                    components.percentEncodedQuery = nil
                    url = components.string ?? url
                    continue
                }
                guard response.status == .ok || isRedirect else {
                    throw try await statusError(response, repo: repo, file: file, revision: commit)
                }
                let h = response.headers
                guard let repoCommit = h.first(name: "X-Repo-Commit") else {
                    throw HubError(
                        .protocolError, repo: repo, file: file,
                        reason: "\(url) has no X-Repo-Commit header; is HF_ENDPOINT a Hugging Face Hub?")
                }
                guard let etag = normalizedETag(h.first(name: "X-Linked-Etag") ?? h.first(name: "ETag")) else {
                    throw HubError(.protocolError, repo: repo, file: file, reason: "\(url) has no ETag")
                }
                guard
                    let size = (h.first(name: "X-Linked-Size") ?? (isRedirect ? nil : h.first(name: "Content-Length")))
                        .flatMap({ Int64($0) })
                else {
                    throw HubError(
                        .protocolError, repo: repo, file: file, reason: "\(url) has no X-Linked-Size or Content-Length")
                }
                let location = h.first(name: "Location").flatMap { absoluteURL($0, relativeTo: url) } ?? url
                return FileMetadata(
                    commit: repoCommit, etag: etag, size: size, location: location,
                    sendsToken: hostAndPort(of: location) == hostAndPort(of: start))
            }
            throw HubError(.protocolError, repo: repo, file: file, reason: "too many redirects from \(start)")
        }
    }

    /// Starts a GET of `url` from byte `offset` on, following up to 5 redirects (a token only
    /// goes to the resolve URL's own host). The caller streams the body.
    func get(_ metadata: FileMetadata, offset: Int64, repo: String, file: String) async throws -> HTTPClientResponse {
        var url = metadata.location
        var token = metadata.sendsToken
        for _ in 0..<5 {
            let extra: [(String, String)] = offset > 0 ? [("Range", "bytes=\(offset)-")] : []
            let response = try await network(repo: repo, file: file, url: url) {
                try await send(.GET, url, headers: headers(token: token, extra: extra))
            }
            if (300...399).contains(response.status.code), let location = response.headers.first(name: "Location"),
                let next = absoluteURL(location, relativeTo: url)
            {
                if hostAndPort(of: next) != hostAndPort(of: url) { token = false }
                url = next
                continue
            }
            return response
        }
        throw HubError(.protocolError, repo: repo, file: file, reason: "too many redirects from \(metadata.location)")
    }

    // MARK: - Errors

    /// Wraps a transport failure (refused, reset, dropped, timed out) as a retryable network error.
    func network<T>(repo: String, file: String?, url: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as HubError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let failure = HubError(
                .network, repo: repo, file: file,
                reason: "cannot reach \(hostAndPort(of: url)): \(transportReason(error))")
            // AsyncHTTPClient already retried connecting for the whole connect timeout.
            if isConnectFailure(error) { throw failure }
            throw Retryable(failure)
        }
    }

    private func transportReason(_ error: Error) -> String {
        switch error {
        case let e as IOError: String(cString: strerror(e.errnoCode)).lowercased()
        case let e as HTTPClientError: "\(e)".replacingOccurrences(of: "HTTPClientError.", with: "")
        case is NIOConnectionError: "no connection could be made (name resolution or connect failed)"
        default: oneLine(error)
        }
    }

    private func isConnectFailure(_ error: Error) -> Bool {
        switch error {
        case let e as IOError: [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH].contains(e.errnoCode)
        case let e as HTTPClientError: e == .connectTimeout
        case is NIOConnectionError: true
        default: false
        }
    }

    /// The error for a non-success status; 429 and 5xx come back as `Retryable`.
    func statusError(_ response: HTTPClientResponse, repo: String, file: String?, revision: String) async throws
        -> Error
    {
        let code = response.status.code
        let errorCode = response.headers.first(name: "X-Error-Code")
        var message = response.headers.first(name: "X-Error-Message")
        if message == nil, let body = try? await response.body.collect(upTo: 64 << 10),
            let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        {
            message = json["error"] as? String
        }
        let detail = message.map { " (\(oneLine($0)))" } ?? ""
        switch code {
        case 401:
            let hint =
                configuration.token == nil
                ? "set HF_TOKEN (or run `hf auth login`) with a token that can read it"
                : "the token (HF_TOKEN or the HF token file) cannot read it"
            return HubError(
                .unauthorized, repo: repo, file: file, reason: "not found, or private or gated (401); \(hint)\(detail)")
        case 403:
            let what =
                errorCode == "GatedRepo"
                ? "gated model: accept its conditions on the model's Hub page, then " : "access denied (403): "
            return HubError(
                .unauthorized, repo: repo, file: file, reason: "\(what)set HF_TOKEN to a token with access\(detail)")
        case 404:
            switch errorCode {
            case "RevisionNotFound":
                return HubError(.notFound, repo: repo, reason: "revision '\(revision)' not found (404)\(detail)")
            case "EntryNotFound":
                return HubError(
                    .notFound, repo: repo, file: file, reason: "file not found at \(revision) (404)\(detail)")
            case "RepoNotFound": return HubError(.notFound, repo: repo, reason: "repository not found (404)\(detail)")
            default: return HubError(.notFound, repo: repo, file: file, reason: "not found (404)\(detail)")
            }
        case 408, 429, 500...599:
            return Retryable(
                HubError(
                    .network, repo: repo, file: file,
                    reason: "the Hub answered \(code) \(response.status.reasonPhrase)\(detail)"))
        default:
            return HubError(
                .protocolError, repo: repo, file: file,
                reason: "unexpected HTTP \(code) \(response.status.reasonPhrase)\(detail)")
        }
    }
}

/// A failure worth another try (connection trouble, 429, 5xx).
struct Retryable: Error {
    let error: HubError
    init(_ error: HubError) { self.error = error }
    func final(attempts: Int) -> HubError {
        HubError(
            error.kind, repo: error.repo, file: error.file,
            reason: attempts > 1 ? "\(error.reason) (after \(attempts) tries)" : error.reason)
    }
}

let densecapHubUserAgentVersion = "0.1.0"

extension Duration {
    var nanoseconds: Double { Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9 }
}

/// huggingface_hub `_normalize_etag`: strips `W/` and quotes.
func normalizedETag(_ etag: String?) -> String? {
    guard var value = etag else { return nil }
    if value.hasPrefix("W/") { value.removeFirst(2) }
    value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    return value.isEmpty ? nil : value
}

/// Python's `urllib.parse.quote`: ASCII letters, digits and `_.-~` stay (and `/` for paths).
func percentEncoded(_ s: String, keepingSlash: Bool) -> String {
    var allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
    if keepingSlash { allowed.insert("/") }
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
}

func hostAndPort(of url: String) -> String {
    guard let c = URLComponents(string: url) else { return url }
    return "\(c.host ?? "")\(c.port.map { ":\($0)" } ?? "")"
}

func absoluteURL(_ location: String, relativeTo base: String) -> String? {
    guard let baseURL = URL(string: base), let url = URL(string: location, relativeTo: baseURL) else { return nil }
    return url.absoluteString
}

func oneLine(_ error: Error) -> String { oneLine("\(error)") }

func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// A repo path must stay inside the snapshot folder (huggingface_hub `_validate_relative_filename`).
func validateRelativePath(_ path: String, repo: String) throws {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard !path.isEmpty, !path.hasPrefix("/"), !parts.contains(".."), !parts.contains(""), !path.contains("\0") else {
        throw HubError(.protocolError, repo: repo, file: path, reason: "the Hub listed a file path outside the repo")
    }
}
