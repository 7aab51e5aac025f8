#!/usr/bin/env python3
"""Golden for `densecap eval`: densevid_eval's own detection precision/recall on a small case.

Runs the reference code itself: `ANETcaptions.iou`, `get_gt_vid_ids` and `evaluate_detection`
are cut out of densevid_eval's evaluate.py (ranjaykrishna/densevid_eval@9d4045a; the file is
Python 2, but these three methods are valid Python 3 and need no packages) and executed on the
case below. Nothing else of the file runs (it imports pycocoevalcap for the caption metrics).

    git clone https://github.com/ranjaykrishna/densevid_eval /tmp/densevid_eval
    git -C /tmp/densevid_eval checkout 9d4045a
    python3 tools/gen_densevid_golden.py /tmp/densevid_eval/evaluate.py \
        > Tests/CaptionWritersTests/Fixtures/densevid_eval_golden.json

No third-party packages are needed, so no virtual environment is made.
"""
import json
import re
import sys

TIOUS = [0.3, 0.5, 0.7, 0.9]

# Three videos; two ground-truth files (densevid_eval takes the best of them per video).
# v1: exact, near-threshold and disjoint predictions; v2: one long prediction covering several
# references (many-to-many); v3: in the ground truth but not predicted (scores 0);
# v4: predicted only (ignored). Boundaries sit where tIoU lands on a threshold exactly.
PREDICTION = {
    "version": "VERSION 1.0",
    "external_data": {"used": False, "details": ""},
    "results": {
        "v1": [
            {"sentence": "a", "timestamp": [0.0, 10.0]},
            {"sentence": "b", "timestamp": [10.0, 20.0]},
            {"sentence": "c", "timestamp": [21.0, 29.0]},
            {"sentence": "d", "timestamp": [40.0, 45.0]},
            {"sentence": "e", "timestamp": [5.0, 15.0]},
        ],
        "v2": [
            {"sentence": "f", "timestamp": [0.0, 60.0]},
            {"sentence": "g", "timestamp": [12.5, 17.5]},
        ],
        "v4": [{"sentence": "h", "timestamp": [0.0, 1.0]}],
    },
}
GOLD_1 = {
    "v1": {"duration": 50.0, "timestamps": [[0.0, 10.0], [10.0, 30.0], [30.0, 50.0]], "sentences": ["x", "y", "z"]},
    "v2": {"duration": 60.0, "timestamps": [[0.0, 20.0], [10.0, 20.0], [20.0, 60.0]], "sentences": ["x", "y", "z"]},
    "v3": {"duration": 10.0, "timestamps": [[0.0, 10.0]], "sentences": ["x"]},
}
GOLD_2 = {
    "v1": {"duration": 50.0, "timestamps": [[2.0, 12.0], [40.0, 46.0]], "sentences": ["x", "y"]},
    "v2": {"duration": 60.0, "timestamps": [[0.0, 54.0]], "sentences": ["x"]},
}


def methods(source):
    """The source of the three methods, dedented to module level."""
    out = []
    for name in ("iou", "get_gt_vid_ids", "evaluate_detection"):
        m = re.search(r"^    def %s\(.*?(?=^    def |\Z)" % name, source, re.S | re.M)
        if not m:
            sys.exit("evaluate.py: method %s not found" % name)
        out.append("\n".join(line[4:] if line.startswith("    ") else line for line in m.group(0).splitlines()))
    return "\n\n".join(out)


def main():
    source = open(sys.argv[1]).read()
    namespace = {}
    exec(methods(source), namespace)
    Reference = type("Reference", (), {k: namespace[k] for k in ("iou", "get_gt_vid_ids", "evaluate_detection")})
    ref = Reference()
    ref.ground_truths = [GOLD_1, GOLD_2]
    ref.prediction = {vid: PREDICTION["results"][vid][:1000] for vid in PREDICTION["results"]}
    scores = []
    for tiou in TIOUS:
        precision, recall = ref.evaluate_detection(tiou)
        scores.append({"tiou": tiou, "precision": precision, "recall": recall})
    pairs = [[p, g] for p in ([0.0, 10.0], [5.0, 15.0], [12.5, 17.5], [40.0, 45.0]) for g in ([0.0, 10.0], [10.0, 30.0], [40.0, 46.0], [50.0, 60.0])]
    ious = [{"a": a, "b": b, "iou": ref.iou(a, b)} for a, b in pairs]
    json.dump({"reference": "ranjaykrishna/densevid_eval@9d4045a evaluate.py", "prediction": PREDICTION,
               "gold": [GOLD_1, GOLD_2], "detection": scores, "iou": ious}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
