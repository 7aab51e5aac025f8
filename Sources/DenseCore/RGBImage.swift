/// A packed 8-bit RGB image: `height` rows of `width × 3` bytes, no row padding.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `[height, width, 3]`, row-major.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3,
            "RGBImage \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The RGB triple at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// The image turned clockwise by `quarterTurns` × 90° (any integer; taken modulo 4).
    public func rotated(clockwiseQuarterTurns quarterTurns: Int) -> RGBImage {
        let turns = ((quarterTurns % 4) + 4) % 4
        if turns == 0 { return self }
        let (w, h) = turns == 2 ? (width, height) : (height, width)
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    for x in 0..<width {
                        // Destination coordinates of source pixel (x, y).
                        let (dx, dy): (Int, Int)
                        switch turns {
                        case 1: (dx, dy) = (height - 1 - y, x)
                        case 2: (dx, dy) = (width - 1 - x, height - 1 - y)
                        default: (dx, dy) = (y, width - 1 - x)
                        }
                        let s = (y * width + x) * 3
                        let d = (dy * w + dx) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// The image mirrored left to right.
    public func mirroredHorizontally() -> RGBImage {
        var out = pixels
        for y in 0..<height {
            for x in 0..<width {
                let s = (y * width + x) * 3
                let d = (y * width + (width - 1 - x)) * 3
                out[d] = pixels[s]
                out[d + 1] = pixels[s + 1]
                out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
