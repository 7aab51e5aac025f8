import Archive
import ArgumentParser
import Foundation

/// `densecap bench search`: latency of `search` against a store, in-process (no process start-up).
struct BenchSearch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Time caption searches on an archive's store: p50/p95/max milliseconds per query (JSON).")

    @OptionGroup var store: StoreOptions

    @Option(help: "A file with one query a line.")
    var queries: String

    @Option(help: "Times each query runs (after one untimed warm-up run of all of them).")
    var repeats: Int = 5

    @Option(help: "Results per query, as `search --limit`.")
    var limit: Int = 20

    func run() async throws {
        guard let text = try? String(contentsOfFile: queries, encoding: .utf8) else {
            Console.error("\(queries): cannot read")
            throw Status.noInput.exitCode
        }
        let list = text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let s = try await store.open()
        for q in list { _ = try await s.search(SearchQuery(text: q, limit: limit)) }
        var times: [Double] = []
        var hits = 0
        for _ in 0..<max(1, repeats) {
            for q in list {
                let start = DispatchTime.now().uptimeNanoseconds
                hits += try await s.search(SearchQuery(text: q, limit: limit)).count
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
        }
        try await s.close()
        times.sort()
        func percentile(_ p: Double) -> Double { times[min(times.count - 1, Int((p * Double(times.count)).rounded(.up)) - 1)] }
        let object: [String: Any] = [
            "store": s.location, "queries": list.count, "runs": times.count, "hits_per_query": Double(hits) / Double(times.count),
            "p50_ms": percentile(0.5), "p95_ms": percentile(0.95), "max_ms": times.last ?? 0,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        Console.stdout(String(decoding: data, as: UTF8.self) + "\n")
    }
}
