import Testing

@testable import Engine

@Suite struct BLASRuntimeTests {
    static let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]
    static let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]

    @Test(arguments: [
        ("Prescott", avx512, "SkylakeX"),  // the measured trap: Emerald Rapids with OpenBLAS 0.3.21
        ("Prescott", avx2, "Haswell"),
        ("Nehalem", avx2, "Haswell"),
        ("Prescott", Set(["sse3", "avx"]), nil),  // no AVX2: forcing a newer kernel would SIGILL
        ("SkylakeX", avx512, nil),  // already fast: leave it alone
        ("Cooperlake", avx512, nil),
        ("Haswell", avx512, nil),  // a recognised core (or a user's choice) is kept
        ("Zen", avx2, nil),
    ] as [(String, Set<String>, String?)])
    func choosesAKernelOnlyForFallbacks(core: String, flags: Set<String>, expected: String?) {
        #expect(BLASRuntime.preferredCoreType(libraryCore: core, cpuFlags: flags) == expected)
    }

    @Test func reportsTheRunningKernel() {
        #expect(!BLASRuntime.libraryCoreName.isEmpty)
        #expect(BLASRuntime.configuration.hasPrefix("OpenBLAS"))
        #expect(BLASRuntime.summary.contains(BLASRuntime.libraryCoreName))
        #expect(BLASRuntime.threads >= 1)
    }

    @Test func readsCPUFlags() {
        // Every x86-64 CPU has sse2; on other architectures the flags line differs, so only check
        // that parsing returns a set.
        #if arch(x86_64)
            #expect(BLASRuntime.cpuFlags().contains("sse2"))
        #endif
    }
}
