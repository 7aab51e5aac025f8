import DenseCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

#if !_endian(little)
    #error("safetensors values are little-endian; the widening loops assume a little-endian host")
#endif

/// An element type a safetensors header may name: the 22 codes of the format as of safetensors
/// 0.8 (huggingface/safetensors `safetensors/src/tensor.rs` `Dtype`). Every one is accepted in a
/// header; only `F32`, `F16` and `BF16` can be loaded (widened to Float32).
public enum SafetensorsDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", i32 = "I32", u32 = "U32"
    case i64 = "I64", u64 = "U64", f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64", c64 = "C64"
    case f4 = "F4", f6E2M3 = "F6_E2M3", f6E3M2 = "F6_E3M2", f8E5M2 = "F8_E5M2", f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0", f8E4M3FNUZ = "F8_E4M3FNUZ", f8E5M2FNUZ = "F8_E5M2FNUZ"

    /// Bits per element; F4 and F6 pack several elements per byte.
    public var bitWidth: Int {
        switch self {
        case .f4: 4
        case .f6E2M3, .f6E3M2: 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .i64, .u64, .f64, .c64: 64
        }
    }

    /// Whether `SafetensorsFile.tensor(_:)` can load it.
    public var widensToFloat32: Bool { self == .f32 || self == .f16 || self == .bf16 }

    public var description: String { rawValue }
}

/// One `.safetensors` file, memory-mapped read-only, its header validated completely at open.
///
/// Format (huggingface/safetensors README): an 8-byte little-endian header length N, N bytes of
/// JSON mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets
/// relative to the byte after the header) plus an optional `"__metadata__"` string→string map,
/// then the data. Nothing in the header is trusted: every range is checked against the file and
/// against every other range before any tensor is read. Offsets need not be aligned (MLX writes
/// unpadded headers), so values are copied out with unaligned loads.
///
/// Sendable because the mapping is read-only and never changes after `init`.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// The path the file was opened with; every error names it.
    public let path: String
    /// The header's `__metadata__` map (empty when absent), e.g. `["format": "pt"]`.
    public let metadata: [String: String]

    struct Entry {
        let dtype: SafetensorsDType
        let shape: [Int]
        let count: Int  // product of shape
        let offset: Int  // absolute byte offset in the file
        let byteCount: Int
    }

    private let entries: [String: Entry]
    private let base: UnsafeRawPointer
    private let mappedBytes: Int

    /// Opens, maps and validates `path`.
    /// - Throws: `WeightError.notFound`, `.unreadable`, or `.corruptHeader` naming the failed rule.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw WeightError.notFound(path: path) }
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }  // the mapping outlives the descriptor
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw WeightError.unreadable(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        guard size >= 8 else {
            throw WeightError.corruptHeader(
                file: path, reason: "file is \(size) bytes, too short for the 8-byte header length")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED
        else {
            throw WeightError.unreadable(
                path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        do {
            let header = try Self.parseHeader(
                UnsafeRawBufferPointer(start: mapped, count: size), path: path)
            entries = header.entries
            metadata = header.metadata
        } catch {
            munmap(mapped, size)
            throw error
        }
        base = UnsafeRawPointer(mapped)
        mappedBytes = size
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), mappedBytes)
    }

    /// Every tensor name in the header, sorted (whatever its dtype).
    public var names: [String] { entries.keys.sorted() }

    /// The stored dtype and shape of `name`, or nil when the file has no such tensor.
    public func info(_ name: String) -> (dtype: SafetensorsDType, shape: [Int])? {
        entries[name].map { ($0.dtype, $0.shape) }
    }

    /// Reads `name`, widening F16 and BF16 to Float32 (exactly: every F16 and BF16 value,
    /// subnormals, infinities and NaNs included, has a Float32 twin).
    /// - Returns: a tensor with the stored shape (`[]` for a 0-d tensor, which holds one value).
    /// - Throws: `WeightError.missing`, or `.unsupportedDType` for any other dtype.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw WeightError.missing(name: name, file: path) }
        let source = UnsafeRawBufferPointer(start: base + entry.offset, count: entry.byteCount)
        let scalars: [Float]
        switch entry.dtype {
        case .f32:
            scalars = [Float](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
                // memcpy: no alignment needed
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                initialized = entry.count
            }
        case .f16:
            scalars = [Float](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
                Self.widenF16(source, into: buffer)
                initialized = entry.count
            }
        case .bf16:
            scalars = [Float](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
                Self.widenBF16(source, into: buffer)
                initialized = entry.count
            }
        default:
            throw WeightError.unsupportedDType(name: name, dtype: entry.dtype.rawValue, file: path)
        }
        releasePages(entry)
        return Tensor(shape: entry.shape, scalars: scalars)
    }

    /// Drops the mapped pages of a tensor just copied out. A model loads matrix by matrix; without
    /// this every page read stays resident until the file closes, so loading would hold the
    /// checkpoint twice (the copies and the mapping). The pages are clean and file-backed: touching
    /// them again reads the file again.
    private func releasePages(_ entry: Entry) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = entry.offset / page * page
        let end = min(mappedBytes, (entry.offset + entry.byteCount + page - 1) / page * page)
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) }
    }

    /// The stored bytes of `name` whatever its dtype (little-endian, as in the file), for tensors
    /// the engine does not compute with: U8 images, F64 checksums.
    /// - Throws: `WeightError.missing`.
    public func rawBytes(_ name: String) throws -> (dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
        guard let entry = entries[name] else { throw WeightError.missing(name: name, file: path) }
        let source = UnsafeRawBufferPointer(start: base + entry.offset, count: entry.byteCount)
        return (entry.dtype, entry.shape, Array(source))
    }

    /// Reads the 2-D tensor `name` keeping bf16 as stored bits (F32 as is, F16 widened).
    /// - Throws: `WeightError.missing`, `.unsupportedDType`, or `.shapeMismatch` if not 2-D.
    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let entry = entries[name] else { throw WeightError.missing(name: name, file: path) }
        guard entry.shape.count == 2 else {
            throw WeightError.shapeMismatch(name: name, expected: [-1, -1], found: entry.shape, file: path)
        }
        let (rows, cols) = (entry.shape[0], entry.shape[1])
        guard entry.dtype == .bf16 else {
            return WeightMatrix(rows: rows, cols: cols, storage: .float32(try tensor(name).scalars))
        }
        let source = UnsafeRawBufferPointer(start: base + entry.offset, count: entry.byteCount)
        let bits = [UInt16](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)  // little-endian host
            initialized = entry.count
        }
        releasePages(entry)
        return WeightMatrix(rows: rows, cols: cols, storage: .bfloat16(bits))
    }

    // MARK: - Widening

    /// BF16 is the top half of a Float32: shifting the bits back is exact for every value.
    /// - Parameters: `source` holds `output.count` little-endian BF16 values, at any alignment.
    static func widenBF16(
        _ source: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>
    ) {
        for i in 0..<output.count {
            let bits = UInt16(
                littleEndian: source.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
            output[i] = Float(bitPattern: UInt32(bits) &<< 16)
        }
    }

    /// IEEE half → single through Swift's `Float16`, exact for every value.
    /// - Parameters: `source` holds `output.count` little-endian F16 values, at any alignment.
    static func widenF16(
        _ source: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>
    ) {
        for i in 0..<output.count {
            let bits = UInt16(
                littleEndian: source.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
            output[i] = Float(Float16(bitPattern: bits))
        }
    }

    // MARK: - Header

    private struct RawEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            dtype = try container.decode(String.self, forKey: .dtype)
            shape = try container.decode([JSONInteger].self, forKey: .shape).map(\.value)
            dataOffsets = try container.decode([JSONInteger].self, forKey: .dataOffsets).map(\.value)
        }
    }

    /// An `Int` that says where it failed: corelibs' JSONDecoder reports a number that does not
    /// fit `Int` (1.5, 1e30) as "not valid JSON" with no coding path, so retry it as a `Double`
    /// and throw an error located at the number.
    private struct JSONInteger: Decodable {
        let value: Int
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Int.self) {
                self.value = value
                return
            }
            let number = try container.decode(Double.self)  // a type mismatch when not a number
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(number) is not an integer that fits in 64 bits")
        }
    }

    private struct RawHeader: Decodable {
        var entries: [String: RawEntry] = [:]
        var metadata: [String: String] = [:]

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: NameKey.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata =
                        try container.decodeIfPresent([String: String].self, forKey: key) ?? [:]
                } else {
                    entries[key.stringValue] = try container.decode(RawEntry.self, forKey: key)
                }
            }
        }
    }

    private struct NameKey: CodingKey {
        let stringValue: String
        let intValue: Int? = nil
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }

    /// Validates the length prefix and the header of a whole file held in `file`.
    /// - Returns: entries with absolute offsets, and the metadata map.
    static func parseHeader(_ file: UnsafeRawBufferPointer, path: String) throws -> (
        entries: [String: Entry], metadata: [String: String]
    ) {
        func corrupt(_ reason: String) -> WeightError { .corruptHeader(file: path, reason: reason) }

        let declared = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= UInt64(maxHeaderBytes) else {
            throw corrupt("header length \(declared) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let headerBytes = Int(declared)
        guard headerBytes <= file.count - 8 else {
            throw corrupt(
                "header length \(headerBytes) runs past the end of the \(file.count)-byte file")
        }
        let dataStart = 8 + headerBytes
        let dataBytes = file.count - dataStart

        let json = Data(UnsafeRawBufferPointer(rebasing: file[8..<dataStart]))
        let header: RawHeader
        do {
            header = try JSONDecoder().decode(RawHeader.self, from: json)
        } catch let error as DecodingError {
            throw corrupt(describe(error))
        } catch {
            throw corrupt("header is not valid JSON")
        }

        var entries: [String: Entry] = [:]
        entries.reserveCapacity(header.entries.count)
        for (name, raw) in header.entries {
            let tensor = "tensor \(quoted(name))"
            guard let dtype = SafetensorsDType(rawValue: raw.dtype) else {
                throw corrupt("\(tensor) has unknown dtype \(raw.dtype.debugDescription)")
            }
            var count = 1
            for dimension in raw.shape {
                guard dimension >= 0 else {
                    throw corrupt("\(tensor) has a negative dimension in shape \(raw.shape)")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow else {
                    throw corrupt("\(tensor) has shape \(raw.shape), whose element count overflows")
                }
                count = product
            }
            guard raw.dataOffsets.count == 2 else {
                throw corrupt("\(tensor) has data_offsets \(raw.dataOffsets), expected [begin, end]")
            }
            let (begin, end) = (raw.dataOffsets[0], raw.dataOffsets[1])
            guard begin >= 0, begin <= end else {
                throw corrupt(
                    "\(tensor) has data_offsets [\(begin), \(end)], expected 0 ≤ begin ≤ end")
            }
            guard end <= dataBytes else {
                throw corrupt(
                    "\(tensor) has data_offsets [\(begin), \(end)] beyond the \(dataBytes) data bytes")
            }
            let (bits, overflow) = count.multipliedReportingOverflow(by: dtype.bitWidth)
            guard !overflow, bits % 8 == 0, bits / 8 == end - begin else {
                let needed =
                    overflow
                    ? "more than the file holds"
                    : bits % 8 == 0 ? "\(bits / 8) bytes" : "\(bits) bits, not whole bytes"
                throw corrupt(
                    "\(tensor) spans \(end - begin) bytes, but \(dtype) \(raw.shape) needs \(needed)")
            }
            entries[name] = Entry(
                dtype: dtype, shape: raw.shape, count: count, offset: dataStart + begin,
                byteCount: end - begin)
        }

        // Sorted by start, each non-empty range must begin at or after the previous one's end
        // (then the ends increase too, so no two ranges share a byte). Empty tensors own no bytes
        // and may sit anywhere: the reference writer puts them at the next tensor's offset. Gaps
        // and trailing bytes are accepted although the reference reader refuses them: they are
        // harmless, and every tensor's own range has been checked above.
        let ranges = entries.filter { $0.value.byteCount > 0 }
            .map { (name: $0.key, begin: $0.value.offset, end: $0.value.offset + $0.value.byteCount) }
            .sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (previous, next) in zip(ranges, ranges.dropFirst()) where next.begin < previous.end {
            throw corrupt(
                "tensors \(quoted(previous.name)) and \(quoted(next.name)) overlap at data bytes "
                    + "[\(next.begin - dataStart), \(min(previous.end, next.end) - dataStart))")
        }
        return (entries, header.metadata)
    }

    /// The JSON word for what a decoder wanted.
    private static func jsonKind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"  // the header, an entry, or `__metadata__`
        }
    }

    /// One line for a decoding failure: where in the header, and what was wrong.
    private static func describe(_ error: DecodingError) -> String {
        func location(_ path: [any CodingKey]) -> String {
            guard let first = path.first else { return "header" }
            var text =
                first.stringValue == "__metadata__"
                ? "__metadata__" : "tensor \(quoted(first.stringValue))"
            for key in path.dropFirst() {
                text += key.intValue.map { "[\($0)]" } ?? " \(quoted(key.stringValue))"
            }
            return text
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "header is not valid JSON"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "header is not a JSON object"
        case .typeMismatch(let type, let context):
            return "\(location(context.codingPath)) is not \(jsonKind(type))"
        case .valueNotFound(let type, let context):
            return "\(location(context.codingPath)) is null, expected \(jsonKind(type))"
        case .keyNotFound(let key, let context):
            return "\(location(context.codingPath)) has no \(quoted(key.stringValue)) field"
        case .dataCorrupted(let context):
            return "\(location(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "header does not match the safetensors schema"
        }
    }
}
