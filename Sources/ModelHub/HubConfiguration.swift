import Foundation

/// Where the Hub is and where its files go, read from the same environment variables as
/// `huggingface_hub` (`constants.py`), so densecap and the Hugging Face tools share one cache.
public struct HubConfiguration: Sendable {
    public static let defaultEndpoint = "https://huggingface.co"

    /// `HF_ENDPOINT` without a trailing slash, else https://huggingface.co.
    public var endpoint: String
    /// `HF_TOKEN`, else the token file the HF CLI writes (`HF_TOKEN_PATH`, else `$HF_HOME/token`).
    public var token: String?
    /// `HF_HUB_CACHE`, else `$HF_HOME/hub` (`HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`,
    /// then `~/.cache/huggingface`).
    public var cacheDirectory: String
    /// `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set to 1/ON/YES/TRUE: never touch the network.
    public var offline: Bool
    /// Files downloaded at once.
    public var parallelDownloads: Int
    /// Tries for a request that fails with a connection error, a 429 or a 5xx (the first included).
    public var attempts: Int
    /// Wait before the second try; it doubles for each following one.
    public var retryDelay: Duration
    /// How long one try may spend connecting (AsyncHTTPClient keeps retrying a refused connection
    /// until then).
    public var connectTimeout: Duration

    public init(
        endpoint: String = HubConfiguration.defaultEndpoint, token: String? = nil, cacheDirectory: String,
        offline: Bool = false, parallelDownloads: Int = 4, attempts: Int = 5, retryDelay: Duration = .seconds(1),
        connectTimeout: Duration = .seconds(10)
    ) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.token = token
        self.cacheDirectory = cacheDirectory
        self.offline = offline
        self.parallelDownloads = max(1, parallelDownloads)
        self.attempts = max(1, attempts)
        self.retryDelay = retryDelay
        self.connectTimeout = connectTimeout
    }

    /// The configuration `huggingface_hub` would use in this environment.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> HubConfiguration
    {
        func value(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return expandingTilde(v, environment: environment)
        }
        let home = environment["HOME"].map { $0 } ?? NSHomeDirectory()
        let hfHome = value("HF_HOME") ?? ((value("XDG_CACHE_HOME") ?? "\(home)/.cache") + "/huggingface")
        let tokenPath = value("HF_TOKEN_PATH") ?? "\(hfHome)/token"
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil, let text = try? String(contentsOfFile: tokenPath, encoding: .utf8) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            token = trimmed.isEmpty ? nil : trimmed
        }
        let offline = isTrue(environment["HF_HUB_OFFLINE"] ?? environment["TRANSFORMERS_OFFLINE"])
        return HubConfiguration(
            endpoint: value("HF_ENDPOINT") ?? defaultEndpoint, token: token,
            cacheDirectory: value("HF_HUB_CACHE") ?? "\(hfHome)/hub", offline: offline)
    }

    /// huggingface_hub's `_is_true`: 1, ON, YES, TRUE in any case.
    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }

    private static func expandingTilde(_ path: String, environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return (environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst()
    }
}
