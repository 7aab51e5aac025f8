#!/usr/bin/env python3
"""OpenCV seek-per-frame sampler: the baseline that bench/ingest.sh compares densecap against.

Usage: opencv_seek.py CLIP FPS WxH

It mirrors how NVlabs/VILA loads a video (llava/utils/media.py, `_load_video`): open a
cv2.VideoCapture, trust CAP_PROP_FRAME_COUNT only after probing that the last frame can be
grabbed, then for every sample index call `set(CAP_PROP_POS_FRAMES, i)` followed by `read()`,
and convert BGR to RGB. VILA spreads a fixed number of indices uniformly over the clip; this
script instead takes the frame nearest each t_k = k / FPS, so it samples the same instants as
`densecap frames --fps FPS`. Each frame is resized to WxH with bicubic interpolation and written
to stdout as packed RGB24 (the benchmark sends it to /dev/null). The number of frames read goes
to stderr as `opencv_seek: frames=N ...`.
"""

import sys

import cv2


def parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"size must look like 448x448, got {text!r}")
    return int(width), int(height)


def sample_indices(frame_count: int, video_fps: float, sample_fps: float) -> list[int]:
    """Index of the frame nearest each t_k = k / sample_fps with t_k < clip duration."""
    duration = frame_count / video_fps
    indices = []
    k = 0
    while k / sample_fps < duration:
        index = min(round(k / sample_fps * video_fps), frame_count - 1)
        if not indices or indices[-1] != index:
            indices.append(index)
        k += 1
    return indices


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, sample_fps, (width, height) = argv[1], float(argv[2]), parse_size(argv[3])
    if sample_fps <= 0:
        print("opencv_seek: FPS must be > 0", file=sys.stderr)
        return 2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        print(f"opencv_seek: cannot open {path}", file=sys.stderr)
        return 1
    video_fps = cap.get(cv2.CAP_PROP_FPS)
    frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    # As VILA does: the container's frame count can be wrong, so walk back until the last
    # index can actually be grabbed.
    while frame_count > 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame_count - 1)
        if cap.grab():
            break
        frame_count -= 1
    if frame_count <= 0 or video_fps <= 0:
        print(f"opencv_seek: no frames in {path}", file=sys.stderr)
        return 1

    out = sys.stdout.buffer
    indices = sample_indices(frame_count, video_fps, sample_fps)
    read = 0
    for index in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if not ok:
            print(f"opencv_seek: failed to read frame {index}", file=sys.stderr)
            continue
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
        out.write(rgb.data)
        read += 1
    out.flush()
    cap.release()
    print(
        f"opencv_seek: frames={read} requested={len(indices)} frame_count={frame_count} "
        f"fps={video_fps:g} opencv={cv2.__version__}",
        file=sys.stderr,
    )
    return 0 if read == len(indices) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
