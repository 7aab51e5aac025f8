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
        let command = try Segment.parse(settings.jobArguments + ["input.mp4"])
        var jobSettings = try command.settings()
        jobSettings.output.formats = withJSON(jobSettings.output.formats)
        let job = SegmentJob(settings: jobSettings, logger: logger)
        job.decodeThreads = command.threads
        job.generator = "densecap \(densecapVersion) segment"
        return JobArchiveProcessor { file, folder in try job.run(file: file, into: folder) }
    case .caption:
        let command = try Caption.parse(settings.jobArguments + ["input.mp4"])
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
    case .segment: _ = try Segment.parse(arguments + ["input.mp4"]).settings()
    case .caption: _ = try Caption.parse(arguments + ["input.mp4"]).settings()
    }
}

/// What a failed file records: its one-line error and exit category.
func processingFailure(_ error: Error, file: String) -> ProcessingFailure {
    if let e = error as? ProcessingFailure { return e }
    return ProcessingFailure(message: failureLine(error, file: file), category: Status(error: error).name)
}

/// One file through a job into its output folder. A file whose manifest says it is done (a worker
/// died after writing it) is not computed again: its recorded events are read back.
struct JobArchiveProcessor: ArchiveProcessor, @unchecked Sendable {
    // Used by one worker thread at a time (a worker processes one file at a time).
    let run: (String, String) async throws -> JobOutcome

    func process(file: String, outputFolder: String) async throws -> ProcessedFile {
        do {
            let outcome = try await run(file, outputFolder)
            let json = (outputFolder as NSString).appendingPathComponent("\(stem(of: file)).\(CaptionFormat.json.fileSuffix)")
            let written = outcome.skipped ? Manifest.load(Manifest.path(for: file, in: outputFolder))?.outputs ?? [] : outcome.written
            return ProcessedFile(events: try CaptionImport.read(json).events,
                                 outputs: written.map { (outputFolder as NSString).appendingPathComponent($0) },
                                 damaged: outcome.report.truncatedAt != nil || outcome.report.isDamaged)
        } catch {
            throw processingFailure(error, file: file)
        }
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
