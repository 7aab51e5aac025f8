import Foundation
import ModelAPI
import RemoteEngine
import Synchronization
import Testing
import TestOpenAIServer

/// Server-sent events: pieces as they come, the same answer as without streaming.
@Suite struct StreamingTests {
    @Test func streamedPiecesMakeTheNonStreamedAnswer() async throws {
        try await withServer { server in
            let text = "A person walks a dog across the park, then sits on a bench. Ünïcödé ✓ too."
            let script = Behaviour.answer(text: text, finishReason: "length", promptTokens: 99, completionTokens: 24, model: "srv")
            server.state.script([script, script])
            let model = try makeModel(server)
            let plain = try await model.answer(videoRequest())
            let pieces = Mutex<[String]>([])
            let streamed = try await model.answer(videoRequest()) { piece in pieces.withLock { $0.append(piece) } }
            #expect(streamed == plain)
            #expect(plain.text == text)
            let got = pieces.withLock { $0 }
            #expect(got.joined() == text)
            #expect(got.count > 1)
            let requests = server.state.requests
            #expect(requests[0].json["stream"] == nil)
            #expect(requests[1].json["stream"] as? Bool == true)
            #expect((requests[1].json["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            #expect(requests[1].json["max_completion_tokens"] as? Int == 32)
        }
    }

    @Test func aBrokenStreamIsAnErrorNotAnEmptyAnswer() async throws {
        try await withServer { server in
            server.state.script([.malformedStream])
            let model = try makeModel(server)
            let error = try #require(await remoteError { try await model.answer(videoRequest()) { _ in } })
            guard case .malformedResponse = error.reason else { Issue.record("got \(error)"); return }
            #expect(error.tries == 1)
        }
    }

    @Test func aStreamThatFailsBeforeAnyTextIsRetried() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.status(502), .answer(text: "Streamed after a retry.")])
            let pieces = Mutex<[String]>([])
            let answer = try await makeModel(server, sleeps: sleeps).answer(videoRequest()) { p in pieces.withLock { $0.append(p) } }
            #expect(answer.text == "Streamed after a retry.")
            #expect(pieces.withLock { $0.joined() } == answer.text)
            #expect(sleeps.recorded.count == 1)
        }
    }
}

@Suite struct StreamDropTests {
    @Test func aStreamDroppedAfterTextWasHandedOnIsNotRetried() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            // The comment, the role chunk and the first content chunk get through (about 400 bytes).
            // The connection closes only once the client has handed a piece on: closed at once,
            // the client may see the close before it reads the piece, and then rightly retries.
            server.state.script([.drop(afterBytes: 600), .answer(text: "never asked for")])
            server.state.holdDrops()
            let pieces = Mutex<[String]>([])
            let model = try makeModel(server, sleeps: sleeps)
            let error = try #require(await remoteError {
                try await model.answer(videoRequest()) { p in
                    pieces.withLock { $0.append(p) }
                    server.state.releaseDrops()
                }
            })
            #expect(!pieces.withLock { $0 }.isEmpty)
            guard case .connection = error.reason else { Issue.record("got \(error)"); return }
            #expect(error.tries == 1)
            #expect(server.state.requests.count == 1)
            #expect(sleeps.recorded.isEmpty)
        }
    }

    @Test func aStreamDroppedBeforeAnyTextIsRetried() async throws {
        try await withServer { server in
            server.state.script([.drop(afterBytes: 0), .answer(text: "Whole.")])
            let pieces = Mutex<[String]>([])
            let answer = try await makeModel(server).answer(videoRequest()) { p in pieces.withLock { $0.append(p) } }
            #expect(answer.text == "Whole.")
            #expect(pieces.withLock { $0.joined() } == "Whole.")
            #expect(server.state.requests.count == 2)
        }
    }
}

/// How many requests are in flight: the server holds answers until `parallel` are waiting, so a
/// client keeping fewer in flight would stall and one keeping more would show in `maxInFlight`.
@Suite struct ParallelismTests {
    @Test func batchesKeepAtMostParallelRequestsInFlight() async throws {
        try await withServer { server in
            server.state.gate(3)
            let model = try makeModel(server) { $0.parallel = 3 }
            let requests = (0..<12).map { k in videoRequest(frames: 1, prompt: "Question \(k)") }
            let results = await model.answer(requests)
            #expect(results.count == 12)
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            #expect(server.state.maxInFlight == 3)
            #expect(server.state.requests.count == 12)
        }
    }

    @Test func theBoundHoldsAcrossSeparateCallers() async throws {
        try await withServer { server in
            server.state.gate(2)
            let model = try makeModel(server) { $0.parallel = 2 }
            try await withThrowingTaskGroup(of: VisionAnswer.self) { group in
                for k in 0..<8 { group.addTask { try await model.answer(videoRequest(frames: 1, prompt: "Caller \(k)")) } }
                for try await answer in group { #expect(answer.text == "A default answer.") }
            }
            #expect(server.state.maxInFlight == 2)
            #expect(server.state.requests.count == 8)
        }
    }
}
