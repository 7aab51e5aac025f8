import Foundation
import ModelAPI
import RemoteEngine
import Testing
import TestOpenAIServer

/// Answers, failures and retries against a server that misbehaves on cue.
@Suite struct RetryTests {
    @Test func usageFinishReasonAndModelAreRead() async throws {
        try await withServer { server in
            server.state.script([.answer(text: "A cut-off cap", finishReason: "length", promptTokens: 321, completionTokens: 32,
                                         model: "served/name")])
            let answer = try await makeModel(server).answer(videoRequest())
            #expect(answer == VisionAnswer(text: "A cut-off cap", finishReason: .length, promptTokens: 321, completionTokens: 32,
                                           model: "served/name"))
        }
    }

    @Test func a429WaitsWhatRetryAfterSays() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([
                .status(429, headers: [("Retry-After", "7")]),
                .status(429, headers: [("retry-after-ms", "1500"), ("Retry-After", "9")]),
                .answer(text: "Finally."),
            ])
            let answer = try await makeModel(server, sleeps: sleeps).answer(videoRequest())
            #expect(answer.text == "Finally.")
            #expect(sleeps.recorded == [7, 1.5])
            #expect(server.state.requests.count == 3)
        }
    }

    @Test func serverErrorsBackOffExponentiallyWithJitter() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.status(500), .status(503), .answer(text: "Recovered.")])
            let answer = try await makeModel(server, sleeps: sleeps).answer(videoRequest())
            #expect(answer.text == "Recovered.")
            let waits = sleeps.recorded
            #expect(waits.count == 2)
            // 0.5 s then 1 s, each times a jitter in (0.75, 1].
            #expect(waits.first.map { $0 > 0.375 && $0 <= 0.5 } == true)
            #expect(waits.last.map { $0 > 0.75 && $0 <= 1 } == true)
        }
    }

    @Test func aHungRequestTimesOutAndIsRetried() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.hang, .answer(text: "Second try.")])
            let model = try makeModel(server, sleeps: sleeps) { $0.timeoutSeconds = 2 }
            let answer = try await model.answer(videoRequest())
            #expect(answer.text == "Second try.")
            #expect(sleeps.recorded.count == 1)
            #expect(server.state.requests.count == 2)
        }
    }

    @Test func timingOutOnEveryTryGivesATimeoutError() async throws {
        try await withServer { server in
            server.state.script([], fallback: .hang)
            let model = try makeModel(server) {
                $0.timeoutSeconds = 0.25
                $0.maxRetries = 1
            }
            let error = try #require(await remoteError { try await model.answer(videoRequest()) })
            #expect(error.reason == .timeout(seconds: 0.25))
            #expect(error.tries == 2)
            #expect(error.description.hasSuffix(": no answer within the 0.25 s timeout (2 tries)"))
        }
    }

    @Test func aDroppedConnectionIsRetried() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.drop(afterBytes: 20), .drop(afterBytes: 0), .answer(text: "Third try.")])
            let answer = try await makeModel(server, sleeps: sleeps).answer(videoRequest())
            #expect(answer.text == "Third try.")
            #expect(sleeps.recorded.count == 2)
            #expect(server.state.requests.count == 3)
        }
    }

    @Test(arguments: [400, 401, 403, 404, 422])
    func clientErrorsAreNotRetried(status: Int) async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.status(status, body: "{\"error\": {\"message\": \"bad thing \(status)\", \"code\": \(status)}}")])
            let model = try makeModel(server, sleeps: sleeps)
            let error = try #require(await remoteError { try await model.answer(videoRequest()) })
            #expect(error.reason == .status(code: status, message: "bad thing \(status)"))
            #expect(error.tries == 1)
            #expect(sleeps.recorded.isEmpty)
            #expect(server.state.requests.count == 1)
            #expect(error.description.contains("HTTP \(status): bad thing \(status)"))
        }
    }

    @Test func malformedJSONIsNotRetried() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.malformedJSON])
            let model = try makeModel(server, sleeps: sleeps)
            let error = try #require(await remoteError { try await model.answer(videoRequest()) })
            guard case .malformedResponse = error.reason else { Issue.record("got \(error)"); return }
            #expect(error.tries == 1)
            #expect(server.state.requests.count == 1)
            #expect(sleeps.recorded.isEmpty)
        }
    }

    @Test func givingUpNamesTheEndpointTheStatusTheMessageAndTheTries() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([], fallback: .status(503, body: "{\"error\": {\"message\": \"model overloaded\"}}"))
            let model = try makeModel(server, sleeps: sleeps) { $0.maxRetries = 3 }
            let error = try #require(await remoteError { try await model.answer(videoRequest()) })
            #expect(error.tries == 4)
            #expect(server.state.requests.count == 4)
            #expect(sleeps.recorded.count == 3)
            #expect(error.description == "\(server.endpoint)/chat/completions: HTTP 503: model overloaded (4 tries)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func zeroRetriesMeansOneTry() async throws {
        try await withServer { server in
            server.state.script([.status(500), .answer(text: "never")])
            let model = try makeModel(server) { $0.maxRetries = 0 }
            let error = try #require(await remoteError { try await model.answer(videoRequest()) })
            #expect(error.tries == 1)
            #expect(server.state.requests.count == 1)
        }
    }

    @Test func theServerSaysWhetherToRetry() async throws {
        try await withServer { server in
            let sleeps = SleepRecorder()
            server.state.script([.status(500, headers: [("x-should-retry", "false")])])
            let model = try makeModel(server, sleeps: sleeps)
            #expect(await remoteError { try await model.answer(videoRequest()) }?.tries == 1)
            server.state.reset()
            server.state.script([.status(400, headers: [("x-should-retry", "true")]), .answer(text: "ok")])
            #expect(try await model.answer(videoRequest()).text == "ok")
            #expect(server.state.requests.count == 2)
            // A wait longer than two minutes is not waited: the error comes at once.
            server.state.reset()
            server.state.script([.status(429, headers: [("Retry-After", "121")]), .answer(text: "never")])
            let error = await remoteError { try await model.answer(videoRequest()) }
            #expect(error?.reason == .status(code: 429, message: "scripted failure 429"))
            #expect(error?.tries == 1)
            // One wait in all: before retrying the 400 the server asked to be retried.
            #expect(sleeps.recorded.count == 1)
        }
    }

    @Test func aRefusedConnectionIsAConnectionError() async throws {
        // A port with nothing listening: bind a server, note its port, stop it.
        let server = try await TestOpenAIServer.start()
        let endpoint = server.endpoint
        await server.stop()
        var settings = RemoteEngineSettings(endpoint: endpoint, model: "m")
        settings.maxRetries = 1
        // AsyncHTTPClient retries a refused connect until its connect timeout; the try's own
        // timeout ends it sooner. Either way the failure is transient and retried.
        settings.timeoutSeconds = 0.5
        let sleeps = SleepRecorder()
        let model = try OpenAIVisionModel(settings: settings, apiKey: nil, logger: testLogger, sleep: sleeps.sleeper)
        let error = try #require(await remoteError { try await model.answer(videoRequest(frames: 1)) })
        #expect(error.isTransient)
        #expect(error.tries == 2)
        #expect(sleeps.recorded.count == 1)
        #expect(error.description.hasPrefix("\(endpoint)/chat/completions: "))
    }
}
