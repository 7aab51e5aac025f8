import Foundation

/// The references' verdicts on one teacher-forced answer. Each is checked against the reference's
/// own code on golden cases (tools/fixtures/gen_niah_scoring_golden.py).
public enum NIAHScoring {
    /// LongVA (`eval_forward`): `(pred == answer_ids).all()` — the argmax ids at the answer's
    /// positions equal the answer's ids.
    public static func longva(predicted: [Int], answer: [Int]) -> Bool {
        predicted.count == answer.count && predicted == answer
    }

    /// VILA (`eval_forward`): `pred_text.replace(" ", "").lower() == answer_text.replace(" ", "").lower()`.
    public static func vila(predictedText: String, answerText: String) -> Bool {
        pythonLowerNoSpaces(predictedText) == pythonLowerNoSpaces(answerText)
    }

    /// VNBench (`evaluation/eval.py`): the prediction cut at its first "." (`split('.')[0]`),
    /// then 'A' if it contains an A, else 'B', 'C', 'D' in that order; compared with the answer.
    public static func vnbench(predictedText: String, answer: String) -> Bool {
        var pred = String(predictedText.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        for letter in ["A", "B", "C", "D"] where pred.contains(letter) {
            pred = letter
            break
        }
        return pred == answer
    }

    /// `s.replace(" ", "").lower()`: only U+0020 is removed; lower-casing is Unicode's.
    static func pythonLowerNoSpaces(_ s: String) -> String {
        s.replacingOccurrences(of: " ", with: "").lowercased()
    }

    /// LongVA's rule for a generated answer, which has text but no ids to compare: the text
    /// (leading whitespace dropped) begins with the answer. Greedy generation begins with the
    /// answer's k ids exactly when the teacher-forced argmax at its k positions equals them (the
    /// references' test); the text form differs only where the answer's last token would merge
    /// with what the model writes after it. Like LongVA's, it ignores what follows the answer.
    public static func longva(generatedText: String, answerText: String) -> Bool {
        String(generatedText.drop { $0.isWhitespace }).hasPrefix(answerText)
    }

    /// The verdict of `rule` for one answer.
    public static func verdict(_ rule: ScoreRule, predicted: [Int], predictedText: String, answer: [Int], answerText: String) -> Bool {
        switch rule {
        case .longva: return longva(predicted: predicted, answer: answer)
        case .vila: return vila(predictedText: predictedText, answerText: answerText)
        case .vnbench: return vnbench(predictedText: predictedText, answer: answerText)
        }
    }
}
