/// Lossy UTF-8 decoding with the Unicode "maximal subpart" rule (Unicode 15 §3.9, U+FFFD
/// substitution of maximal subparts): each maximal prefix of a well-formed sequence that cannot
/// be completed, and each byte that starts none, becomes one U+FFFD. Rust's
/// `String::from_utf8_lossy` (HF `tokenizers`' decoder) and Python's `errors="replace"` both
/// follow it, so decoded text matches theirs byte for byte.
enum UTF8Repair {
    /// Decodes bytes, replacing ill-formed parts with U+FFFD.
    static func decode(_ bytes: some Collection<UInt8>) -> String {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        var scalars = String.UnicodeScalarView()
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let (scalar, length) = decodeOne(bytes, at: index)
            scalars.append(scalar ?? "\u{FFFD}")
            index = bytes.index(index, offsetBy: length)
        }
        return String(scalars)
    }

    /// The scalar at `index` and the bytes it spans; a nil scalar stands for one U+FFFD spanning
    /// the maximal subpart (at least one byte).
    static func decodeOne<C: Collection<UInt8>>(_ bytes: C, at index: C.Index) -> (
        Unicode.Scalar?, Int
    ) {
        let lead = bytes[index]
        if lead < 0x80 { return (Unicode.Scalar(lead), 1) }
        guard let (length, secondRange) = sequenceShape(lead: lead) else { return (nil, 1) }
        var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        var position = bytes.index(after: index)
        for offset in 1..<length {
            guard position != bytes.endIndex else { return (nil, offset) }
            let byte = bytes[position]
            let valid = offset == 1 ? secondRange.contains(byte) : (0x80...0xBF).contains(byte)
            guard valid else { return (nil, offset) }
            value = value << 6 | UInt32(byte & 0x3F)
            position = bytes.index(after: position)
        }
        return (Unicode.Scalar(value)!, length)
    }

    /// Length of the sequence a lead byte starts and the allowed range of its second byte
    /// (Unicode Table 3-7), or nil for bytes that start no sequence (80–C1, F5–FF).
    static func sequenceShape(lead: UInt8) -> (Int, ClosedRange<UInt8>)? {
        switch lead {
        case 0xC2...0xDF: return (2, 0x80...0xBF)
        case 0xE0: return (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: return (3, 0x80...0xBF)
        case 0xED: return (3, 0x80...0x9F)
        case 0xF0: return (4, 0x90...0xBF)
        case 0xF1...0xF3: return (4, 0x80...0xBF)
        case 0xF4: return (4, 0x80...0x8F)
        default: return nil
        }
    }

    /// How many trailing bytes are a well-formed but unfinished sequence that later bytes could
    /// complete (0…3). Decoding everything before them now and the rest later gives exactly the
    /// text of decoding all at once: the held-back part starts at a lead byte, where the decoder
    /// restarts in either case.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let lowest = max(bytes.count - 3, 0)
        var start = bytes.count - 1
        while start >= lowest {
            let byte = bytes[start]
            if byte & 0xC0 != 0x80 {  // the last lead (or ASCII) byte
                guard let (length, _) = sequenceShape(lead: byte) else { return 0 }
                let available = bytes.count - start
                guard available < length else { return 0 }  // complete, or ill-formed anyway
                // Unfinished: held back only if what is there is a valid prefix.
                let (scalar, consumed) = decodeOne(bytes[start...], at: start)
                return scalar == nil && consumed == available ? available : 0
            }
            start -= 1
        }
        return 0
    }
}
