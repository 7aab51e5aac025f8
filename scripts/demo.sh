#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: set-up, release build, a 20-second clip
# with four scenes made by ffmpeg, then dense captions of it with a published NVILA model
# (Efficient-Large-Model/NVILA-Lite-2B, about 4 GB, pulled into the Hugging Face cache on the first
# run; DENSECAP_MODEL=ORG/NAME or a folder picks another).
# Output goes to example-out/: clip.events.json, .srt, .vtt, .activitynet.json and the HTML report.
#
# On a machine that cannot reach the Hub the pipeline still runs, with the tiny random-weight test
# checkpoint (Tests/EngineTests/Fixtures/tiny-nvila-lite): the events and times are real, the
# captions are noise. DENSECAP_DEMO_OFFLINE=1 goes straight to that.
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

model=${DENSECAP_MODEL:-Efficient-Large-Model/NVILA-Lite-2B}
if [ "${DENSECAP_DEMO_OFFLINE:-0}" != 1 ] && [ ! -d "$model" ]; then
    status=0
    "$bin" models pull "$model" >/dev/null || status=$?
    if [ "$status" -ne 0 ]; then
        # 75: the Hub could not be reached; anything else (bad id, gated model, disk) is an error.
        [ "$status" -eq 75 ] || exit "$status"
        echo "demo: the Hub is out of reach; captioning with the tiny random test checkpoint instead (captions are noise)" >&2
        DENSECAP_DEMO_OFFLINE=1
    fi
fi
if [ "${DENSECAP_DEMO_OFFLINE:-0}" = 1 ]; then
    model=Tests/EngineTests/Fixtures/tiny-nvila-lite
fi
"$bin" caption --model "$model" "$clip" --out "$out" --force
echo "captions: $out/clip.events.json, $out/clip.srt, $out/clip.html" >&2
