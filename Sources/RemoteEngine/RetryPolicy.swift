import Foundation

/// When and how long to wait before trying a request again: the official `openai` Python
/// client's rules (openai/openai-python@e43b4224 `src/openai/_base_client.py`: `_should_retry`,
/// `_calculate_retry_timeout`, `_parse_retry_after_header`; `_constants.py`), as of v2.52, where
/// a server-directed wait is honoured up to two minutes and a longer one is not retried.
public struct RetryPolicy: Sendable, Equatable {
    /// Tries after the first.
    public var maxRetries: Int
    /// The first back-off (0.5 s), doubled per retry taken …
    public var initialDelay: Double = 0.5
    /// … up to this (8 s).
    public var maxDelay: Double = 8
    /// `Retry-After` / `retry-after-ms` up to this many seconds are waited as given; longer ones
    /// end the request (`MAX_RETRY_AFTER_DELAY`, 120 s).
    public var maxRetryAfter: Double = 120

    public init(maxRetries: Int) {
        self.maxRetries = maxRetries
    }

    /// Whether a response with this status and these headers (lowercased names) is worth another
    /// try: not when the server asks for a wait longer than `maxRetryAfter`; as `x-should-retry`
    /// says when it says `true` or `false`; else for 408, 409, 429 and ≥ 500.
    public func shouldRetry(status: Int, headers: [String: String]) -> Bool {
        if let wait = Self.retryAfter(headers), wait.isFinite, wait > maxRetryAfter { return false }
        switch headers["x-should-retry"] {
        case "true": return true
        case "false": return false
        default: break
        }
        return status == 408 || status == 409 || status == 429 || status >= 500
    }

    /// Seconds to wait before the next try, when `retriesTaken` tries have already failed
    /// (0 after the first): the server's `retry-after-ms` / `Retry-After` when positive and at
    /// most `maxRetryAfter`, else `min(initialDelay · 2^retriesTaken, maxDelay)` times a jitter
    /// factor `1 − 0.25 · random`, random in [0, 1).
    public func delay(retriesTaken: Int, headers: [String: String], now: Date = Date(), random: Double) -> Double {
        if let wait = Self.retryAfter(headers, now: now), wait.isFinite, wait > 0, wait <= maxRetryAfter {
            return wait
        }
        let backoff = min(initialDelay * pow(2, Double(min(retriesTaken, 1000))), maxDelay)
        return max(0, backoff * (1 - 0.25 * random))
    }

    /// The server's requested wait in seconds: `retry-after-ms` (milliseconds), else
    /// `retry-after` as seconds (fractions allowed) or as an HTTP date; nil when absent or unreadable.
    public static func retryAfter(_ headers: [String: String], now: Date = Date()) -> Double? {
        if let ms = headers["retry-after-ms"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
            return ms / 1000
        }
        guard let value = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value) { return seconds }
        return httpDate(value).map { $0.timeIntervalSince(now) }
    }

    /// RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850 and
    /// asctime forms, as `email.utils.parsedate_tz` reads them.
    static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy", "dd MMM yyyy HH:mm:ss zzz"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
