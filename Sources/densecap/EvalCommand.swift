import ArgumentParser
import CaptionWriters
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score predicted events against ground truth: boundary F1 and densevid_eval's localisation precision/recall.",
        discussion: """
            Inputs: densecap's JSON (densecap.events/1), ActivityNet results ({"results": …}), \
            ActivityNet ground truth ({id: {"timestamps": …}}) or a plain cut list (one time per line). \
            Boundaries: the times where one event ends and the next begins (a densecap event opened \
            by a split is not a boundary), matched one to one within --tolerance seconds. \
            Localisation: precision and recall at each tIoU exactly as densevid_eval's \
            evaluate_detection computes them (strictly greater tIoU, many-to-many coverage, averaged \
            over ground-truth videos). With one video on each side the ids need not agree; \
            otherwise videos are paired by id.
            """)

    @Option(help: "Predictions file.")
    var pred: String

    @Option(help: "Ground-truth file (repeat for several reference sets, as densevid_eval takes).")
    var gold: [String]

    @Option(help: "Boundary match tolerance in seconds.")
    var tolerance: Double = 0.5

    @Option(help: "Comma-separated tIoU thresholds.")
    var tious: String = "0.3,0.5,0.7,0.9"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard tolerance >= 0 else { throw ValidationError("--tolerance must be ≥ 0") }
        guard !gold.isEmpty else { throw ValidationError("give --gold") }
        _ = try thresholds()
    }

    private func thresholds() throws -> [Double] {
        try tious.split(separator: ",").map {
            guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v >= 0, v <= 1 else {
                throw ValidationError("cannot read tIoU '\($0)'")
            }
            return v
        }
    }

    func run() throws {
        _ = global.makeLogger(label: "densecap.eval")
        let predicted: [Evaluation.Video]
        var truths: [[Evaluation.Video]] = []
        do {
            predicted = try EvaluationInput.read(path: pred)
            for g in gold { truths.append(try EvaluationInput.read(path: g)) }
        } catch let error as EvaluationInput.ReadError {
            Console.error(error.description)
            throw FileManager.default.fileExists(atPath: error.path) ? Status.dataError.exitCode : Status.noInput.exitCode
        }
        // One video on each side: pair them whatever their ids (a cut list has none).
        var predictions = predicted
        if predicted.count == 1, truths.allSatisfy({ $0.count == 1 }) {
            let id = truths[0][0].id
            predictions[0].id = id
            for i in truths.indices { truths[i][0].id = id }
        }
        complete(&predictions, &truths)
        let boundary = Evaluation.scoreBoundaries(predictions: predictions, truths: truths, tolerance: tolerance)
        let videoCount = Set(truths.flatMap { $0.map(\.id) }).count
        let predMap = Dictionary(predictions.map { ($0.id, $0.events) }, uniquingKeysWith: { a, _ in a })
        let truthMaps = truths.map { Dictionary($0.map { ($0.id, $0.events) }, uniquingKeysWith: { a, _ in a }) }
        let levels = try thresholds()
        let detection = levels.map { Evaluation.detection(predictions: predMap, truths: truthMaps, tIoU: $0) }
        if json {
            var fields: [(String, JSONText)] = [
                ("videos", .int(videoCount)), ("tolerance", .number(String(tolerance))),
                ("boundaries", .object([
                    ("true_positives", .int(boundary.truePositives)), ("false_positives", .int(boundary.falsePositives)),
                    ("false_negatives", .int(boundary.falseNegatives)), ("precision", .number(fmt(boundary.precision))),
                    ("recall", .number(fmt(boundary.recall))), ("f1", .number(fmt(boundary.f1))),
                    ("mean_offset", .number(fmt(boundary.meanOffset))),
                ])),
            ]
            fields.append(("localisation", .array(zip(levels, detection).map { level, d in
                .object([("tiou", .number(String(level))), ("precision", .number(fmt(d.precision))), ("recall", .number(fmt(d.recall)))])
            })))
            Console.stdout(JSONText.object(fields).rendered() + "\n")
            return
        }
        var text = "boundaries (±\(tolerance) s, one-to-one): precision \(fmt(boundary.precision)) recall \(fmt(boundary.recall)) F1 \(fmt(boundary.f1))"
        text += " (TP \(boundary.truePositives), FP \(boundary.falsePositives), FN \(boundary.falseNegatives), mean offset \(fmt(boundary.meanOffset)) s)\n"
        text += "tIoU   precision  recall\n"
        for (level, d) in zip(levels, detection) { text += String(format: "%.2f   %.4f     %.4f\n", level, d.precision, d.recall) }
        if !detection.isEmpty {
            let p = detection.map(\.precision).reduce(0, +) / Double(detection.count)
            let r = detection.map(\.recall).reduce(0, +) / Double(detection.count)
            text += String(format: "mean   %.4f     %.4f\n", p, r)
        }
        Console.stdout(text)
    }

    /// A cut list knows no duration: its last event runs to the other side's end.
    private func complete(_ predictions: inout [Evaluation.Video], _ truths: inout [[Evaluation.Video]]) {
        let known = predictions + truths.flatMap { $0 }
        func fill(_ v: inout Evaluation.Video) {
            guard v.duration == nil, let d = known.first(where: { $0.id == v.id && $0.duration != nil })?.duration else { return }
            let last = v.events.last?[1] ?? 0
            if last < d { v.events.append([last, d]) }
            v.duration = d
        }
        for i in predictions.indices { fill(&predictions[i]) }
        for i in truths.indices { for j in truths[i].indices { fill(&truths[i][j]) } }
    }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}
