import Foundation

/// Why a remote request failed for good: after its last try, or at once when retrying cannot
/// help. `description` is one line naming the URL, the problem and the number of tries.
public struct RemoteEngineError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Reason: Equatable, Sendable {
        /// The server answered with an error status; `message` is its OpenAI-style
        /// `error.message` (or the start of the body) when it sent one.
        case status(code: Int, message: String?)
        /// No answer: refused, reset, or closed before the whole response arrived.
        case connection(String)
        /// No complete answer within the per-try timeout.
        case timeout(seconds: Double)
        /// A success status whose body is not the chat completion it should be.
        case malformedResponse(String)
        /// A frame or image could not be encoded, or the request is unusable.
        case invalidRequest(String)
        /// Settings no request can be made with.
        case invalidSettings(String)
    }

    /// The URL the request went to (the endpoint for settings errors).
    public let endpoint: String
    public let reason: Reason
    /// Requests sent (0 when none could be).
    public let tries: Int

    public init(endpoint: String, reason: Reason, tries: Int) {
        self.endpoint = endpoint
        self.reason = reason
        self.tries = tries
    }

    /// Whether another try could succeed (connection problems, timeouts, 408, 409, 429, ≥ 500).
    public var isTransient: Bool {
        switch reason {
        case .connection, .timeout: true
        case .status(let code, _): code == 408 || code == 409 || code == 429 || code >= 500
        default: false
        }
    }

    public var description: String {
        let problem: String
        switch reason {
        case .status(let code, let message):
            problem = "HTTP \(code)" + (message.map { ": \(oneLine($0))" } ?? "")
        case .connection(let why): problem = "connection failed: \(oneLine(why))"
        case .timeout(let seconds): problem = "no answer within the \(seconds.plainText) s timeout"
        case .malformedResponse(let why): problem = "malformed response: \(oneLine(why))"
        case .invalidRequest(let why): problem = "cannot make the request: \(oneLine(why))"
        case .invalidSettings(let why): return "remote engine \(endpoint): \(oneLine(why))"
        }
        let attempts = tries == 1 ? "1 try" : "\(tries) tries"
        return "\(endpoint): \(problem) (\(attempts))"
    }
}

/// The text on one line, at most 300 characters.
func oneLine(_ text: String) -> String {
    let flat = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    return flat.count > 300 ? String(flat.prefix(300)) + "…" : flat
}

extension Double {
    /// `600`, `0.25`: no trailing `.0`.
    var plainText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
