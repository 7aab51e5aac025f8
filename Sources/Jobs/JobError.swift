import Foundation
import VideoIO

/// Problems of a job that are not the video's (those are `VideoError`s).
public enum JobError: Error, CustomStringConvertible, Equatable {
    /// An input (or model file) that cannot be read.
    case input(path: String, reason: String)
    /// The frame cache or the manifest cannot be written or read.
    case state(path: String, reason: String)
    /// Nothing in the requested range.
    case noFrames(path: String)
    /// The segmenter refused its input.
    case segmenter(path: String, reason: String)
    /// Settings this model cannot serve (a remote model has no embeddings to probe with).
    case settings(path: String, reason: String)
    /// Some captions could not be made (the model's server kept failing); they are recorded as
    /// failed in the manifest and a rerun asks for them again.
    case captionsFailed(path: String, failed: Int, of: Int, firstError: String)

    public var description: String {
        switch self {
        case .input(let path, let reason), .state(let path, let reason), .segmenter(let path, let reason): "\(path): \(reason)"
        case .noFrames(let path): "\(path): no frame in the requested range"
        case .settings(let path, let reason): "\(path): \(reason)"
        case .captionsFailed(let path, let failed, let total, let first):
            "\(path): \(failed) of \(total) captions failed (recorded; rerun to retry them): \(first)"
        }
    }

    /// The exit status this error gives (README's table).
    public var status: ExitStatus {
        switch self {
        case .input: .noInput
        case .state: .cannotCreate
        case .noFrames: .dataError
        case .segmenter: .failure
        case .settings: .usage
        case .captionsFailed: .tempFailure
        }
    }
}

/// Exit codes (sysexits.h where one fits); documented in `densecap --help` and README.
public enum ExitStatus: Int32, Comparable, Sendable, Codable {
    case success = 0
    case failure = 1
    case partial = 3
    case usage = 64
    case dataError = 65
    case noInput = 66
    case unavailable = 69
    case cannotCreate = 73
    case tempFailure = 75
    case protocolError = 76
    case noPermission = 77

    public init(_ kind: VideoError.Kind) {
        switch kind {
        case .missing, .unreadable: self = .noInput
        case .notMedia, .noVideo, .undecodable: self = .dataError
        case .unsupportedCodec: self = .unavailable
        case .output: self = .cannotCreate
        }
    }

    /// The status of any error a job throws.
    public init(error: Error) {
        switch error {
        case let e as VideoError: self.init(e.kind)
        case let e as JobError: self = e.status
        default: self = .failure
        }
    }

    /// Severity order: a failure outranks the specific errors, which outrank a partial result,
    /// which outranks success. Equally severe codes are ordered by their number, so a batch's
    /// code never depends on the order of its inputs.
    private var severity: Int {
        switch self {
        case .success: 0
        case .partial: 1
        case .failure: 3
        default: 2
        }
    }

    public static func < (a: ExitStatus, b: ExitStatus) -> Bool { (a.severity, a.rawValue) < (b.severity, b.rawValue) }
}
