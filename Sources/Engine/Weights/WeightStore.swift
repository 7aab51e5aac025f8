import DenseCore
import Foundation
import Synchronization

/// A checkpoint's tensors across one or more safetensors files, loaded strictly: every tensor is
/// requested by full name with its expected shape, and after the model is built
/// `assertAllConsumed(ignoring:)` reports whatever the checkpoint holds that nothing asked for.
///
/// Safe to read from several tasks at once: files are read-only mappings and the record of
/// consumed names sits behind a mutex.
public final class WeightStore: WeightSource, Sendable {
    /// The index HF writes next to sharded checkpoints (`weight_map`: tensor name → shard file).
    public static let indexFileName = "model.safetensors.index.json"

    /// What was opened (a directory, or the file paths); named by `missing` errors.
    public let location: String
    private let files: [SafetensorsFile]
    private let fileOfName: [String: Int]  // tensor name → index into `files`
    private let consumed = Mutex<Set<String>>([])

    /// Opens a checkpoint directory. With `model.safetensors.index.json` present, it opens exactly
    /// the shards the index names: each must exist and hold every tensor the index maps to it.
    /// Without one, it opens every `*.safetensors` file there (usually one `model.safetensors`);
    /// a name found in two files is then an error.
    /// - Throws: `WeightError.notFound`, `.noWeightFiles`, `.badIndex`, `.duplicateTensor`, or
    ///   any error of `SafetensorsFile.init(path:)`.
    public convenience init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw WeightError.notFound(path: directory)
        }
        guard isDirectory.boolValue else {
            throw WeightError.unreadable(path: directory, reason: "not a directory")
        }
        let indexPath = (directory as NSString).appendingPathComponent(Self.indexFileName)
        if FileManager.default.fileExists(atPath: indexPath) {
            try self.init(index: indexPath, directory: directory)
            return
        }
        let listing: [String]
        do {
            listing = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw WeightError.unreadable(path: directory, reason: "cannot list the directory")
        }
        let paths = listing.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
        guard !paths.isEmpty else { throw WeightError.noWeightFiles(directory: directory) }
        try self.init(opened: paths.map(SafetensorsFile.init(path:)), location: directory)
    }

    /// Opens the given safetensors files as one checkpoint; a name found in two files is an error.
    public convenience init(files paths: [String]) throws {
        try self.init(
            opened: paths.map(SafetensorsFile.init(path:)),
            location: paths.joined(separator: ", "))
    }

    private init(opened: [SafetensorsFile], location: String) throws {
        var fileOfName: [String: Int] = [:]
        for (index, file) in opened.enumerated() {
            for name in file.names {
                if let other = fileOfName.updateValue(index, forKey: name) {
                    throw WeightError.duplicateTensor(
                        name: name, files: [opened[other].path, file.path])
                }
            }
        }
        self.location = location
        self.files = opened
        self.fileOfName = fileOfName
    }

    private struct Index: Decodable {
        let weightMap: [String: String]
        enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
    }

    private init(index indexPath: String, directory: String) throws {
        func bad(_ reason: String) -> WeightError { .badIndex(file: indexPath, reason: reason) }
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw WeightError.unreadable(path: indexPath, reason: "cannot read the file")
        }
        let weightMap: [String: String]
        do {
            weightMap = try JSONDecoder().decode(Index.self, from: data).weightMap
        } catch DecodingError.keyNotFound(let key, _) {
            throw bad("no \(quoted(key.stringValue)) object")
        } catch {
            throw bad("expected a JSON object whose \"weight_map\" maps tensor names to file names")
        }
        guard !weightMap.isEmpty else { throw bad("\"weight_map\" is empty") }

        // Open each named shard once, in name order, so errors and `location` are deterministic.
        let shardNames = Set(weightMap.values).sorted()
        var shardIndex: [String: Int] = [:]
        var opened: [SafetensorsFile] = []
        for shard in shardNames {
            guard !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                throw bad("shard \(quoted(shard)) lies outside the checkpoint directory")
            }
            let path = (directory as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: path) else {
                throw bad("names shard \(quoted(shard)), which does not exist in \(directory)")
            }
            shardIndex[shard] = opened.count
            opened.append(try SafetensorsFile(path: path))
        }

        // The index decides which file a name is read from; names a shard holds but the index does
        // not list are kept too, so `unconsumed` reports them rather than hiding them.
        var fileOfName: [String: Int] = [:]
        for name in weightMap.keys.sorted() {
            let shard = weightMap[name]!
            let index = shardIndex[shard]!
            guard opened[index].info(name) != nil else {
                throw bad("maps tensor \(quoted(name)) to \(quoted(shard)), which does not hold it")
            }
            fileOfName[name] = index
        }
        for (index, file) in opened.enumerated() {
            for name in file.names where fileOfName[name] == nil { fileOfName[name] = index }
        }
        self.location = directory
        self.files = opened
        self.fileOfName = fileOfName
    }

    /// Every tensor name in the checkpoint, sorted.
    public var names: [String] { fileOfName.keys.sorted() }

    public func contains(_ name: String) -> Bool { fileOfName[name] != nil }

    public func shape(of name: String) -> [Int]? {
        fileOfName[name].flatMap { files[$0].info(name)?.shape }
    }

    /// The tensor `name`, checked to have exactly `shape`, widened to Float32, recorded as used.
    /// - Parameter shape: outermost-first, as PyTorch prints it.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        try read(name, shape: shape) { try $0.tensor(name) }
    }

    /// The matrix `name` in its stored precision (bf16 kept as bits), checked, recorded as used.
    public func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        try read(name, shape: shape) { try $0.matrix(name) }
    }

    /// Finds `name`, checks its stored shape against `shape`, reads it and records it as used.
    private func read<T>(_ name: String, shape: [Int], _ body: (SafetensorsFile) throws -> T) throws -> T {
        guard let index = fileOfName[name] else {
            throw WeightError.missing(name: name, file: location)
        }
        let file = files[index]
        if let stored = file.info(name), stored.shape != shape {
            throw WeightError.shapeMismatch(
                name: name, expected: shape, found: stored.shape, file: file.path)
        }
        let value = try body(file)
        consumed.withLock { _ = $0.insert(name) }
        return value
    }

    /// Names no `tensor(_:shape:)` call has read yet, sorted.
    public var unconsumed: [String] {
        let used = consumed.withLock { $0 }
        return fileOfName.keys.filter { !used.contains($0) }.sorted()
    }

    /// Throws `WeightError.unused` listing every tensor not read and not in `ignoring` (names the
    /// model deliberately skips, such as a vision tower's unused last layer).
    public func assertAllConsumed(ignoring: Set<String> = []) throws {
        let left = unconsumed.filter { !ignoring.contains($0) }
        if !left.isEmpty { throw WeightError.unused(left) }
    }
}
