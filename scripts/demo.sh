#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: set-up, release build, a 20-second clip
# with four scenes made by ffmpeg, then probe it and sample 1 frame per second at 448×448.
# Output goes to example-out/ (frames/index.json lists every frame's exact time).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release
bin=.build/release/densecap
out=example-out
mkdir -p "$out"
clip="$out/clip.mp4"
if [ ! -s "$clip" ]; then
    ffmpeg -nostdin -v error -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=5" \
        -f lavfi -i "smptehdbars=size=1280x720:rate=30:duration=5" \
        -f lavfi -i "mandelbrot=size=1280x720:rate=30,trim=duration=5" \
        -f lavfi -i "life=size=320x180:rate=30:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00,scale=1280:720:flags=neighbor,trim=duration=5" \
        -filter_complex "[0:v][1:v][2:v][3:v]concat=n=4:v=1[v]" -map "[v]" \
        -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p "$clip.partial.mp4"
    mv "$clip.partial.mp4" "$clip"
fi
"$bin" doctor
"$bin" probe "$clip"
"$bin" frames "$clip" --fps 1 --size 448x448 --out "$out/frames" --force
echo "frames and index: $out/frames" >&2
