import DenseCore

// Tile planning of NVlabs/VILA@b760c34 llava/mm_utils.py: `dynamic_s2_preprocess` (NVILA,
// NVILA-15B) and `dynamic_preprocess` (NVILA-Lite, InternVL style), with their shared
// `find_closest_aspect_ratio`. Pure functions of the image size; the tiles themselves are cut by
// `dynamicS2Tiles` / `dynamicTiles` from Pillow-exact resizes.

/// A grid of tiles: `rows` along the height, `cols` along the width (VILA's `block_size` is
/// `(rows, cols)`; its aspect-ratio tuples are `(cols, rows)`).
public struct TileGrid: Sendable, Equatable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int

    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
    }

    public var count: Int { rows * cols }
    public var description: String { "\(cols)×\(rows)" }
}

/// A tile's rectangle in the resized image it is cut from.
public struct TileRect: Sendable, Equatable {
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int
}

/// One scale of a Dynamic-S2 plan: the whole image squashed to `width × height`, cut into
/// `grid` tiles of `tileSize²`, row-major.
public struct ScaleLevel: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let grid: TileGrid
    public let tileSize: Int

    /// Tile `i` at `((i mod cols)·size, (i div cols)·size)`.
    public var tiles: [TileRect] {
        (0..<grid.count).map {
            TileRect(x: ($0 % grid.cols) * tileSize, y: ($0 / grid.cols) * tileSize, width: tileSize, height: tileSize)
        }
    }
}

/// NVILA's Dynamic-S2 tiling of one image (spec §2.3): every scale but the last squashes the image
/// to a k×k square of tiles (k = scale / scales[0]); the last picks a `grid` close to the image's
/// aspect ratio. Tower input order: the scales in order, each row-major.
public struct DynamicS2Plan: Sendable, Equatable {
    /// Ascending, e.g. `[448, 896, 1344]`.
    public let scales: [Int]
    /// The last scale's grid (VILA's `block_size` = `(grid.rows, grid.cols)`).
    public let grid: TileGrid
    /// One per scale, in tower order.
    public let levels: [ScaleLevel]

    /// The tile edge (`scales[0]`: the tower's input size).
    public var tileSize: Int { scales[0] }
    /// Tower passes: 1 + 4 + rows·cols for the default scales.
    public var tileCount: Int { levels.reduce(0) { $0 + $1.grid.count } }
}

/// Plans Dynamic-S2 tiles for a `width × height` image (`dynamic_s2_preprocess`).
///
/// Candidate grids are all (cols, rows) with (last/first)² ≤ cols·rows ≤ `maxTiles`, in the
/// reference's order (see `aspectRatioCandidates`); the winner is the closest aspect ratio, ties
/// going to the later candidate when the image area exceeds half the candidate's pixel area.
/// - Precondition: positive sizes; `scales` ascending, non-empty. (Checkpoint values; the engine
///   validates its config when loading.)
public func dynamicS2Plan(width: Int, height: Int, scales: [Int] = [448, 896, 1344], maxTiles: Int = 12) -> DynamicS2Plan {
    precondition(width > 0 && height > 0, "dynamicS2Plan: image \(width)×\(height)")
    precondition(!scales.isEmpty && scales[0] > 0 && scales == scales.sorted(), "dynamicS2Plan: scales \(scales)")
    let size = scales[0]
    var levels = scales.dropLast().map { scale -> ScaleLevel in
        let k = scale / size
        return ScaleLevel(width: size * k, height: size * k, grid: TileGrid(rows: k, cols: k), tileSize: size)
    }
    let minTiles = (scales.last! / size) * (scales.last! / size)
    let grid = closestGrid(
        width: width, height: height, candidates: aspectRatioCandidates(minTiles: minTiles, maxTiles: maxTiles),
        tileSize: size)
    levels.append(ScaleLevel(width: size * grid.cols, height: size * grid.rows, grid: grid, tileSize: size))
    return DynamicS2Plan(scales: scales, grid: grid, levels: levels)
}

/// The tower's input tiles, `tileSize²` each: every level's resize (Pillow bicubic), cut row-major,
/// levels in order — `[scale-448 tile, 4 scale-896 tiles, rows·cols last-scale tiles]` by default.
public func dynamicS2Tiles(_ image: RGBImage, plan: DynamicS2Plan) -> [RGBImage] {
    plan.levels.flatMap { level -> [RGBImage] in
        let resized = pillowResize(image, width: level.width, height: level.height)
        return level.tiles.map { crop(resized, x: $0.x, y: $0.y, width: $0.width, height: $0.height) }
    }
}

/// NVILA-Lite's tiling of one image (`dynamic_preprocess`, spec §2.5): `grid` tiles cut row-major
/// from the image resized to `(cols·size) × (rows·size)`, plus, when there is more than one, a
/// thumbnail (the whole image squashed to `size²`) last.
public struct DynamicTilePlan: Sendable, Equatable {
    public let grid: TileGrid
    public let thumbnail: Bool
    /// The tile edge (`imageSize`).
    public let tileSize: Int

    /// Tiles fed to the tower (grid plus thumbnail).
    public var tileCount: Int { grid.count + (thumbnail ? 1 : 0) }
}

/// Plans NVILA-Lite tiles (`dynamic_preprocess` with `use_thumbnail=True`): candidates are all
/// (cols, rows) with `minTiles` ≤ cols·rows ≤ `maxTiles`, chosen as in `dynamicS2Plan`.
/// - Precondition: positive sizes, 1 ≤ `minTiles` ≤ `maxTiles` (checkpoint values).
public func dynamicTilePlan(width: Int, height: Int, minTiles: Int = 1, maxTiles: Int = 12, imageSize: Int = 448)
    -> DynamicTilePlan
{
    precondition(width > 0 && height > 0 && imageSize > 0, "dynamicTilePlan: image \(width)×\(height), tile \(imageSize)")
    precondition(minTiles >= 1 && minTiles <= maxTiles, "dynamicTilePlan: tiles \(minTiles)…\(maxTiles)")
    let grid = closestGrid(
        width: width, height: height, candidates: aspectRatioCandidates(minTiles: minTiles, maxTiles: maxTiles),
        tileSize: imageSize)
    return DynamicTilePlan(grid: grid, thumbnail: grid.count != 1, tileSize: imageSize)
}

/// The tiles of `plan`, each `imageSize²`: row-major, then the thumbnail when there is one.
/// - Precondition: `imageSize == plan.tileSize` (kept as a parameter for call sites that name it).
public func dynamicTiles(_ image: RGBImage, plan: DynamicTilePlan, imageSize: Int = 448) -> [RGBImage] {
    precondition(imageSize == plan.tileSize, "dynamicTiles: imageSize \(imageSize) but the plan has \(plan.tileSize)")
    let size = plan.tileSize
    let resized = pillowResize(image, width: size * plan.grid.cols, height: size * plan.grid.rows)
    var tiles = (0..<plan.grid.count).map {
        crop(resized, x: ($0 % plan.grid.cols) * size, y: ($0 / plan.grid.cols) * size, width: size, height: size)
    }
    if plan.thumbnail { tiles.append(pillowResize(image, width: size, height: size)) }
    return tiles
}

// MARK: - Aspect-ratio search (find_closest_aspect_ratio)

/// `find_closest_aspect_ratio`: walk `candidates` (cols, rows); a strictly closer ratio wins; an
/// equally close one wins only when the image area exceeds half the candidate's pixel area.
/// Ratios are compared in Double exactly as Python computes them.
func closestGrid(width: Int, height: Int, candidates: [TileGrid], tileSize: Int) -> TileGrid {
    let aspect = Double(width) / Double(height)
    let area = Double(width * height)
    var bestDifference = Double.infinity
    var best = TileGrid(rows: 1, cols: 1)
    for c in candidates {
        let difference = abs(aspect - Double(c.cols) / Double(c.rows))
        if difference < bestDifference {
            bestDifference = difference
            best = c
        } else if difference == bestDifference && area > 0.5 * Double(tileSize) * Double(tileSize) * Double(c.count) {
            best = c
        }
    }
    return best
}

/// The reference's candidate list: the set `{(i, j) : n in min…max, i, j in 1…n, min ≤ i·j ≤ max}`
/// sorted by i·j with Python's stable sort. Within one product the order is the iteration order
/// of the CPython `set` — which decides ties (a 1280×1024 image sits exactly between 1:2 and 2:1) —
/// so the set is rebuilt here the way CPython 3.8+ (64-bit) builds it: same tuple hash, same open
/// addressing, same growth. Checked against CPython for every (min, max) with max ≤ 32, and by the
/// reference's grid choices in configurations where the order decides ties.
public func aspectRatioCandidates(minTiles: Int, maxTiles: Int) -> [TileGrid] {
    var set = PythonTupleSet()
    if minTiles <= maxTiles {
        for n in minTiles...maxTiles {
            for i in 1...n {
                for j in 1...n where i * j <= maxTiles && i * j >= minTiles {
                    set.insert((i, j))
                }
            }
        }
    }
    let ordered = set.elements.enumerated().sorted {
        ($0.element.0 * $0.element.1, $0.offset) < ($1.element.0 * $1.element.1, $1.offset)
    }
    return ordered.map { TileGrid(rows: $0.element.1, cols: $0.element.0) }
}

/// CPython's `set` of 2-tuples of small non-negative ints, reduced to what decides iteration
/// order (Objects/setobject.c `set_add_entry`, `set_table_resize`, `set_insert_clean`;
/// Objects/tupleobject.c `tuplehash`). Insert-only, so there are never dummy slots.
struct PythonTupleSet {
    private var table: [(Int, Int)?] = Array(repeating: nil, count: 8)
    private var used = 0

    /// Table order, which is Python's iteration order.
    var elements: [(Int, Int)] { table.compactMap { $0 } }

    /// `tuplehash` (xxHash-based, Python ≥ 3.8) of `(a, b)`; `hash(n) == n` for small ints.
    static func hash(_ key: (Int, Int)) -> UInt64 {
        let prime1: UInt64 = 11_400_714_785_074_694_791
        let prime2: UInt64 = 14_029_467_366_897_019_727
        let prime5: UInt64 = 2_870_177_450_012_600_261
        var acc = prime5
        for lane in [UInt64(key.0), UInt64(key.1)] {
            acc = acc &+ lane &* prime2
            acc = (acc << 31) | (acc >> 33)
            acc = acc &* prime1
        }
        acc = acc &+ (2 ^ (prime5 ^ 3_527_539))
        return acc == UInt64.max ? 1_546_275_796 : acc
    }

    mutating func insert(_ key: (Int, Int)) {
        guard Self.place(key, in: &table) else { return }
        used += 1
        let mask = table.count - 1
        // set_add_entry: grow when fill·5 ≥ mask·3, to the smallest power of two above used·4.
        if used * 5 >= mask * 3 {
            var size = 8
            while size <= used * 4 { size <<= 1 }
            let old = table
            table = Array(repeating: nil, count: size)
            for case let entry? in old { _ = Self.place(entry, in: &table) }
        }
    }

    /// Probes like CPython: up to 9 linear steps from slot i (when they fit before the end), then
    /// `i = 5i + 1 + perturb` with `perturb` shifted right by 5 each round. False if present.
    private static func place(_ key: (Int, Int), in table: inout [(Int, Int)?]) -> Bool {
        let hash = hash(key)
        let mask = UInt64(table.count - 1)
        var perturb = hash
        var i = hash & mask
        while true {
            let linear: UInt64 = i + 9 <= mask ? 9 : 0
            for j in 0...linear {
                guard let entry = table[Int(i + j)] else {
                    table[Int(i + j)] = key
                    return true
                }
                if entry == key { return false }
            }
            perturb >>= 5
            i = (i &* 5 &+ 1 &+ perturb) & mask
        }
    }
}
