import ArgumentParser
import Foundation
import Logging
import ModelHub

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download, list and remove models in the Hugging Face cache.",
        discussion: """
            The cache is huggingface_hub's ($HF_HUB_CACHE, else $HF_HOME/hub, else \
            ~/.cache/huggingface/hub): models the HF tools downloaded are used as they are, and they \
            use ours. HF_ENDPOINT, HF_TOKEN (or the token file `hf auth login` writes) and \
            HF_HUB_OFFLINE work as with the HF tools.
            """,
        subcommands: [ModelsPull.self, ModelsList.self, ModelsRemove.self])
}

struct ModelsPull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model (only the files the cache lacks) and print its local directory.")

    @Argument(
        help: ArgumentHelp(
            "Model ids, ORG/NAME or ORG/NAME@REVISION (a branch, tag or commit; main by default).",
            valueName: "model-id"))
    var models: [String]

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.models")
        try await reportingErrors {
            for spec in models {
                let reference = try ModelReference(parsing: spec)
                let result = try await withModelHub(logger: logger) { try await $0.pull(reference) }
                if result.downloadedFiles == 0 { logger.info("\(reference): up to date (\(result.commit))") }
                Console.stdout(result.snapshot + "\n")
            }
        }
    }
}

struct ModelsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List cached models: revisions, commits, sizes and the directories --model resolves to.")

    @Flag(help: "JSON on stdout.")
    var json = false

    func run() async throws {
        let cache = HubCache(directory: HubConfiguration.fromEnvironment().cacheDirectory)
        try await reportingErrors {
            let models = try cache.list()
            if json {
                struct Listing: Encodable {
                    let cache: String
                    let models: [CachedModel]
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(Listing(cache: cache.directory, models: models))
                Console.stdout(String(decoding: data, as: UTF8.self) + "\n")
                return
            }
            guard !models.isEmpty else {
                Console.writeLine("densecap: no models in \(cache.directory)")
                return
            }
            var rows = [["MODEL", "REVISION", "COMMIT", "FILES", "SIZE", "PATH"]]
            for model in models {
                for revision in model.revisions {
                    rows.append([
                        model.repo, revision.refs.isEmpty ? "-" : revision.refs.joined(separator: ","),
                        String(revision.commit.prefix(12)),
                        "\(revision.files)", formatBytes(revision.sizeOnDisk), revision.path,
                    ])
                }
                if model.revisions.isEmpty || model.incompleteDownloads > 0 {
                    rows.append([
                        model.repo, "-", "-", "\(model.incompleteDownloads) partial", formatBytes(model.sizeOnDisk),
                        model.path,
                    ])
                }
            }
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            let lines = rows.map { row in
                zip(row, widths).enumerated().map { i, cell in
                    i == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }
            let total = models.map(\.sizeOnDisk).reduce(0, +)
            Console.stdout(lines.joined(separator: "\n") + "\n")
            Console.writeLine(
                "densecap: \(models.count) model\(models.count == 1 ? "" : "s"), \(formatBytes(total)) in \(cache.directory)"
            )
        }
    }
}

struct ModelsRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove models from the cache.",
        discussion:
            "ORG/NAME removes every revision, its files and its partial downloads; ORG/NAME@REVISION removes one snapshot, its refs and the files no other snapshot uses."
    )

    @Argument(help: ArgumentHelp("Model ids, ORG/NAME or ORG/NAME@REVISION.", valueName: "model-id"))
    var models: [String]

    func run() async throws {
        let cache = HubCache(directory: HubConfiguration.fromEnvironment().cacheDirectory)
        try await reportingErrors {
            for spec in models {
                let reference = try ModelReference(parsing: spec)
                let freed = spec.contains("@") ? try cache.remove(reference) : try cache.remove(repo: reference.repo)
                guard let freed else {
                    throw CLIError(status: .noInput, message: "\(spec): not in the cache (\(cache.directory))")
                }
                Console.stdout("removed \(spec) (\(formatBytes(freed)) freed)\n")
            }
        }
    }
}

// MARK: - Resolving --model

/// A directory for `--model`: the directory itself, or the cached snapshot of a model id, pulled
/// first (after a one-line notice of its size) when the cache lacks it.
func resolveModel(_ spec: String, logger: Logger) async throws -> String {
    try await withModelHub(logger: logger) { try await $0.resolveModel(spec) }
}

/// Runs `body` with a hub that reports downloads on stderr: a notice, then a progress bar.
func withModelHub<T>(logger: Logger, _ body: (ModelHub) async throws -> T) async throws -> T {
    let reporter = DownloadReporter(notices: logger.logLevel <= .info)
    let configuration = HubConfiguration.fromEnvironment()
    let hub = ModelHub(configuration: configuration, logger: logger, events: { reporter.handle($0) })
    defer { reporter.finish() }
    return try await body(hub)
}

/// Draws ModelHub's events. ModelHub serializes its event calls, so the unsynchronized state here
/// is only touched by one caller at a time.
final class DownloadReporter: @unchecked Sendable {
    private let notices: Bool
    private let bar = ProgressBar(label: "download")
    private let start = Date()

    init(notices: Bool) { self.notices = notices }

    func handle(_ event: HubEvent) {
        switch event {
        case .downloading(let reference, let commit, let files, let bytes):
            guard notices else { return }
            let size = bytes.map { "\(formatBytes($0)) in " } ?? ""
            Console.writeLine(
                "densecap: downloading \(reference) (\(size)\(files) file\(files == 1 ? "" : "s"), commit \(commit.prefix(12))) into the Hugging Face cache"
            )
        case .progress(let received, let total):
            guard let total, total > 0 else { return }
            let rate = Double(received) / max(Date().timeIntervalSince(start), 1e-3)
            bar.update(
                Double(received) / Double(total),
                detail: "\(formatBytes(received))/\(formatBytes(total)) \(formatBytes(Int64(rate)))/s")
        case .fileCompleted:
            break
        }
    }

    func finish() { bar.finish() }
}
