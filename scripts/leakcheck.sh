#!/usr/bin/env bash
# Leak and memory-error check: the whole test suite under AddressSanitizer + LeakSanitizer, and
# the CLI (probe, frames on clean, truncated and corrupt clips) under valgrind memcheck.
# Usage: scripts/leakcheck.sh   (prints a summary; exits non-zero on any finding)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
command -v valgrind >/dev/null || { sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo); "${sudo[@]}" apt-get install -y -qq valgrind >&2; }

echo "== swift test under ASan/LSan" >&2
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp swift test --sanitize=address --scratch-path .build/asan 2>&1 | tee /tmp/densecap-asan.log | grep -E "Test run|ERROR: (Address|Leak)Sanitizer|SUMMARY" || true
if grep -q "ERROR: \(Address\|Leak\)Sanitizer" /tmp/densecap-asan.log; then echo "ASan/LSan: FINDINGS (see /tmp/densecap-asan.log)"; status=1; else echo "ASan/LSan: clean"; status=0; fi

echo "== densecap under valgrind" >&2
swift build >/dev/null
bin=.build/debug/densecap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=320x240:rate=25:duration=4 -c:v libx264 -g 25 -pix_fmt yuv420p "$work/clip.mp4"
head -c $(( $(stat -c %s "$work/clip.mp4") * 6 / 10 )) "$work/clip.mp4" > "$work/cut.mp4"
printf 'not a video' > "$work/text.mp4"
vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99)
export DENSECAP_BLAS_CORETYPE=off   # no re-exec under valgrind
for args in "probe $work/clip.mp4" "frames $work/clip.mp4 --fps 2 --size 64x48 --out $work/f1" \
            "frames $work/clip.mp4 --frames 5 --start 1 --out $work/f2" "frames $work/cut.mp4 --fps 1 --out $work/f3" \
            "frames $work/text.mp4 --fps 1 --out $work/f4"; do
    # shellcheck disable=SC2086
    if "${vg[@]}" "$bin" $args >/dev/null 2>"$work/vg.log" || [ $? -ne 99 ]; then
        echo "valgrind clean: densecap $args"
    else
        echo "valgrind FINDINGS: densecap $args"; cat "$work/vg.log"; status=1
    fi
done
exit $status
