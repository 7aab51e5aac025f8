import DenseCore
import Foundation
import TestClips
import Testing
import VideoIO

/// `decodeImage` (bytes in memory, one decoder, no demuxer) gives the pixels `readImage` gives for
/// the same file, and refuses what is not a picture of the type it was told.
@Suite struct EncodedImageTests {
    static let folder: String = {
        let path = NSTemporaryDirectory() + "densecap-encoded-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// A 97×61 testsrc2 picture with square pixels (odd sizes exercise chroma subsampling) in the given format.
    static func picture(_ name: String, _ options: [String] = []) throws -> String {
        let path = folder + "/" + name
        if !FileManager.default.fileExists(atPath: path) {
            try run("ffmpeg", ["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=96x60", "-vf", "scale=97:61,setsar=1", "-frames:v", "1"]
                    + options + [path])
        }
        return path
    }

    @Test(arguments: [("p.png", ImageEncoding.png, [String]()), ("p.jpg", .jpeg, ["-q:v", "4"]),
                      ("p.webp", .webp, ["-c:v", "libwebp", "-quality", "80"]), ("p444.jpg", .jpeg, ["-pix_fmt", "yuvj444p"])])
    func pixelsEqualTheFileDecode(name: String, encoding: ImageEncoding, options: [String]) throws {
        let path = try Self.picture(name, options)
        let fromFile = try VideoReader.readImage(path: path)
        let fromMemory = try VideoReader.decodeImage(try Data(contentsOf: URL(fileURLWithPath: path)), encoding: encoding, name: name)
        #expect(fromMemory.width == 97 && fromMemory.height == 61)
        #expect(fromMemory == fromFile)
    }

    @Test func refusesWhatIsNotThatPicture() throws {
        let png = try Data(contentsOf: URL(fileURLWithPath: try Self.picture("p.png")))
        for (bytes, encoding) in [(Data(), ImageEncoding.png), (Data("hello".utf8), .png), (png, .jpeg), (png.prefix(100), .png),
                                  (Data(repeating: 0xFF, count: 64), .webp)] {
            #expect(throws: VideoError.self) { try VideoReader.decodeImage(bytes, encoding: encoding, name: "upload") }
        }
        // Too many pixels: refused by the decoder before it allocates the picture.
        #expect(throws: VideoError.self) { try VideoReader.decodeImage(png, encoding: .png, name: "upload", maxPixels: 97 * 30) }
        #expect(try VideoReader.decodeImage(png, encoding: .png, name: "upload", maxPixels: 97 * 61 * 2).width == 97)
        #expect(ImageEncoding(mediaSubtype: "JPG") == .jpeg)
        #expect(ImageEncoding(mediaSubtype: "gif") == nil)
        // Signatures: what the bytes hold, whatever a label says.
        #expect(ImageEncoding(sniffing: png) == .png)
        #expect(ImageEncoding(sniffing: Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10])) == .jpeg)
        #expect(ImageEncoding(sniffing: Data("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8)) == .webp)
        #expect(ImageEncoding(sniffing: Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8)) == nil)
        #expect(ImageEncoding(sniffing: Data("hello".utf8)) == nil && ImageEncoding(sniffing: Data()) == nil)
    }
}
