import DenseCore
import EventSegmenter
import Foundation
import Testing

@testable import CaptionWriters

private func t(_ num: Int64, _ den: Int64 = 1000) -> MediaTime { MediaTime(value: num, timescale: den) }

/// Two events of a 29.97 fps clip: the first captioned (with characters every format must
/// escape), the second not; times are exact rationals that are not whole milliseconds.
let sample = CaptionDocument(
    video: VideoMetadata(path: "/data/clip one.mp4", duration: t(10010, 1000), width: 1280, height: 720,
                         frameRate: Rational(30000, 1001), codec: "h264"),
    model: "Efficient-Large-Model/NVILA-Lite-2B", generator: "densecap 0.1.0 caption",
    settings: [("fps", "1"), ("width", "256")],
    events: [
        Event(start: .zero, end: t(6706, 1000) + t(1, 3000), keyframe: t(3003, 1000), confidence: 1, kind: .start,
              caption: "A man says \"hi\" & <waves>,\n\nthen --> leaves.", frameTimes: [t(1001, 1000), t(5005, 1000)]),
        Event(start: t(6706, 1000) + t(1, 3000), end: t(10010, 1000), keyframe: t(8341, 1000), confidence: 0.87654,
              kind: .cut, isStatic: true, skippable: true),
    ])

@Suite struct WriterGoldenTests {
    @Test func json() {
        let expected = """
            {
              "schema": "densecap.events/1",
              "generator": "densecap 0.1.0 caption",
              "video": {
                "path": "/data/clip one.mp4",
                "id": "clip one",
                "duration": 10.010,
                "duration_exact": "1001/100",
                "width": 1280,
                "height": 720,
                "frame_rate": "30000/1001",
                "codec": "h264"
              },
              "model": "Efficient-Large-Model/NVILA-Lite-2B",
              "settings": {
                "fps": "1",
                "width": "256"
              },
              "events": [
                {
                  "index": 0,
                  "start": 0.000,
                  "end": 6.706,
                  "start_exact": "0",
                  "end_exact": "20119/3000",
                  "keyframe": 3.003,
                  "keyframe_exact": "3003/1000",
                  "kind": "start",
                  "confidence": 1,
                  "static": false,
                  "skippable": false,
                  "caption": "A man says \\"hi\\" & <waves>,\\n\\nthen --> leaves.",
                  "frame_times": [1.001, 5.005],
                  "thumbnail": "t/0.png"
                },
                {
                  "index": 1,
                  "start": 6.706,
                  "end": 10.010,
                  "start_exact": "20119/3000",
                  "end_exact": "1001/100",
                  "keyframe": 8.341,
                  "keyframe_exact": "8341/1000",
                  "kind": "cut",
                  "confidence": 0.8765,
                  "static": true,
                  "skippable": true,
                  "caption": null,
                  "frame_times": []
                }
              ]
            }

            """
        #expect(JSONWriter.render(sample, thumbnailNames: [0: "t/0.png"]) == expected)
        // And it is JSON.
        #expect((try? JSONSerialization.jsonObject(with: Data(expected.utf8))) != nil)
    }

    @Test func csv() {
        #expect(CSVWriter.render([sample]) == """
            video,index,start,end,start_timecode,end_timecode,duration,keyframe,kind,confidence,static,skippable,caption
            clip one,0,0.000,6.706,00:00:00.000,00:00:06.706,6.706,3.003,start,1,false,false,"A man says ""hi"" & <waves>,

            then --> leaves."
            clip one,1,6.706,10.010,00:00:06.706,00:00:10.010,3.303,8.341,cut,0.8765,true,true,

            """)
    }

    @Test func srt() {
        #expect(SubtitleWriter.srt(sample) == """
            1
            00:00:00,000 --> 00:00:06,706
            A man says "hi" & <waves>,
            then -> leaves.

            2
            00:00:06,706 --> 00:00:10,010
            [cut, confidence 0.8765]


            """)
    }

    @Test func webVTT() {
        #expect(SubtitleWriter.webVTT(sample) == """
            WEBVTT

            event-1
            00:00:00.000 --> 00:00:06.706
            A man says "hi" &amp; &lt;waves&gt;,
            then -&gt; leaves.

            event-2
            00:00:06.706 --> 00:00:10.010
            [cut, confidence 0.8765]


            """)
    }

    @Test func activityNet() throws {
        let text = ActivityNetWriter.render([sample])
        #expect(text == """
            {
              "version": "VERSION 1.0",
              "results": {
                "clip one": [
                  {
                    "sentence": "A man says \\"hi\\" & <waves>,\\n\\nthen --> leaves.",
                    "timestamp": [0.000, 6.706]
                  },
                  {
                    "sentence": "",
                    "timestamp": [6.706, 10.010]
                  }
                ]
              },
              "external_data": {
                "used": true,
                "details": "captions by Efficient-Large-Model/NVILA-Lite-2B through densecap"
              }
            }

            """)
        // densevid_eval refuses a submission without all three of these keys.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["version", "results", "external_data"])
    }

    @Test func htmlIsSelfContainedAndEscaped() {
        var doc = sample
        doc.thumbnails = [0: [0x89, 0x50, 0x4E, 0x47]]
        let html = HTMLReport.render(doc)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("src=\"data:image/png;base64,iVBORw==\""))
        #expect(html.contains("A man says &quot;hi&quot; &amp; &lt;waves&gt;"))
        #expect(!html.contains("<waves>"))
        #expect(html.contains("class=\"k-cut skip\" style=\"left:66.996%;width:33.004%\""))
        // Nothing is fetched from outside the file.
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"))
    }

    @Test func atomicWriteReplacesAndReportsFailure() throws {
        let dir = NSTemporaryDirectory() + "densecap-writers-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.json"
        try writeAtomically(Data("one".utf8), to: path)
        try writeAtomically(Data("two".utf8), to: path)
        #expect(String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.json"])
        #expect(throws: WriterError.self) { try writeAtomically(Data(), to: dir + "/missing/b.json") }
    }
}

@Suite struct EvaluationTests {
    @Test func boundaryMatchingIsOneToOne() {
        // Two predictions near one true boundary: one matches, the other is a false positive.
        let s = Evaluation.scoreBoundaries(predicted: [9.8, 10.1, 20.0, 35.0], truth: [10.0, 20.4, 30.0], tolerance: 0.5)
        #expect(s.truePositives == 2 && s.falsePositives == 2 && s.falseNegatives == 1)
        #expect(abs(s.meanOffset - 0.3) < 1e-12)
        #expect(abs(s.f1 - 4.0 / 7.0) < 1e-12)
        // Greedy in order still finds the maximum matching when windows overlap.
        let t = Evaluation.scoreBoundaries(predicted: [1.4, 1.6], truth: [1.0, 1.9], tolerance: 0.5)
        #expect(t.truePositives == 2)
        #expect(Evaluation.scoreBoundaries(predicted: [], truth: [], tolerance: 0.5).f1 == 1)
    }

    /// With several ground-truth files, each video is scored against the one that fits it best
    /// (as localisation takes the best annotator), and videos only a later file names count too.
    @Test func boundariesUseEveryGroundTruth() {
        let predicted = [Evaluation.Video(id: "a", events: [], boundaries: [10, 20]),
                         Evaluation.Video(id: "b", events: [], boundaries: [5])]
        let first = [Evaluation.Video(id: "a", events: [], boundaries: [15])]
        let second = [Evaluation.Video(id: "a", events: [], boundaries: [10, 20]),
                      Evaluation.Video(id: "b", events: [], boundaries: [5])]
        let s = Evaluation.scoreBoundaries(predictions: predicted, truths: [first, second], tolerance: 0.5)
        // a: the second file matches both (the first none); b: only the second names it.
        #expect(s.truePositives == 3 && s.falsePositives == 0 && s.falseNegatives == 0)
        let firstOnly = Evaluation.scoreBoundaries(predictions: predicted, truths: [first], tolerance: 0.5)
        #expect(firstOnly.truePositives == 0 && firstOnly.falsePositives == 2 && firstOnly.falseNegatives == 1)
    }

    struct Golden: Decodable {
        struct Score: Decodable { let tiou: Double; let precision: Double; let recall: Double }
        struct IoU: Decodable { let a: [Double]; let b: [Double]; let iou: Double }
        let detection: [Score]
        let iou: [IoU]
    }

    /// densevid_eval's own evaluate_detection on a small case (tools/gen_densevid_golden.py).
    @Test func detectionMatchesDensevidEval() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/densevid_eval_golden", withExtension: "json"))
        let data = try Data(contentsOf: url)
        let golden = try JSONDecoder().decode(Golden.self, from: data)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let predictionData = try JSONSerialization.data(withJSONObject: object["prediction"]!)
        let predicted = try EvaluationInput.parse(predictionData, path: "pred.json")
        let truths = try (object["gold"] as! [Any]).map {
            try EvaluationInput.parse(try JSONSerialization.data(withJSONObject: $0), path: "gold.json")
        }
        let predMap = Dictionary(uniqueKeysWithValues: predicted.map { ($0.id, $0.events) })
        let truthMaps = truths.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.id, $0.events) }) }
        for g in golden.detection {
            let d = Evaluation.detection(predictions: predMap, truths: truthMaps, tIoU: g.tiou)
            #expect(abs(d.precision - g.precision) < 1e-12, "precision at \(g.tiou)")
            #expect(abs(d.recall - g.recall) < 1e-12, "recall at \(g.tiou)")
        }
        for g in golden.iou { #expect(Evaluation.tIoU(g.a, g.b) == g.iou) }
    }

    @Test func readsOurJSONAndCutLists() throws {
        let ours = try EvaluationInput.parse(Data(JSONWriter.render(sample).utf8), path: "x/clip one.events.json")
        #expect(ours.count == 1)
        #expect(ours[0].boundaries == [6.706])
        #expect(ours[0].events == [[0, 6.706], [6.706, 10.01]])
        let cuts = try EvaluationInput.parse(Data("# cuts\n6.7\n\n1:02.5  # a comment\n".utf8), path: "gold.txt")
        #expect(cuts[0].boundaries == [6.7, 62.5])
        #expect(cuts[0].events == [[0, 6.7], [6.7, 62.5]])
        #expect(throws: EvaluationInput.ReadError.self) { try EvaluationInput.parse(Data("abc\n".utf8), path: "bad.txt") }
    }
}
