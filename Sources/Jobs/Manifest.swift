import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation

/// One per input and output folder (`<name>.manifest.json`), rewritten atomically after every
/// step that cost something: what was asked (settings, input, model), how far the job got, and
/// each event's state. It is the only record of "done": a rerun with the same settings, the same
/// input content and the same model skips the input; otherwise it keeps what is still valid.
public struct Manifest: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable {
        /// Work under way (or interrupted).
        case running
        /// Every output written.
        case done
    }

    /// What became of one event.
    public enum EventState: String, Codable, Sendable {
        /// Waiting for its caption.
        case pending
        case captioned
        /// Gating marked it skippable: not captioned.
        case skipped
        /// No model frame falls inside it: no caption (`null` in the outputs).
        case noFrames = "no-frames"
        /// The model could not caption it (`error` says why); a rerun asks again.
        case failed
    }

    public struct EventRecord: Codable, Equatable, Sendable {
        public var start: MediaTime
        public var end: MediaTime
        /// The model grid times its caption uses (requested times; each the first frame at or after).
        public var frames: [MediaTime]
        public var state: EventState
        public var caption: String?
        /// The decoded frames' times (`frame_times` in the outputs).
        public var frameTimes: [MediaTime] = []
        /// Model, seed, usage and finish reason of the caption.
        public var generation: CaptionGeneration?
        /// Why the caption failed (state `failed`).
        public var error: String?
    }

    public var version = 1
    /// `segment` or `caption`.
    public var job: String
    public var input: InputIdentity
    /// `ModelIdentity` of the checkpoint (caption only).
    public var model: String?
    /// The settings' canonical encoding.
    public var settings: String
    public var state: State
    /// The caption settings and model the event captions were made with (`captionKey`).
    public var captionKey: String?
    public var events: [EventRecord] = []
    /// Files written, relative to the output folder.
    public var outputs: [String] = []

    /// The manifest of `input` in `folder`.
    public static func path(for input: String, in folder: String) -> String {
        (folder as NSString).appendingPathComponent("\(stem(of: input)).manifest.json")
    }

    /// Reads a manifest; nil when there is none or it cannot be read (then the work is redone).
    public static func load(_ path: String) -> Manifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Manifest.self, from: data)
    }

    public func save(to path: String) throws {
        do {
            try writeAtomically(try canonicalJSON(), to: path)
        } catch let error as WriterError {
            throw JobError.state(path: error.path, reason: error.reason)
        }
    }

    /// The caption recorded for an event with these bounds and frames, if any.
    func recorded(start: MediaTime, end: MediaTime, frames: [MediaTime]) -> EventRecord? {
        events.first { $0.start == start && $0.end == end && $0.frames == frames && $0.state != .pending && $0.state != .failed }
    }
}

/// `dir/clip.mp4` → `clip`.
public func stem(of file: String) -> String {
    ((file as NSString).lastPathComponent as NSString).deletingPathExtension
}
