import Foundation
import Testing

/// Both directions of the OpenAI API at once: `densecap serve` puts the native engine behind it,
/// and `caption --engine openai` sends its frames there. For the same frames (lossless PNG at the
/// decoded size, vLLM's frame list so the prompt is the native one) the captions are the native
/// engine's, word for word.
@Suite(.serialized) struct RemoteCaptionTests {
    /// Starts `serve` on a free loopback port; returns it and its base URL once the model is loaded.
    static func startServer(model: String, name: String, port: Int = 0, log: String) throws -> (Process, String) {
        let server = try startDensecap(["serve", "--model", model, "--port", "\(port)", "--served-model-name", name], log: log)
        for _ in 0..<1800 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("loaded "), let line = text.split(separator: "\n").first(where: { $0.hasPrefix("http://") }) {
                return (server, String(line))
            }
            guard server.isRunning else { break }
            usleep(100_000)  // blocking: see ArchiveCommandTests' kill loop
        }
        server.terminate()
        throw CLIFailure("serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    struct CLIFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    @Test func captionThroughServeEqualsTheNativeEngine() async throws {
        let out = temporaryFolder("remote-caption")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let model = engineFixtures + "/tiny-nvila-video"
        let (server, url) = try Self.startServer(model: model, name: "tiny", log: out + "/serve.log")
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let common = [threeColours, "--fps", "2", "--max-new-tokens", "8", "--frames-per-event", "4", "--semantic", "off",
                      "--formats", "json"]
        let native = try densecap(["caption", "--model", model, "--out", out + "/native"] + common)
        #expect(native.status == 0, "\(native.stderr)")
        let remote = try densecap(["caption", "--engine", "openai", "--endpoint", url + "/v1", "--api-model", "tiny", "--transport", "video_url",
                                   "--frame-format", "png", "--image-size", "0", "--out", out + "/remote"] + common)
        #expect(remote.status == 0, "\(remote.stderr)")
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        func events(_ folder: String) throws -> [[String: Any]] {
            try #require(json(Data(contentsOf: URL(fileURLWithPath: folder + "/\(name).events.json")))["events"] as? [[String: Any]])
        }
        let a = try events(out + "/native"), b = try events(out + "/remote")
        #expect(a.count == 3 && b.count == 3)
        #expect(a.map { $0["caption"] as? String } == b.map { $0["caption"] as? String })
        #expect(a.map { $0["frame_times"] as? [Double] } == b.map { $0["frame_times"] as? [Double] })
        #expect(b.allSatisfy { ($0["caption"] as? String)?.isEmpty == false })
        let generation = try #require(b.first?["generation"] as? [String: Any])
        #expect(generation["model"] as? String == "tiny" && generation["finish_reason"] != nil)
        let nativeGeneration = try #require(a.first?["generation"] as? [String: Any])
        #expect(generation["prompt_tokens"] as? Int == nativeGeneration["prompt_tokens"] as? Int)
        #expect(generation["completion_tokens"] as? Int == nativeGeneration["completion_tokens"] as? Int)
        // The remote run records the endpoint as its model identity, never a key.
        let manifest = try String(contentsOfFile: out + "/remote/\(name).manifest.json", encoding: .utf8)
        #expect(manifest.contains("openai:") && manifest.contains("video_url"))

        // `ask` through the server answers as the native engine does for the same frames.
        let ask = ["ask", threeColours, "What colour is it?", "--frames", "3", "--max-new-tokens", "6"]
        let askNative = try densecap(ask + ["--model", model, "--detail", "1"])
        let askRemote = try densecap(ask + ["--engine", "openai", "--endpoint", url + "/v1", "--api-model", "tiny", "--transport", "video_url",
                                            "--frame-format", "png", "--image-size", "0"])
        #expect(askRemote.status == 0, "\(askRemote.stderr)")
        #expect(askNative.status == 0, "\(askNative.stderr)")
    }

    /// A server that is down: every event is recorded as failed (exit 75), nothing is written as
    /// a caption, and the rerun once it is back (the same endpoint, so the same model identity)
    /// asks for the failed captions and finishes the file.
    @Test func serverDownFailsEventsThenTheRerunFinishes() async throws {
        let out = temporaryFolder("remote-down")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let model = engineFixtures + "/tiny-nvila-video"
        // A free port: the server's own choice, then the server stopped.
        let (probe, url) = try Self.startServer(model: model, name: "tiny", log: out + "/probe.log")
        probe.terminate()
        probe.waitUntilExit()
        let port = try #require(url.split(separator: ":").last.flatMap { Int($0) })
        let args = ["caption", threeColours, "--fps", "2", "--max-new-tokens", "4", "--frames-per-event", "2", "--formats", "json",
                    "--engine", "openai", "--endpoint", url + "/v1", "--api-model", "tiny", "--max-retries", "1", "--out", out + "/captions"]
        let down = try densecap(args)
        #expect(down.status == 75, "\(down.stderr)")
        #expect(down.stderr.contains("3 of 3 captions failed"))
        let name = ((threeColours as NSString).lastPathComponent as NSString).deletingPathExtension
        #expect(!FileManager.default.fileExists(atPath: out + "/captions/\(name).events.json"))
        let manifest = try String(contentsOfFile: out + "/captions/\(name).manifest.json", encoding: .utf8)
        #expect(manifest.components(separatedBy: "\"failed\"").count - 1 == 3)
        #expect(!manifest.contains("\"caption\":\"\""))

        let (server, _) = try Self.startServer(model: model, name: "tiny", port: port, log: out + "/serve.log")
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let up = try densecap(args)
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stderr.contains("generations=3 reused=0"))
        let document = try json(Data(contentsOf: URL(fileURLWithPath: out + "/captions/\(name).events.json")))
        let events = try #require(document["events"] as? [[String: Any]])
        #expect(events.count == 3 && events.allSatisfy { ($0["caption"] as? String)?.isEmpty == false })
        #expect(!(try String(contentsOfFile: out + "/captions/\(name).manifest.json", encoding: .utf8)).contains("\"failed\""))
    }
}
