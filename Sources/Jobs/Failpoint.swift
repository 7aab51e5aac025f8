import Foundation

/// Crash points for the resume tests: `DENSECAP_FAILPOINT=NAME:N` kills the process with SIGKILL
/// — no cleanup, no buffered writes, like `kill -9` or a power cut — right after the Nth time the
/// job records the step NAME (`tower`: a frame cached; `caption`: a caption saved in the
/// manifest). Unset, it costs one dictionary look-up per step.
enum Failpoint {
    private static let armed: (name: String, count: Int)? = {
        guard let spec = ProcessInfo.processInfo.environment["DENSECAP_FAILPOINT"] else { return nil }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]), n > 0 else { return nil }
        return (String(parts[0]), n)
    }()
    nonisolated(unsafe) private static var hits = 0

    static func hit(_ name: String) {
        guard let armed, armed.name == name else { return }
        hits += 1
        if hits >= armed.count { kill(getpid(), SIGKILL) }
    }
}
