import Engine
import Foundation
import Hummingbird
import Logging
import ModelAPI
import NIOCore
import ServiceLifecycle
import Synchronization

/// `densecap serve`: one vision-language model behind OpenAI's chat-completions API.
///
/// Routes: `POST /v1/chat/completions` (answers, or server-sent events with `stream: true`),
/// `GET /v1/models`, `GET /v1/models/{id}`, `GET /health`. Errors are OpenAI's error JSON. The
/// server listens at once and answers 503 until the model is loaded; on SIGTERM/SIGINT (or
/// `stop()`) it refuses new requests with 503, answers those queued, then closes.
public final class ChatServer: Sendable {
    public let settings: ServeSettings
    /// The model's id before it is loaded (what `/health` and errors name).
    public let modelName: String
    private let apiKey: String?
    private let logger: Logger
    private let phase = Mutex<Phase>(.loading)
    private let group = Mutex<ServiceGroup?>(nil)

    enum Phase {
        case loading
        case ready(ServedModel, Scheduler, RequestTranslator)
        case stopping
    }

    /// - Parameter apiKey: when set, `/v1/…` requests must send `Authorization: Bearer <apiKey>`.
    public init(settings: ServeSettings, modelName: String, apiKey: String?, logger: Logger) {
        self.settings = settings
        self.modelName = modelName
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.logger = logger
    }

    /// Serves until `stop()` or SIGTERM/SIGINT (with `handleSignals`).
    /// - Parameters:
    ///   - load: loads the model (after the server listens; requests meanwhile get 503).
    ///   - onListening: told the bound host and port once the server listens (port 0 resolved).
    /// - Throws: `ServeSetupError` when the address cannot be bound; `load`'s error.
    public func run(handleSignals: Bool = true, load: @escaping @Sendable () async throws -> ServedModel,
                    onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void) async throws {
        try settings.validate()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware<BasicRequestContext>(logger: logger))
        router.add(middleware: BearerKeyMiddleware<BasicRequestContext>(key: apiKey))
        addRoutes(router)
        let bound = Mutex(false)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "densecap/serve"),
            onServerRunning: { channel in
                bound.withLock { $0 = true }
                await onListening(self.settings.host, channel.localAddress?.port ?? self.settings.port)
            },
            logger: logger)
        let lifecycle = ModelService(server: self, load: load)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: app),
                       .init(service: lifecycle, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        group.withLock { $0 = serviceGroup }
        do {
            try await serviceGroup.run()
        } catch {
            if !bound.withLock({ $0 }), !(error is CancellationError) {
                throw ServeSetupError(message: "cannot listen on \(settings.host):\(settings.port): \(error)")
            }
            throw error
        }
    }

    /// Begins a graceful shutdown: new requests get 503, queued ones are answered, then `run` returns.
    public func stop() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// Requests waiting for the model and being answered (nil until the model is loaded).
    public func load() async -> (waiting: Int, running: Int)? {
        guard case .ready(_, let scheduler, _) = phase.withLock({ $0 }) else { return nil }
        return await scheduler.load
    }

    fileprivate func becomeReady(_ served: ServedModel) {
        let scheduler = Scheduler(model: served.model, maxQueue: settings.maxQueue, batch: settings.batch)
        let translator = RequestTranslator(settings: settings, served: served, logger: logger)
        phase.withLock { $0 = .ready(served, scheduler, translator) }
        logger.info("serving \(served.name) (\(served.model.identity))")
    }

    /// Stops taking requests; returns once those queued are answered.
    fileprivate func drain() async {
        let current = phase.withLock { current -> Phase in
            let was = current
            current = .stopping
            return was
        }
        if case .ready(_, let scheduler, _) = current {
            await scheduler.close()
            await scheduler.drained()
        }
    }

    private func ready() throws -> (ServedModel, Scheduler, RequestTranslator) {
        switch phase.withLock({ $0 }) {
        case .loading: throw APIError.loading
        case .stopping: throw APIError.stopping
        case .ready(let served, let scheduler, let translator): return (served, scheduler, translator)
        }
    }

    // MARK: - Routes

    private func addRoutes(_ router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ -> Response in
            let (served, scheduler, _) = try self.ready()
            let load = await scheduler.load
            return Self.json(["status": "ok", "model": served.name, "waiting": load.waiting, "running": load.running])
        }
        router.get("/v1/models") { _, _ -> Response in
            let (served, _, _) = try self.ready()
            return Self.json(["object": "list", "data": [Self.modelCard(served)]])
        }
        // Model ids may hold slashes (`org/name`): the whole rest of the path is the id.
        router.get("/v1/models/**") { request, _ -> Response in
            let (served, _, _) = try self.ready()
            let id = String(request.uri.path.dropFirst("/v1/models/".count)).removingPercentEncoding ?? ""
            guard id == served.name else { throw APIError.unknownModel(id, served: served.name) }
            return Self.json(Self.modelCard(served))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            try await self.chatCompletion(request)
        }
    }

    private static func modelCard(_ served: ServedModel) -> [String: Any] {
        ["id": served.name, "object": "model", "created": 0, "owned_by": "densecap", "root": served.model.identity]
    }

    private func chatCompletion(_ request: Request) async throws -> Response {
        let (served, scheduler, translator) = try ready()
        let body = try await collect(request.body)
        let decoded: ChatCompletionRequest
        do {
            decoded = try JSONDecoder().decode(ChatCompletionRequest.self, from: body)
        } catch {
            let (message, param) = describeDecodingError(error)
            throw APIError.malformed(message, param: param)
        }
        // Pictures are decoded off the server's threads.
        let translated = try await offload { try translator.translate(decoded) }
        let events = try await scheduler.submit(translated.vision, streams: translated.stream)
        let id = "chatcmpl-" + Self.randomHex(12)
        let created = Int(Date().timeIntervalSince1970)
        let name = served.name
        if !translated.stream {
            for await event in events {
                switch event {
                case .text: continue
                case .done(let answer):
                    return Self.json(ChatResponse.completion(id: id, created: created, model: name, answer: answer))
                case .failed(let error): throw Self.apiError(error)
                }
            }
            throw APIError.failed("the model ended without an answer")
        }
        let includeUsage = translated.includeUsage
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            func send(_ object: [String: Any]) async throws {
                try await writer.write(ByteBuffer(bytes: Data("data: ".utf8) + ChatResponse.json(object) + Data("\n\n".utf8)))
            }
            func chunk(_ delta: [String: Any]?, finish: String? = nil, usage: [String: Any]? = nil) -> [String: Any] {
                ChatResponse.chunk(id: id, created: created, model: name, delta: delta, finishReason: finish, usage: usage,
                                   includeUsage: includeUsage)
            }
            try await send(chunk(["role": "assistant", "content": ""]))
            for await event in events {
                switch event {
                case .text(let piece):
                    if !piece.isEmpty { try await send(chunk(["content": piece])) }
                case .done(let answer):
                    try await send(chunk([:], finish: answer.finishReason.rawValue))
                    if includeUsage { try await send(chunk(nil, usage: ChatResponse.usage(answer))) }
                case .failed(let error):
                    try await send(Self.apiError(error).body)
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }

    /// The body, at most `maxBodyBytes`. A larger one is read to its end (up to 16 times the limit)
    /// and dropped, so the client reads the 413 instead of a reset connection.
    private func collect(_ body: RequestBody) async throws -> Data {
        let limit = settings.maxBodyBytes
        var buffer = ByteBuffer()
        var seen = 0
        for try await part in body {
            seen += part.readableBytes
            if seen <= limit {
                var part = part
                buffer.writeBuffer(&part)
            } else if seen > limit * 16 {
                break
            }
        }
        guard seen <= limit else {
            throw APIError.tooLarge("The request body exceeds \(limit) bytes (--max-body-bytes)", code: "body_too_large")
        }
        return Data(buffer: buffer)
    }

    private static func apiError(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as MediaError: return APIError.unsupported(e.description)
        case let e as VisionModelError: return APIError.unsupported(e.description)
        default: return APIError.failed("\(error)")
        }
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: ChatResponse.json(object))))
    }

    private static func randomHex(_ bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}

/// Loads the model once the server listens, then waits for the shutdown and drains the queue.
/// It is the group's last service, so it is shut down first: requests get 503 while the HTTP
/// server still answers them.
private struct ModelService: Service {
    let server: ChatServer
    let load: @Sendable () async throws -> ServedModel

    func run() async throws {
        let served = try await load()
        server.becomeReady(served)
        try? await gracefulShutdown()
        await server.drain()
    }
}

/// `Authorization: Bearer <key>` on `/v1/…` when the server has a key (`/health` stays open).
struct BearerKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let key, request.uri.path.hasPrefix("/v1/") {
            let sent = request.headers[.authorization].flatMap { value -> String? in
                let parts = value.split(separator: " ", maxSplits: 1)
                return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : nil
            }
            guard let sent, constantTimeEqual(Array(sent.utf8), Array(key.utf8)) else { throw APIError.unauthorized }
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Runs blocking work (decoding pictures) on a global queue, off Swift's cooperative threads.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
