import Engine
import Foundation
import Testing

/// The engine fixtures (tiny checkpoints written by the reference, see Tests/EngineTests/Fixtures).
let engineFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../EngineTests/Fixtures").standardized.path

@Suite struct GenerateCommandTests {
    struct Golden: Decodable {
        struct Case: Decodable { let greedy_ids_with_stop: [Int] }
        let prompt_messages: [[String: String]]
        let models: [String: Case]
    }

    /// `densecap generate` renders the chat template, decodes greedily until <|im_end|> and prints
    /// the text of exactly the reference's greedy tokens.
    @Test func printsTheReferenceGreedyAnswer() throws {
        let model = engineFixtures + "/tiny-qwen2"
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: engineFixtures + "/qwen2_golden.json")))
        let prompt = try #require(golden.prompt_messages.first?["content"])
        let ids = try #require(golden.models["tiny-qwen2"]).greedy_ids_with_stop
        let tokenizer = try BPETokenizer.load(directory: model)
        let expected = tokenizer.decode(ids, skipSpecialTokens: true) + "\n"
        let r = try densecap("generate", "--model", model, prompt, "--max-new-tokens", "24")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == expected)
        #expect(r.stderr.contains("prompt tokens"))
    }

    @Test func badModelDirectories() throws {
        #expect(try densecap("generate", "--model", "/nonexistent/model", "hi").status == 66)
        // A directory without config.json: one line naming the key, data error.
        let r = try densecap("generate", "--model", engineFixtures + "/tokenizer", "hi")
        #expect(r.status == 65)
        #expect(r.stderr.hasPrefix("densecap: error: config key 'config.json'"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func benchReportsJSON() throws {
        let r = try densecap("bench", "llm", "--model", engineFixtures + "/tiny-qwen2", "--prompt-tokens", "16", "--decode-tokens", "4")
        #expect(r.status == 0)
        let o = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        #expect(o["prompt_tokens"] as? Int == 16)
        #expect((o["prefill_tok_s"] as? Double ?? 0) > 0)
        #expect((o["blas"] as? String)?.contains("OpenBLAS") == true)
    }
}
