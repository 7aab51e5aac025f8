import CCairo
import Foundation

/// The references' heatmap (seaborn over a pivot table, figure 17.5 × 8 in at 100 dpi): depth
/// rows × frame-count columns, scores 0–1 through the colormap #F0496E → #EBB839 → #9ad5b3, white
/// cell lines 1.5 wide, x "Num. of Frames" with "1.2K"-style ticks at 45°, y "Depth Percent",
/// a colour bar labelled "Score". Drawn with Cairo; text through its font API (DejaVu Sans via
/// fontconfig).
enum Heatmap {
    static let width = 1750
    static let height = 800

    /// `LinearSegmentedColormap.from_list` with matplotlib's 256-entry lookup: `lut[min(int(v·256), 255)]`.
    static func color(_ value: Double) -> (r: Double, g: Double, b: Double) {
        let stops: [(Double, Double, Double)] = [(0xF0, 0x49, 0x6E), (0xEB, 0xB8, 0x39), (0x9A, 0xD5, 0xB3)]
        let v = min(max(value, 0), 1)
        let index = min(Int(v * 256), 255)
        let x = Double(index) / 255 * 2  // position along the two segments
        let i = min(Int(x), 1), f = x - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        return ((a.0 + (b.0 - a.0) * f) / 255, (a.1 + (b.1 - a.1) * f) / 255, (a.2 + (b.2 - a.2) * f) / 255)
    }

    /// The x tick label: `f'{x/1000:.1f}K'` from 1000, else the number.
    static func frameLabel(_ frames: Int) -> String {
        frames >= 1000 ? String(format: "%.1fK", Double(frames) / 1000) : "\(frames)"
    }

    static func depthLabel(_ depth: Double) -> String { NIAHOutputs.pythonFloat(depth) }

    /// Draws the grid into a PNG at `path` (written through a temporary file and a rename).
    static func writePNG(_ grid: HeatmapGrid, to path: String) throws {
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height)) else {
            throw NIAHError(.output, path, "cairo could not create an image surface")
        }
        defer { cairo_surface_destroy(surface) }
        guard let cr = cairo_create(surface) else { throw NIAHError(.output, path, "cairo could not create a context") }
        defer { cairo_destroy(cr) }
        draw(grid, cr)
        cairo_surface_flush(surface)
        let temp = (path as NSString).deletingLastPathComponent + "/.\((path as NSString).lastPathComponent).\(getpid()).partial"
        let status = cairo_surface_write_to_png(surface, temp)
        guard status == CAIRO_STATUS_SUCCESS else {
            try? FileManager.default.removeItem(atPath: temp)
            throw NIAHError(.output, path, "cannot write the PNG: \(String(cString: cairo_status_to_string(status)))")
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temp)
            throw NIAHError(.output, path, "cannot write: \(reason)")
        }
    }

    static let fontSize = 14.0 * 100 / 72  // 14 pt at 100 dpi

    private static func draw(_ grid: HeatmapGrid, _ cr: OpaquePointer) {
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, fontSize)

        // Plot area: room for the y label and ticks on the left, rotated x ticks and the label
        // below, the colour bar and its label on the right.
        let (left, top, right, bottom) = (130.0, 20.0, Double(width) - 190, Double(height) - 120)
        let rows = max(grid.depths.count, 1), columns = max(grid.frames.count, 1)
        let cw = (right - left) / Double(columns), ch = (bottom - top) / Double(rows)
        for (r, row) in grid.scores.enumerated() {
            for (c, score) in row.enumerated() {
                guard let score else { continue }  // seaborn leaves missing cells blank
                let (red, green, blue) = color(score)
                cairo_set_source_rgb(cr, red, green, blue)
                cairo_rectangle(cr, left + Double(c) * cw, top + Double(r) * ch, cw, ch)
                cairo_fill(cr)
            }
        }
        // White cell lines, 1.5 wide.
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_set_line_width(cr, 1.5)
        for c in 0...columns {
            cairo_move_to(cr, left + Double(c) * cw, top)
            cairo_line_to(cr, left + Double(c) * cw, bottom)
        }
        for r in 0...rows {
            cairo_move_to(cr, left, top + Double(r) * ch)
            cairo_line_to(cr, right, top + Double(r) * ch)
        }
        cairo_stroke(cr)

        cairo_set_source_rgb(cr, 0, 0, 0)
        for (r, depth) in grid.depths.enumerated() {
            text(cr, depthLabel(depth), x: left - 8, y: top + (Double(r) + 0.5) * ch, alignX: 1, alignY: 0.5)
        }
        for (c, frames) in grid.frames.enumerated() {
            // Rotated 45°, anchored at its right end under the column's centre (matplotlib's ha="center" of the rotated box).
            text(cr, frameLabel(frames), x: left + (Double(c) + 0.5) * cw, y: bottom + 10, alignX: 0.5, alignY: 0, angle: -Double.pi / 4)
        }
        text(cr, "Num. of Frames", x: (left + right) / 2, y: Double(height) - 18, alignX: 0.5, alignY: 1)
        text(cr, "Depth Percent", x: 30, y: (top + bottom) / 2, alignX: 0.5, alignY: 0.5, angle: -Double.pi / 2)

        // Colour bar: 0 at the bottom, 1 at the top, ticks every 0.2.
        let (barLeft, barWidth) = (right + 40, 35.0)
        let steps = 256
        for i in 0..<steps {
            let v = (Double(i) + 0.5) / Double(steps)
            let (red, green, blue) = color(v)
            cairo_set_source_rgb(cr, red, green, blue)
            let y0 = bottom - (bottom - top) * Double(i + 1) / Double(steps)
            cairo_rectangle(cr, barLeft, y0, barWidth, (bottom - top) / Double(steps) + 0.5)
            cairo_fill(cr)
        }
        cairo_set_source_rgb(cr, 0, 0, 0)
        cairo_set_line_width(cr, 1)
        for k in 0...5 {
            let v = Double(k) / 5
            let y = bottom - (bottom - top) * v
            cairo_move_to(cr, barLeft + barWidth, y)
            cairo_line_to(cr, barLeft + barWidth + 5, y)
            cairo_stroke(cr)
            text(cr, String(format: "%.1f", v), x: barLeft + barWidth + 9, y: y, alignX: 0, alignY: 0.5)
        }
        text(cr, "Score", x: barLeft + barWidth + 75, y: (top + bottom) / 2, alignX: 0.5, alignY: 0.5, angle: -Double.pi / 2)
    }

    /// Text whose box is placed so that (x, y) sits at fractions (alignX, alignY) of it, rotated
    /// about that point.
    private static func text(_ cr: OpaquePointer, _ s: String, x: Double, y: Double, alignX: Double, alignY: Double, angle: Double = 0) {
        var extents = cairo_text_extents_t()
        cairo_text_extents(cr, s, &extents)
        cairo_save(cr)
        cairo_translate(cr, x, y)
        cairo_rotate(cr, angle)
        cairo_move_to(cr, -extents.x_bearing - extents.width * alignX, -extents.y_bearing - extents.height * alignY)
        cairo_show_text(cr, s)
        cairo_restore(cr)
    }

    /// The same heatmap as a self-contained HTML page (no scripts, no external resources).
    static func html(_ grid: HeatmapGrid) -> String {
        func hex(_ v: Double) -> String {
            let (r, g, b) = color(v)
            return String(format: "#%02x%02x%02x", Int((r * 255).rounded()), Int((g * 255).rounded()), Int((b * 255).rounded()))
        }
        var rows = ""
        for (r, depth) in grid.depths.enumerated() {
            rows += "<tr><th scope=\"row\">\(depthLabel(depth))</th>"
            for score in grid.scores[r] {
                if let score {
                    rows += "<td style=\"background:\(hex(score))\" title=\"\(NIAHOutputs.pythonFloat(score))\">\(String(format: "%.2f", score))</td>"
                } else {
                    rows += "<td class=\"missing\" title=\"not computed\"></td>"
                }
            }
            rows += "</tr>\n"
        }
        let header = grid.frames.map { "<th scope=\"col\">\(frameLabel($0))</th>" }.joined()
        let gradient = (0...10).map { hex(Double($0) / 10) }.joined(separator: ",")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Needle in a haystack</title>
            <style>
            body{font-family:"DejaVu Sans",sans-serif;margin:2em}
            .wrap{display:flex;align-items:stretch;gap:2em}
            table{border-collapse:collapse}
            td{width:3.2em;height:2em;border:1.5px solid #fff;text-align:center;font-size:.8em;color:#222}
            td.missing{background:#fff}
            th{font-weight:normal;padding:0 .5em}
            .bar{display:flex;align-items:center;gap:.5em}
            .bar div{width:1.5em;height:100%;min-height:10em;background:linear-gradient(to top,\(gradient))}
            .label{writing-mode:vertical-rl;transform:rotate(180deg)}
            </style></head><body>
            <div class="wrap"><span class="label">Depth Percent</span>
            <table><tbody>
            \(rows)<tr><th></th>\(header)</tr>
            <tr><th></th><th colspan="\(grid.frames.count)">Num. of Frames</th></tr>
            </tbody></table>
            <div class="bar"><div></div><span>1.0<br><br><br><br>0.0</span><span class="label">Score</span></div></div>
            </body></html>

            """
    }
}
