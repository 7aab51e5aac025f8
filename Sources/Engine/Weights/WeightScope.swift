import DenseCore

/// A `WeightSource` seen through a name prefix, like a working directory (candle's
/// `VarBuilder::pp`): `WeightScope(store).scoped("model").scoped("layers").scoped("3")(
/// "self_attn.q_proj.weight", shape: [896, 896])` reads `model.layers.3.self_attn.q_proj.weight`.
/// Layers take a scope, so their field names and the checkpoint's names are the same words.
public struct WeightScope: Sendable {
    /// Where tensors are read from.
    public let source: any WeightSource
    /// The dotted prefix, without a trailing dot; empty at the root.
    public let prefix: String

    /// A scope over `source` whose names start with `prefix` (a dotted path, or "" for the root).
    public init(_ source: any WeightSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
    }

    /// The scope one level down: `prefix.component`. An empty component leaves the scope as is.
    public func scoped(_ component: String) -> WeightScope {
        guard !component.isEmpty else { return self }
        return WeightScope(source, prefix: fullName(component))
    }

    /// The checkpoint name `name` has in this scope.
    public func fullName(_ name: String) -> String {
        prefix.isEmpty ? name : "\(prefix).\(name)"
    }

    /// The tensor `prefix.name`, checked to have exactly `shape`; errors carry the full name.
    public func callAsFunction(_ name: String, shape: [Int]) throws -> Tensor {
        try source.tensor(fullName(name), shape: shape)
    }

    /// The matrix `prefix.name` in its stored precision, checked to have exactly `shape`.
    public func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        try source.matrix(fullName(name), shape: shape)
    }

    /// Whether `prefix.name` exists.
    public func contains(_ name: String) -> Bool { source.contains(fullName(name)) }

    /// The stored shape of `prefix.name`, or nil when absent.
    public func shape(of name: String) -> [Int]? { source.shape(of: fullName(name)) }
}
