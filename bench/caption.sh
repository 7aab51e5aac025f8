#!/usr/bin/env bash
# Caption cost benchmark: `densecap caption` with the tower only where it pays (--semantic probe,
# the default) side by side with the every-frame mode (--semantic every-frame: the tower on every
# model-rate frame, as before), in one run, on an NVILA-Lite-2B-shaped random checkpoint
# (tools/fixtures/make_nvila_lite_bench_model.py: so400m tower, mlp_downsample_3x3_fix,
# Qwen2.5-1.5B; made here if missing).
#
# Clips (generated with the ffmpeg CLI, cached):
#   edited        SCENES scenes of SCENE_SECONDS each (default 20 × 30 s = 10 min), 640×360, 25 fps:
#                 ffmpeg's test sources (testsrc2, mandelbrot, life, cellauto, smptehdbars, …) with
#                 hue and motion variations, joined by hard cuts
#   static        STATIC_SECONDS (default 3600) of a still scene at 320×180, 10 fps, with sensor
#                 noise; three people-sized objects cross it for 8 s at 1/6, 1/2 and 5/6 of the way
#   static-gated  the same clip with --still --gate (surveillance: still stretches skippable)
#
# Per run: wall time, CPU time (user + system: steadier than wall time on a shared machine), tower passes, prompt and generated tokens, processing seconds per video
# second, peak RSS (`/usr/bin/time`). Targets (issue "captioning whose cost follows activity"):
# static-gated probe ≤ 10 % of the every-frame time; edited probe ≥ 3× faster than every-frame;
# peak RSS of the hour ≤ 1.2× the 10-minute clip's.
#
# Usage: bench/caption.sh [--quick]
#   --quick   4 scenes × 15 s, a 5-minute static clip (a smoke test of the whole script)
#
# Environment:
#   DENSECAP_BENCH_DIR  cache dir (default /var/tmp/densecap-bench): clips in caption-clips/,
#                       results in caption-results[-quick].md
#   DENSECAP            densecap binary; unset: `swift build -c release` of this checkout
#   BENCH_MODEL         checkpoint folder (default $DENSECAP_BENCH_DIR/nvila-lite-2b-random)
#   BENCH_MODEL_FPS     the model frame grid, --fps (default 1)
#   BENCH_MAX_NEW_TOKENS  caption length cap (default 32; random weights never stop early)
#   BENCH_FRAMES_PER_EVENT  --frames-per-event (default: the checkpoint's num_video_frames, 8)
#   BENCH_PRECISION     --precision (default fp32; auto = bf16 tower where the CPU has bf16, int8 LLM)
#   SCENES, SCENE_SECONDS, STATIC_SECONDS  clip sizes (see above)
#   BENCH_MODES         modes to run (default "probe every-frame")
#   BENCH_CLIPS         clips to run (default "edited static static-gated")
set -euo pipefail

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "caption.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

log() { echo "[caption-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ((QUICK)); then
    SCENES=${SCENES:-4}; SCENE_SECONDS=${SCENE_SECONDS:-15}; STATIC_SECONDS=${STATIC_SECONDS:-300}; SUFFIX=-quick
else
    SCENES=${SCENES:-20}; SCENE_SECONDS=${SCENE_SECONDS:-30}; STATIC_SECONDS=${STATIC_SECONDS:-3600}; SUFFIX=
fi
MODEL=${BENCH_MODEL:-$BENCH_DIR/nvila-lite-2b-random}
MODEL_FPS=${BENCH_MODEL_FPS:-1}
MAX_NEW=${BENCH_MAX_NEW_TOKENS:-32}
MODES=${BENCH_MODES:-probe every-frame}
CLIPS="$BENCH_DIR/caption-clips"
RESULTS="$BENCH_DIR/caption-results$SUFFIX.md"
mkdir -p "$CLIPS"

[[ -f "$MODEL/config.json" ]] || python3 "$REPO/tools/fixtures/make_nvila_lite_bench_model.py" "$MODEL"
densecap_binary
bench_lock

edited="$CLIPS/edited-${SCENES}x${SCENE_SECONDS}.mp4"
if [[ ! -f "$edited" ]]; then
    log "making $edited"
    sources=("testsrc2=s=640x360:r=25" "mandelbrot=s=640x360:r=25" "life=s=640x360:r=25:mold=10:ratio=0.1"
             "cellauto=s=640x360:r=25:rule=110" "smptehdbars=s=640x360:r=25" "rgbtestsrc=s=640x360:r=25"
             "testsrc=s=640x360:r=25" "yuvtestsrc=s=640x360:r=25" "gradients=s=640x360:r=25:speed=0.05"
             "color=c=0x2a6f3c:s=640x360:r=25")
    list="$CLIPS/edited.txt"; : >"$list"
    for ((k = 0; k < SCENES; k++)); do
        src=${sources[k % ${#sources[@]}]}
        part="$CLIPS/scene-$k-$SCENE_SECONDS.mp4"
        # A box drifting across every scene keeps it from being a still picture.
        ffmpeg -v error -y -f lavfi -i "$src" -t "$SCENE_SECONDS" -vf \
            "hue=h=$((k * 37 % 360)),drawbox=x='mod(t*40+$((k * 53)),600)':y=$((40 + k * 13 % 260)):w=60:h=60:color=white@0.8:t=fill,format=yuv420p" \
            -c:v libx264 -preset veryfast -crf 26 -g 50 -an "$part"
        echo "file '$part'" >>"$list"
    done
    ffmpeg -v error -y -f concat -safe 0 -i "$list" -c copy "$edited.tmp.mp4" && mv "$edited.tmp.mp4" "$edited"
fi

static="$CLIPS/static-$STATIC_SECONDS.mp4"
if [[ ! -f "$static" ]]; then
    log "making $static"
    d=$STATIC_SECONDS overlays="" last="[bg]" inputs=(-f lavfi -i "color=c=0x5a6470:s=320x180:r=10:d=$d")
    for k in 1 2 3; do
        t0=$((d * (2 * k - 1) / 6)); t1=$((t0 + 8))
        inputs+=(-f lavfi -i "color=c=0xe0c838:s=24x56:r=10:d=$d")
        overlays+="${last}[$k:v]overlay=x='(t-$t0)*40':y=100:enable='between(t,$t0,$t1)'[o$k];"
        last="[o$k]"
    done
    ffmpeg -v error -y "${inputs[@]}" -filter_complex \
        "[0:v]drawbox=x=20:y=120:w=280:h=50:color=0x3a3a3a:t=fill,drawbox=x=200:y=20:w=90:h=70:color=0x8a7a60:t=fill,noise=alls=6:allf=t,format=yuv420p[bg];${overlays%;}" \
        -map "$last" -t "$d" -c:v libx264 -preset ultrafast -crf 28 -g 100 -an "$static.tmp.mp4"
    mv "$static.tmp.mp4" "$static"
fi

duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }

# run NAME CLIP MODE ARGS...: one caption run into a fresh folder; appends a table row.
rows=()
declare -A WALL CPU
run() {
    local name=$1 clip=$2 mode=$3; shift 3
    local out="$BENCH_DIR/caption-out/$name-$mode" err="$BENCH_DIR/caption-out/$name-$mode.log"
    rm -rf "$out"; mkdir -p "$out"
    local cmd=("$DENSECAP" caption "$clip" --model "$MODEL" --out "$out" --fps "$MODEL_FPS" --max-new-tokens "$MAX_NEW"
               --formats json --semantic "$mode" "$@")
    [[ -n "${BENCH_FRAMES_PER_EVENT:-}" ]] && cmd+=(--frames-per-event "$BENCH_FRAMES_PER_EVENT")
    [[ -n "${BENCH_PRECISION:-}" ]] && cmd+=(--precision "$BENCH_PRECISION")
    log "$name / $mode: $(shell_words "${cmd[@]}")"
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M %U %S" -o "$err.rss" "${cmd[@]}" 2>"$err" || die "$name/$mode failed: $(tail -3 "$err")"
    t1=$(date +%s.%N)
    local wall cpu rss stats tower prompt gen events video
    wall=$(echo "$t1 - $t0" | bc -l)
    rss=$(( $(tail -1 "$err.rss" | cut -d" " -f1) / 1024 ))
    cpu=$(tail -1 "$err.rss" | awk '{ printf "%.1f", $2 + $3 }')
    stats=$(grep -o 'caption stats: .*' "$err" | tail -1)
    tower=$(sed -n 's/.*tower=\([0-9]*\).*/\1/p' <<<"$stats")
    prompt=$(sed -n 's/.*prompt_tokens=\([0-9]*\).*/\1/p' <<<"$stats")
    gen=$(sed -n 's/.*generated_tokens=\([0-9]*\).*/\1/p' <<<"$stats")
    events=$(sed -n 's/.*events=\([0-9]*\).*/\1/p' <<<"$stats")
    video=$(duration "$clip")
    WALL[$name-$mode]=$wall CPU[$name-$mode]=$cpu
    rows+=("| $name | $mode | $(printf %.1f "$wall") | $cpu | $events | $tower | $prompt | $gen | $(printf %.3f "$(echo "$wall / $video" | bc -l)") | $rss |")
    log "$name / $mode: $(printf %.1f "$wall") s, tower $tower, $events events, peak RSS $rss MB"
}

for name in ${BENCH_CLIPS:-edited static static-gated}; do
    for mode in $MODES; do
        case "$name" in
            edited) run edited "$edited" "$mode" ;;
            static) run static "$static" "$mode" ;;
            static-gated) run static-gated "$static" "$mode" --still --gate ;;
            *) die "unknown clip '$name'" ;;
        esac
    done
done

{
    echo "### caption: tower where it pays vs every frame ($(date -u +%Y-%m-%d), $(nproc) cores)"
    echo
    echo "Command: \`${BENCH_PRECISION:+BENCH_PRECISION=$BENCH_PRECISION }BENCH_MODEL_FPS=$MODEL_FPS BENCH_MAX_NEW_TOKENS=$MAX_NEW SCENES=$SCENES SCENE_SECONDS=$SCENE_SECONDS STATIC_SECONDS=$STATIC_SECONDS BENCH_CLIPS='${BENCH_CLIPS:-edited static static-gated}' bench/caption.sh${SUFFIX:+ --quick}\`; densecap $DENSECAP_ORIGIN"
    echo
    echo '```'
    "$DENSECAP" doctor 2>&1 | grep -iE 'cpu|blas|kernel' | head -6
    echo '```'
    echo
    echo "| clip | mode | wall s | CPU s | events | tower passes | prompt tokens | generated tokens | s per video s | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    for name in edited static static-gated; do
        probe=${WALL[$name-probe]:-} every=${WALL[$name-every-frame]:-}
        [[ -n "$probe" && -n "$every" ]] || continue
        share=$(echo "$probe / $every" | bc -l)
        speedup=$(echo "$every / $probe" | bc -l)
        printf -- '- %s: probe takes %.3f of the every-frame time (%.2f× faster)' "$name" "$share" "$speedup"
        printf -- '; CPU time %.3f (%.2f×)\n' "$(echo "${CPU[$name-probe]} / ${CPU[$name-every-frame]}" | bc -l)" "$(echo "${CPU[$name-every-frame]} / ${CPU[$name-probe]}" | bc -l)"
    done
} | tee "$RESULTS"
log "results in $RESULTS"
