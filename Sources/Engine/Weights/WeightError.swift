/// Why weights could not be loaded. Every case names the file (or directory) and, where there is
/// one, the tensor; `description` is one line starting lowercase, saying what was expected and what
/// was found. Tensor names are printed quoted and escaped, so a hostile name stays on one line.
public enum WeightError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path does not exist.
    case notFound(path: String)
    /// The path exists but cannot be read (permissions, not a regular file, an I/O error).
    case unreadable(path: String, reason: String)
    /// The safetensors header is malformed: bad length prefix, not JSON, bad dtype, shape or
    /// offsets. `reason` says which rule failed and for which tensor.
    case corruptHeader(file: String, reason: String)
    /// `model.safetensors.index.json` is malformed or disagrees with the shards it names.
    case badIndex(file: String, reason: String)
    /// A directory holds neither an index nor any `*.safetensors` file.
    case noWeightFiles(directory: String)
    /// Two files hold a tensor of the same name and no index says which one is meant.
    case duplicateTensor(name: String, files: [String])
    /// A requested tensor is not in the file (or in any file of the store).
    case missing(name: String, file: String)
    /// A requested tensor exists with another shape. Shapes are outermost-first, as PyTorch prints.
    case shapeMismatch(name: String, expected: [Int], found: [Int], file: String)
    /// A requested tensor is stored as a type that does not widen to Float32 (only F32, F16 and
    /// BF16 do).
    case unsupportedDType(name: String, dtype: String, file: String)
    /// Tensors the checkpoint holds but the model never asked for (sorted).
    case unused([String], location: String? = nil)

    public var description: String {
        switch self {
        case .notFound(let path):
            return "no such file or directory: \(path)"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .corruptHeader(let file, let reason):
            return "corrupt safetensors header in \(file): \(reason)"
        case .badIndex(let file, let reason):
            return "bad safetensors index \(file): \(reason)"
        case .noWeightFiles(let directory):
            return "no model.safetensors.index.json and no *.safetensors file in \(directory)"
        case .duplicateTensor(let name, let files):
            return "tensor \(quoted(name)) is in more than one file and no index picks one: "
                + files.joined(separator: ", ")
        case .missing(let name, let file):
            return "missing tensor \(quoted(name)) in \(file)"
        case .shapeMismatch(let name, let expected, let found, let file):
            return "tensor \(quoted(name)) in \(file) has shape \(found), expected \(expected)"
        case .unsupportedDType(let name, let dtype, let file):
            return "tensor \(quoted(name)) in \(file) has dtype \(dtype.debugDescription), "
                + "expected F32, F16 or BF16"
        case .unused(let names, let location):
            let shown = names.prefix(10).map(quoted).joined(separator: ", ")
            let more = names.count > 10 ? " and \(names.count - 10) more" : ""
            return "\(names.count) tensor\(names.count == 1 ? "" : "s") in the checkpoint\(location.map { " \($0)" } ?? "") "
                + "\(names.count == 1 ? "was" : "were") never used (--allow-extra-tensors loads it anyway): \(shown)\(more)"
        }
    }
}

/// A tensor name in double quotes with control characters escaped, so messages stay one line.
func quoted(_ name: String) -> String { name.debugDescription }
