import Foundation
import Testing
import TemporalCompress

@testable import Engine

/// The top-level config of published NVILA checkpoints, and clear errors for what the engine
/// cannot run.
@Suite struct NVILAConfigTests {
    /// NVILA-8B's values (nvila-spec §1.3, from TensorRT-LLM's copy of its config.json).
    static var nvila8B: [String: Any] { [
        "architectures": ["LlavaLlamaModel"], "model_type": "llava_llama", "hidden_size": 3584, "mm_hidden_size": 3456,
        "image_aspect_ratio": "dynamic_s2", "dynamic_s2": true, "s2": false, "s2_scales": "448,896,1344",
        "s2_max_split_size": 448, "s2_resize_output_to_scale_idx": -1, "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "cls_patch", "num_video_frames": 8, "fps": 0.0, "chat_template": NSNull(),
        "interpolate_mode": "linear", "vision_resolution": -1,
    ] }

    @Test func nvila8B() throws {
        let c = try NVILAConfig(json: Self.nvila8B)
        #expect(c.imageMode == .dynamicS2(scales: [448, 896, 1344]))
        #expect(c.dynamicS2)
        #expect(c.selectLayer == -2)
        #expect(c.numVideoFrames == 8)
        #expect((c.minTiles, c.maxTiles, c.videoMaxTiles) == (1, 12, 1))
        #expect(c.mmHiddenSize == 3456)
        #expect(c.imageEncoder == ImageEncoderTokens(start: nil, end: "\n"))
        #expect(c.videoEncoder == .basic(start: nil, end: "\n"))
        #expect(c.chatTemplate == nil)
    }

    @Test func liteAndVideoEncoders() throws {
        var json = Self.nvila8B
        json["image_aspect_ratio"] = "dynamic"
        json["dynamic_s2"] = false
        json["max_tiles"] = 6
        // VILA stores encoders as JSON strings (hydra `_target_`).
        json["video_encoder"] = #"{"_target_": "llava.model.encoders.TSPVideoEncoder", "pool_sizes": [[8, 1, 1]], "end_tokens": "\n"}"#
        let c = try NVILAConfig(json: json)
        #expect(c.imageMode == .dynamic)
        #expect(!c.dynamicS2)
        #expect(c.maxTiles == 6)
        #expect(c.videoEncoder == .tsp(poolSizes: [PoolSize(t: 8, h: 1, w: 1)], start: nil, end: "\n", separator: nil))
        // An object works as well as a string; JSON null end tokens mean none.
        json["video_encoder"] = ["_target_": "llava.model.encoders.BasicVideoEncoder", "end_tokens": NSNull()]
        #expect(try NVILAConfig(json: json).videoEncoder == .basic(start: nil, end: nil))
    }

    /// (key, value as a JSON fragment, the key the error must name)
    @Test(arguments: [
        ("image_aspect_ratio", #""anyres""#, "image_aspect_ratio"),
        ("mm_vision_select_feature", #""patch""#, "mm_vision_select_feature"),
        ("s2_resize_output_to_scale_idx", "0", "s2_resize_output_to_scale_idx"),
        ("s2_scales", #""448,900""#, "s2_scales"),
        ("video_encoder", #""{\"_target_\": \"llava.model.encoders.Foo\"}""#, "video_encoder._target_"),
        ("video_encoder", #""{\"_target_\": \"llava.model.encoders.TSPVideoEncoder\"}""#, "video_encoder.pool_sizes"),
        ("ps3", "true", "ps3"),
        ("max_tiles", "0", "max_tiles"),
    ])
    func unsupportedValuesNameTheKey(key: String, fragment: String, named: String) throws {
        var json = Self.nvila8B
        json[key] = try JSONSerialization.jsonObject(with: Data(fragment.utf8), options: .fragmentsAllowed)
        #expect {
            _ = try NVILAConfig(json: json)
        } throws: { error in
            (error as? ConfigError)?.key == named
        }
    }

    @Test func projectorTypes() throws {
        #expect(try ProjectorType(configValue: "mlp_downsample").factor == 2)
        #expect(try ProjectorType(configValue: "mlp_downsample_2x2_fix").factor == 2)
        #expect(try ProjectorType(configValue: "mlp_downsample_3x3_fix").factor == 3)
        #expect(throws: ConfigError.self) { try ProjectorType(configValue: "linear") }
    }
}
