#!/usr/bin/env python3
"""PySceneDetect on one video, for bench/segment.sh: prints JSON with the cut times in seconds,
the frames it processed and the seconds detection took (opening the video included, the Python
start-up and imports not).

    scenedetect_run.py VIDEO {content,adaptive} DOWNSCALE
"""
import json
import sys
import time

from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video


def main():
    path, name, downscale = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start = time.perf_counter()
    video = open_video(path, backend="opencv")
    manager = SceneManager()
    manager.auto_downscale = False
    manager.downscale = downscale
    manager.add_detector(ContentDetector() if name == "content" else AdaptiveDetector())
    frames = manager.detect_scenes(video, show_progress=False)
    scenes = manager.get_scene_list(start_in_scene=True)
    seconds = time.perf_counter() - start
    cuts = [s.seconds for s, _ in scenes[1:]]
    json.dump({"cuts": cuts, "frames": frames, "seconds": seconds}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
