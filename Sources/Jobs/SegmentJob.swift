import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import Logging
import VideoIO

/// `densecap segment`: event boundaries without a model, written per input.
public final class SegmentJob {
    public let settings: SegmentSettings
    /// Decoder threads (1: two single-threaded chunk decoders beside the analysis).
    public var decodeThreads = 1
    /// Version string recorded in outputs ("densecap 0.1.0 segment").
    public var generator = "densecap segment"
    let logger: Logger

    public init(settings: SegmentSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// Detects the events of one input and builds its document (no files written).
    public func analyse(file: String, progress: (Double) -> Void = { _ in }) throws -> (document: CaptionDocument, report: DecodeReport) {
        let pass = DetectionPass(settings: settings.detection, threads: decodeThreads, logger: logger)
        let found = try pass.run(file: file, progress: progress)
        var events: [Event]
        do {
            events = try found.segmenter.events(end: found.streamEnd)
        } catch let error as SegmenterError {
            throw JobError.segmenter(path: file, reason: error.description)
        }
        if settings.detection.refine && settings.detection.rate != nil {
            try pass.refineCuts(&events, file: file, sampleTimes: found.sampleTimes)
        }
        logger.info("\(file): \(found.segmenter.frameCount) frames, \(events.count) events")
        let info = found.info
        var document = CaptionDocument(
            video: VideoMetadata(path: file, duration: info.duration, width: info.displaySize.width,
                                 height: info.displaySize.height, frameRate: info.averageFrameRate, codec: info.codec),
            generator: generator, settings: try settings.settingsPairs(), events: events)
        document.analysis = DetectionPass.analysis(found)
        if let width = settings.output.thumbnailWidth {
            document.thumbnails = try keyframeThumbnails(file, events: events, width: width, threads: decodeThreads, logger: logger)
        }
        return (document, found.report)
    }

    /// One input into `folder`: skipped when its manifest says it is done with these settings
    /// and this content (unless `force`), else analysed and written, the manifest last.
    public func run(file: String, into folder: String, force: Bool = false, progress: (Double) -> Void = { _ in }) throws -> JobOutcome {
        let manifestPath = Manifest.path(for: file, in: folder)
        let previous = Manifest.load(manifestPath)
        let input = try InputIdentity.of(file, known: previous?.input)
        let encoded = String(decoding: try settings.canonicalJSON(), as: UTF8.self)
        var outcome = JobOutcome()
        if !force, try previous?.skip(file, job: "segment", input: input, settings: encoded, model: nil, folder: folder, logger: logger) == true {
            outcome.skipped = true
            return outcome
        }
        try createFolder(folder)
        let (document, report) = try analyse(file: file, progress: progress)
        var manifest = Manifest(job: "segment", input: input, settings: encoded, state: .running)
        manifest.events = document.events.map {
            Manifest.EventRecord(start: $0.start, end: $0.end, frames: [], state: .skipped, caption: nil)
        }
        outcome.written = try writeOutputs(document, file: file, into: folder, formats: settings.output.formats, logger: logger)
        manifest.outputs = outcome.written
        manifest.state = .done
        try manifest.save(to: manifestPath)
        outcome.document = document
        outcome.report = report
        return outcome
    }
}

extension Manifest {
    /// True when the input is done with these settings, this content and this model, every
    /// output still in place; a touched file's new identity is recorded (no hashing next time).
    func skip(_ file: String, job: String, input: InputIdentity, settings: String, model: String?, folder: String,
              logger: Logger) throws -> Bool {
        guard state == .done, self.job == job, self.input.sameContent(as: input), self.settings == settings, self.model == model,
            outputs.allSatisfy({ FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) })
        else { return false }
        logger.info("\(file): already done in \(folder); --force redoes it")
        if self.input != input {
            var touched = self
            touched.input = input
            try touched.save(to: Manifest.path(for: file, in: folder))
        }
        return true
    }
}
