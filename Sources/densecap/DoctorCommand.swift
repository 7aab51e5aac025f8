import ArgumentParser
import DenseCore
import Engine
import VideoIO

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the BLAS kernels in use, CPU features and FFmpeg libraries.",
        discussion: """
            densecap re-executes itself once at start-up with OPENBLAS_CORETYPE set when the \
            installed OpenBLAS does not recognise the CPU and would run its slow generic kernels. \
            Override with \(BLASRuntime.overrideVariable)=off (keep the library's choice) or a core \
            name (e.g. Haswell); an OPENBLAS_CORETYPE you set yourself always wins.
            """)

    func run() throws {
        let flags = BLASRuntime.cpuFlags()
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile"]
            .map { "\($0)=\(flags.contains($0) ? "yes" : "no")" }.joined(separator: " ")
        let rows: [(String, String)] = [
            ("blas kernels", BLASRuntime.libraryCoreName),
            ("blas selection", BLASRuntime.selection),
            ("blas threads", "\(BLASRuntime.threads)"),
            ("blas build", BLASRuntime.configuration),
            ("cpu features", simd),
            ("low precision", LowPrecisionKernels.summary),
            ("int8 kernels", LowPrecisionKernels.int8KernelsLine),
            ("precision auto", PrecisionSettings.auto().description),
            ("ffmpeg", FFmpegLibraries.versions),
            ("decoders", FFmpegLibraries.decoderAvailability(["h264", "hevc", "vp9", "av1", "mpeg4", "mjpeg"])),
        ]
        let width = rows.map(\.0.count).max()!
        for (key, value) in rows {
            Console.stdout(key.padding(toLength: width + 2, withPad: " ", startingAt: 0) + value + "\n")
        }
    }
}
