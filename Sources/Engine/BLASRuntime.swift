import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

/// Gets OpenBLAS's fast kernels on CPUs the installed library does not recognise.
///
/// Debian 12's OpenBLAS 0.3.21 predates Sapphire/Emerald Rapids and falls back to its generic
/// Prescott (SSE3) kernels there: 34 GFLOP/s per core instead of 172 with SkylakeX. The library
/// reads `OPENBLAS_CORETYPE` only in its load-time constructor, so setting it from inside the
/// process is too late; the fix is to set it and re-exec the same binary once, before any work.
public enum BLASRuntime {
    /// Variable the user sets to steer the choice: `auto` (default), `off` (keep the library's
    /// pick) or a core name such as `Haswell`. A set `OPENBLAS_CORETYPE` always wins.
    public static let overrideVariable = "DENSECAP_BLAS_CORETYPE"
    /// Marks the re-exec'd child so it never loops, and says what the parent chose.
    static let reexecMarker = "DENSECAP_BLAS_REEXEC"

    /// Kernel sets the library picks on CPUs it does not know; all predate AVX2.
    static let fallbackCores: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine",
        "northwood", "banias", "generic", "unknown",
    ]

    /// The core type to force, given the library's pick and the CPU's feature flags: nil when the
    /// library already uses a modern kernel, or the CPU lacks AVX2 (forcing would crash with SIGILL).
    public static func preferredCoreType(libraryCore: String, cpuFlags: Set<String>) -> String? {
        guard fallbackCores.contains(libraryCore.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(cpuFlags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    /// Call first thing in `main`. When the library runs fallback kernels on a CPU that has AVX2 or
    /// AVX-512, sets `OPENBLAS_CORETYPE` and replaces the process with a fresh copy of itself
    /// (same arguments; nothing has been written yet). Returns normally in every other case.
    public static func ensureFastKernels() {
        let env = { (name: String) in getenv(name).map { String(cString: $0) } }
        if env("OPENBLAS_CORETYPE") != nil || env(reexecMarker) != nil { return }
        let request = env(overrideVariable) ?? "auto"
        let choice: String?
        switch request.lowercased() {
        case "off", "library", "none": return
        case "auto", "": choice = preferredCoreType(libraryCore: libraryCoreName, cpuFlags: cpuFlags())
        default: choice = request
        }
        guard let choice else { return }
        setenv("OPENBLAS_CORETYPE", choice, 1)
        setenv(reexecMarker, choice, 1)
        fflush(nil)
        let args = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // exec failed (no procfs): carry on with the library's kernels; `doctor` will say so.
        unsetenv("OPENBLAS_CORETYPE")
        setenv(reexecMarker, "failed", 1)
        for p in argv { free(p) }
    }

    /// Call in `main` after `ensureFastKernels`: stops the helper threads OpenBLAS started when it
    /// loaded, which otherwise spin for about 0.1 s of a core in every process (a supervisor, a
    /// segment job, `search`) and compete with its real work on a 2-core machine; the first
    /// threaded BLAS call starts them again.
    public static func parkThreads() {
        dc_blas_park_threads()
    }

    /// The kernel set OpenBLAS is running, e.g. `SkylakeX` or `Prescott`.
    public static var libraryCoreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// OpenBLAS build configuration, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH … MAX_THREADS=64`.
    public static var configuration: String {
        openblas_get_config().map { String(cString: $0) } ?? "unknown"
    }

    /// How the running kernel was chosen, for `doctor` and benchmark headers.
    public static var selection: String {
        let marker = getenv(reexecMarker).map { String(cString: $0) }
        if marker == "failed" { return "library default (re-exec with a faster core type failed)" }
        if let marker { return "set by densecap (\(overrideVariable)=\(getenv(overrideVariable).map { String(cString: $0) } ?? "auto") → OPENBLAS_CORETYPE=\(marker), re-exec)" }
        if let user = getenv("OPENBLAS_CORETYPE") { return "set by the user (OPENBLAS_CORETYPE=\(String(cString: user)))" }
        if let request = getenv(overrideVariable), ["off", "library", "none"].contains(String(cString: request).lowercased()) {
            return "library default (\(overrideVariable)=\(String(cString: request)))"
        }
        return "library default"
    }

    /// One line naming the kernel and how it was chosen; every benchmark prints it.
    public static var summary: String {
        "OpenBLAS \(libraryCoreName) kernels, \(threads) threads — \(selection)"
    }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets OpenBLAS's thread count (values below 1 mean one per core).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(n < 1 ? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) : n))
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read).
    public static func cpuFlags() -> Set<String> {
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            guard text.hasPrefix("flags") else { continue }
            let value = text.split(separator: ":", maxSplits: 1).last ?? ""
            return Set(value.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        }
        return []
    }
}
