#!/usr/bin/env python3
"""Pillow's side of bench/resize.sh: time Image.resize on the same source pattern and target sizes
as `densecap bench resize`, print the same JSON. Pillow runs a resize on one thread.

Usage: resize_pillow.py --from 1920x1080 --to 448x448,1344x1344 [--filter bicubic] [--seconds 1]
"""
import argparse
import json
import time

import numpy as np
import PIL
from PIL import Image

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "box": Image.Resampling.BOX, "nearest": Image.Resampling.NEAREST}


def size(text):
    w, h = (int(v) for v in text.split("x"))
    return w, h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", default="1920x1080")
    ap.add_argument("--to", default="448x448,896x896,1344x1344,1792x1344")
    ap.add_argument("--filter", default="bicubic")
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    width, height = size(args.source)
    # The pattern `densecap bench resize` makes: (x·(c+1) + y·3 + (p·7919) mod 13) mod 256.
    p = np.arange(width * height, dtype=np.int64).reshape(height, width)
    x, y = p % width, p // width
    planes = [(x * (c + 1) + y * 3 + (p * 7919) % 13) % 256 for c in range(3)]
    image = Image.fromarray(np.stack(planes, axis=-1).astype(np.uint8), "RGB")
    results = []
    for spec in args.to.split(","):
        w, h = size(spec)
        best, spent = float("inf"), 0.0
        while spent < args.seconds or best == float("inf"):
            start = time.perf_counter()
            image.resize((w, h), FILTERS[args.filter])
            t = time.perf_counter() - start
            best, spent = min(best, t), spent + t
        results.append({"to": f"{w}x{h}", "best_s": best, "output_mpixel_per_s": w * h / best / 1e6})
    print(json.dumps({"pillow": PIL.__version__, "threads": 1, "from": args.source, "filter": args.filter,
                      "sizes": results}, indent=2))


if __name__ == "__main__":
    main()
