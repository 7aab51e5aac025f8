import DenseCore

@testable import EventSegmenter

/// Synthetic frames built in the tests: solid colours, textured scenes, moving squares, fades,
/// flashes, noise and brightness ramps. 64×36 like a heavily downscaled 16:9 video.
enum Synth {
    static let width = 64, height = 36

    static func solid(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> RGBImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            px[3 * i] = r
            px[3 * i + 1] = g
            px[3 * i + 2] = b
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// 8×8-pixel blocks of random colours: a scene with shape, different per seed.
    static func scene(_ seed: UInt64) -> RGBImage {
        var rng = SplitMix64(seed: seed)
        var colours: [[UInt8]] = []
        for _ in 0..<((width / 8) * (height / 8 + 1)) {
            colours.append((0..<3).map { _ in UInt8(40 + rng.next() % 180) })
        }
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let c = colours[(y / 8) * (width / 8) + x / 8]
                for k in 0..<3 { px[3 * (y * width + x) + k] = c[k] }
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// `a` scaled by `gain` (a lighting change, or a fade with gain → 0).
    static func scaled(_ a: RGBImage, _ gain: Double) -> RGBImage {
        RGBImage(width: a.width, height: a.height, pixels: a.pixels.map { UInt8(min(255, (Double($0) * gain).rounded())) })
    }

    /// (1 − α)·a + α·b.
    static func blend(_ a: RGBImage, _ b: RGBImage, _ alpha: Double) -> RGBImage {
        RGBImage(width: a.width, height: a.height,
                 pixels: zip(a.pixels, b.pixels).map { UInt8(((1 - alpha) * Double($0) + alpha * Double($1)).rounded()) })
    }

    /// `background` with a `size`×`size` square of `colour` at (x, y).
    static func square(on background: RGBImage, x: Int, y: Int, size: Int, colour: (UInt8, UInt8, UInt8)) -> RGBImage {
        var px = background.pixels
        for yy in max(0, y)..<min(height, y + size) {
            for xx in max(0, x)..<min(width, x + size) {
                let i = 3 * (yy * width + xx)
                px[i] = colour.0
                px[i + 1] = colour.1
                px[i + 2] = colour.2
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// `a` plus uniform noise in ±amplitude.
    static func noisy(_ a: RGBImage, amplitude: Int, rng: inout SplitMix64) -> RGBImage {
        RGBImage(width: a.width, height: a.height, pixels: a.pixels.map {
            UInt8(clamping: Int($0) + Int(rng.next() % UInt64(2 * amplitude + 1)) - amplitude)
        })
    }

    /// Frame i of a sequence at `fps` frames per second.
    static func time(_ i: Int, fps: Int = 4) -> MediaTime { MediaTime(value: Int64(i), timescale: Int64(fps)) }

    static func analyzed(_ images: [RGBImage], fps: Int = 4) -> [AnalyzedFrame] {
        images.enumerated().map { AnalyzedFrame(index: $0, time: time($0, fps: fps), image: $1) }
    }

    /// Every boundary a detector reports over a sequence, in order.
    static func run(_ detector: FrameDetector, _ images: [RGBImage], fps: Int = 4) -> [Boundary] {
        var out: [Boundary] = []
        for f in analyzed(images, fps: fps) { out += detector.process(f) }
        return out + detector.finish()
    }

    /// Events of the default segmenter over a sequence.
    static func segment(_ images: [RGBImage], fps: Int = 4, configure: (inout SegmenterConfiguration) -> Void = { _ in })
        throws -> [Event]
    {
        var c = SegmenterConfiguration()
        c.frameRate = Double(fps)
        configure(&c)
        let s = EventSegmenter(configuration: c)
        for (i, image) in images.enumerated() { try s.process(image, at: time(i, fps: fps)) }
        return try s.events()
    }
}

extension RGBImage {
    /// This image `count` times: a still stretch.
    func times(_ count: Int) -> [RGBImage] { [RGBImage](repeating: self, count: count) }
}
