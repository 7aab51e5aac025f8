import Archive
import ArgumentParser
import CaptionWriters
import DenseCore
import Engine
import Foundation
import Jobs
import Logging
import VideoIO

// The archive runs each file through the same jobs as `segment` and `caption`, built from the
// flags recorded in the archive's settings; a caption archive loads its model once per worker.

/// The processor for an archive's settings; a caption archive loads its model here, once.
func makeArchiveProcessor(_ settings: ArchiveSettings, logger: Logger) async throws -> any ArchiveProcessor {
    switch settings.mode {
    case .segment:
        let command = try Segment.parse(jobCommandLine(settings.jobArguments))
        var jobSettings = try command.settings()
        jobSettings.output.formats = withJSON(jobSettings.output.formats)
        let job = SegmentJob(settings: jobSettings, logger: logger)
        job.decodeThreads = command.threads
        job.generator = "densecap \(densecapVersion) segment"
        return JobArchiveProcessor { file, folder in try job.run(file: file, into: folder) }
    case .caption:
        let command = try Caption.parse(jobCommandLine(settings.jobArguments))
        var jobSettings = try command.settings()
        jobSettings.output.formats = withJSON(jobSettings.output.formats)
        let model = try await makeVisionModel(command.modelOptions, command.engine, batch: command.batch, logger: logger)
        let job = CaptionJob(model: model, modelName: command.modelOptions.model, settings: jobSettings, logger: logger)
        job.decodeThreads = command.decodeThreads
        job.generator = "densecap \(densecapVersion) caption"
        return JobArchiveProcessor { file, folder in try await job.run(file: file, into: folder) }
    }
}

/// The store records the events from the JSON output, so an archive always writes it.
private func withJSON(_ formats: [CaptionFormat]) -> [CaptionFormat] { formats.contains(.json) ? formats : formats + [.json] }

/// Checks that `arguments` are flags the job accepts (and none the archive sets itself).
func validateArchiveJob(_ mode: ArchiveSettings.Mode, _ arguments: [String]) throws {
    for reserved in ["--out", "-o", "--force", "--format"] where arguments.contains(reserved) {
        throw ValidationError("\(reserved) is set by the archive; leave it out of the job's flags")
    }
    switch mode {
    case .segment: _ = try Segment.parse(jobCommandLine(arguments)).settings()
    case .caption: _ = try Caption.parse(jobCommandLine(arguments)).settings()
    }
}

/// The job's command line as the archive runs it: its flags, an output folder (each file gets its
/// own; flags that need one, like --thumbnails, see that there is one) and a stand-in input.
private func jobCommandLine(_ arguments: [String]) -> [String] {
    arguments + ["--out", "archive-output-folder", "input.mp4"]
}

/// What a failed file records: its one-line error and exit category.
func processingFailure(_ error: Error, file: String) -> ProcessingFailure {
    if let e = error as? ProcessingFailure { return e }
    return ProcessingFailure(message: failureLine(error, file: file), category: Status(error: error).name)
}

/// One file through a job into its output folder. The events stored are those of the JSON just
/// written, taken from the job's document in memory; a file whose manifest says it is done (a
/// worker died after writing it) is not computed again: its events are read back from that JSON.
struct JobArchiveProcessor: ArchiveProcessor, @unchecked Sendable {
    // Used by one worker thread at a time (a worker processes one file at a time).
    let run: (String, String) async throws -> JobOutcome

    func process(file: String, outputFolder: String) async throws -> ProcessedFile {
        do {
            let outcome = try await run(file, outputFolder)
            let written = outcome.skipped ? Manifest.load(Manifest.path(for: file, in: outputFolder))?.outputs ?? [] : outcome.written
            let json = (outputFolder as NSString).appendingPathComponent("\(stem(of: file)).\(CaptionFormat.json.fileSuffix)")
            let document = outcome.skipped ? nil : outcome.document
            let events = try document.map { archivedEvents($0, file: file, outputFolder: outputFolder) } ?? CaptionImport.read(json).events
            return ProcessedFile(events: events, outputs: written.map { (outputFolder as NSString).appendingPathComponent($0) },
                                 damaged: outcome.report.truncatedAt != nil || outcome.report.isDamaged)
        } catch {
            throw processingFailure(error, file: file)
        }
    }
}

/// The events of `document` exactly as `CaptionImport.read` reads them back from the JSON the job
/// wrote for it: times as the JSON prints them (milliseconds), thumbnails as absolute paths.
func archivedEvents(_ document: CaptionDocument, file: String, outputFolder: String) -> [ArchivedEvent] {
    let name = stem(of: file)
    return document.events.enumerated().map { i, e in
        let keyframe = document.thumbnails[i] == nil ? nil
            : ((outputFolder as NSString).appendingPathComponent(thumbnailName(stem: name, index: i, keyframe: e.keyframe)) as NSString).standardizingPath
        return ArchivedEvent(index: i, start: Double(e.start.secondsString) ?? e.start.seconds, end: Double(e.end.secondsString) ?? e.end.seconds,
                             startExact: e.start.rational.description, endExact: e.end.rational.description, kind: e.kind.rawValue,
                             caption: e.caption, keyframe: keyframe)
    }
}

extension ExitStatus {
    /// The name an archive records as a failed file's exit category.
    var name: String {
        switch self {
        case .success: "success"
        case .failure: "failure"
        case .partial: "partial"
        case .usage: "usage"
        case .dataError: "data-error"
        case .noInput: "no-input"
        case .unavailable: "unavailable"
        case .cannotCreate: "cannot-create"
        case .tempFailure: "temp-failure"
        case .protocolError: "protocol-error"
        case .noPermission: "no-permission"
        }
    }
}
