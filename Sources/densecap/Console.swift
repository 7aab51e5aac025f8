import ArgumentParser
import CaptionWriters
import Foundation
import Jobs
import ModelHub
import VideoIO

/// Exit codes: `Jobs.ExitStatus` (README's table).
typealias Status = ExitStatus

extension ExitStatus {
    init(_ kind: HubError.Kind) {
        switch kind {
        case .invalidReference: self = .usage
        case .notFound, .offline: self = .noInput
        case .unauthorized: self = .noPermission
        case .network, .corrupt: self = .tempFailure
        case .protocolError: self = .protocolError
        case .diskFull, .permissionDenied, .io: self = .cannotCreate
        }
    }

    var exitCode: ExitCode { ExitCode(rawValue) }
}

/// stderr writer for diagnostics and progress; stdout stays for results.
enum Console {
    static let stderrIsTerminal = isatty(2) != 0

    static func error(_ message: String) { writeLine("densecap: error: \(message)") }
    static func warning(_ message: String) { writeLine("densecap: warning: \(message)") }

    static func writeLine(_ line: String) {
        ProgressBar.clearLine()
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func stdout(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// A one-line progress bar with ETA on stderr, drawn only when stderr is a terminal.
final class ProgressBar {
    private let label: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool
    nonisolated(unsafe) private static var visible = false

    init(label: String, enabled: Bool = Console.stderrIsTerminal) {
        self.label = label
        self.enabled = enabled
    }

    /// - Parameter fraction: 0…1 of the work done.
    func update(_ fraction: Double, detail: String) {
        guard enabled, Date().timeIntervalSince(lastDraw) >= 0.1 || fraction >= 1 else { return }
        lastDraw = Date()
        let f = min(1, max(0, fraction))
        let width = 24
        let filled = Int(f * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = f > 0.001 ? elapsed * (1 - f) / f : nil
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = "\r\(label) [\(bar)] \(Int(f * 100))% \(clock(elapsed)) ETA \(eta.map(clock) ?? "--:--") \(detail)\u{1B}[K"
        FileHandle.standardError.write(Data(text.utf8))
        ProgressBar.visible = true
    }

    func finish() { ProgressBar.clearLine() }

    static func clearLine() {
        guard visible else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        visible = false
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600
            ? "\(s / 3600):\(two(s / 60 % 60)):\(two(s % 60))" : "\(two(s / 60)):\(two(s % 60))"
    }

    private func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

/// A short message for a Foundation error (its underlying POSIX reason when there is one).
func describe(_ error: Error) -> String { posixReason(error) }

/// Prints one warning line per kind of damage the decoder saw; returns true when there was any.
func warnAboutDamage(_ file: String, report: DecodeReport) -> Bool {
    var damaged = false
    if let cut = report.truncatedAt {
        let declared = report.declaredEnd.map { " of \($0.secondsString) s" } ?? ""
        let why = report.readError.map { " (\($0))" } ?? ""
        Console.warning("\(file): truncated: decodable up to \(cut.secondsString) s\(declared)\(why)")
        damaged = true
    }
    if report.isDamaged {
        Console.warning("\(file): damaged stream: \(report.corruptPackets) corrupt packets skipped, \(report.rejectedPackets) packets rejected by the decoder, \(report.damagedFrames) frames with concealed errors")
        damaged = true
    }
    return damaged
}
