import DenseCore
import EventSegmenter
import Foundation

/// Boundary and event-localisation scores of predicted events against ground truth.
public enum Evaluation {
    /// One video's events (seconds) and boundaries (seconds).
    public struct Video: Sendable, Equatable {
        public var id: String
        /// `[start, end]` pairs in seconds.
        public var events: [[Double]]
        /// Times where one event ends and the next begins (without the video's start).
        public var boundaries: [Double]
        public var duration: Double?

        public init(id: String, events: [[Double]], boundaries: [Double]? = nil, duration: Double? = nil) {
            self.id = id
            self.events = events
            self.duration = duration
            self.boundaries = boundaries ?? Evaluation.boundaries(of: events, duration: duration)
        }
    }

    /// Starts and ends of the events, each once (within 1 ms), without 0 and the video's end.
    public static func boundaries(of events: [[Double]], duration: Double?) -> [Double] {
        let end = duration ?? .infinity
        let times = events.flatMap { $0 }.filter { $0 > 0.0005 && $0 < end - 0.0005 }.sorted()
        var out: [Double] = []
        for t in times where out.last.map({ t - $0 > 0.001 }) ?? true { out.append(t) }
        return out
    }

    public struct BoundaryScore: Sendable, Equatable {
        public var truePositives: Int
        public var falsePositives: Int
        public var falseNegatives: Int
        /// Mean |predicted − true| over the matches, seconds.
        public var meanOffset: Double

        public var precision: Double { truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives) }
        public var recall: Double { truePositives + falseNegatives == 0 ? 1 : Double(truePositives) / Double(truePositives + falseNegatives) }
        public var f1: Double {
            let p = precision, r = recall
            return p + r == 0 ? 0 : 2 * p * r / (p + r)
        }

        public static func + (a: BoundaryScore, b: BoundaryScore) -> BoundaryScore {
            let n = a.truePositives + b.truePositives
            let offset = n == 0 ? 0 : (a.meanOffset * Double(a.truePositives) + b.meanOffset * Double(b.truePositives)) / Double(n)
            return BoundaryScore(truePositives: n, falsePositives: a.falsePositives + b.falsePositives,
                                 falseNegatives: a.falseNegatives + b.falseNegatives, meanOffset: offset)
        }
        public static let zero = BoundaryScore(truePositives: 0, falsePositives: 0, falseNegatives: 0, meanOffset: 0)
    }

    /// One-to-one matching of predicted to true boundaries within `tolerance` seconds.
    ///
    /// On a line with a symmetric tolerance, taking the true boundaries in order and matching each
    /// to the earliest unmatched prediction not before `t − tolerance` (if it is within
    /// `t + tolerance`) gives a maximum matching; a prediction earlier than every remaining true
    /// boundary's window can never match and is a false positive.
    public static func scoreBoundaries(predicted: [Double], truth: [Double], tolerance: Double) -> BoundaryScore {
        let p = predicted.sorted(), g = truth.sorted()
        var i = 0, matched = 0, offsets = 0.0
        for t in g {
            while i < p.count, p[i] < t - tolerance - 1e-9 { i += 1 }
            if i < p.count, p[i] <= t + tolerance + 1e-9 {
                matched += 1
                offsets += abs(p[i] - t)
                i += 1
            }
        }
        return BoundaryScore(truePositives: matched, falsePositives: p.count - matched, falseNegatives: g.count - matched,
                             meanOffset: matched > 0 ? offsets / Double(matched) : 0)
    }

    /// densevid_eval's temporal IoU: the union is the span of both intervals, but never more than
    /// the sum of their lengths (disjoint intervals), and 1e-8 is added to it.
    /// ranjaykrishna/densevid_eval@9d4045a, evaluate.py `ANETcaptions.iou`.
    /// Boundary scores of every video any ground truth names, each against the ground truth
    /// that scores it best (highest F1, the first on ties), as densevid_eval takes the best
    /// annotator for localisation; summed over the videos.
    /// - Parameter truths: one list of videos per ground-truth file.
    public static func scoreBoundaries(predictions: [Video], truths: [[Video]], tolerance: Double) -> BoundaryScore {
        var ids: [String] = []
        for file in truths { for v in file where !ids.contains(v.id) { ids.append(v.id) } }
        var total = BoundaryScore.zero
        for id in ids {
            let predicted = predictions.first { $0.id == id }?.boundaries ?? []
            var best: BoundaryScore?
            for file in truths {
                guard let truth = file.first(where: { $0.id == id }) else { continue }
                let score = scoreBoundaries(predicted: predicted, truth: truth.boundaries, tolerance: tolerance)
                if best.map({ score.f1 > $0.f1 }) ?? true { best = score }
            }
            if let best { total = total + best }
        }
        return total
    }

    public static func tIoU(_ a: [Double], _ b: [Double]) -> Double {
        let intersection = max(0, min(b[1], a[1]) - max(b[0], a[0]))
        let union = min(max(b[1], a[1]) - min(b[0], a[0]), b[1] - b[0] + a[1] - a[0])
        return intersection / (union + 1e-8)
    }

    /// densevid_eval's detection precision and recall at one tIoU, exactly as
    /// ranjaykrishna/densevid_eval@9d4045a, evaluate.py `evaluate_detection` computes them: per
    /// ground-truth video, a prediction and a reference "cover" each other when their tIoU is
    /// strictly above `tIoU` (many-to-many; no one-to-one matching); precision is covered
    /// predictions ÷ predictions, recall covered references ÷ references; with several
    /// ground-truth files each video takes its best precision and best recall over the files
    /// that contain it; the scores are averaged over all ground-truth videos, a video without
    /// predictions scoring 0. Predictions beyond `maxProposals` per video are dropped first.
    /// (The reference raises on a video whose prediction list is empty; here it scores 0.)
    public static func detection(predictions: [String: [[Double]]], truths: [[String: [[Double]]]], tIoU threshold: Double,
                                 maxProposals: Int = 1000) -> (precision: Double, recall: Double) {
        var ids = Set<String>()
        for t in truths { ids.formUnion(t.keys) }
        guard !ids.isEmpty else { return (0, 0) }
        var precisionSum = 0.0, recallSum = 0.0
        for id in ids {
            var bestPrecision = 0.0, bestRecall = 0.0
            let preds = Array((predictions[id] ?? []).prefix(maxProposals))
            for truth in truths {
                guard let refs = truth[id] else { continue }
                var refsCovered = Set<Int>(), predsCovered = Set<Int>()
                for (pi, p) in preds.enumerated() {
                    for (ri, r) in refs.enumerated() where tIoU(p, r) > threshold {
                        refsCovered.insert(ri)
                        predsCovered.insert(pi)
                    }
                }
                if !preds.isEmpty { bestPrecision = max(bestPrecision, Double(predsCovered.count) / Double(preds.count)) }
                if !refs.isEmpty { bestRecall = max(bestRecall, Double(refsCovered.count) / Double(refs.count)) }
            }
            precisionSum += bestPrecision
            recallSum += bestRecall
        }
        return (precisionSum / Double(ids.count), recallSum / Double(ids.count))
    }

    public static let standardTIoUs: [Double] = [0.3, 0.5, 0.7, 0.9]
}

// MARK: - Reading predictions and ground truth

/// A file `densecap eval` reads, whatever its format.
public enum EvaluationInput {
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Reads densecap's JSON (`schema: densecap.events/1`), an ActivityNet results file
    /// (`{"results": {id: [{"timestamp": [s, e]}]}}`), an ActivityNet ground-truth file
    /// (`{id: {"duration", "timestamps": [[s, e]], "sentences"}}`), or a plain cut list (one time
    /// per line, seconds or [H:]MM:SS.fff; `#` starts a comment).
    public static func read(path: String) throws -> [Evaluation.Video] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReadError(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String) throws -> [Evaluation.Video] {
        let id = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            .replacingOccurrences(of: ".events", with: "").replacingOccurrences(of: ".activitynet", with: "")
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            return [try cutList(String(decoding: data, as: UTF8.self), id: id, path: path)]
        }
        guard let dict = object as? [String: Any] else { throw ReadError(path: path, reason: "JSON is not an object") }
        if dict["schema"] as? String == JSONWriter.schema {
            let video = dict["video"] as? [String: Any]
            let events = (dict["events"] as? [[String: Any]]) ?? []
            var spans: [[Double]] = [], boundaries: [Double] = []
            for e in events {
                guard let s = number(e["start"]), let t = number(e["end"]) else { throw ReadError(path: path, reason: "event without start/end") }
                spans.append([s, t])
                let kind = e["kind"] as? String
                if kind != BoundaryKind.start.rawValue && kind != BoundaryKind.split.rawValue && s > 0 { boundaries.append(s) }
            }
            return [Evaluation.Video(id: (video?["id"] as? String) ?? id, events: spans, boundaries: boundaries,
                                     duration: number(video?["duration"]))]
        }
        if let results = dict["results"] as? [String: Any] {
            return try results.keys.sorted().map { vid in
                guard let list = results[vid] as? [[String: Any]] else { throw ReadError(path: path, reason: "results[\(vid)] is not a list") }
                return Evaluation.Video(id: vid, events: try list.map { try span($0["timestamp"], path: path) })
            }
        }
        return try dict.keys.sorted().map { vid in
            guard let entry = dict[vid] as? [String: Any], let stamps = entry["timestamps"] as? [Any] else {
                throw ReadError(path: path, reason: "not densecap JSON, ActivityNet results or ActivityNet ground truth (\(vid) has no timestamps)")
            }
            return Evaluation.Video(id: vid, events: try stamps.map { try span($0, path: path) }, duration: number(entry["duration"]))
        }
    }

    static func cutList(_ text: String, id: String, path: String) throws -> Evaluation.Video {
        var cuts: [Double] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if line.isEmpty { continue }
            guard let t = MediaTime(parsing: line) else { throw ReadError(path: path, reason: "line \(n + 1): cannot read '\(line)' as a time") }
            cuts.append(t.seconds)
        }
        let sorted = cuts.sorted()
        var events: [[Double]] = []
        var previous = 0.0
        for c in sorted where c > 0 {
            events.append([previous, c])
            previous = c
        }
        return Evaluation.Video(id: id, events: events, boundaries: sorted.filter { $0 > 0 })
    }

    static func span(_ value: Any?, path: String) throws -> [Double] {
        guard let pair = value as? [Any], pair.count == 2, let s = number(pair[0]), let e = number(pair[1]) else {
            throw ReadError(path: path, reason: "a timestamp is not [start, end]")
        }
        return [s, e]
    }

    static func number(_ value: Any?) -> Double? {
        if let n = value as? NSNumber { return n.doubleValue }
        if let s = value as? String { return Double(s) }
        return nil
    }
}
