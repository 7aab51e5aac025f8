/// Sorting for the motion detector's per-frame fits (the tone curve's quantiles, the tiles'
/// median residuals, the footage probe's upper quartile): a radix sort on the values' bit
/// patterns, linear in the count, where `Array.sort()` compared its way through a few thousand
/// cells several times a frame. `radixSort` is the fast kernel, `comparisonSort` its naive twin;
/// tests hold them equal bit for bit.

/// Sorts `values` (`[n]`, NaN-free) ascending, exactly as the stable `sort()` does: the same
/// sequence, bit for bit.
///
/// Least-significant-digit radix sort, four passes of 8-bit digits over an order-preserving
/// unsigned key of each IEEE bit pattern (negative values flipped whole, positive ones with their
/// sign bit set; −0 keyed as +0, so the two keep their input order, as in a stable sort where they
/// compare equal); the values themselves are moved, so each comes back with its own bits. Every
/// pass is stable; a pass whose digit is the same for every value (the sign and exponent byte of
/// grid values within one octave) is skipped.
func radixSort(_ values: inout [Float]) {
    let n = values.count
    guard n > 1 else { return }
    // The values' own bit patterns travel through the passes; each pass reads its digit of the key.
    var bits = values.map(\.bitPattern)
    var scratch = [UInt32](repeating: 0, count: n)
    // counts[256·d + digit]: how many keys have that digit at position d (0: lowest byte).
    var counts = [Int](repeating: 0, count: 4 * 256)
    bits.withUnsafeBufferPointer { b in
        counts.withUnsafeMutableBufferPointer { c in
            for i in 0..<n {
                let key = orderKey(b[i])
                c[Int(key & 255)] += 1
                c[256 + Int((key >> 8) & 255)] += 1
                c[512 + Int((key >> 16) & 255)] += 1
                c[768 + Int(key >> 24)] += 1
            }
        }
    }
    for digit in 0..<4 {
        let shift = UInt32(8 * digit), base = 256 * digit
        if counts[base + Int((orderKey(bits[0]) >> shift) & 255)] == n { continue }
        counts.withUnsafeMutableBufferPointer { c in
            var sum = 0
            for d in base..<(base + 256) {
                let count = c[d]
                c[d] = sum
                sum += count
            }
            bits.withUnsafeBufferPointer { from in
                scratch.withUnsafeMutableBufferPointer { to in
                    for i in 0..<n {
                        let slot = base + Int((orderKey(from[i]) >> shift) & 255)
                        to[c[slot]] = from[i]
                        c[slot] += 1
                    }
                }
            }
        }
        swap(&bits, &scratch)
    }
    values.withUnsafeMutableBufferPointer { v in
        bits.withUnsafeBufferPointer { b in
            for i in 0..<n { v[i] = Float(bitPattern: b[i]) }
        }
    }
}

/// The naive twin of `radixSort`: the standard library's sort (stable).
func comparisonSort(_ values: inout [Float]) {
    values.sort()
}

/// An unsigned key in the order of the floats (for non-NaN bit patterns), −0 given +0's key.
@inline(__always)
private func orderKey(_ bits: UInt32) -> UInt32 {
    let b = bits == 0x8000_0000 ? 0 : bits
    return b & 0x8000_0000 != 0 ? ~b : b | 0x8000_0000
}
