import Archive
import ArgumentParser
import Foundation
import Jobs
import Logging

struct ArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Process a folder tree of videos as a crash-proof batch recorded in a job store.",
        discussion: """
            The store is --store: a folder holding archive.sqlite (default: the current folder, or \
            $DENSECAP_STORE), or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE to share one \
            archive between machines. `init` records the job, `add` registers files, `run` \
            processes them with worker processes (kill it whenever you like; run it again, on as \
            many machines as you like), `status`, `report` and `retry` follow up.
            """,
        subcommands: [Init.self, Add.self, Run.self, StatusCommand.self, Report.self, Retry.self, Import.self, Worker.self])
}

/// `--store`, shared by the archive commands and `search`.
struct StoreOptions: ParsableArguments {
    @Option(help: "The archive: a folder (archive.sqlite inside), a .sqlite file, or postgres://… (default: $DENSECAP_STORE or .).")
    var store: String = ProcessInfo.processInfo.environment["DENSECAP_STORE"] ?? "."

    func open(create: Bool = false) async throws -> any ArchiveStore {
        do {
            return try await openStore(store, create: create)
        } catch let error as ArchiveError {
            Console.error(error.description)
            throw ExitCode(error.isMissing ? Status.noInput.rawValue : Status.failure.rawValue)
        }
    }

    func settings(_ store: any ArchiveStore) async throws -> ArchiveSettings {
        guard let s = try await store.loadSettings() else {
            Console.error(ArchiveError.notInitialised(self.store).description)
            throw ExitCode(Status.noInput.rawValue)
        }
        return s
    }
}

extension ArchiveSettings.Mode: ExpressibleByArgument {}

extension ArchiveError {
    var isMissing: Bool { if case .notInitialised = self { true } else { false } }
}

/// Runs `body`, printing an archive error as one line with status 1.
private func reporting<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ArchiveError {
        Console.error(error.description)
        throw ExitCode(error.isMissing ? Status.noInput.rawValue : Status.failure.rawValue)
    }
}

extension ArchiveCommand {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an archive and record its job.",
            discussion: """
                Flags after -- are the job's own, as `densecap segment` (--mode segment) or `densecap caption` \
                (--mode caption; --model is required) take them, e.g. -- --still --gate --thumbnails.
                """)

        @OptionGroup var store: StoreOptions
        @Option(name: .shortAndLong, help: "Output root: outputs of /a/b/x.mp4 go to ROOT/a/b/x.events.json.")
        var out: String
        @Option(help: "segment (event boundaries only) or caption.")
        var mode: ArchiveSettings.Mode = .segment
        @Option(help: "Mark a file failed after its worker died this many times on it.")
        var maxCrashes: Int = 3
        @Option(help: "Seconds a claim lives without a heartbeat (a dead machine's file is taken over after this).")
        var lease: Double = 60
        @Argument(parsing: .postTerminator, help: "The job's flags.")
        var jobArguments: [String] = []

        func validate() throws {
            guard maxCrashes >= 1 else { throw ValidationError("--max-crashes must be at least 1") }
            guard lease >= 1 else { throw ValidationError("--lease must be at least 1 second") }
            try validateArchiveJob(mode, jobArguments)
        }

        func run() async throws {
            let s = try await store.open(create: true)
            let settings = ArchiveSettings(mode: mode, outputRoot: absolutePath(out), jobArguments: jobArguments,
                                           maxCrashes: maxCrashes, leaseSeconds: lease)
            try await reporting { try await s.saveSettings(settings) }
            Console.writeLine("densecap: archive at \(s.location), outputs in \(settings.outputRoot)")
            try await s.close()
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register files (re-adding is idempotent; a changed file becomes pending again).")

        @OptionGroup var store: StoreOptions
        @Argument(help: "Files and folders.")
        var paths: [String]
        @Flag(help: "Descend into sub-folders.")
        var recursive = false
        @Option(help: "Only file names matching this glob (e.g. '*.mp4').")
        var glob: String?

        func run() async throws {
            let s = try await store.open()
            _ = try await store.settings(s)
            let summary = try await reporting { try await ArchiveScanner.add(paths, recursive: recursive, glob: glob, to: s) }
            Console.stdout("added \(summary.added), changed \(summary.changed), unchanged \(summary.unchanged)\n")
            try await s.close()
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Process pending files with worker processes until the archive is settled.")

        @OptionGroup var store: StoreOptions
        @Option(help: "Worker processes (each loads the model once).")
        var workers: Int = 1
        @OptionGroup var global: GlobalOptions

        func validate() throws { guard workers >= 1 else { throw ValidationError("--workers must be at least 1") } }

        func run() async throws {
            let logger = global.makeLogger(label: "densecap.archive")
            let s = try await store.open()
            let settings = try await store.settings(s)
            var command = [executablePath(), "archive", "worker", "--store", store.store]
            if global.verbose { command.append("--verbose") }
            if global.quiet { command.append("--quiet") }
            let supervisor = ArchiveSupervisor(store: s, settings: settings, workers: workers, command: command, logger: logger)
            var last = ""
            let summary = try await reporting {
                try await supervisor.run { p in
                    if global.quiet { return }
                    if Console.stderrIsTerminal {
                        FileHandle.standardError.write(Data("\r\u{1B}[K\(p.line)".utf8))
                    } else if p.line != last {
                        Console.writeLine(p.line)
                    }
                    last = p.line
                }
            }
            if Console.stderrIsTerminal, !global.quiet { FileHandle.standardError.write(Data("\n".utf8)) }
            let status = try await s.status()
            Console.stdout("done \(status.count(.done)), failed \(status.count(.failed)), pending \(status.count(.pending)); \(summary.died) worker\(summary.died == 1 ? "" : "s") died\n")
            try await s.close()
        }
    }

    struct Worker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One worker process of `archive run`.", shouldDisplay: false)

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.makeLogger(label: "densecap.archive.worker")
            let s = try await store.open()
            let settings = try await store.settings(s)
            let processor = try await reportingErrors { try await makeArchiveProcessor(settings, logger: logger) }
            let summary = try await reporting { try await ArchiveWorker(store: s, settings: settings, logger: logger).run(processor) }
            logger.debug("""
                worker: \(summary.done) done, \(summary.failed) failed, \(summary.refused) refused; \
                \(String(format: "%.3f", summary.jobSeconds)) s in jobs, \(String(format: "%.3f", summary.storeSeconds)) s waiting on the store
                """)
            try await s.close()
        }
    }

    struct StatusCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Counts by state, throughput and the most frequent errors.")

        @OptionGroup var store: StoreOptions
        @Flag(help: "JSON on stdout.")
        var json = false

        func run() async throws {
            let s = try await store.open()
            let status = try await reporting { try await s.status() }
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                let object = StatusJSON(counts: Dictionary(uniqueKeysWithValues: FileState.allCases.map { ($0.rawValue, status.count($0)) }),
                                        damaged: status.damaged, throughput: status.throughput, errors: status.errors)
                Console.stdout(String(decoding: try e.encode(object), as: UTF8.self) + "\n")
            } else {
                var text = FileState.allCases.map { "\($0.rawValue) \(status.count($0))" }.joined(separator: ", ")
                text += "; \(status.damaged) damaged"
                if let t = status.throughput { text += String(format: "; %.2f files/s", t) }
                text += "\n"
                for e in status.errors { text += "  \(e.count)× [\(e.category)] \(e.message)\n" }
                Console.stdout(text)
            }
            try await s.close()
        }

        struct StatusJSON: Encodable {
            var counts: [String: Int]
            var damaged: Int
            var throughput: Double?
            var errors: [ArchiveStatus.ErrorCount]
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A per-file table: CSV, JSON or an HTML page.")

        enum Format: String, ExpressibleByArgument { case csv, json, html }

        @OptionGroup var store: StoreOptions
        @Option(help: "csv, json or html.")
        var format: Format = .csv
        @Option(name: .shortAndLong, help: "Write to this file (atomically) instead of stdout.")
        var out: String?

        func run() async throws {
            let s = try await store.open()
            let text = try await reporting {
                let rows = try await ArchiveReport.rows(s)
                switch format {
                case .csv: return ArchiveReport.csv(rows)
                case .json: return try ArchiveReport.json(rows)
                case .html: return ArchiveReport.html(rows, status: try await s.status(), title: "densecap archive \(s.location)")
                }
            }
            try emit(text, to: out)
            try await s.close()
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make failed files pending again (all, or those named).")

        @OptionGroup var store: StoreOptions
        @Argument(help: "Files (default: every failed file).")
        var paths: [String] = []

        func run() async throws {
            let s = try await store.open()
            let n = try await reporting { try await s.retry(paths: paths.isEmpty ? nil : paths.map(absolutePath)) }
            Console.stdout("\(n) file\(n == 1 ? "" : "s") pending again\n")
            try await s.close()
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store captions made outside the archive (densecap <name>.events.json) for search.")

        @OptionGroup var store: StoreOptions
        @Argument(help: "densecap events JSON files.")
        var files: [String]

        func run() async throws {
            let s = try await store.open(create: true)
            let events = try await reporting { try await CaptionImport.importFiles(files, into: s) }
            Console.stdout("imported \(events) events from \(files.count) file\(files.count == 1 ? "" : "s")\n")
            try await s.close()
        }
    }
}

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search an archive's captions: file, start–end, score and snippet per event.",
        discussion: """
            All words must appear (stemmed: "trucks" finds "truck"); ranked by SQLite FTS5's bm25 or \
            PostgreSQL's ts_rank. --after/--before take an offset into the file (90, 1:30) to filter \
            where events start, or a date (2026-12-01, 2026-12-01T08:30, UTC unless an offset is given) \
            to filter files by their modification (recording) time.
            """)

    @Argument(help: "The words to look for.")
    var query: String
    @OptionGroup var store: StoreOptions
    @Option(help: "Only files matching this glob (the file name, or the whole path when it has a '/').")
    var file: String?
    @Option(help: "Events starting after this offset, or files recorded after this date.")
    var after: String?
    @Option(help: "Events starting before this offset, or files recorded before this date.")
    var before: String?
    @Option(help: "Most results.")
    var limit: Int = 20
    @Flag(help: "JSON on stdout.")
    var json = false
    @Option(help: "Also write an HTML results page (with keyframes) to this file.")
    var html: String?

    func validate() throws {
        for (name, value) in [("--after", after), ("--before", before)] {
            if let value, SearchTime(parsing: value) == nil {
                throw ValidationError("cannot read \(name) '\(value)': an offset (90, 1:30) or a date (2026-12-01[T08:30])")
            }
        }
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        var q = SearchQuery(text: query, fileGlob: file, limit: limit)
        switch after.flatMap(SearchTime.init(parsing:)) {
        case .offset(let v): q.startAfter = v
        case .date(let v): q.fileAfter = v
        case nil: break
        }
        switch before.flatMap(SearchTime.init(parsing:)) {
        case .offset(let v): q.startBefore = v
        case .date(let v): q.fileBefore = v
        case nil: break
        }
        let s = try await store.open()
        let hits = try await reporting { try await s.search(q) }
        Console.stdout(json ? try ArchiveReport.json(hits) : ArchiveReport.text(hits))
        if let html { try emit(ArchiveReport.html(hits, query: query), to: html) }
        try await s.close()
    }
}

private func absolutePath(_ path: String) -> String { ArchiveScanner.absolute(path) }

/// This binary's path, for the worker processes.
private func executablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Writes `text` to `path` atomically, or to stdout when `path` is nil.
private func emit(_ text: String, to path: String?) throws {
    guard let path else { Console.stdout(text); return }
    do {
        try writeOutput(Data(text.utf8), to: path)
    } catch {
        Console.error("\(path): cannot write: \(describe(error))")
        throw Status.cannotCreate.exitCode
    }
}
