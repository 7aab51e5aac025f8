import Foundation

/// Test-only safetensors bytes, written by hand so tests can also write what no real writer
/// would (bad lengths, overlapping ranges, unpadded headers). Reference-written files live in
/// `Fixtures/safetensors/` (tools/fixtures/gen_safetensors_fixture.py).
enum SafetensorsBytes {
    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var data: [UInt8]
    }

    /// A length prefix, `header` and `data`. `declaredLength` overrides the prefix (default: the
    /// header's byte count).
    static func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        return littleEndian(declaredLength ?? UInt64(headerBytes.count)) + headerBytes + data
    }

    /// A well-formed file holding `tensors` back to back in the given order. The header is padded
    /// with spaces to a multiple of `alignment`: 8 like the reference writer, 1 (no padding) like MLX.
    static func file(_ tensors: [Entry], metadata: [String: String]? = nil, alignment: Int = 8) -> [UInt8] {
        var entries: [String] = []
        if let metadata {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        var data: [UInt8] = []
        for tensor in tensors {
            entries.append(
                "\"\(tensor.name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":\(tensor.shape),"
                    + "\"data_offsets\":[\(offset),\(offset + tensor.data.count)]}")
            offset += tensor.data.count
            data += tensor.data
        }
        var header = "{\(entries.joined(separator: ","))}"
        while header.utf8.count % alignment != 0 { header += " " }
        return file(header: header, data: data)
    }

    static func f32(_ values: [Float]) -> [UInt8] { values.flatMap { littleEndian($0.bitPattern) } }
    static func f16(_ values: [Float16]) -> [UInt8] { values.flatMap { littleEndian($0.bitPattern) } }
    /// BF16 by truncation; tests pick values that BF16 holds exactly.
    static func bf16(_ values: [Float]) -> [UInt8] {
        values.flatMap { littleEndian(UInt16($0.bitPattern >> 16)) }
    }
    static func i64(_ values: [Int64]) -> [UInt8] { values.flatMap { littleEndian(UInt64(bitPattern: $0)) } }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// A fresh directory under the system temporary directory, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("densecap-safetensors-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` inside the directory and returns the file's path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> String { try write(name, Array(text.utf8)) }
}

