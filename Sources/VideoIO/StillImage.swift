import DenseCore

extension VideoReader {
    /// The first picture of an image file (PNG, JPEG, BMP, …; FFmpeg's image demuxers) or of a
    /// video, as RGB at its display size: masks and other pictures a user hands in.
    public static func readImage(path: String) throws -> RGBImage {
        let reader = try VideoReader(path: path, options: DecodeOptions(threads: 1))
        guard let frame = try reader.nextFrame() else {
            throw VideoError(.undecodable, path: path, reason: "no picture in the file")
        }
        return try reader.image(from: frame)
    }
}
