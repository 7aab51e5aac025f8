#!/usr/bin/env bash
# Renders densecap's HTML report in headless Chromium and saves a screenshot, to look at.
#
#   tools/check_html_report.sh [VIDEO] [OUT_DIR]
#
# Without VIDEO it makes a 12 s clip with the ffmpeg CLI (three scenes: a hard cut, a fade through
# black), runs `densecap segment --thumbnails --formats json,html` on it and screenshots the report
# to OUT_DIR/report.png (default /tmp/densecap-html-check). Installs Debian's `chromium` if missing.
# Fails when the report is missing, references anything outside itself, or Chromium draws nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >/dev/null
video=${1:-}
out=${2:-/tmp/densecap-html-check}
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "check_html_report: installing chromium" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
fi

swift build --product densecap -j 2 >&2
bin=$(swift build --show-bin-path)/densecap

if [ -z "$video" ]; then
    video="$out/scenes.mp4"
    ffmpeg -v error -y \
        -f lavfi -i "testsrc2=s=320x180:r=25:d=4" \
        -f lavfi -i "mandelbrot=s=320x180:r=25,trim=duration=4" \
        -f lavfi -i "smptebars=s=320x180:r=25:d=4" \
        -filter_complex "[0]setpts=PTS-STARTPTS[a];[1]setpts=PTS-STARTPTS,fade=out:st=3:d=1[b];[2]setpts=PTS-STARTPTS,fade=in:st=0:d=1[c];[a][b][c]concat=n=3:v=1,format=yuv420p" \
        -c:v libx264 -g 25 "$video"
fi

"$bin" segment "$video" --out "$out" --thumbnails --formats json,html --force -q
name=$(basename "${video%.*}")
report="$out/$name.html"
[ -s "$report" ] || { echo "check_html_report: no report at $report" >&2; exit 1; }
if grep -Eq '(src|href)="(https?:|//|file:)' "$report"; then
    echo "check_html_report: $report references something outside itself" >&2
    exit 1
fi

chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1400 \
    --screenshot="$out/report.png" "file://$(realpath "$report")" 2>/dev/null
[ -s "$out/report.png" ] || { echo "check_html_report: Chromium wrote no screenshot" >&2; exit 1; }
echo "$out/report.png"
