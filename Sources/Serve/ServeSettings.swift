import Foundation

/// How `densecap serve` listens and what it accepts. The API key is not part of it: a secret is
/// read from the environment and never encoded.
public struct ServeSettings: Codable, Equatable, Sendable {
    /// Address to bind (loopback unless told otherwise).
    public var host: String
    /// TCP port; 0 picks a free one (the bound address is reported once listening).
    public var port: Int
    /// Requests waiting for the model beyond those it is answering; one more is refused with 429.
    public var maxQueue: Int
    /// Largest request body accepted, in bytes (413 beyond it).
    public var maxBodyBytes: Int
    /// Most pictures one request may show: images plus video frames (413 beyond it).
    public var maxFrames: Int
    /// Folders whose files `file://` URLs may name (resolved, symbolic links followed); none: no
    /// file URLs at all.
    public var allowedFolders: [String]
    /// Waiting requests with equal sampling decoded together as one batch.
    public var batch: Int

    public init(host: String = "127.0.0.1", port: Int = 8000, maxQueue: Int = 64, maxBodyBytes: Int = 64 << 20,
                maxFrames: Int = 64, allowedFolders: [String] = [], batch: Int = 4) {
        self.host = host
        self.port = port
        self.maxQueue = maxQueue
        self.maxBodyBytes = maxBodyBytes
        self.maxFrames = maxFrames
        self.allowedFolders = allowedFolders
        self.batch = batch
    }

    /// Checks the values a user typed; the message names the flag.
    public func validate() throws {
        func fail(_ message: String) throws -> Never { throw ServeSetupError(message: message) }
        if !(0...65535).contains(port) { try fail("--port must be 0…65535") }
        if maxQueue < 1 { try fail("--max-queue must be at least 1") }
        if maxBodyBytes < 1024 { try fail("--max-body-bytes must be at least 1024") }
        if maxFrames < 1 { try fail("--max-frames must be at least 1") }
        if batch < 1 { try fail("--batch must be at least 1") }
        for folder in allowedFolders {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                try fail("--allow-folder \(folder): not a folder")
            }
        }
    }
}

/// A setting that cannot work (bad flag value, port in use).
public struct ServeSetupError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
