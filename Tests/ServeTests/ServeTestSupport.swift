import AsyncHTTPClient
import DenseCore
import Engine
import Foundation
import Logging
import ModelAPI
import NIOCore
import NIOHTTP1
import Serve
import Synchronization
import Testing
import VideoIO

/// The engine fixtures: tiny checkpoints and inputs written by the reference (see
/// Tests/EngineTests/Fixtures/README.md).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../EngineTests/Fixtures").standardized.path

/// Checkpoints load once per test process.
enum Models {
    static let lite = load("tiny-nvila-lite")
    static let video = load("tiny-nvila-video")

    private static func load(_ name: String) -> Result<NVILAModel, any Error> {
        Result { try NVILAModel.load(directory: fixtures + "/" + name, logger: Logger(label: "test")) }
    }

    static func native(_ model: Result<NVILAModel, any Error>, batch: Int = 4) throws -> NativeVisionModel {
        NativeVisionModel(model: try model.get(), identity: "test", displayName: "tiny", batch: batch)
    }
}

/// Opens to let held model calls go on.
actor Gate {
    private var open = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if open { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        open = true
        for w in waiters { w.resume() }
        waiters = []
    }
}

/// The native model behind a gate, recording how many requests each call answered.
final class GatedModel: VisionLanguageModel {
    let inner: NativeVisionModel
    let gate = Gate()
    let calls = Mutex<[Int]>([])

    init(_ inner: NativeVisionModel) { self.inner = inner }

    var identity: String { inner.identity }
    var displayName: String { inner.displayName }
    var defaultVideoFrames: Int { inner.defaultVideoFrames }
    var concurrency: Int { inner.concurrency }

    func answer(_ request: VisionRequest, onText: (@Sendable (String) -> Void)?) async throws -> VisionAnswer {
        calls.withLock { $0.append(1) }
        await gate.wait()
        return try await inner.answer(request, onText: onText)
    }

    func answer(_ requests: [VisionRequest]) async -> [Result<VisionAnswer, any Error>] {
        calls.withLock { $0.append(requests.count) }
        await gate.wait()
        return await inner.answer(requests)
    }
}

/// A `ChatServer` on an ephemeral loopback port inside the test process.
final class RunningServer: Sendable {
    let server: ChatServer
    let base: String
    private let task: Task<Void, any Error>

    private init(server: ChatServer, base: String, task: Task<Void, any Error>) {
        self.server = server
        self.base = base
        self.task = task
    }

    /// Starts the server; returns once it listens (and, unless `waitReady` is false, once the
    /// model is loaded).
    static func start(_ served: @escaping @Sendable () async throws -> ServedModel, settings: ServeSettings = ServeSettings(),
                      apiKey: String? = nil, waitReady: Bool = true) async throws -> RunningServer {
        var settings = settings
        settings.port = 0
        var logger = Logger(label: "serve-test")
        logger.logLevel = .warning
        let server = ChatServer(settings: settings, modelName: "tiny", apiKey: apiKey, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await server.run(handleSignals: false, load: served, onListening: { _, port in continuation.yield(port) })
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await task.value
            throw TestFailure("the server stopped before it listened")
        }
        let running = RunningServer(server: server, base: "http://127.0.0.1:\(port)", task: task)
        if waitReady { while await server.load() == nil { await Task.yield() } }
        return running
    }

    static func start(_ served: ServedModel, settings: ServeSettings = ServeSettings(), apiKey: String? = nil) async throws -> RunningServer {
        try await start({ served }, settings: settings, apiKey: apiKey)
    }

    /// Waits until the queue holds exactly this load.
    func waitFor(waiting: Int, running: Int) async {
        while true {
            if let load = await server.load(), load.waiting == waiting, load.running == running { return }
            await Task.yield()
        }
    }

    func stop() async throws {
        await server.stop()
        try await task.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct HTTPResult {
    let status: Int
    let headers: [(String, String)]
    let body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// One HTTP exchange through AsyncHTTPClient.
func http(_ method: HTTPMethod = .POST, _ url: String, body: Data? = nil, headers: [(String, String)] = []) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (k, v) in headers { request.headers.add(name: k, value: v) }
    if let body {
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
    let buffer = try await response.body.collect(upTo: 64 << 20)
    return HTTPResult(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                      body: Data(buffer: buffer))
}

func chat(_ server: RunningServer, _ body: [String: Any], headers: [(String, String)] = []) async throws -> HTTPResult {
    try await chat(server, try JSONSerialization.data(withJSONObject: body), headers: headers)
}

func chat(_ server: RunningServer, _ body: Data, headers: [(String, String)] = []) async throws -> HTTPResult {
    try await http(.POST, server.base + "/v1/chat/completions", body: body, headers: headers)
}

/// The `data:` lines of a server-sent event stream, parsed (`[DONE]` as the string).
func events(_ result: HTTPResult) -> [Any] {
    result.text.components(separatedBy: "\n\n").compactMap { block -> Any? in
        guard block.hasPrefix("data: ") else { return nil }
        let payload = String(block.dropFirst(6))
        if payload == "[DONE]" { return payload }
        return try? JSONSerialization.jsonObject(with: Data(payload.utf8))
    }
}

func dataURL(_ path: String, type: String) throws -> String {
    "data:\(type);base64," + (try Data(contentsOf: URL(fileURLWithPath: path))).base64EncodedString()
}

func userMessage(_ parts: [[String: Any]]) -> [[String: Any]] { [["role": "user", "content": parts]] }

func temporaryFolder(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "densecap-serve-\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The reference's greedy answer for a golden case, as VILA returns it (decoded, stripped).
func referenceAnswer(_ caseName: String, checkpoint: String) throws -> String {
    let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixtures + "/nvila_golden.json"))) as! [String: Any]
    let cases = golden["cases"] as! [[String: Any]]
    let ids = try #require(cases.first { $0["name"] as? String == caseName }?["greedy_ids"] as? [Int])
    let tokenizer = try BPETokenizer.load(directory: fixtures + "/" + checkpoint + "/llm")
    return tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
}
