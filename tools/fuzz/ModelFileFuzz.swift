// libFuzzer target for the model files a checkpoint brings (untrusted input): a safetensors file
// (length prefix, JSON header, data) or one of an NVILA checkpoint's config.json files. Every input
// must give a model part or a typed one-line error; anything else (a trap, a read outside the
// mapping, which AddressSanitizer or a fault reports, a hang past libFuzzer's -timeout) is a finding.
//
// Built and run by tools/fuzz_model_files.sh, never by `swift build`: Engine is compiled with
// `-sanitize=fuzzer,address` and -enable-testing (a debug build), this file against it.
//
// Input: byte 0 picks the file kind (mod 5), the rest is the file:
//   0 safetensors: opened (memory-mapped) and every tensor read as Float32 and as raw bytes
//   1 config.json (NVILAConfig), 2 llm/config.json (Qwen2Config), 3 vision_tower/config.json
//   (SiglipVisionConfig), 4 mm_projector/config.json (its mm_projector_type)

import DenseCore
import Foundation

@testable import Engine

/// A private folder for the file each input is written to (the loaders read paths).
private let folder: String = {
    let path = NSTemporaryDirectory() + "densecap-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Stops the run with the input recorded: the error was not a typed one-line error.
private func finding(_ error: any Error, _ kind: UInt8) -> Never {
    fatalError("kind \(kind): \(type(of: error)) is not a typed one-line error: \(error)")
}

private func isTypedOneLine(_ error: any Error) -> Bool {
    let typed = error is ConfigError || error is WeightError
    return typed && !"\(error)".isEmpty && !"\(error)".contains("\n")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let kind = data[0] % 5
    let path = folder + (kind == 0 ? "/input.safetensors" : "/config.json")
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data + 1, count: size - 1)) else {
        fatalError("cannot write \(path)")
    }
    do {
        switch kind {
        case 0:
            let file = try SafetensorsFile(path: path)
            for name in file.names {
                guard let info = file.info(name) else { fatalError("\(name) listed without info") }
                let raw = try file.rawBytes(name)
                if raw.shape != info.shape || raw.bytes.count * 8 != info.shape.reduce(1, *) * info.dtype.bitWidth {
                    fatalError("\(name): \(raw.bytes.count) bytes for \(info.dtype) \(info.shape)")
                }
                do {
                    let tensor = try file.tensor(name)
                    if tensor.shape != info.shape { fatalError("\(name): tensor \(tensor.shape) for \(info.shape)") }
                } catch let error as WeightError where !info.dtype.widensToFloat32 {
                    if !isTypedOneLine(error) { finding(error, kind) }
                }
            }
        case 1: _ = try NVILAConfig(json: try readJSON(path))
        case 2: try decodeConfig(Qwen2Config.self, path).validate()
        case 3: try decodeConfig(SiglipVisionConfig.self, path).validate()
        default:
            if let type = try readJSON(path)["mm_projector_type"] as? String { _ = try ProjectorType(configValue: type) }
        }
    } catch {
        if !isTypedOneLine(error) { finding(error, kind) }
    }
    return 0
}
