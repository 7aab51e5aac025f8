#!/usr/bin/env bash
# Boundary benchmark: `densecap segment` against PySceneDetect (scenedetect from PyPI, its
# ContentDetector and AdaptiveDetector) on clips with known boundaries, in one run: boundary F1
# (one-to-one within ±0.5 s, both scored by `densecap eval`) and frames/s per clip family.
#
# Families (generated with the ffmpeg CLI from 3-second shots: real footage cut out of
# ../shared/testdata where it has no cut inside, plus ffmpeg's mandelbrot and testsrc2):
#   cuts        shots joined by hard cuts
#   fades       each shot fades out and the next in through black (0.5 s each side)
#   dissolves   1-second cross-dissolves (xfade); the boundary is the middle of the dissolve
#   flashes     hard cuts, and inside every shot a 2-frame camera flash that must not cut
#   surveillance  10 min at 320x180, 15 fps: a still background with sensor noise, 5 people-sized
#               objects in a bright jacket crossing (their entry and exit are the boundaries), two lighting
#               changes (a 5 s brightening and a 2 s dimming) that must not count
#   real        ../shared/testdata clips with known boundaries (see REAL below)
#
# Targets (dense-captions issue): F1 >= PySceneDetect's best detector on every family;
# >= 2x its frames/s at the same downscale.
#
# Downscale: PySceneDetect's own automatic rule, factor = max(1, width // 256); densecap gets
# --width width/factor, so both look at the same picture size. densecap runs twice: at its
# default 4 fps and with --fps all (every frame, as PySceneDetect). Frames/s counts the source
# frames the tool covered per second of whole-process wall time (`/usr/bin/time`, start-up and
# Python imports included, as bench/ingest.sh times); the table also gives the ratios against
# PySceneDetect's detection time alone (opening the video to the scene list), in its favour.
# densecap runs with --max-length 0 (no forced splits).
#
# Usage: bench/segment.sh [--quick] [--generate-only] [--motion]
#   --quick          2-minute surveillance clip and 6 shots per family (a smoke test of the whole script)
#   --generate-only  make the clips and the venv, then stop
#   --motion         then run bench/motion.sh (motion events against DVR-Scan; --quick passed on)
#
# Environment:
#   DENSECAP_BENCH_DIR  cache dir (default /var/tmp/densecap-bench): clips in segment-clips/,
#                       the venv in venv-scenedetect/, results in segment-results[-quick].md
#   DENSECAP            densecap binary; unset: `swift build -c release` of this checkout
#   BENCH_SCENEDETECT_PIP  pip requirements (default "scenedetect==0.7.2 opencv-python-headless==5.0.0.93")
#   TESTDATA            the real clips (default ../shared/testdata next to the checkout)
set -euo pipefail

QUICK=0
GENERATE_ONLY=0
MOTION=0
for arg in "$@"; do
    case "$arg" in
        --motion) MOTION=1 ;;
        --quick) QUICK=1 ;;
        --generate-only) GENERATE_ONLY=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "segment.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log() { printf '[segment %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'segment.sh: %s\n' "$*" >&2; exit 1; }
for tool in ffmpeg ffprobe python3 /usr/bin/time awk; do command -v "$tool" >/dev/null || die "missing $tool"; done

TESTDATA=${TESTDATA:-$REPO/../shared/testdata}
[[ -d "$TESTDATA" ]] || die "no test data at $TESTDATA (set TESTDATA)"
TESTDATA=$(cd "$TESTDATA" && pwd)
read -r -a SD_PIP <<<"${BENCH_SCENEDETECT_PIP:-scenedetect==0.7.2 opencv-python-headless==5.0.0.93}"
SUFFIX=$( ((QUICK)) && echo "-quick" || true)
CLIPS="$BENCH_DIR/segment-clips$SUFFIX"
WORK="$BENCH_DIR/segment-work$SUFFIX"
RESULTS="$BENCH_DIR/segment-results$SUFFIX.md"
VENV="$BENCH_DIR/venv-scenedetect"
mkdir -p "$CLIPS" "$WORK"
bench_lock
if ((QUICK)); then SHOTS=6; SURV_SECONDS=120; else SHOTS=10; SURV_SECONDS=600; fi

# --- PySceneDetect venv --------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "${SD_PIP[*]}" ]]; then
    log "creating $VENV (${SD_PIP[*]})"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${SD_PIP[@]}" >&2
    echo "${SD_PIP[*]}" >"$VENV/.stamp"
fi
SD_VERSION=$("$VENV/bin/python" -c 'import scenedetect, cv2; print(scenedetect.__version__, "OpenCV", cv2.__version__)')

# --- clips ---------------------------------------------------------------------------------
# Shot pool: source, start, (all 3 s long). Real windows hold no cut (checked by eye on contact
# sheets); synthetic shots are ffmpeg lavfi sources.
POOL=(
    "pyscenedetect/testvideo.mp4 1.6" "pyscenedetect/testvideo.mp4 7.8" "pyscenedetect/testvideo.mp4 13.8"
    "pyscenedetect/testvideo.mp4 19.1" "movienet/test.mp4 3.0" "movienet/test.mp4 12.0"
    "pyscenedetect/goldeneye-vfr-drop3.mp4 0.3" "pyscenedetect/goldeneye-vfr-drop3.mp4 4.5"
    "lavfi:mandelbrot=s=640x360:r=25" "lavfi:testsrc2=s=640x360:r=25"
)
ENC=(-c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -g 50 -an)

make_shots() {
    local i=0 entry src start
    for entry in "${POOL[@]}"; do
        src=${entry%% *}
        start=${entry#* }
        if [[ "$src" == lavfi:* ]]; then
            ffmpeg -v error -y -f lavfi -i "${src#lavfi:}" -t 3 -vf "fps=25,format=yuv420p" "${ENC[@]}" "$CLIPS/shot$i.mp4"
        else
            ffmpeg -v error -y -ss "$start" -i "$TESTDATA/$src" -t 3 \
                -vf "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25" \
                "${ENC[@]}" "$CLIPS/shot$i.mp4"
        fi
        i=$((i + 1))
    done
}

# join FAMILY: concatenates the first $SHOTS shots (a fixed shuffled order) for one family.
ORDER=(3 8 0 5 9 6 1 4 7 2)
join_family() {
    local family=$1 inputs=() filter="" k n=$SHOTS gt="$CLIPS/$1.gt"
    : >"$gt"
    for ((k = 0; k < n; k++)); do inputs+=(-i "$CLIPS/shot${ORDER[$k]}.mp4"); done
    case "$family" in
        cuts | flashes)
            for ((k = 0; k < n; k++)); do
                if [[ $family == flashes ]]; then
                    # A 2-frame flash 1.4 s into the shot (brightness +0.6, like a camera flash).
                    filter+="[$k:v]setpts=PTS-STARTPTS,eq=brightness=0.6:enable='between(t,1.4,1.47)'[s$k];"
                else
                    filter+="[$k:v]setpts=PTS-STARTPTS[s$k];"
                fi
                ((k > 0)) && echo "$((3 * k))" >>"$gt"
            done
            for ((k = 0; k < n; k++)); do filter+="[s$k]"; done
            filter+="concat=n=$n:v=1[v]"
            ;;
        fades)
            for ((k = 0; k < n; k++)); do
                filter+="[$k:v]setpts=PTS-STARTPTS,fade=in:st=0:d=0.5,fade=out:st=2.5:d=0.5[s$k];"
                ((k > 0)) && echo "$((3 * k))" >>"$gt"
            done
            for ((k = 0; k < n; k++)); do filter+="[s$k]"; done
            filter+="concat=n=$n:v=1[v]"
            ;;
        dissolves)
            # Transition k (1-based) runs over [2k, 2k+1] s; its middle 2k + 0.5 is the boundary.
            local prev="[0:v]"
            for ((k = 1; k < n; k++)); do
                filter+="${prev}[$k:v]xfade=transition=fade:duration=1:offset=$((2 * k))[x$k];"
                prev="[x$k]"
                echo "$((2 * k)).5" >>"$gt"
            done
            filter="${filter%;}"
            filter="${filter%\[x$((n - 1))\]}[v]"
            ;;
    esac
    ffmpeg -v error -y "${inputs[@]}" -filter_complex "$filter" -map "[v]" "${ENC[@]}" "$CLIPS/$family.mp4"
}

# surveillance: a still frame, noise, objects crossing, two lighting changes.
make_surveillance() {
    local d=$SURV_SECONDS gt="$CLIPS/surveillance.gt" overlays="" k t0 t1 speed last="[bg]"
    ffmpeg -v error -y -ss 9 -i "$TESTDATA/movienet/test.mp4" -frames:v 1 -vf "scale=320:180,setsar=1" "$CLIPS/background.png"
    # (entry, exit) in seconds, scaled to the clip length: 5 events in 600 s.
    local events=(60 75 150 170 260 272 400 430 520 535)
    ((QUICK)) && events=(20 28 50 62 90 100)
    : >"$gt"
    local inputs=(-loop 1 -framerate 15 -t "$d" -i "$CLIPS/background.png")
    for ((k = 0; k < ${#events[@]}; k += 2)); do
        t0=${events[$k]}
        t1=${events[$((k + 1))]}
        speed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (320 - 24) / (b - a) }')
        inputs+=(-f lavfi -i "color=c=0xe0c838:s=24x56:r=15:d=$d")  # a high-visibility jacket
        overlays+="${last}[$((k / 2 + 1)):v]overlay=x='(t-$t0)*$speed':y=96:enable='between(t,$t0,$t1)'[o$k];"
        last="[o$k]"
        printf '%s\n%s\n' "$t0" "$t1" >>"$gt"
    done
    local l1=$((d / 3)) l2=$((2 * d / 3 + 5))
    local light="eq=brightness='0.12*clip((t-$l1)/5\,0\,1)-0.12*clip((t-$l2)/2\,0\,1)':eval=frame"
    ffmpeg -v error -y "${inputs[@]}" -filter_complex \
        "[0:v]format=yuv420p,$light,noise=alls=8:allf=t[bg];${overlays%;}" -map "$last" -t "$d" \
        -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -g 150 -an "$CLIPS/surveillance.mp4"
}

STAMP="$CLIPS/.stamp"
STAMP_TEXT="v2 shots=$SHOTS surveillance=$SURV_SECONDS"
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$STAMP_TEXT" ]]; then
    log "generating clips in $CLIPS"
    make_shots
    for family in cuts fades dissolves flashes; do join_family "$family"; done
    make_surveillance
    echo "$STAMP_TEXT" >"$STAMP"
fi
((GENERATE_ONLY)) && { log "clips ready in $CLIPS"; exit 0; }

# Real clips with known boundaries (seconds). testvideo: 1.001 (black → first shot) and 23.056
# (→ black end card) are frames 30 and 691; 6.706 and 12.746 are the middles of its two fades
# through black (PySceneDetect's scene list, ../shared/testdata/README.md); 18.3 is the middle of
# the dissolve (frames 18.0–18.5 s, by eye). goldeneye and movienet: the README's cuts (movienet
# frames 58 and 211 at 2997/125 fps). counter: the colour changes at 1.0 and 2.0 s (its frames
# show two, although the README names one).
REAL=(
    "pyscenedetect/testvideo.mp4|1.001 6.706 12.746 18.3 23.056"
    "pyscenedetect/goldeneye-vfr-drop3.mp4|3.754 8.759"
    "movienet/test.mp4|2.419 8.800"
    "pyscenedetect/counter.mp4|1.0 2.0"
)

# --- runs ----------------------------------------------------------------------------------
densecap_binary
family_clips() {
    case "$1" in
        real) for r in "${REAL[@]}"; do echo "$TESTDATA/${r%%|*}"; done ;;
        *) echo "$CLIPS/$1.mp4" ;;
    esac
}
gt_file() {
    local clip=$1 r
    for r in "${REAL[@]}"; do
        if [[ "$clip" == "$TESTDATA/${r%%|*}" ]]; then
            tr ' ' '\n' <<<"${r#*|}" >"$WORK/$(basename "${clip%.*}").gt"
            echo "$WORK/$(basename "${clip%.*}").gt"
            return
        fi
    done
    echo "${clip%.*}.gt"
}

# score PRED GT: "tp fp fn" by densecap eval (the same matching for every tool).
score() {
    "$DENSECAP" eval --pred "$1" --gold "$2" --tolerance 0.5 --json |
        python3 -c 'import json,sys; b=json.load(sys.stdin)["boundaries"]; print(b["true_positives"], b["false_positives"], b["false_negatives"])'
}

TSV="$WORK/runs.tsv"
: >"$TSV"
FAMILIES=(cuts fades dissolves flashes surveillance real)
for family in "${FAMILIES[@]}"; do
    while read -r clip; do
        name=$(basename "${clip%.*}")
        gt=$(gt_file "$clip")
        width=$(ffprobe -v error -select_streams v:0 -show_entries stream=width -of csv=p=0 "$clip")
        frames=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$clip")
        factor=$((width / 256))
        ((factor < 1)) && factor=1
        aw=$((width / factor))
        for mode in 4 all; do
            out="$WORK/$name.densecap-$mode.json"
            log "$family/$name: densecap --fps $mode --width $aw"
            /usr/bin/time -f '%e' -o "$WORK/time" "$DENSECAP" segment "$clip" --fps "$mode" --width "$aw" \
                --max-length 0 -q >"$out"
            secs=$(cat "$WORK/time")
            read -r tp fp fn < <(score "$out" "$gt")
            printf '%s\t%s\tdensecap-%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$family" "$name" "$mode" "$frames" "$secs" "$secs" "$tp" "$fp" "$fn" >>"$TSV"
        done
        for det in content adaptive; do
            log "$family/$name: PySceneDetect $det, downscale $factor"
            /usr/bin/time -f '%e' -o "$WORK/time" \
                "$VENV/bin/python" -W ignore "$REPO/bench/scenedetect_run.py" "$clip" "$det" "$factor" >"$WORK/$name.sd-$det.json"
            wall=$(cat "$WORK/time")
            python3 -c 'import json,sys; print("\n".join(str(c) for c in json.load(open(sys.argv[1]))["cuts"]))' \
                "$WORK/$name.sd-$det.json" >"$WORK/$name.sd-$det.txt"
            secs=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["seconds"], 3))' "$WORK/$name.sd-$det.json")
            read -r tp fp fn < <(score "$WORK/$name.sd-$det.txt" "$gt")
            printf '%s\t%s\tscenedetect-%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$family" "$name" "$det" "$frames" "$wall" "$secs" "$tp" "$fp" "$fn" >>"$TSV"
        done
    done < <(family_clips "$family")
done

# --- report --------------------------------------------------------------------------------
{
    echo "# Boundary benchmark ($(date -u +%Y-%m-%d), $( ((QUICK)) && echo quick || echo full) mode)"
    echo
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'). densecap: $DENSECAP_ORIGIN"
    echo "($(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)). PySceneDetect $SD_VERSION."
    echo "Command: \`$(shell_words bench/segment.sh "$@")\`. Boundaries matched one to one within ±0.5 s by \`densecap eval\`."
    echo
    python3 - "$TSV" <<'PY'
import collections, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
fam = collections.OrderedDict()
for family, clip, tool, frames, wall, detect, tp, fp, fn in rows:
    f = fam.setdefault(family, collections.OrderedDict())
    a = f.setdefault(tool, [0, 0.0, 0.0, 0, 0, 0, set()])
    a[0] += int(frames); a[1] += float(wall); a[2] += float(detect)
    a[3] += int(tp); a[4] += int(fp); a[5] += int(fn); a[6].add(clip)
def f1(a):
    tp, fp, fn = a[3], a[4], a[5]
    if tp + fp + fn == 0: return 1.0
    return 2 * tp / (2 * tp + fp + fn)
tools = ["densecap-4", "densecap-all", "scenedetect-content", "scenedetect-adaptive"]
sd = tools[2:]
print("| family | clips | true boundaries | densecap 4 fps F1 | densecap all F1 | PySD content F1 | PySD adaptive F1 | densecap 4 fps − best PySD | densecap all − best PySD |")
print("|---|---|---|---|---|---|---|---|---|")
for family, f in fam.items():
    a = f["densecap-4"]; truth = a[3] + a[5]
    best = max(f1(f[t]) for t in sd)
    print(f"| {family} | {len(a[6])} | {truth} | " + " | ".join(f"{f1(f[t]):.3f}" for t in tools)
          + f" | {f1(f['densecap-4']) - best:+.3f} | {f1(f['densecap-all']) - best:+.3f} |")
print()
print("Frames/s: source frames covered per second of whole-process wall time (start-up, Python imports")
print("included), and in the last two columns against PySceneDetect's detection time alone (opening the")
print("video to the scene list):")
print()
print("| family | frames | densecap 4 fps | densecap all | PySD content | PySD adaptive | 4 fps / best PySD | all / best PySD | 4 fps / best PySD detect-only | all / best PySD detect-only |")
print("|---|---|---|---|---|---|---|---|---|---|")
for family, f in fam.items():
    r = {t: f[t][0] / max(f[t][1], 1e-9) for t in tools}
    d = max(f[t][0] / max(f[t][2], 1e-9) for t in sd)
    best = max(r[t] for t in sd)
    print(f"| {family} | {f['densecap-4'][0]} | " + " | ".join(f"{r[t]:.0f}" for t in tools)
          + f" | {r['densecap-4'] / best:.2f}× | {r['densecap-all'] / best:.2f}× | {r['densecap-4'] / d:.2f}× | {r['densecap-all'] / d:.2f}× |")
print()
print("Per clip (tool: TP/FP/FN, wall seconds, detection seconds):")
print()
for family, clip, tool, frames, wall, detect, tp, fp, fn in rows:
    print(f"- {family}/{clip} {tool}: {tp}/{fp}/{fn}, {wall} s, {detect} s")
PY
} | tee "$RESULTS"
log "results in $RESULTS"
if ((MOTION)); then
    exec 9>&-  # release the benchmark lock for motion.sh
    "$REPO/bench/motion.sh" $( ((QUICK)) && echo --quick)
fi
