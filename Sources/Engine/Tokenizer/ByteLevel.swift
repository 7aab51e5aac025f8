/// GPT-2's reversible byte ↔ character table, used by every byte-level BPE (GPT-2, Qwen2).
///
/// The 188 printable bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for themselves; the other 68 bytes
/// (controls, space, DEL, NBSP, soft hyphen) map in order to U+0100, U+0101, … so that every token
/// is printable and contains no whitespace. Port of `bytes_to_unicode` in openai/gpt-2
/// `src/encoder.py`, also `tokenizers/src/pre_tokenizers/byte_level.rs` (huggingface/tokenizers@3ba8ad00).
enum ByteLevel {
    /// byte → its stand-in scalar.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// stand-in scalar value → byte; -1 where a scalar stands for no byte. Indexed by scalar
    /// value, which is below 324 for every stand-in.
    static let byteForScalarValue: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The byte-level spelling of raw bytes: what the ByteLevel pre-tokenizer feeds the BPE model.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a token stands for, exactly as the ByteLevel *decoder* of HF `tokenizers`
    /// computes them: when every character of the token is a stand-in, the bytes it stands for;
    /// otherwise (an added token with a space or CJK in it, say) the token's own
    /// UTF-8. (`decode_chain` in `tokenizers/src/pre_tokenizers/byte_level.rs`.)
    static func decodedBytes(ofToken token: String) -> [UInt8] {
        bytesIfByteLevel(token) ?? Array(token.utf8)
    }

    /// The raw bytes of a token made only of stand-ins, or nil when some character is not one
    /// (such a token can never be produced by BPE over byte-level input).
    static func bytesIfByteLevel(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteForScalarValue.count, byteForScalarValue[value] >= 0 else {
                return nil
            }
            bytes.append(UInt8(byteForScalarValue[value]))
        }
        return bytes
    }
}
