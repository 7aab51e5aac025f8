import AsyncHTTPClient
import Foundation
import Logging
import ModelAPI
import NIOCore
import NIOPosix
import Synchronization

/// A vision-language model behind an OpenAI-compatible chat API (vLLM, SGLang, llama.cpp's
/// server, `densecap serve`): each request is one `POST {endpoint}/chat/completions`, streamed
/// with server-sent events when the caller wants the text as it comes.
///
/// Failures are retried as the official `openai` Python client retries them (`RetryPolicy`);
/// at most `settings.parallel` requests are in flight at once, whoever the callers are.
public final class OpenAIVisionModel: VisionLanguageModel {
    /// Waits this many seconds (between tries); tests pass one that returns at once.
    public typealias Sleeper = @Sendable (Double) async throws -> Void

    public let settings: RemoteEngineSettings
    public let identity: String
    public let displayName: String
    public let concurrency: Int
    public let retry: RetryPolicy

    private let apiKey: String?
    private let logger: Logger
    private let http: HTTPClient
    private let ownsClient: Bool
    private let sleep: Sleeper
    private let slots: AsyncSemaphore
    private let videoFrames = Mutex(8)
    private let shutDown = Atomic(false)

    /// - Parameters:
    ///   - apiKey: sent as `Authorization: Bearer <key>`; nil sends no `Authorization` header.
    ///     Read it with `settings.apiKey()` (from `settings.apiKeyVariable`).
    ///   - httpClient: a client to share (give it at least `parallel` connections per host); nil
    ///     makes one (5 s connect timeout like the openai client, no read timeout: the per-try
    ///     timeout covers the whole answer), shut down by `shutdown()` or when this model is
    ///     released.
    ///   - sleep: the wait between tries (default `Task.sleep`).
    public init(settings: RemoteEngineSettings, apiKey: String?, logger: Logger, httpClient: HTTPClient? = nil,
                sleep: Sleeper? = nil) throws {
        try settings.validate()
        self.settings = settings
        self.identity = settings.identity
        self.displayName = settings.model
        self.concurrency = settings.parallel
        self.retry = RetryPolicy(maxRetries: settings.maxRetries)
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.logger = logger
        if let httpClient {
            http = httpClient
            ownsClient = false
        } else {
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .follow(max: 5, allowCycles: false),
                timeout: .init(connect: .seconds(5), read: nil))
            configuration.decompression = .enabled(limit: .ratio(100))
            // One connection per request in flight (AsyncHTTPClient's default is 8 per host).
            configuration.connectionPool = .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, settings.parallel))
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            ownsClient = true
        }
        self.sleep = sleep ?? { seconds in try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9)) }
        self.slots = AsyncSemaphore(settings.parallel)
    }

    deinit {
        if ownsClient, !shutDown.exchange(true, ordering: .relaxed) { http.shutdown().whenComplete { _ in } }
    }

    /// Closes the connections of the client this model made (a shared one is the caller's).
    public func shutdown() async {
        if ownsClient, !shutDown.exchange(true, ordering: .relaxed) { try? await http.shutdown() }
    }

    /// Frames per video when the caller does not choose (8 unless set).
    public var defaultVideoFrames: Int {
        get { videoFrames.withLock { $0 } }
        set { videoFrames.withLock { $0 = max(1, newValue) } }
    }

    // MARK: - Answers

    public func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        let url = settings.chatCompletionsURL
        let body: Data
        do {
            body = try chatRequestBody(request, settings: settings, stream: onText != nil)
        } catch let error as RequestBuildError {
            throw RemoteEngineError(endpoint: url, reason: .invalidRequest(error.message), tries: 0)
        } catch {
            throw RemoteEngineError(endpoint: url, reason: .invalidRequest(String(describing: error)), tries: 0)
        }
        // Pieces already handed to `onText` cannot be taken back: once one is out, no retry.
        let delivered = Flag()
        var forward: (@Sendable (String) -> Void)?
        if let onText {
            forward = { piece in
                delivered.set()
                onText(piece)
            }
        }
        let onPiece = forward
        var retriesTaken = 0
        while true {
            let outcome: Result<VisionAnswer, AttemptFailure> = await slots.withSlot {
                () async -> Result<VisionAnswer, AttemptFailure> in
                await self.attempt(url: url, body: body, onText: onPiece)
            }
            try Task.checkCancellation()
            switch outcome {
            case .success(let answer):
                return answer
            case .failure(let failure):
                let tries = retriesTaken + 1
                let error = RemoteEngineError(endpoint: url, reason: failure.reason, tries: tries)
                guard retriesTaken < retry.maxRetries, !delivered.isSet, retryable(failure) else {
                    logger.debug("remote request failed for good", metadata: ["error": "\(error)"])
                    throw error
                }
                let wait = retry.delay(retriesTaken: retriesTaken, headers: failure.headers, random: Double.random(in: 0..<1))
                logger.info(
                    "remote request failed, retrying",
                    metadata: ["error": "\(error)", "retry_in_s": "\(wait)", "retries_left": "\(retry.maxRetries - retriesTaken)"])
                try await sleep(wait)
                retriesTaken += 1
            }
        }
    }

    private func retryable(_ failure: AttemptFailure) -> Bool {
        switch failure.reason {
        case .connection, .timeout: true
        case .status(let code, _): retry.shouldRetry(status: code, headers: failure.headers)
        default: false
        }
    }

    // MARK: - One try

    struct AttemptFailure: Error {
        let reason: RemoteEngineError.Reason
        /// Response headers, names lowercased (empty without a response).
        var headers: [String: String] = [:]
    }

    private struct TimedOut: Error {}

    /// One request, bounded by the per-try timeout.
    private func attempt(url: String, body: Data, onText: (@Sendable (String) -> Void)?) async -> Result<VisionAnswer, AttemptFailure> {
        let timeout = settings.timeoutSeconds
        do {
            let answer = try await withThrowingTaskGroup(of: VisionAnswer?.self) { group in
                group.addTask { try await self.send(url: url, body: body, onText: onText) }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                    throw TimedOut()
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            return .success(answer!)
        } catch let failure as AttemptFailure {
            return .failure(failure)
        } catch is TimedOut {
            return .failure(AttemptFailure(reason: .timeout(seconds: timeout)))
        } catch {
            return .failure(AttemptFailure(reason: .connection(transportReason(error))))
        }
    }

    private func send(url: String, body: Data, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: onText == nil ? "application/json" : "text/event-stream")
        request.headers.add(name: "User-Agent", value: "densecap")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        logger.debug("POST \(url)", metadata: ["bytes": "\(body.count)", "stream": "\(onText != nil)"])
        let response = try await http.execute(request, deadline: .distantFuture, logger: nil)
        let headers = Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        guard (200..<300).contains(Int(response.status.code)) else {
            let bytes = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
            throw AttemptFailure(
                reason: .status(code: Int(response.status.code), message: APIErrorBody.message(in: bytes)), headers: headers)
        }
        let isEventStream = headers["content-type"]?.lowercased().hasPrefix("text/event-stream") ?? false
        guard let onText, isEventStream else {
            let bytes = Array(try await response.body.collect(upTo: 256 << 20).readableBytesView)
            do {
                let answer = try parseCompletion(bytes, requestedModel: settings.model)
                // A server that ignored `stream` still gives the text, in one piece.
                if let onText, !answer.text.isEmpty { onText(answer.text) }
                return answer
            } catch let error as MalformedResponse {
                throw AttemptFailure(reason: .malformedResponse(error.message), headers: headers)
            }
        }
        var stream = StreamAccumulator()
        do {
            for try await buffer in response.body {
                for piece in try stream.push(buffer.readableBytesView) { onText(piece) }
                if stream.done { break }
            }
            for piece in try stream.finishStream() { onText(piece) }
        } catch let error as MalformedResponse {
            throw AttemptFailure(reason: .malformedResponse(error.message), headers: headers)
        }
        if let error = stream.streamError {
            throw AttemptFailure(reason: .status(code: error.code ?? 500, message: error.message), headers: headers)
        }
        guard stream.done || stream.finish != nil else {
            throw AttemptFailure(reason: .connection("the event stream ended before the answer did"), headers: headers)
        }
        return stream.answer(requestedModel: settings.model)
    }

    /// A transport failure in a few words.
    private func transportReason(_ error: Error) -> String {
        switch error {
        case let e as IOError: String(cString: strerror(e.errnoCode)).lowercased()
        case let e as HTTPClientError: "\(e)".replacingOccurrences(of: "HTTPClientError.", with: "")
        case is NIOConnectionError: "no connection could be made (name resolution or connect failed)"
        case is CancellationError: "cancelled"
        default: oneLine(String(describing: error))
        }
    }
}

/// A flag set once, read from any thread.
final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// At most `limit` holders at once; waiters are served in arrival order.
actor AsyncSemaphore {
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { free = max(1, limit) }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            free += 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    nonisolated func withSlot<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        await acquire()
        let result = await body()
        await release()
        return result
    }
}
