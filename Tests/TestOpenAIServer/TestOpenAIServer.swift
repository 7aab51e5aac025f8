import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What the server does with one request to `/v1/chat/completions`.
public enum Behaviour: Sendable {
    /// A chat completion with this text; as server-sent events when the request asks to stream
    /// (the text in pieces of `pieceLength` characters, written a few bytes at a time).
    case answer(text: String, finishReason: String = "stop", promptTokens: Int = 11, completionTokens: Int = 7,
                model: String = "served-model")
    /// This status with these headers and body (an OpenAI-style error JSON unless given).
    case status(Int, headers: [(String, String)] = [], body: String? = nil)
    /// Reads the request and never answers.
    case hang
    /// Sends the head and this many bytes of a good answer's body (JSON, or events when the
    /// request streams), then closes the connection.
    case drop(afterBytes: Int)
    /// 200 with a body that is not JSON.
    case malformedJSON
    /// 200 with an event stream whose chunk is not JSON.
    case malformedStream
}

/// One request as the server saw it.
public struct RecordedRequest: Sendable {
    public let method: String
    public let path: String
    /// Header names lowercased.
    public let headers: [String: String]
    public let body: Data

    /// The body as JSON.
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
}

/// The script and the record, shared by all connections.
public final class OpenAIServerState: Sendable {
    private struct State {
        var script: [Behaviour] = []
        var fallback = Behaviour.answer(text: "A default answer.")
        var requests: [RecordedRequest] = []
        var inFlight = 0
        var maxInFlight = 0
        var gate: Int?
        var held: [@Sendable () -> Void] = []
        /// Counts gate openings, so a late timer opens only its own round.
        var round = 0
        /// Drops wait for `releaseDrops()` (nil: they close at once).
        var heldDrops: [@Sendable () -> Void]?
    }

    private let state = Mutex(State())

    /// Behaviours for the next requests, in order; after them every request gets `fallback`.
    public func script(_ behaviours: [Behaviour], fallback: Behaviour? = nil) {
        state.withLock {
            $0.script = behaviours
            if let fallback { $0.fallback = fallback }
        }
    }

    /// Hold answers until this many requests are waiting, then answer them all together (nil:
    /// answer at once). Shows how many requests a client keeps in flight without timing anything.
    public func gate(_ count: Int?) { state.withLock { $0.gate = count } }

    /// Keep dropped connections open after their bytes until `releaseDrops()`: a test that
    /// needs the client to have read those bytes before the connection goes releases them from
    /// what the client does with them, not after a guessed wait.
    public func holdDrops() { state.withLock { if $0.heldDrops == nil { $0.heldDrops = [] } } }

    /// Closes the held connections, and every later drop at once.
    public func releaseDrops() {
        let closes = state.withLock { s in
            defer { s.heldDrops = nil }
            return s.heldDrops ?? []
        }
        for close in closes { close() }
    }

    /// Runs `close` now, or when drops are released.
    func whenDropReleased(_ close: @escaping @Sendable () -> Void) {
        let now: Bool = state.withLock { s in
            guard s.heldDrops != nil else { return true }
            s.heldDrops!.append(close)
            return false
        }
        if now { close() }
    }

    public var requests: [RecordedRequest] { state.withLock { $0.requests } }
    /// The most requests that were being answered at the same time.
    public var maxInFlight: Int { state.withLock { $0.maxInFlight } }

    public func reset() {
        state.withLock {
            $0.requests = []
            $0.maxInFlight = 0
        }
    }

    func begin(_ request: RecordedRequest) -> Behaviour {
        state.withLock { s in
            s.requests.append(request)
            s.inFlight += 1
            s.maxInFlight = max(s.maxInFlight, s.inFlight)
            return s.script.isEmpty ? s.fallback : s.script.removeFirst()
        }
    }

    func end() { state.withLock { $0.inFlight -= 1 } }

    /// Runs `respond` now, or with the round of held requests it joins: a round opens 0.2 s after
    /// the gate's count of requests is waiting — any request beyond the count that the client
    /// has in flight arrives in that window and shows in `maxInFlight` — or after 10 s, so a
    /// client keeping fewer in flight makes a test fail rather than hang.
    func whenGateOpens(_ respond: @escaping @Sendable () -> Void) {
        enum Next { case now, wait(round: Int, seconds: Double), none }
        let next: Next = state.withLock { s in
            guard let gate = s.gate else { return .now }
            s.held.append(respond)
            if s.held.count == gate { return .wait(round: s.round, seconds: 0.2) }
            if s.held.count == 1 { return .wait(round: s.round, seconds: 10) }
            return .none
        }
        switch next {
        case .now: respond()
        case .none: break
        case .wait(let round, let seconds):
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { self.open(round: round) }
        }
    }

    private func open(round: Int) {
        let held: [@Sendable () -> Void] = state.withLock { s in
            guard s.round == round else { return [] }
            defer {
                s.held = []
                s.round += 1
            }
            return s.held
        }
        for r in held { r() }
    }
}

/// The bodies the server sends.
enum Bodies {
    static func json(_ object: Any) -> [UInt8] { Array(try! JSONSerialization.data(withJSONObject: object)) }

    static func completion(text: String, finishReason: String, promptTokens: Int, completionTokens: Int, model: String)
        -> [UInt8]
    {
        json([
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": finishReason]],
            "usage": ["prompt_tokens": promptTokens, "completion_tokens": completionTokens,
                      "total_tokens": promptTokens + completionTokens],
        ])
    }

    /// The event stream of a completion: a role chunk, the text in pieces, the finish chunk, the
    /// usage chunk (when asked for) and `[DONE]`.
    static func events(text: String, finishReason: String, promptTokens: Int, completionTokens: Int, model: String,
                       usage: Bool) -> [UInt8] {
        func chunk(_ delta: [String: Any], finish: String?) -> [String: Any] {
            ["id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
             "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]]]
        }
        var events: [[String: Any]] = [chunk(["role": "assistant", "content": ""], finish: nil)]
        var rest = Substring(text)
        while !rest.isEmpty {
            events.append(chunk(["content": String(rest.prefix(5))], finish: nil))
            rest = rest.dropFirst(5)
        }
        events.append(chunk([:], finish: finishReason))
        if usage {
            events.append([
                "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [] as [Any],
                "usage": ["prompt_tokens": promptTokens, "completion_tokens": completionTokens,
                          "total_tokens": promptTokens + completionTokens],
            ])
        }
        var out: [UInt8] = Array(": keep-alive comment\n\n".utf8)
        for e in events { out += Array("data: ".utf8) + json(e) + Array("\n\n".utf8) }
        out += Array("data: [DONE]\n\n".utf8)
        return out
    }

    static func error(_ status: Int, message: String) -> [UInt8] {
        json(["error": ["message": message, "type": "test_error", "param": NSNull(), "code": status]])
    }
}

private final class OpenAIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: OpenAIServerState
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(state: OpenAIServerState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            self.head = nil
            let request = RecordedRequest(
                method: "\(head.method)", path: head.uri,
                headers: Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a }),
                body: Data(body))
            guard head.method == .POST, head.uri.hasSuffix("/chat/completions") else {
                write(context, head: head, status: 404, headers: [], body: Bodies.error(404, message: "no route"), chunked: false)
                return
            }
            let behaviour = state.begin(request)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            state.whenGateOpens {
                loop.execute {
                    let (handler, context) = bound.value
                    handler.respond(context, head: head, request: request, behaviour: behaviour)
                }
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, head: HTTPRequestHead, request: RecordedRequest, behaviour: Behaviour) {
        let json = request.json
        let stream = json["stream"] as? Bool ?? false
        let usage = (json["stream_options"] as? [String: Any])?["include_usage"] as? Bool ?? false
        switch behaviour {
        case .answer(let text, let finish, let p, let c, let model):
            if stream {
                write(context, head: head, status: 200, headers: [("Content-Type", "text/event-stream")],
                      body: Bodies.events(text: text, finishReason: finish, promptTokens: p, completionTokens: c, model: model,
                                          usage: usage),
                      chunked: true)
            } else {
                write(context, head: head, status: 200, headers: [("Content-Type", "application/json")],
                      body: Bodies.completion(text: text, finishReason: finish, promptTokens: p, completionTokens: c, model: model),
                      chunked: false)
            }
        case .status(let code, let headers, let body):
            let bytes = body.map { Array($0.utf8) } ?? Bodies.error(code, message: "scripted failure \(code)")
            write(context, head: head, status: code, headers: headers + [("Content-Type", "application/json")], body: bytes,
                  chunked: false)
        case .hang:
            state.end()
        case .drop(let count):
            let text = "Never finished: the connection drops first."
            if stream {
                let events = Bodies.events(text: text, finishReason: "stop", promptTokens: 1, completionTokens: 1,
                                           model: "served-model", usage: usage)
                write(context, head: head, status: 200, headers: [("Content-Type", "text/event-stream")], body: events,
                      chunked: true, dropAfter: count)
            } else {
                let full = Bodies.completion(text: text, finishReason: "stop", promptTokens: 1, completionTokens: 1,
                                             model: "served-model")
                write(context, head: head, status: 200, headers: [("Content-Type", "application/json")], body: full,
                      chunked: false, dropAfter: count)
            }
        case .malformedJSON:
            write(context, head: head, status: 200, headers: [("Content-Type", "application/json")],
                  body: Array("{\"choices\": [{\"message\": {\"content\": \"cut".utf8), chunked: false)
        case .malformedStream:
            write(context, head: head, status: 200, headers: [("Content-Type", "text/event-stream")],
                  body: Array("data: {not json}\n\n".utf8), chunked: true)
        }
    }

    /// Writes a response: the whole body, in small chunks (event streams), or part of it and
    /// then closes the connection (`dropAfter`).
    private func write(_ context: ChannelHandlerContext, head: HTTPRequestHead, status: Int, headers: [(String, String)],
                       body: [UInt8], chunked: Bool, dropAfter: Int? = nil) {
        var h = HTTPHeaders(headers)
        if !chunked { h.add(name: "Content-Length", value: "\(body.count)") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: h))),
                      promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let sent = dropAfter.map { min($0, body.count) } ?? body.count
        // Event streams go out 7 bytes at a time, so lines straddle the client's reads.
        let step = chunked ? 7 : max(1, sent)
        var offset = 0
        while offset < sent {
            let end = min(sent, offset + step)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body[offset..<end])))),
                                  promise: nil)
            offset = end
        }
        let state = self.state
        if dropAfter != nil {
            let flushed = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))), promise: flushed)
            let loop = context.eventLoop
            flushed.futureResult.whenComplete { _ in
                state.whenDropReleased {
                    loop.execute {
                        state.end()
                        bound.value.close(promise: nil)
                    }
                }
            }
            return
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.whenComplete { _ in state.end() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// An OpenAI-compatible chat server on a loopback port of the test process, answering as scripted.
public final class TestOpenAIServer: Sendable {
    public let state: OpenAIServerState
    private let channel: Channel

    private init(state: OpenAIServerState, channel: Channel) {
        self.state = state
        self.channel = channel
    }

    public static func start() async throws -> TestOpenAIServer {
        let state = OpenAIServerState()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OpenAIHandler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestOpenAIServer(state: state, channel: channel)
    }

    /// The API base, `http://127.0.0.1:<port>/v1`.
    public var endpoint: String { "http://127.0.0.1:\(channel.localAddress?.port ?? 0)/v1" }

    public func stop() async {
        try? await channel.close()
    }
}
