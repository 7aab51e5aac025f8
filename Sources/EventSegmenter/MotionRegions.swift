import DenseCore
import Foundation

/// A rectangle of the picture, in source pixels or as fractions (0…1) of the picture.
///
/// Kept as given, so settings read back the same; `EventSegmenter` scales it to the analysis
/// grid with the source size it is given (`normalized(source:)`).
public struct RegionRect: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Unit: String, Sendable, Equatable, Codable {
        case pixels, normalized
    }

    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    public var unit: Unit

    public init(x: Double, y: Double, width: Double, height: Double, unit: Unit) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
        self.unit = unit
    }

    /// Reads `x,y,w,h`: all four within 0…1 means fractions of the picture, else source pixels.
    /// Nil when it is not four non-negative numbers with a positive width and height.
    public init?(parsing text: String) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, let v = parts as? [Double], v.allSatisfy({ $0 >= 0 && $0.isFinite }),
            v[2] > 0, v[3] > 0
        else { return nil }
        let unit: Unit = v.allSatisfy { $0 <= 1 } ? .normalized : .pixels
        self.init(x: v[0], y: v[1], width: v[2], height: v[3], unit: unit)
    }

    /// `(x0, y0, x1, y1)` as fractions of a `width × height` source picture (pixels) or as given.
    public func normalized(sourceWidth: Int, sourceHeight: Int) -> (x0: Double, y0: Double, x1: Double, y1: Double) {
        switch unit {
        case .normalized: return (x, y, x + width, y + height)
        case .pixels:
            let w = Double(max(1, sourceWidth)), h = Double(max(1, sourceHeight))
            return (x / w, y / h, (x + width) / w, (y + height) / h)
        }
    }

    public var description: String {
        let f = { (v: Double) in v == v.rounded() ? String(Int(v)) : String(format: "%.4g", v) }
        return [x, y, width, height].map(f).joined(separator: ",")
    }
}

/// A black-and-white picture of where to look (white = watched), reduced to at most 256 columns.
///
/// It is stored whole in the settings (bits, base64 in JSON), so a job needs no file to read it
/// back, and `path` says where it came from.
public struct MotionMask: Sendable, Equatable, Codable {
    public var path: String
    public var width: Int
    public var height: Int
    /// `[height, width]` one bit per pixel, row-major, most significant bit first.
    public var bits: Data

    public static let maximumWidth = 256

    /// - Parameter image: `[height, width, 3]` RGB; a pixel is watched when its luma is at least 128.
    public init(path: String, image: RGBImage) {
        self.path = path
        let step = max(1, (image.width + Self.maximumWidth - 1) / Self.maximumWidth)
        width = max(1, image.width / step)
        height = max(1, image.height / step)
        var bytes = [UInt8](repeating: 0, count: (width * height + 7) / 8)
        for row in 0..<height {
            for col in 0..<width {
                let (r, g, b) = image[min(image.width - 1, col * step), min(image.height - 1, row * step)]
                let luma = (77 * Int(r) + 150 * Int(g) + 29 * Int(b) + 128) >> 8
                if luma >= 128 {
                    let i = row * width + col
                    bytes[i >> 3] |= 0x80 >> UInt8(i & 7)
                }
            }
        }
        bits = Data(bytes)
    }

    /// Whether the point at fractions `(nx, ny)` of the picture is watched.
    public func isWatched(nx: Double, ny: Double) -> Bool {
        let col = min(width - 1, max(0, Int(nx * Double(width))))
        let row = min(height - 1, max(0, Int(ny * Double(height))))
        let i = row * width + col
        return bits[bits.startIndex + (i >> 3)] & (0x80 >> UInt8(i & 7)) != 0
    }

    /// Fraction of the picture watched.
    public var watchedFraction: Double {
        var count = 0
        for b in bits { count += b.nonzeroBitCount }
        return Double(count) / Double(width * height)
    }
}

/// Where motion counts: inside any `include` rectangle (everywhere when there is none), on the
/// mask's white, and outside every `exclude` rectangle.
public struct MotionRegions: Sendable, Equatable, Codable {
    public var include: [RegionRect] = []
    public var exclude: [RegionRect] = []
    public var mask: MotionMask?

    public init(include: [RegionRect] = [], exclude: [RegionRect] = [], mask: MotionMask? = nil) {
        self.include = include
        self.exclude = exclude
        self.mask = mask
    }

    public var isEmpty: Bool { include.isEmpty && exclude.isEmpty && mask == nil }

    /// `[gridHeight, gridWidth]` whether each analysis cell is watched: the cell's centre decides.
    /// Pixel rectangles are scaled by the source size (its display size, the picture the user sees).
    public func watchedCells(gridWidth: Int, gridHeight: Int, sourceWidth: Int, sourceHeight: Int) -> [Bool] {
        let inc = include.map { $0.normalized(sourceWidth: sourceWidth, sourceHeight: sourceHeight) }
        let exc = exclude.map { $0.normalized(sourceWidth: sourceWidth, sourceHeight: sourceHeight) }
        func inside(_ r: (x0: Double, y0: Double, x1: Double, y1: Double), _ x: Double, _ y: Double) -> Bool {
            x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1
        }
        var cells = [Bool](repeating: true, count: gridWidth * gridHeight)
        for row in 0..<gridHeight {
            let y = (Double(row) + 0.5) / Double(gridHeight)
            for col in 0..<gridWidth {
                let x = (Double(col) + 0.5) / Double(gridWidth)
                var watched = inc.isEmpty || inc.contains { inside($0, x, y) }
                if watched, exc.contains(where: { inside($0, x, y) }) { watched = false }
                if watched, let mask, !mask.isWatched(nx: x, ny: y) { watched = false }
                cells[row * gridWidth + col] = watched
            }
        }
        return cells
    }
}

/// A burned-in overlay the motion detector found and ignores (a clock, a camera name), as a
/// fraction of the picture.
public struct OverlayBox: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// The box in pixels of a `sourceWidth × sourceHeight` picture, as `x,y,w,h`.
    public func pixels(sourceWidth: Int, sourceHeight: Int) -> String {
        let sw = Double(sourceWidth), sh = Double(sourceHeight)
        return [x * sw, y * sh, width * sw, height * sh].map { String(Int($0.rounded())) }.joined(separator: ",")
    }
}
