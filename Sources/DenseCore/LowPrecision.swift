import CKernels

#if canImport(Glibc)
    import Glibc
#endif

/// The arithmetic a model part's matrix products use.
///
/// - `fp32`: the exact path: weights in their stored precision (bf16 widens exactly), Float32
///   products on OpenBLAS; what the golden tests hold.
/// - `bf16`: weights kept in bf16 and activations rounded to bf16 (nearest even) before each
///   product, accumulated in fp32 with the CPU's native bf16 dot products (AVX512_BF16
///   `vdpbf16ps`). Where the CPU has none, weights stay bf16 and products run in fp32
///   (`LowPrecisionKernels.summary` says which).
/// - `int8`: weights quantised at load, symmetric per output row (scale = max|w|/127); activations
///   quantised per row as they arrive (scale = max|x|/127); integer dot products (AVX-512 VNNI,
///   AVX-VNNI, else AVX2), scaled once: `y[i, j] = s_x[i] · s_w[j] · Σ q_x[i, k] · q_w[j, k]`.
public enum Precision: String, Codable, Sendable, CaseIterable, Equatable {
    case fp32, bf16, int8
}

/// Which reduced-precision kernels this CPU runs, chosen once by CPUID.
public enum LowPrecisionKernels {
    /// Native bf16 dot products (AVX512_BF16).
    public static let bf16Native: Bool = dc_cpu_has_bf16_dot() != 0

    /// The int8 kernels (`DC_INT8_*` in ckernels.h), in order of preference from the last; all
    /// give the same integers.
    public enum Int8Kernel: Int, CaseIterable, Sendable {
        case c = 0, avx2, avxVNNI, avx512VNNI

        /// The name `DENSECAP_INT8_KERNEL` takes.
        public var name: String { ["c", "avx2", "avxvnni", "avx512vnni"][rawValue] }
        /// What it runs, for `doctor`.
        var summary: String {
            ["int8 baseline C loop (no AVX2)", "int8 AVX2 vpmaddubsw (no VNNI)", "int8 AVX-VNNI vpdpbusd ymm",
             "int8 AVX-512 VNNI vpdpbusd"][rawValue]
        }
        /// Whether this CPU runs it.
        public var isSupported: Bool { dc_int8_kernel_supported(Int32(rawValue)) != 0 }
    }

    /// The best int8 kernel this CPU has.
    public static let cpuInt8Kernel = Int8Kernel(rawValue: Int(dc_cpu_int8_kernel())) ?? .c

    /// The int8 kernel products use: `cpuInt8Kernel`, or the one `DENSECAP_INT8_KERNEL` names
    /// (`avx512vnni`, `avxvnni`, `avx2`, `c`) where this CPU runs it, to compare kernels.
    public static let selectedInt8Kernel: Int8Kernel = int8Kernel(forced: forcedInt8Kernel)

    /// `selectedInt8Kernel`'s raw value (2 or 3: VNNI; 1: AVX2; 0: baseline C).
    public static var int8Kernel: Int { selectedInt8Kernel.rawValue }

    /// `DENSECAP_INT8_KERNEL`, read once.
    static let forcedInt8Kernel: String? = getenv("DENSECAP_INT8_KERNEL").map { String(cString: $0) }

    /// The kernel for a `DENSECAP_INT8_KERNEL` value: the named one if this CPU runs it, else the best.
    static func int8Kernel(forced name: String?) -> Int8Kernel {
        guard let name, let kernel = Int8Kernel.allCases.first(where: { $0.name == name.lowercased() }), kernel.isSupported else {
            return cpuInt8Kernel
        }
        return kernel
    }

    /// One line for `doctor` and benchmark headers.
    public static var summary: String {
        let bf16 = bf16Native
            ? "bf16 AVX512_BF16 vdpbf16ps (native)"
            : "bf16 not native on this CPU (no AVX512_BF16): weights stay bf16, products in fp32"
        var int8 = selectedInt8Kernel.summary
        if selectedInt8Kernel != cpuInt8Kernel { int8 += " (DENSECAP_INT8_KERNEL; this CPU's best: \(cpuInt8Kernel.name))" }
        if let forced = forcedInt8Kernel, selectedInt8Kernel.name != forced.lowercased() { int8 += " (DENSECAP_INT8_KERNEL=\(forced) not run by this CPU)" }
        return "\(bf16); \(int8); fused attention \(fusedAttentionISA)"
    }

    /// The int8 kernels this CPU runs, the one in use marked, for `doctor`.
    public static var int8KernelsLine: String {
        Int8Kernel.allCases.reversed().filter(\.isSupported).map { $0 == selectedInt8Kernel ? "\($0.name) (in use)" : $0.name }
            .joined(separator: ", ") + "; DENSECAP_INT8_KERNEL=NAME picks one"
    }

    /// The clone the fused attention kernel runs (target_clones picks the same way).
    static var fusedAttentionISA: String {
        cpuInt8Kernel == .avx512VNNI || bf16Native ? "AVX-512" : (cpuInt8Kernel != .c ? "AVX2+FMA" : "SSE2")
    }
}

/// bf16 weights packed for `dc_gemm_bf16dot` (panels of 16 rows, k in pairs).
public struct PackedBFloat16: Sendable {
    public let packed: [UInt16]
}

/// int8 weights quantised per row and packed for `dc_gemm_q8` (panels of 16 rows, k in fours).
public struct QuantizedInt8: Sendable {
    public let packed: [Int8]
    /// Per output row: max|w| / 127.
    public let scales: [Float]
    /// Per output row: Σ q (the VNNI kernel's offset correction).
    public let rowSums: [Int32]
}

extension WeightMatrix {
    /// The same matrix for `precision`: `fp32` keeps the stored values; `bf16` rounds Float32 to
    /// bf16 and packs (or keeps plain bf16 where the CPU has no native bf16 products); `int8`
    /// quantises row by row (never holding the whole matrix in Float32).
    public func converted(to precision: Precision) -> WeightMatrix {
        switch (precision, storage) {
        case (.fp32, _), (.bf16, .bfloat16Dot), (.int8, .int8): return self
        case (.bf16, _):
            let bits = bfloat16Bits
            guard LowPrecisionKernels.bf16Native else { return WeightMatrix(rows: rows, cols: cols, storage: .bfloat16(bits)) }
            var packed = [UInt16](repeating: 0, count: dc_packed_size(rows, cols, 2))
            bits.withUnsafeBufferPointer { b in packed.withUnsafeMutableBufferPointer { dc_pack_bf16(b.baseAddress!, rows, cols, $0.baseAddress!) } }
            return WeightMatrix(rows: rows, cols: cols, storage: .bfloat16Dot(PackedBFloat16(packed: packed)))
        case (.int8, _):
            return WeightMatrix(rows: rows, cols: cols, storage: .int8(quantized()))
        }
    }

    /// bf16 bit patterns of the matrix (rounded to nearest even from Float32).
    var bfloat16Bits: [UInt16] {
        switch storage {
        case .bfloat16(let bits): return bits
        default:
            let values = tensor.scalars
            var bits = [UInt16](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { v in bits.withUnsafeMutableBufferPointer { dc_round_bf16(v.baseAddress!, 1, v.count, v.count, $0.baseAddress!) } }
            return bits
        }
    }

    /// Quantises 64 rows at a time from their Float32 values.
    func quantized() -> QuantizedInt8 {
        var q = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows)
        let chunk = 64
        q.withUnsafeMutableBufferPointer { qp in
            scales.withUnsafeMutableBufferPointer { sp in
                for start in stride(from: 0, to: rows, by: chunk) {
                    let count = min(chunk, rows - start)
                    let values = rowValues(start..<start + count)
                    values.withUnsafeBufferPointer { v in
                        dc_quantize_rows(v.baseAddress!, count, cols, cols, qp.baseAddress! + start * cols, sp.baseAddress! + start)
                    }
                }
            }
        }
        var sums = [Int32](repeating: 0, count: rows)
        var packed = [Int8](repeating: 0, count: dc_packed_size(rows, cols, 4))
        q.withUnsafeBufferPointer { qp in
            sums.withUnsafeMutableBufferPointer { dc_int8_row_sums(qp.baseAddress!, rows, cols, $0.baseAddress!) }
            packed.withUnsafeMutableBufferPointer { dc_pack_int8(qp.baseAddress!, rows, cols, $0.baseAddress!) }
        }
        return QuantizedInt8(packed: packed, scales: scales, rowSums: sums)
    }

    /// Rows `range` as Float32 (dequantised for int8: s_w · q).
    func rowValues(_ range: Range<Int>) -> [Float] {
        let k = cols
        switch storage {
        case .float32(let v): return Array(v[range.lowerBound * k..<range.upperBound * k])
        case .bfloat16(let bits):
            return bits[range.lowerBound * k..<range.upperBound * k].map { Float(bitPattern: UInt32($0) << 16) }
        case .bfloat16Dot(let p):
            return range.flatMap { r in (0..<k).map { c in Float(bitPattern: UInt32(p.packed[packedIndex(r, c, group: 2)]) << 16) } }
        case .int8(let q):
            return range.flatMap { r in (0..<k).map { c in Float(q.packed[packedIndex(r, c, group: 4)]) * q.scales[r] } }
        }
    }

    /// Where w[r, c] lies in the packed layout (`dc_pack_bf16` / `dc_pack_int8`).
    func packedIndex(_ r: Int, _ c: Int, group: Int) -> Int {
        let groups = (cols + group - 1) / group
        return (((r / 16) * groups + c / group) * 16 + r % 16) * group + c % group
    }

    /// The int8 values of row `r` (for tests and the naive twin).
    public func quantizedRow(_ r: Int) -> (values: [Int8], scale: Float)? {
        guard case .int8(let q) = storage else { return nil }
        return ((0..<cols).map { q.packed[packedIndex(r, $0, group: 4)] }, q.scales[r])
    }
}

/// `out [m, n] = x [m, k] · Wᵀ` with bf16-rounded activations and packed bf16 weights.
func linearBFloat16Dot(_ x: UnsafePointer<Float>, m: Int, weight: WeightMatrix, packed: PackedBFloat16, out: UnsafeMutablePointer<Float>) {
    let (n, k) = (weight.rows, weight.cols)
    let lda = (k + 1) / 2 * 2
    var a = [UInt16](unsafeUninitializedCapacity: m * lda) { _, c in c = m * lda }
    a.withUnsafeMutableBufferPointer { dc_round_bf16(x, m, k, lda, $0.baseAddress!) }
    let panels = (n + 15) / 16
    a.withUnsafeBufferPointer { ap in
        packed.packed.withUnsafeBufferPointer { wp in
            let shared = UncheckedSendable((ap.baseAddress!, wp.baseAddress!, out))
            // Pairs of panels per item: the kernel's widest tile is 32 columns.
            Numerics.parallelFor((panels + 1) / 2, costPerItem: 32 * m * k / 4) { range in
                let (a, w, out) = shared.value
                dc_gemm_bf16dot(a, lda, m, w, n, k, 2 * range.lowerBound, min(panels, 2 * range.upperBound), out, n)
            }
        }
    }
}

/// `out [m, n] = x [m, k] · Wᵀ` with per-row int8 activations and int8 weights.
func linearInt8(_ x: UnsafePointer<Float>, m: Int, weight: WeightMatrix, quantized q: QuantizedInt8, kernel: Int = LowPrecisionKernels.int8Kernel,
                out: UnsafeMutablePointer<Float>) {
    let (n, k) = (weight.rows, weight.cols)
    let lda = (k + 3) / 4 * 4
    var a = [Int8](unsafeUninitializedCapacity: m * lda) { _, c in c = m * lda }
    var scales = [Float](repeating: 0, count: m)
    a.withUnsafeMutableBufferPointer { ap in scales.withUnsafeMutableBufferPointer { dc_quantize_rows(x, m, k, lda, ap.baseAddress!, $0.baseAddress!) } }
    var scratch = [Int32](unsafeUninitializedCapacity: m * n) { _, c in c = m * n }
    let panels = (n + 15) / 16
    a.withUnsafeBufferPointer { ap in
        scales.withUnsafeBufferPointer { sp in
            q.packed.withUnsafeBufferPointer { wp in
                q.scales.withUnsafeBufferPointer { wsp in
                    q.rowSums.withUnsafeBufferPointer { rsp in
                        scratch.withUnsafeMutableBufferPointer { scp in
                            let shared = UncheckedSendable((ap.baseAddress!, sp.baseAddress!, wp.baseAddress!, wsp.baseAddress!, rsp.baseAddress!, scp.baseAddress!, out))
                            Numerics.parallelFor((panels + 1) / 2, costPerItem: 32 * m * k / 8) { range in
                                let (a, s, w, ws, rs, scratch, out) = shared.value
                                dc_gemm_q8(a, lda, s, m, w, ws, rs, n, k, 2 * range.lowerBound, min(panels, 2 * range.upperBound),
                                           scratch, out, n, Int32(kernel))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `Σ_p a[i, p] · w[j, p]` exactly `[m, n]`, by `kernel` (a `DC_INT8_*` value) over the panels
/// `panels`, the columns outside them left 0: what `linearInt8` scales, for tests to hold every
/// kernel to the naive integer sums.
/// - Parameters: a `[m, k]` in [−127, 127]
func int8Products(_ a: [Int8], m: Int, weight: WeightMatrix, quantized q: QuantizedInt8, kernel: Int, panels: Range<Int>? = nil) -> [Int32] {
    let (n, k) = (weight.rows, weight.cols)
    precondition(a.count == m * k, "int8Products: \(a.count) activations for [\(m), \(k)]")
    let lda = (k + 3) / 4 * 4
    var padded = [Int8](repeating: 0, count: m * lda)
    for i in 0..<m { padded.replaceSubrange(i * lda..<i * lda + k, with: a[i * k..<(i + 1) * k]) }
    var out = [Int32](repeating: 0, count: m * n)
    let range = panels ?? 0..<(n + 15) / 16
    padded.withUnsafeBufferPointer { ap in
        q.packed.withUnsafeBufferPointer { wp in
            q.rowSums.withUnsafeBufferPointer { sp in
                out.withUnsafeMutableBufferPointer {
                    dc_gemm_q8_int(ap.baseAddress!, lda, m, wp.baseAddress!, sp.baseAddress!, n, k, range.lowerBound, range.upperBound,
                                   $0.baseAddress!, n, Int32(kernel))
                }
            }
        }
    }
    return out
}
