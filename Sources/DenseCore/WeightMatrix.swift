import CKernels
import Synchronization

/// A weight matrix `[rows, cols]` in the precision the checkpoint stores it.
///
/// Published NVILA weights are bf16. Keeping them so halves the memory they take and the bytes the
/// bandwidth-bound decode step streams per token; GEMMs over many rows (prefill) widen to Float32
/// on the fly and run on OpenBLAS. bf16 → f32 is exact, so both paths compute the same products.
public struct WeightMatrix: Sendable {
    public enum Storage: Sendable {
        case float32([Float])
        /// Raw bfloat16 bit patterns (the upper half of a Float32); products in fp32.
        case bfloat16([UInt16])
        /// bf16 packed for native bf16 dot products (`Precision.bf16`).
        case bfloat16Dot(PackedBFloat16)
        /// int8 quantised per row (`Precision.int8`).
        case int8(QuantizedInt8)
    }

    public let rows: Int
    public let cols: Int
    public let storage: Storage

    public init(rows: Int, cols: Int, storage: Storage) {
        let count: Int
        switch storage {
        case .float32(let v): count = v.count
        case .bfloat16(let v): count = v.count
        case .bfloat16Dot(let p): count = p.packed.count == dc_packed_size(rows, cols, 2) ? rows * cols : -1
        case .int8(let q): count = q.packed.count == dc_packed_size(rows, cols, 4) && q.scales.count == rows ? rows * cols : -1
        }
        precondition(rows * cols == count, "WeightMatrix \(rows)×\(cols) needs \(rows * cols) values, got \(count)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    public init(_ tensor: Tensor) {
        precondition(tensor.rank == 2, "WeightMatrix from a tensor of shape \(tensor.shape)")
        self.init(rows: tensor.shape[0], cols: tensor.shape[1], storage: .float32(tensor.scalars))
    }

    public var shape: [Int] { [rows, cols] }

    /// The matrix as a Float32 tensor (a copy for bf16; dequantised for int8).
    public var tensor: Tensor {
        switch storage {
        case .float32(let v): return Tensor(shape: shape, scalars: v)
        case .bfloat16(let v): return Tensor(shape: shape, scalars: widenBFloat16(v))
        case .bfloat16Dot, .int8: return Tensor(shape: shape, scalars: rowValues(0..<rows))
        }
    }

    /// Bytes the weights take in memory.
    public var byteCount: Int {
        switch storage {
        case .float32(let v): return v.count * 4
        case .bfloat16(let v): return v.count * 2
        case .bfloat16Dot(let p): return p.packed.count * 2
        case .int8(let q): return q.packed.count + rows * 8
        }
    }
}

/// bf16 bit patterns → Float32, exactly.
public func widenBFloat16(_ bits: [UInt16]) -> [Float] {
    [Float](unsafeUninitializedCapacity: bits.count) { out, count in
        bits.withUnsafeBufferPointer { src in
            let src = src
            let out = out
            Numerics.parallelFor(src.count, costPerItem: 1) { range in
                for i in range { out[i] = Float(bitPattern: UInt32(src[i]) << 16) }
            }
        }
        count = bits.count
    }
}

/// Rows up to which `linear` streams the weights once for all rows (`dc_gemv_*_rows`) instead of
/// a GEMM: the decode step has one row per sequence, a batched decode a few; a GEMM only pays once
/// the (widened) weights are reused by many rows.
public let streamingRowLimit = 8

/// `y = x · Wᵀ + b` with `W` in its stored precision.
/// - Parameters: x `[…, cols]`, bias `[rows]`. - Returns: `[…, rows]`
public func linear(_ x: Tensor, weight: WeightMatrix, bias: Tensor? = nil) -> Tensor {
    let k = weight.cols
    let m = x.count / max(k, 1)
    switch weight.storage {
    case .float32(let values) where m > streamingRowLimit || m == 0:
        return linear(x, weight: Tensor(shape: weight.shape, scalars: values), bias: bias)
    case .float32(let values):
        return rowwiseLinear(x, weight: weight, bias: bias) { xp, m, op in
            values.withUnsafeBufferPointer { wp in streamRows(x: xp, m: m, weights: wp.baseAddress!, rows: weight.rows, cols: k, out: op) }
        }
    case .bfloat16(let bits):
        precondition(x.shape.last == k, "linear: x \(x.shape) vs weight \(weight.shape)")
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [weight.rows])
        if m > streamingRowLimit {
            x.scalars.withUnsafeBufferPointer { xp in
                bits.withUnsafeBufferPointer { wp in
                    out.scalars.withUnsafeMutableBufferPointer { op in
                        gemmBFloat16(x: xp.baseAddress!, m: m, weights: wp.baseAddress!, rows: weight.rows, cols: k, out: op.baseAddress!)
                    }
                }
            }
            if let bias { addRowVector(&out, bias) }
            return out
        }
        x.scalars.withUnsafeBufferPointer { xp in
            bits.withUnsafeBufferPointer { wp in
                out.scalars.withUnsafeMutableBufferPointer { op in
                    if m == 1 {
                        gemvBFloat16(x: xp.baseAddress!, weights: wp.baseAddress!, rows: weight.rows, cols: k, out: op.baseAddress!)
                    } else if m > 1 {
                        streamRows(x: xp.baseAddress!, m: m, weights: wp.baseAddress!, rows: weight.rows, cols: k, out: op.baseAddress!)
                    }
                }
            }
        }
        if let bias { addRowVector(&out, bias) }
        return out
    case .bfloat16Dot(let packed):
        return rowwiseLinear(x, weight: weight, bias: bias) { xp, m, op in linearBFloat16Dot(xp, m: m, weight: weight, packed: packed, out: op) }
    case .int8(let q):
        return rowwiseLinear(x, weight: weight, bias: bias) { xp, m, op in linearInt8(xp, m: m, weight: weight, quantized: q, out: op) }
    }
}

/// Shapes, output and bias around a kernel `body(x, m, out)` that writes all `m` rows.
private func rowwiseLinear(
    _ x: Tensor, weight: WeightMatrix, bias: Tensor?, _ body: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
) -> Tensor {
    let k = weight.cols
    precondition(x.shape.last == k, "linear: x \(x.shape) vs weight \(weight.shape)")
    let m = x.count / max(k, 1)
    var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [weight.rows])
    if m > 0 {
        x.scalars.withUnsafeBufferPointer { xp in
            out.scalars.withUnsafeMutableBufferPointer { op in body(xp.baseAddress!, m, op.baseAddress!) }
        }
    }
    if let bias { addRowVector(&out, bias) }
    return out
}

/// Weight rows widened per GEMM call: a tile small enough to stay in cache while OpenBLAS
/// multiplies it, large enough (N = 384) for the GEMM to run at full speed.
let widenTileRows = 384

/// A reused Float32 buffer for widened weight tiles, so prefill does not fault in fresh pages for
/// every matrix. One GEMM at a time uses it (OpenBLAS parallelises inside the call).
private let tileScratch = Mutex<[Float]>([])

/// `out [m, rows] = x [m, cols] · Wᵀ` for bf16 `W` `[rows, cols]`: widen a tile of rows, multiply
/// it with `cblas_sgemm` into the matching output columns, next tile.
public func gemmBFloat16(x: UnsafePointer<Float>, m: Int, weights: UnsafePointer<UInt16>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
    tileScratch.withLock { scratch in
        let tile = min(widenTileRows, rows)
        if scratch.count < tile * cols { scratch = [Float](repeating: 0, count: tile * cols) }
        scratch.withUnsafeMutableBufferPointer { buffer in
            let buffer = buffer
            var start = 0
            while start < rows {
                let count = min(tile, rows - start)
                let source = UncheckedSendable(weights + start * cols)
                Numerics.parallelFor(count * cols, costPerItem: 1) { range in
                    dc_widen_bf16(source.value + range.lowerBound, buffer.baseAddress! + range.lowerBound, range.count)
                }
                sgemm(transposeB: true, m: m, n: count, k: cols, a: x, lda: cols, b: buffer.baseAddress!, ldb: cols,
                      c: out + start, ldc: rows)
                start += count
            }
        }
    }
}

/// `out[j] = Σ_i x[i] · W[j, i]` for bf16 `W` `[rows, cols]`, streaming each row once, rows split
/// over the threads. The inner loop is C (`dc_gemv_bf16`) with AVX-512 / AVX2 / baseline clones
/// picked at load time: Swift alone compiles for SSE2 and was 2× slower than the memory allows.
public func gemvBFloat16(x: UnsafePointer<Float>, weights: UnsafePointer<UInt16>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
    let shared = UncheckedSendable((x, weights, out))
    Numerics.parallelFor(rows, costPerItem: cols) { range in
        let (x, weights, out) = shared.value
        dc_gemv_bf16(x, weights, range.lowerBound, range.upperBound, cols, out)
    }
}

/// `out [m, rows] = x [m, cols] · Wᵀ` for a few rows, each weight row read once for all of them,
/// weight rows split over the threads. Per row the same sums as `gemvBFloat16` (bit for bit), so
/// a sequence decodes identically alone or in a batch.
func streamRows(x: UnsafePointer<Float>, m: Int, weights: UnsafePointer<UInt16>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
    let shared = UncheckedSendable((x, weights, out))
    Numerics.parallelFor(rows, costPerItem: m * cols) { range in
        let (x, weights, out) = shared.value
        dc_gemv_bf16_rows(x, m, cols, weights, range.lowerBound, range.upperBound, cols, out, rows)
    }
}

/// `streamRows` for Float32 weights.
func streamRows(x: UnsafePointer<Float>, m: Int, weights: UnsafePointer<Float>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
    let shared = UncheckedSendable((x, weights, out))
    Numerics.parallelFor(rows, costPerItem: m * cols) { range in
        let (x, weights, out) = shared.value
        dc_gemv_f32_rows(x, m, cols, weights, range.lowerBound, range.upperBound, cols, out, rows)
    }
}

/// Rows `ids` of `table` `[rows, cols]` as Float32 → `[ids.count, cols]` (embedding lookup).
/// - Precondition: every id is a valid row (callers check user-supplied ids first).
public func gatherRows(_ table: WeightMatrix, _ ids: [Int]) -> Tensor {
    switch table.storage {
    case .float32(let values):
        return gatherRows(Tensor(shape: table.shape, scalars: values), ids)
    case .bfloat16(let bits):
        let h = table.cols
        var out = Tensor(zeros: [ids.count, h])
        for (r, id) in ids.enumerated() {
            precondition(id >= 0 && id < table.rows, "gatherRows: id \(id) outside \(table.rows) rows")
            for i in 0..<h { out.scalars[r * h + i] = Float(bitPattern: UInt32(bits[id * h + i]) << 16) }
        }
        return out
    case .bfloat16Dot, .int8:
        return Tensor(shape: [ids.count, table.cols], scalars: ids.flatMap { id in
            precondition(id >= 0 && id < table.rows, "gatherRows: id \(id) outside \(table.rows) rows")
            return table.rowValues(id..<id + 1)
        })
    }
}
