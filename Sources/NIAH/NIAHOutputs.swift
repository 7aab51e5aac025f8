import CaptionWriters
import Foundation

/// One entry of `all_accuracies.json`.
public struct AccuracyEntry: Codable, Equatable, Sendable {
    public var frames: Int
    public var depthPercent: Double
    public var score: Double

    public init(frames: Int, depthPercent: Double, score: Double) {
        self.frames = frames
        self.depthPercent = depthPercent
        self.score = score
    }

    enum CodingKeys: String, CodingKey {
        case frames = "Num. Frame", depthPercent = "Frame Depth", score = "Score"
    }
}

/// The files researchers consume, as the references write them.
public enum NIAHOutputs {
    /// Writes `all_accuracies.json`, `avg_accuracy.txt`, `heatmap.png` and `heatmap.html` into
    /// `directory`. - Returns: the average score (nil with no entries)
    @discardableResult
    public static func write(_ entries: [AccuracyEntry], to directory: String) throws -> Double? {
        try NIAH.write(Data(accuraciesJSON(entries).utf8), to: directory + "/all_accuracies.json")
        return try plot(entries, to: directory)
    }

    /// `--plot-only`: redraws the heatmaps and the average from `directory/all_accuracies.json`.
    @discardableResult
    public static func plot(directory: String) throws -> Double? {
        let path = directory + "/all_accuracies.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NIAHError(.missing, path, "no all_accuracies.json to plot")
        }
        guard let entries = try? JSONDecoder().decode([AccuracyEntry].self, from: data) else {
            throw NIAHError(.data, path, "not a list of {\"Num. Frame\", \"Frame Depth\", \"Score\"}")
        }
        return try plot(entries, to: directory)
    }

    static func plot(_ entries: [AccuracyEntry], to directory: String) throws -> Double? {
        let grid = HeatmapGrid(entries)
        try Heatmap.writePNG(grid, to: directory + "/heatmap.png")
        try NIAH.write(Data(Heatmap.html(grid).utf8), to: directory + "/heatmap.html")
        guard !entries.isEmpty else { return nil }
        let average = entries.reduce(0) { $0 + $1.score } / Double(entries.count)
        try NIAH.write(Data("Average Accuracy: \(pythonFloat(average))\n".utf8), to: directory + "/avg_accuracy.txt")
        return average
    }

    /// `json.dump(all_accuracies, f, indent=4)`: Python's layout and float spelling.
    static func accuraciesJSON(_ entries: [AccuracyEntry]) -> String {
        guard !entries.isEmpty else { return "[]" }
        let items = entries.map { e in
            "    {\n        \"Num. Frame\": \(e.frames),\n        \"Frame Depth\": \(pythonFloat(e.depthPercent)),\n        \"Score\": \(pythonFloat(e.score))\n    }"
        }
        return "[\n" + items.joined(separator: ",\n") + "\n]"
    }

    /// Python's `repr(float)`: the shortest round-trip digits, always with a decimal point or exponent.
    static func pythonFloat(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "Infinity" : "-Infinity" }
        var s = "\(x)"
        // Swift writes 1e-05 as "1e-05" like Python, but 1e+16 as "1e+16" like Python too; plain
        // integers come out as "20.0" in both. Only exponents without a sign differ.
        if let e = s.firstIndex(of: "e"), s[s.index(after: e)] != "-", s[s.index(after: e)] != "+" {
            s.insert("+", at: s.index(after: e))
        }
        return s
    }
}

/// The pivot the references plot: rows = depth percent ascending, columns = frame counts
/// ascending, the mean score of each (depth, frames) pair; nil where no cell was computed.
struct HeatmapGrid: Equatable {
    var depths: [Double]
    var frames: [Int]
    /// `scores[row][column]`
    var scores: [[Double?]]

    init(_ entries: [AccuracyEntry]) {
        depths = Array(Set(entries.map(\.depthPercent))).sorted()
        frames = Array(Set(entries.map(\.frames))).sorted()
        var sums = [[Double]](repeating: [Double](repeating: 0, count: frames.count), count: depths.count)
        var counts = [[Int]](repeating: [Int](repeating: 0, count: frames.count), count: depths.count)
        for e in entries {
            let r = depths.firstIndex(of: e.depthPercent)!, c = frames.firstIndex(of: e.frames)!
            sums[r][c] += e.score
            counts[r][c] += 1
        }
        var table: [[Double?]] = []
        for r in 0..<depths.count {
            var row: [Double?] = []
            for c in 0..<frames.count {
                row.append(counts[r][c] > 0 ? sums[r][c] / Double(counts[r][c]) : nil)
            }
            table.append(row)
        }
        scores = table
    }
}
