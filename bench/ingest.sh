#!/usr/bin/env bash
# Ingest benchmark: `densecap frames` against the ffmpeg CLI and an OpenCV seek-per-frame loop
# (the way NVlabs/VILA loads videos), on a generated 1920x1080 30 fps H.264 clip with a
# 250-frame GOP, sampling 1 fps at 448x448 RGB24. It also times keyframe mode against a full
# decode, and compares peak RSS on a 10-minute and a 2-hour clip.
#
# Targets (from the ingest issue):
#   1. densecap at 1 fps takes <= 1.0x the time of `ffmpeg -vf fps=1,scale=448:448`
#   2. keyframe mode is >= 5x faster than a full decode
#   3. peak RSS on the 2-hour clip is <= 1.2x that on the 10-minute clip
#
# Usage: bench/ingest.sh [--quick] [--skip-2h] [--generate-only]
#   --quick          use a 60 s 1080p clip (clip1m.mp4) and skip the 2-hour run (smoke test)
#   --skip-2h        skip the 2-hour RSS run (and do not generate clip2h.mp4)
#   --generate-only  generate the clips, the manifest and the OpenCV venv, then stop
#                    (run it as `nice -n 10 bench/ingest.sh --generate-only` on a busy machine)
#
# Environment:
#   DENSECAP_BENCH_DIR  clip cache, venv and results (default /var/tmp/densecap-bench)
#   DENSECAP            densecap binary; when unset, the script runs `swift build -c release`
#                       and uses .build/release/densecap
#   BENCH_REPEAT        runs per timed row, the fastest is kept (default 2; the 2 h row runs once)
#   BENCH_PEERS_ONLY=1  time only the ffmpeg and OpenCV rows (no densecap binary needed)
#   BENCH_VERIFY=1      after timing, run each row once more into `wc -c` to count output frames
#   BENCH_OPENCV_PIP    pip requirements for the OpenCV venv
#                       (default "opencv-python-headless==5.0.0.93 numpy==2.4.6")
#
# Timing: `/usr/bin/time -f '%e %M'` (wall seconds, peak RSS KiB) around each tool, the tool's
# stdout to /dev/null. Results go to stdout and to $DENSECAP_BENCH_DIR/ingest-results.md
# (ingest-results-quick.md with --quick). Progress goes to stderr.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

QUICK=0
SKIP_2H=0
GENERATE_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --skip-2h) SKIP_2H=1 ;;
        --generate-only) GENERATE_ONLY=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "ingest.sh: unknown argument '$arg'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPEAT=${BENCH_REPEAT:-2}
PEERS_ONLY=${BENCH_PEERS_ONLY:-0}
VERIFY=${BENCH_VERIFY:-0}
read -r -a OPENCV_PIP <<<"${BENCH_OPENCV_PIP:-opencv-python-headless==5.0.0.93 numpy==2.4.6}"
VENV="$BENCH_DIR/venv-opencv"
MANIFEST="$BENCH_DIR/manifest"
LOGDIR="$BENCH_DIR/logs"
mkdir -p "$LOGDIR"

[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "ingest.sh: BENCH_REPEAT must be >= 1" >&2; exit 2; }
((QUICK)) && SKIP_2H=1

SAMPLE_FPS=1
OUT_W=448
OUT_H=448
SIZE="${OUT_W}x${OUT_H}"
FRAME_BYTES=$((OUT_W * OUT_H * 3))

log() { printf '[ingest %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'ingest.sh: %s\n' "$*" >&2; exit 1; }

for tool in ffmpeg ffprobe python3 /usr/bin/time awk; do
    command -v "$tool" >/dev/null || die "missing $tool"
done

# ---------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------

# Source: 1920x1080, 30 fps; x264 settings of the issue. Scenes are chosen so the stream is not
# trivially compressible (temporal noise, moving gradients, Game of Life) and has hard cuts. The
# noise strength sits just above what x264 at CRF 23 quantises away: at alls=6 (bars: 8) the
# scenes cost about 6 Mb/s, while alls=20 costs about 100 Mb/s of pure noise, far from real video.
# The whole clip averages about 3.5 Mb/s.
WIDTH=1920
HEIGHT=1080
RATE=30
X264=(-c:v libx264 -preset veryfast -crf 23 -g 250 -keyint_min 25 -pix_fmt yuv420p)

# make_segment OUT SCENE_SECONDS: four scenes of SCENE_SECONDS each, plus a 440 Hz AAC tone.
make_segment() {
    local out=$1 s=$2 part="${1%.mp4}.part.mp4"
    local noise="allf=t:all_seed=1" fmt="format=yuv420p,setsar=1"
    local size="${WIDTH}x${HEIGHT}"
    log "encoding $(basename "$out") (4 scenes x ${s} s; about 0.6 s per second of video)"
    ffmpeg -nostdin -v error -y \
        -f lavfi -t "$s" -i "testsrc2=s=$size:r=$RATE,noise=alls=6:$noise" \
        -f lavfi -t "$s" -i "gradients=s=$size:r=$RATE:nb_colors=4:speed=0.02:seed=1" \
        -f lavfi -t "$s" -i "life=s=240x135:r=10:seed=1:mold=10:life_color=#00ff80:mold_color=#402060,scale=$WIDTH:$HEIGHT:flags=neighbor,fps=$RATE" \
        -f lavfi -t "$s" -i "smptehdbars=s=$size:r=$RATE,noise=alls=8:$noise" \
        -f lavfi -t "$((4 * s))" -i "sine=frequency=440:sample_rate=48000" \
        -filter_complex "[0:v]${fmt}[a];[1:v]${fmt}[b];[2:v]${fmt}[c];[3:v]${fmt}[d];[a][b][c][d]concat=n=4:v=1:a=0[v]" \
        -map '[v]' -map 4:a "${X264[@]}" -c:a aac -b:a 128k "$part"
    mv "$part" "$out"
}

# concat_copy OUT COUNT IN: IN repeated COUNT times with the concat demuxer, no re-encode.
concat_copy() {
    local out=$1 count=$2 in=$3 part="${1%.mp4}.part.mp4" list="${1%.mp4}.list" i
    log "concatenating $(basename "$in") x$count -> $(basename "$out") (-c copy)"
    : >"$list"
    for ((i = 0; i < count; i++)); do
        printf "file '%s'\n" "$(basename "$in")" >>"$list"
    done
    ffmpeg -nostdin -v error -y -f concat -safe 0 -i "$list" -c copy "$part"
    mv "$part" "$out"
    rm -f "$list"
}

# manifest_add CLIP: one TSV row per clip (ffprobe duration, frames, keyframes, size).
manifest_add() {
    local clip=$1 name duration frames keyframes stream bytes
    name=$(basename "$clip")
    [[ -f "$MANIFEST" ]] || printf 'file\tbytes\tduration_s\tframes\tkeyframes\tvideo\n' >"$MANIFEST"
    awk -F'\t' -v f="$name" '$1 == f { found = 1 } END { exit !found }' "$MANIFEST" && return 0
    log "probing $name for the manifest"
    duration=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$clip")
    frames=$(ffprobe -v error -select_streams v:0 -show_entries stream=nb_frames \
        -of default=nw=1:nk=1 "$clip")
    stream=$(ffprobe -v error -select_streams v:0 \
        -show_entries stream=codec_name,profile,width,height,r_frame_rate,pix_fmt -of csv=p=0 "$clip")
    keyframes=$(ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 "$clip" |
        awk '/^K/ { n++ } END { print n + 0 }')
    bytes=$(stat -c %s "$clip")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$bytes" "$duration" "$frames" "$keyframes" \
        "$stream" >>"$MANIFEST"
}

manifest_field() { # manifest_field CLIP COLUMN
    awk -F'\t' -v f="$(basename "$1")" -v c="$2" '$1 == f { print $c }' "$MANIFEST"
}

ensure_clips() {
    if ((QUICK)); then
        CLIP="$BENCH_DIR/clip1m.mp4"
        [[ -f "$CLIP" ]] || make_segment "$CLIP" 15
        manifest_add "$CLIP"
        return
    fi
    CLIP="$BENCH_DIR/clip10m.mp4"
    CLIP2H="$BENCH_DIR/clip2h.mp4"
    local seg="$BENCH_DIR/seg120.mp4"
    if [[ ! -f "$CLIP" ]]; then
        [[ -f "$seg" ]] || make_segment "$seg" 30
        concat_copy "$CLIP" 5 "$seg"
    fi
    manifest_add "$CLIP"
    if ((!SKIP_2H)); then
        if [[ ! -f "$CLIP2H" ]]; then
            local need free_kib
            need=$(($(stat -c %s "$CLIP") * 12 / 1024 + 1048576))
            free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
            ((free_kib > need)) || die "clip2h.mp4 needs about $((need / 1048576)) GiB free in $BENCH_DIR"
            concat_copy "$CLIP2H" 12 "$CLIP"
        fi
        manifest_add "$CLIP2H"
    fi
}

ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import cv2, numpy' 2>/dev/null; then
        return
    fi
    log "creating the OpenCV venv in $VENV (${OPENCV_PIP[*]})"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${OPENCV_PIP[@]}" >&2
}

bench_lock
ensure_clips
ensure_venv
if ((GENERATE_ONLY)); then
    log "clips ready in $BENCH_DIR"
    cat "$MANIFEST"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# densecap binary and its capabilities
# ---------------------------------------------------------------------------------------------

FULL_ARGS=(--all)
FULL_NOTE=""
DENSECAP_ORIGIN="not run"
if ((!PEERS_ONLY)); then
    densecap_binary
    if ! "$DENSECAP" frames --help 2>&1 | grep -qE -- '(^|[[:space:],])--all([[:space:],=]|$)'; then
        FULL_ARGS=(--fps "$RATE")
        FULL_NOTE="\`densecap frames\` has no \`--all\`; full decode uses \`--fps $RATE\` (every frame)."
    fi
fi

# ---------------------------------------------------------------------------------------------
# Run metadata (collected first so that a broken tool fails before the long runs)
# ---------------------------------------------------------------------------------------------

machine=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
ffmpeg_version=$(ffmpeg -version | sed -n '1s/ Copyright.*//p')
opencv_info=$("$VENV/bin/python" -c '
import re, cv2
m = re.search(r"avcodec:\s*YES\s*\(([^)]*)\)", cv2.getBuildInformation())
print("opencv-python-headless", cv2.__version__ + ", libavcodec", m.group(1) if m else "?")')
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    rev="$rev+dirty"
fi
if ((PEERS_ONLY)); then
    openblas="openblas: n/a (decode benchmark; BENCH_PEERS_ONLY=1, densecap not run)"
elif "$DENSECAP" --help 2>&1 | grep -qE '^[[:space:]]+doctor([[:space:]]|$)'; then
    openblas=$("$DENSECAP" doctor 2>&1 || true)
else
    openblas="openblas: n/a (decode benchmark)"
fi

args=("$@")
repro="bench/ingest.sh${args[*]:+ ${args[*]}}"
((PEERS_ONLY)) && repro="BENCH_PEERS_ONLY=1 $repro"
[[ "$REPEAT" != 2 ]] && repro="BENCH_REPEAT=$REPEAT $repro"

# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

declare -A WALL RSS CPU FRAMES CMD
ROWS=()

# time_row KEY REPS CMD...: keeps the fastest of REPS runs in WALL[KEY] (s), RSS[KEY] (KiB) and
# CPU[KEY] (user + system s).
time_row() {
    local key=$1 reps=$2 i wall rss user sys errlog
    shift 2
    ROWS+=("$key")
    CMD[$key]=$(shell_words "$@")
    for ((i = 1; i <= reps; i++)); do
        errlog="$LOGDIR/$key.$i.stderr"
        log "$key: run $i/$reps"
        if ! /usr/bin/time -f '%e %M %U %S' -o "$errlog.time" "$@" >/dev/null 2>"$errlog"; then
            tail -n 20 "$errlog" >&2
            die "$key failed (run $i); full stderr in $errlog"
        fi
        read -r wall rss user sys < <(tail -n 1 "$errlog.time")
        log "$key: run $i: ${wall} s wall, $user + $sys s CPU, $((rss / 1024)) MiB"
        if [[ -z "${WALL[$key]:-}" ]] || awk -v a="$wall" -v b="${WALL[$key]}" 'BEGIN { exit !(a < b) }'; then
            WALL[$key]=$wall
            RSS[$key]=$rss
            CPU[$key]=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        fi
        # opencv_seek.py reports what it read; densecap and ffmpeg rows rely on BENCH_VERIFY.
        if grep -q '^opencv_seek: frames=' "$errlog"; then
            FRAMES[$key]=$(sed -n 's/^opencv_seek: frames=\([0-9]*\).*/\1/p' "$errlog")
        fi
    done
    if ((VERIFY)) && [[ -z "${FRAMES[$key]:-}" ]]; then
        local bytes
        log "$key: verification run into wc -c (not timed)"
        bytes=$("$@" 2>/dev/null | wc -c)
        FRAMES[$key]=$((bytes / FRAME_BYTES))
        ((bytes % FRAME_BYTES == 0)) || FRAMES[$key]="${FRAMES[$key]} (+$((bytes % FRAME_BYTES)) B)"
    fi
}

CLIP_NAME=$(basename "$CLIP")
CLIP_SECONDS=$(manifest_field "$CLIP" 3 | awk '{ printf "%.2f", $1 }')
log "warming the page cache with $CLIP_NAME"
cat "$CLIP" >/dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

if ((!PEERS_ONLY)); then
    time_row densecap_1fps "$REPEAT" "$DENSECAP" frames "$CLIP" --fps "$SAMPLE_FPS" --size "$SIZE" \
        --format rgb24 --out -
fi
time_row ffmpeg_1fps "$REPEAT" ffmpeg -nostdin -v error -i "$CLIP" -an \
    -vf "fps=$SAMPLE_FPS,scale=$OUT_W:$OUT_H" -pix_fmt rgb24 -f rawvideo -
time_row opencv_seek "$REPEAT" "$VENV/bin/python" "$REPO/bench/opencv_seek.py" "$CLIP" \
    "$SAMPLE_FPS" "$SIZE"
if ((!PEERS_ONLY)); then
    time_row densecap_keyframes "$REPEAT" "$DENSECAP" frames "$CLIP" --keyframes --size "$SIZE" \
        --format rgb24 --out -
    time_row densecap_full "$REPEAT" "$DENSECAP" frames "$CLIP" "${FULL_ARGS[@]}" --size "$SIZE" \
        --format rgb24 --out -
    if ((!SKIP_2H)); then
        time_row densecap_1fps_2h 1 "$DENSECAP" frames "$CLIP2H" --fps "$SAMPLE_FPS" --size "$SIZE" \
            --format rgb24 --out -
    fi
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
# target_row TEXT NUMERATOR DENOMINATOR OP LIMIT: one row of the targets table; the check uses the
# unrounded ratio.
target_row() {
    local result=FAIL
    if awk -v n="$2" -v d="$3" -v l="$5" "BEGIN { exit !(n / d $4 l) }"; then result=PASS; fi
    echo "| $1 | $(calc "$2 / $3")× | $result |"
}

declare -A LABEL=(
    [densecap_1fps]="densecap, ${SAMPLE_FPS} fps"
    [ffmpeg_1fps]="ffmpeg CLI, fps=${SAMPLE_FPS},scale (reference)"
    [opencv_seek]="OpenCV seek per frame (VILA style)"
    [densecap_keyframes]="densecap, keyframes"
    [densecap_full]="densecap, full decode"
    [densecap_1fps_2h]="densecap, ${SAMPLE_FPS} fps, 2-hour clip (1 run)"
)

if ((QUICK)); then
    RESULTS="$BENCH_DIR/ingest-results-quick.md"
else
    RESULTS="$BENCH_DIR/ingest-results.md"
fi

report() {
    local key ff="${WALL[ffmpeg_1fps]}" wall mib vs rt frames
    echo "### Ingest benchmark ($CLIP_NAME, ${SAMPLE_FPS} fps → ${SIZE} RGB24)"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $machine, $(nproc) cores, $mem_gib GiB RAM, $(uname -sr); load average $LOAD_START at start, $LOAD_END at end"
    echo "- $ffmpeg_version; $opencv_info"
    local version=""
    ((PEERS_ONLY)) || version=" $("$DENSECAP" --version 2>&1 || true),"
    echo "- densecap:$version checkout $rev ($DENSECAP_ORIGIN)"
    echo "- Clip: $(manifest_field "$CLIP" 1): ${CLIP_SECONDS} s, $(manifest_field "$CLIP" 4) frames, $(manifest_field "$CLIP" 5) keyframes, $(($(manifest_field "$CLIP" 2) / 1048576)) MiB ($(manifest_field "$CLIP" 6)); libx264 -preset veryfast -crf 23 -g 250 -keyint_min 25"
    ((!SKIP_2H)) && echo "- 2-hour clip: $(manifest_field "$CLIP2H" 1): $(calc "$(manifest_field "$CLIP2H" 3)") s, $(manifest_field "$CLIP2H" 4) frames, $(manifest_field "$CLIP2H" 5) keyframes, $(($(manifest_field "$CLIP2H" 2) / 1048576)) MiB"
    echo "- Timing: \`/usr/bin/time -f '%e %M %U %S'\` (wall, peak RSS, user + system CPU), tool stdout to /dev/null, fastest of $REPEAT run(s) by wall time"
    echo "- Reproduce: \`$repro\`"
    echo
    echo '```'
    echo "$openblas"
    echo '```'
    echo
    echo "| run | wall s | CPU s | × realtime | peak RSS MiB | × ffmpeg time | frames out |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for key in "${ROWS[@]}"; do
        wall=${WALL[$key]}
        mib=$(awk -v k="${RSS[$key]}" 'BEGIN { printf "%.1f", k / 1024 }')
        if [[ "$key" == *_2h ]]; then
            vs="–"
            rt=$(calc "$(manifest_field "$CLIP2H" 3) / $wall")
        else
            vs="$(calc "$wall / $ff")×"
            rt=$(calc "$CLIP_SECONDS / $wall")
        fi
        frames=${FRAMES[$key]:-–}
        echo "| ${LABEL[$key]} | $wall | ${CPU[$key]} | $rt | $mib | $vs | $frames |"
    done
    echo
    [[ -n "$FULL_NOTE" ]] && { echo "$FULL_NOTE"; echo; }
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    if ((PEERS_ONLY)); then
        echo "| densecap ${SAMPLE_FPS} fps ≤ 1.0× ffmpeg time | – | not run (peers only) |"
        echo "| keyframes ≥ 5× faster than full decode | – | not run (peers only) |"
        echo "| peak RSS 2 h ≤ 1.2× 10 min | – | not run (peers only) |"
    else
        target_row "densecap ${SAMPLE_FPS} fps ≤ 1.0× ffmpeg time" \
            "${WALL[densecap_1fps]}" "$ff" '<=' 1.0
        target_row "keyframes ≥ 5× faster than full decode" \
            "${WALL[densecap_full]}" "${WALL[densecap_keyframes]}" '>=' 5.0
        if ((SKIP_2H)); then
            echo "| peak RSS 2 h ≤ 1.2× 10 min | – | skipped |"
        else
            target_row "peak RSS 2 h ≤ 1.2× 10 min" \
                "${RSS[densecap_1fps_2h]}" "${RSS[densecap_1fps]}" '<=' 1.2
        fi
    fi
    echo
    echo "Commands:"
    echo
    for key in "${ROWS[@]}"; do
        echo "- ${LABEL[$key]}: \`${CMD[$key]} > /dev/null\`"
    done
}

report | tee "$RESULTS"
log "results written to $RESULTS"
