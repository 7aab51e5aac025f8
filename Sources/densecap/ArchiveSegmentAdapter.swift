import Archive
import ArgumentParser
import CaptionPipeline
import CaptionWriters
import DenseCore
import Engine
import Foundation
import Logging
import VideoIO

// A stand-in until the job API (SegmentJob/CaptionJob) lands: runs `segment`'s and `caption`'s
// code paths on one file for the archive. The lead replaces this file with the jobs at merge.

/// The processor for an archive's settings; a caption archive loads its model here, once.
func makeArchiveProcessor(_ settings: ArchiveSettings, logger: Logger) async throws -> any ArchiveProcessor {
    switch settings.mode {
    case .segment: return SegmentArchiveProcessor(arguments: settings.jobArguments, logger: logger)
    case .caption: return try await CaptionArchiveProcessor.load(arguments: settings.jobArguments, logger: logger)
    }
}

/// Checks that `arguments` are flags the job accepts (and none the archive sets itself).
func validateArchiveJob(_ mode: ArchiveSettings.Mode, _ arguments: [String]) throws {
    for reserved in ["--out", "-o", "--force", "--format"] where arguments.contains(reserved) {
        throw ValidationError("\(reserved) is set by the archive; leave it out of the job's flags")
    }
    switch mode {
    case .segment: _ = try Segment.parse(arguments + ["input.mp4"])
    case .caption: _ = try Caption.parse(arguments + ["input.mp4"])
    }
}

/// What a failed file records: its one-line error and exit category.
func processingFailure(_ error: Error, file: String) -> ProcessingFailure {
    switch error {
    case let e as ProcessingFailure: return e
    case let e as VideoError: return ProcessingFailure(message: e.description, category: Status(e.kind).name)
    case let e as CaptionError:
        if case .noFrames = e { return ProcessingFailure(message: e.description, category: Status.dataError.name) }
        return ProcessingFailure(message: e.description, category: Status.cannotCreate.name)
    case let e as WriterError: return ProcessingFailure(message: e.description, category: Status.cannotCreate.name)
    default: return ProcessingFailure(message: "\(file): \(describe(error))", category: Status.failure.name)
    }
}

/// Segments one file with the archive's recorded flags, writing the outputs as `segment --out` does.
struct SegmentArchiveProcessor: ArchiveProcessor {
    let arguments: [String]
    let logger: Logger

    func process(file: String, outputFolder: String) throws -> ProcessedFile {
        do {
            let command = try Segment.parse(arguments + ["--out", outputFolder, "--force", file])
            try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)
            let (document, damaged) = try command.segment(file, logger: logger)
            let written = try writeOutputs(document, file: file, into: outputFolder, formats: try command.outputFormats(), logger: logger)
            // The events as written (thumbnail names included) are what the store records.
            return ProcessedFile(events: try CaptionImport.read(written.last!).events, outputs: written, damaged: damaged)
        } catch {
            throw processingFailure(error, file: file)
        }
    }
}

/// Captions one file with the model loaded once per worker, as `caption --out` does.
final class CaptionArchiveProcessor: ArchiveProcessor, @unchecked Sendable {
    // Used by one worker thread at a time (a worker processes one file at a time).
    private let command: Caption
    private let pipeline: CaptionPipeline
    private let directory: String
    private let formats: [CaptionFormat]
    private let logger: Logger

    private init(command: Caption, pipeline: CaptionPipeline, directory: String, formats: [CaptionFormat], logger: Logger) {
        self.command = command
        self.pipeline = pipeline
        self.directory = directory
        self.formats = formats
        self.logger = logger
    }

    static func load(arguments: [String], logger: Logger) async throws -> CaptionArchiveProcessor {
        let command = try Caption.parse(arguments + ["input.mp4"])
        Numerics.setThreads(command.modelOptions.threads)
        let directory = try await command.modelOptions.checkpointDirectory(logger: logger)
        let model = try NVILAModel.load(directory: directory, logger: logger)
        let pipeline = CaptionPipeline(model: model, settings: command.captionSettings(model: model), logger: logger)
        return CaptionArchiveProcessor(command: command, pipeline: pipeline, directory: directory,
                                       formats: try parseFormats(command.formats), logger: logger)
    }

    func process(file: String, outputFolder: String) throws -> ProcessedFile {
        do {
            let (damaged, written) = try command.caption(file, into: outputFolder, pipeline: pipeline, directory: directory, formats: formats,
                                                         recorded: command.settings(model: command.modelOptions.model), logger: logger)
            return ProcessedFile(events: try CaptionImport.read(written.last!).events, outputs: written, damaged: damaged)
        } catch {
            throw processingFailure(error, file: file)
        }
    }
}

extension Status {
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
