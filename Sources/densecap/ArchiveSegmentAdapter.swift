import Archive
import ArgumentParser
import CaptionWriters
import Foundation
import Logging
import VideoIO

// A stand-in until the job API (SegmentJob/CaptionJob) lands: runs `segment`'s code path on one
// file for the archive. The lead replaces this file with the jobs at merge.

/// Segments one file with the archive's recorded flags, writing the outputs as `segment --out` does.
struct SegmentArchiveProcessor: ArchiveProcessor {
    let arguments: [String]
    let logger: Logger

    /// Checks that `arguments` are flags `segment` accepts (and none the archive sets itself).
    static func validate(_ arguments: [String]) throws {
        for reserved in ["--out", "-o", "--force", "--format"] where arguments.contains(reserved) {
            throw ValidationError("\(reserved) is set by the archive; leave it out of the job's flags")
        }
        _ = try Segment.parse(arguments + ["input.mp4"])
    }

    func process(file: String, outputFolder: String) throws -> ProcessedFile {
        do {
            let command = try Segment.parse(arguments + ["--out", outputFolder, "--force", file])
            try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)
            let (document, damaged) = try command.segment(file, logger: logger)
            let written = try writeOutputs(document, file: file, into: outputFolder, formats: try command.outputFormats(), logger: logger)
            // The events as written (thumbnail names included) are what the store records.
            let events = try CaptionImport.read(written.last!).events
            return ProcessedFile(events: events, outputs: written, damaged: damaged)
        } catch let error as VideoError {
            throw ProcessingFailure(message: error.description, category: Status(error.kind).name)
        } catch let error as ArchiveError {
            throw ProcessingFailure(message: "\(file): \(error)", category: Status.failure.name)
        } catch {
            throw ProcessingFailure(message: "\(file): \(describe(error))", category: Status.failure.name)
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
