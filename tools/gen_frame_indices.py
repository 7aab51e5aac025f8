#!/usr/bin/env python3
"""Golden frame indices for `--frames N` from the reference rule.

NVlabs/VILA@b760c34 llava/utils/media.py (and llava/remote_code/media.py) pick video frames with
`np.round(np.linspace(0, frame_count - 1, num_frames)).astype(int)`. This script evaluates exactly
that expression with numpy for a grid of (frame_count, num_frames) and writes
Tests/FrameSamplerTests/Fixtures/frame_indices.json, which FrameSamplerTests compare against.

Usage: python3 tools/gen_frame_indices.py   (creates a throwaway venv with numpy if numpy is missing)
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "FrameSamplerTests", "Fixtures", "frame_indices.json")

try:
    import numpy as np
except ImportError:  # re-run inside a throwaway venv that has numpy
    venv = os.path.join("/tmp", "densecap-numpy-venv")
    if not os.path.exists(venv):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([os.path.join(venv, "bin", "pip"), "install", "-q", "numpy"])
    os.execv(os.path.join(venv, "bin", "python"), [os.path.join(venv, "bin", "python"), __file__])

cases = []
counts = list(range(1, 41)) + [59, 60, 61, 97, 100, 101, 240, 250, 628, 720, 1001, 18000, 216000]
samples = list(range(1, 17)) + [24, 32, 33, 64, 100, 128, 256]
for n in counts:
    for k in samples:
        idx = np.round(np.linspace(0, n - 1, k)).astype(int).tolist()
        cases.append({"frame_count": n, "samples": k, "indices": idx})
with open(OUT, "w") as f:
    json.dump({"reference": "np.round(np.linspace(0, n - 1, k)).astype(int)", "numpy": np.__version__, "cases": cases}, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {OUT}")
