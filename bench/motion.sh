#!/usr/bin/env bash
# Motion-event benchmark: `densecap segment` against DVR-Scan (dvr-scan from PyPI, its default MOG2
# subtractor and its CNT subtractor) on still-camera clips with known motion events, in one run:
# event-level precision, recall and F1 (a predicted event matches a true one, one to one, when
# their temporal IoU is at least 0.5) and frames/s per family.
#
# Families: every family of tools/motion_clips.sh (lighting steps and ramps with and without a
# moving object, an exposure pulse, a day/night IR switch, a ticking clock overlay, jittering
# foliage, rain, an object crossing only inside or only outside a region), made at 320x180, 15 fps,
# 60 s, plus "real": the same families' object and lighting step over a frame of real footage
# (../shared/testdata/movienet/test.mp4; that folder holds no surveillance footage of its own).
# Where a family watches a region (roi-*), densecap gets --roi and DVR-Scan the same rectangle
# as -a polygon.
#
# densecap: `segment --width 320` (the clips' own size: DVR-Scan runs at full size too, -df 1),
# at its default 4 fps and with --fps all (every frame, as DVR-Scan), no flags otherwise (the
# footage mode is detected). Its motion events are the non-static events of kind "motion".
# DVR-Scan: -so with -tb 0s (no time-before padding, which only lowers its tIoU; its time-post,
# which also decides when an event ends, stays at its default 2 s).
# Frames/s: source frames per second of whole-process wall time (/usr/bin/time, start-up and
# Python imports included); DVR-Scan's own "avg FPS" (detection alone) is given too.
#
# Targets (issue 15): F1 >= DVR-Scan's best on every family; zero events on the lighting-only and
# overlay-only families; >= 2x DVR-Scan's frames/s at the same analysis size.
#
# Each tool runs --repeats times per clip (default 3), the tools alternating, and the best (shortest)
# wall time counts: the machine may be shared, and load from other processes hits every tool alike.
#
# Usage: bench/motion.sh [--quick] [--repeats N]      (--quick: 30-second clips)
# Environment: DENSECAP_BENCH_DIR (default /var/tmp/densecap-bench), DENSECAP (binary; unset:
#   release build of this checkout), BENCH_BASELINE (optional: another densecap binary, e.g. a build
#   of an older commit, timed beside DENSECAP in the same runs; its outputs must be the same), BENCH_DVRSCAN_PIP (default "dvr-scan==1.8.2.1
#   opencv-python-headless"), TESTDATA (default ../shared/testdata).
set -euo pipefail

QUICK=0 REPEATS=3
ARGS=("$@")
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --repeats) REPEATS=${2:?--repeats needs a number}; shift ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "motion.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || { echo "motion.sh: --repeats takes a positive number" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log() { printf '[motion %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'motion.sh: %s\n' "$*" >&2; exit 1; }
for tool in ffmpeg ffprobe python3 /usr/bin/time awk; do command -v "$tool" >/dev/null || die "missing $tool"; done

TESTDATA=${TESTDATA:-$REPO/../shared/testdata}
read -r -a DVR_PIP <<<"${BENCH_DVRSCAN_PIP:-dvr-scan==1.8.2.1 opencv-python-headless}"
SUFFIX=$( ((QUICK)) && echo "-quick" || true)
CLIPS="$BENCH_DIR/motion-clips$SUFFIX"
WORK="$BENCH_DIR/motion-work$SUFFIX"
RESULTS="$BENCH_DIR/motion-results$SUFFIX.md"
VENV="$BENCH_DIR/venv-dvrscan"
mkdir -p "$CLIPS" "$WORK"
bench_lock
W=320 H=180 FPS=15
if ((QUICK)); then D=30; else D=60; fi

if [[ ! -x "$VENV/bin/dvr-scan" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "${DVR_PIP[*]}" ]]; then
    log "creating $VENV (${DVR_PIP[*]})"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${DVR_PIP[@]}" >&2
    echo "${DVR_PIP[*]}" >"$VENV/.stamp"
fi
DVR_VERSION=$("$VENV/bin/python" -c 'import dvr_scan, cv2; print(dvr_scan.__version__, "OpenCV", cv2.__version__)')

FAMILIES=(still object step step-object ramp ramp-object exposure irswitch clock clock-object
    foliage foliage-object rain rain-object roi-inside roi-outside)
STAMP_TEXT="v1 ${W}x${H} fps=$FPS d=$D"
if [[ "$(cat "$CLIPS/.stamp" 2>/dev/null)" != "$STAMP_TEXT" ]]; then
    log "generating clips in $CLIPS"
    for f in "${FAMILIES[@]}"; do "$REPO/tools/motion_clips.sh" "$f" "$CLIPS/$f.mp4" "$W" "$H" "$FPS" "$D"; done
    # real: the object crossing and a lighting step over a frame of real footage.
    if [[ -f "$TESTDATA/movienet/test.mp4" ]]; then
        ffmpeg -nostdin -v error -y -ss 9 -i "$TESTDATA/movienet/test.mp4" -frames:v 1 -vf "scale=$W:$H,setsar=1" "$WORK/real.png"
        t0=$(awk "BEGIN { print $D / 3 }") t1=$(awk "BEGIN { print $D / 3 + $D / 5 }") ts=$(awk "BEGIN { print 0.4 * $D }")
        ffmpeg -nostdin -v error -y -loop 1 -framerate $FPS -t $D -i "$WORK/real.png" \
            -f lavfi -i "color=c=0xe0c838:s=$((W / 13))x$((H * 3 / 10)):r=$FPS:d=$D" -filter_complex \
            "[0:v][1:v]overlay=x='(t-$t0)*$((W - W / 13))/($t1-$t0)':y=$((H * 45 / 100)):enable='between(t,$t0,$t1)',eq=brightness='0.12*gte(t,$ts)':eval=frame,format=yuv420p,noise=alls=6:allf=t[v]" \
            -map "[v]" -t $D -r $FPS -c:v libx264 -preset veryfast -crf 20 -g $((FPS * 4)) -an "$CLIPS/real.mp4"
        echo "$t0 $t1" >"$CLIPS/real.gt"
        FAMILIES+=(real)
    fi
    echo "$STAMP_TEXT" >"$CLIPS/.stamp"
fi
[[ -f "$CLIPS/real.mp4" ]] && [[ ! " ${FAMILIES[*]} " =~ " real " ]] && FAMILIES+=(real)

densecap_binary

# events FILE.json: densecap's motion events as "start end" lines.
densecap_events() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for e in d["events"]:
    if e["kind"] == "motion" and not e["static"]:
        print(e["start"], e["end"])' "$1"
}
dvr_events() {
    python3 -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
def sec(tc):
    h, m, s = tc.split(":"); return int(h) * 3600 + int(m) * 60 + float(s)
for i, l in enumerate(lines):
    if "Comma-separated timecode values" in l and i + 1 < len(lines):
        v = [sec(x) for x in lines[i + 1].strip().split(",") if x]
        for a, b in zip(v[0::2], v[1::2]): print(a, b)' "$1"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TSV="$WORK/runs.tsv"
BASE_TSV="$WORK/baseline.tsv"
: >"$TSV"
: >"$BASE_TSV"
frames=$((FPS * D))
for family in "${FAMILIES[@]}"; do
    clip="$CLIPS/$family.mp4"
    roi=()
    dvr_roi=()
    if [[ -f "$CLIPS/$family.roi" ]]; then
        r=$(cat "$CLIPS/$family.roi")
        roi=(--roi "$r")
        read -r x y w h < <(awk -F, -v W=$W -v H=$H '{ printf "%d %d %d %d\n", $1*W, $2*H, $3*W, $4*H }' <<<"$r")
        dvr_roi=(-a "$x" "$y" "$((x + w - 1))" "$y" "$((x + w - 1))" "$((y + h - 1))" "$x" "$((y + h - 1))")
    fi
    declare -A best=() own=()
    for ((r = 1; r <= REPEATS; r++)); do
        for mode in 4 all; do
            for tool in densecap ${BENCH_BASELINE:+baseline}; do
                binary=$DENSECAP
                [[ $tool == baseline ]] && binary=$BENCH_BASELINE
                log "$family: $tool --fps $mode (run $r/$REPEATS)"
                /usr/bin/time -f '%e' -o "$WORK/time" "$binary" segment "$clip" --fps "$mode" --width $W --max-length 0 \
                    "${roi[@]}" -q >"$WORK/$family.$tool-$mode.json"
                t=$(cat "$WORK/time")
                if [[ -z "${best[$tool-$mode]:-}" ]] || awk "BEGIN { exit !($t < ${best[$tool-$mode]}) }"; then best[$tool-$mode]=$t; fi
            done
        done
        for sub in MOG2 CNT; do
            log "$family: DVR-Scan $sub (run $r/$REPEATS)"
            /usr/bin/time -f '%e' -o "$WORK/time" "$VENV/bin/dvr-scan" -i "$clip" -so -b "$sub" -tb 0s -df 1 \
                "${dvr_roi[@]}" --ignore-user-config >"$WORK/$family.dvr-$sub.log" 2>&1
            t=$(cat "$WORK/time")
            if [[ -z "${best[dvr-$sub]:-}" ]] || awk "BEGIN { exit !($t < ${best[dvr-$sub]}) }"; then
                best[dvr-$sub]=$t
                own[dvr-$sub]=$(sed -n 's/.*(avg \([0-9.]*\) FPS).*/\1/p' "$WORK/$family.dvr-$sub.log" | tail -1)
            fi
        done
    done
    for mode in 4 all; do
        densecap_events "$WORK/$family.densecap-$mode.json" >"$WORK/$family.densecap-$mode.ev"
        footage=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("analysis", {}).get("footage", "?"))' \
            "$WORK/$family.densecap-$mode.json")
        printf '%s\tdensecap-%s\t%s\t%s\t%s\t%s\n' "$family" "$mode" "$frames" "${best[densecap-$mode]}" "" "$footage" >>"$TSV"
        if [[ -n "${BENCH_BASELINE:-}" ]]; then
            # Same outputs or no comparison: only the generator line may differ.
            same=yes
            cmp -s <(grep -v '"generator"' "$WORK/$family.densecap-$mode.json") \
                <(grep -v '"generator"' "$WORK/$family.baseline-$mode.json") || same=no
            printf '%s\tbaseline-%s\t%s\t%s\t%s\t%s\n' "$family" "$mode" "$frames" "${best[baseline-$mode]}" "" "$same" >>"$BASE_TSV"
        fi
    done
    for sub in MOG2 CNT; do
        dvr_events "$WORK/$family.dvr-$sub.log" >"$WORK/$family.dvr-$sub.ev"
        printf '%s\tdvr-%s\t%s\t%s\t%s\t\n' "$family" "$sub" "$frames" "${best[dvr-$sub]}" "${own[dvr-$sub]}" >>"$TSV"
    done
    unset best own
done

# --- report --------------------------------------------------------------------------------
{
    echo "# Motion-event benchmark ($(date -u +%Y-%m-%d), $( ((QUICK)) && echo quick || echo full) mode)"
    echo
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'). densecap: $DENSECAP_ORIGIN"
    echo "($(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)). DVR-Scan $DVR_VERSION."
    echo "Command: \`$(shell_words bench/motion.sh "${ARGS[@]}")\`. Clips ${W}x${H}, $FPS fps, $D s. Events matched one to one at tIoU >= 0.5."
    echo "Wall times: best of $REPEATS runs per tool and clip, tools alternating. Load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    python3 - "$TSV" "$WORK" "$CLIPS" "$BASE_TSV" "${BENCH_BASELINE:-}" <<'PY'
import collections, os, sys
tsv, work, clips, base_tsv, base_binary = sys.argv[1:6]
rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
def read(path):
    return [tuple(map(float, l.split())) for l in open(path) if l.strip()] if os.path.exists(path) else []
def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0])); union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0
def score(pred, gold):
    pairs = sorted(((tiou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gold)), reverse=True)
    used_p, used_g, tp = set(), set(), 0
    for v, i, j in pairs:
        if v >= 0.5 and i not in used_p and j not in used_g:
            used_p.add(i); used_g.add(j); tp += 1
    return tp, len(pred) - tp, len(gold) - tp
def f1(tp, fp, fn):
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
tools = ["densecap-4", "densecap-all", "dvr-MOG2", "dvr-CNT"]
table = collections.OrderedDict()
for family, tool, frames, wall, own_fps, footage in rows:
    ext = {"densecap-4": "densecap-4", "densecap-all": "densecap-all", "dvr-MOG2": "dvr-MOG2", "dvr-CNT": "dvr-CNT"}[tool]
    pred = read(os.path.join(work, f"{family}.{ext}.ev")); gold = read(os.path.join(clips, f"{family}.gt"))
    table.setdefault(family, {})[tool] = (score(pred, gold), int(frames), float(wall), own_fps, footage, len(gold), pred)
print("| family | true events | densecap 4 fps F1 (events) | densecap all F1 (events) | DVR-Scan MOG2 F1 (events) | DVR-Scan CNT F1 (events) | densecap 4 fps − best DVR-Scan | footage detected |")
print("|---|---|---|---|---|---|---|---|")
totals = {t: [0, 0, 0] for t in tools}
for family, r in table.items():
    cells = []
    for t in tools:
        (tp, fp, fn), *_ , pred = r[t]
        for k, v in enumerate((tp, fp, fn)): totals[t][k] += v
        cells.append(f"{f1(tp, fp, fn):.2f} ({len(pred)})")
    best = max(f1(*r[t][0]) for t in tools[2:])
    print(f"| {family} | {r['densecap-4'][5]} | " + " | ".join(cells) + f" | {f1(*r['densecap-4'][0]) - best:+.2f} | {r['densecap-4'][4]} |")
print("| all | " + str(sum(r['densecap-4'][5] for r in table.values())) + " | "
      + " | ".join(f"{f1(*totals[t]):.2f} ({totals[t][0]}/{totals[t][1]}/{totals[t][2]} TP/FP/FN)" for t in tools) + " | | |")
print()
print("Frames/s (source frames per second of whole-process wall time, best run; DVR-Scan's own detection-only figure in brackets):")
print()
print("| family | densecap 4 fps | densecap all | DVR-Scan MOG2 | DVR-Scan CNT | 4 fps / best DVR-Scan | all / best DVR-Scan |")
print("|---|---|---|---|---|---|---|")
sums = {t: [0, 0.0] for t in tools}
for family, r in table.items():
    fps = {}
    for t in tools:
        _, frames, wall, own, *_ = r[t]
        fps[t] = frames / max(wall, 1e-9); sums[t][0] += frames; sums[t][1] += wall
    best = max(fps["dvr-MOG2"], fps["dvr-CNT"])
    print(f"| {family} | {fps['densecap-4']:.0f} | {fps['densecap-all']:.0f} | {fps['dvr-MOG2']:.0f} [{r['dvr-MOG2'][3]}] | {fps['dvr-CNT']:.0f} [{r['dvr-CNT'][3]}] | {fps['densecap-4'] / best:.2f}× | {fps['densecap-all'] / best:.2f}× |")
tot = {t: sums[t][0] / max(sums[t][1], 1e-9) for t in tools}
best = max(tot["dvr-MOG2"], tot["dvr-CNT"])
print(f"| all | {tot['densecap-4']:.0f} | {tot['densecap-all']:.0f} | {tot['dvr-MOG2']:.0f} | {tot['dvr-CNT']:.0f} | {tot['densecap-4'] / best:.2f}× | {tot['densecap-all'] / best:.2f}× |")
if base_binary:
    base = {}
    for family, tool, frames, wall, _, same in (l.rstrip("\n").split("\t") for l in open(base_tsv) if l.strip()):
        base.setdefault(family, {})[tool] = (int(frames), float(wall), same)
    print()
    print(f"This build against the baseline `{base_binary}` (frames/s, same runs; outputs compared byte for byte but the generator line):")
    print()
    print("| family | baseline 4 fps | this 4 fps | speed-up | baseline all | this all | speed-up | same outputs |")
    print("|---|---|---|---|---|---|---|---|")
    totals = collections.defaultdict(lambda: [0, 0.0])
    for family, r in base.items():
        cells, same = [], []
        for mode in ("4", "all"):
            frames, bwall, s = r[f"baseline-{mode}"]
            nwall = table[family][f"densecap-{mode}"][2]
            totals[f"b{mode}"][0] += frames; totals[f"b{mode}"][1] += bwall
            totals[f"n{mode}"][0] += frames; totals[f"n{mode}"][1] += nwall
            cells += [f"{frames / bwall:.0f}", f"{frames / nwall:.0f}", f"{bwall / nwall:.2f}×"]
            same.append(s)
        print(f"| {family} | " + " | ".join(cells) + f" | {'yes' if all(x == 'yes' for x in same) else 'NO'} |")
    t = {k: v[0] / v[1] for k, v in totals.items()}
    print(f"| all | {t['b4']:.0f} | {t['n4']:.0f} | {t['n4'] / t['b4']:.2f}× | {t['ball']:.0f} | {t['nall']:.0f} | {t['nall'] / t['ball']:.2f}× | |")
print()
print("Events per clip (start–end seconds):")
print()
for family, r in table.items():
    gold = read(os.path.join(clips, f"{family}.gt"))
    print(f"- {family}: truth {gold}; " + "; ".join(f"{t} {[(round(a, 2), round(b, 2)) for a, b in r[t][6]]}" for t in tools))
PY
} | tee "$RESULTS"
log "results in $RESULTS"
