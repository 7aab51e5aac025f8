import ArgumentParser
import DenseCore
import FrameSampler

/// `--start` / `--end`: the part of the stream a command reads, `[start, end)` on its timeline.
struct TimeRangeOptions: ParsableArguments {
    @Option(help: "Start of the range: seconds (12.5), a fraction (30000/1001) or [H:]MM:SS.fff.")
    var start: String?

    @Option(help: "End of the range (exclusive), same forms as --start.")
    var end: String?

    func validate() throws {
        if let start, MediaTime(parsing: start) == nil { throw ValidationError("cannot read --start '\(start)'") }
        if let end, MediaTime(parsing: end) == nil { throw ValidationError("cannot read --end '\(end)'") }
        if let s = start.flatMap(MediaTime.init(parsing:)), let e = end.flatMap(MediaTime.init(parsing:)), e <= s {
            throw ValidationError("--end must be after --start")
        }
    }

    var window: TimeWindow {
        TimeWindow(start: start.flatMap(MediaTime.init(parsing:)), end: end.flatMap(MediaTime.init(parsing:)))
    }
}
