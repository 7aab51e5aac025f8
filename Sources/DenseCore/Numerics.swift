import COpenBLAS
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Process-wide compute settings: how many threads BLAS calls and elementwise loops use.
///
/// OpenBLAS keeps one global thread pool, so this is global state too; set it once at start-up
/// (tests that change it run serialised).
public enum Numerics {
    private static let threadCount = Atomic<Int>(0)

    /// Cores the process may use.
    public static var availableCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Threads used by BLAS and by the parallel elementwise loops (default: every core).
    public static var threads: Int {
        let n = threadCount.load(ordering: .relaxed)
        return n > 0 ? n : availableCores
    }

    /// Sets the thread count for BLAS and elementwise loops; values below 1 mean every core.
    public static func setThreads(_ n: Int) {
        let count = n < 1 ? availableCores : n
        threadCount.store(count, ordering: .relaxed)
        openblas_set_num_threads(Int32(count))
    }

    /// Keeps freed memory in the heap instead of returning it to the kernel. glibc serves blocks
    /// above 32 MiB with fresh mmaps, so every large activation (a [1024, 8960] MLP output is
    /// 37 MB) would fault in and zero new pages: 16 % of a prefill in a profile. Call once at
    /// start-up in programs that run models.
    public static func keepLargeAllocations() {
        dc_keep_large_allocations()
    }

    /// Runs `body(range)` over `0..<count` split into contiguous chunks, one per thread, in
    /// parallel when the work is big enough (`count × costPerItem` above ~32k operations).
    @inlinable
    public static func parallelFor(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 || count * costPerItem < 32_768 {
            body(0..<count)
            return
        }
        let chunk = (count + workers - 1) / workers
        withoutActuallyEscaping(body) { body in
            // The chunks are disjoint, which is what makes sharing `body` across threads sound.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = w * chunk
                let end = min(count, start + chunk)
                if start < end { shared.value(start..<end) }
            }
        }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller argues for.
@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}

/// `v` in decimal, left-padded with zeros to `width` digits (file names that sort).
public func zeroPad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
