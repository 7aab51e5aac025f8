import Engine
import ModelAPI

/// The one model a server answers with, and how its requests' videos are prepared.
public struct ServedModel: Sendable {
    public var model: any VisionLanguageModel
    /// The id clients name in `model` and `/v1/models` lists.
    public var name: String
    /// Frames sampled from a video file are squashed to this square as they are decoded (the
    /// model would squash them to its tile anyway; this keeps a long video's frames small). nil:
    /// frames stay as decoded.
    public var videoTile: Int?
    /// Tiles per video frame (the checkpoint's `video_max_tiles`), as `ask` uses.
    public var videoDetail: Int?

    public init(model: any VisionLanguageModel, name: String, videoTile: Int? = nil, videoDetail: Int? = nil) {
        self.model = model
        self.name = name
        self.videoTile = videoTile
        self.videoDetail = videoDetail
    }

    /// The native engine with the choices `densecap ask` makes for its checkpoint: frames squashed
    /// to the tower's tile unless the checkpoint tiles or pads video frames.
    public static func native(_ native: NativeVisionModel, name: String) -> ServedModel {
        let tiles = native.model.config.videoMaxTiles
        return ServedModel(model: native, name: name, videoTile: native.model.config.videoFrameSquash(tiles: tiles, tileSize: native.model.tileSize),
                           videoDetail: tiles)
    }
}
