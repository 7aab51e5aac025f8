#!/usr/bin/env bash
# Memory benchmark: NVILA-8B on a 24 GiB machine (engine-speed issue, item 5). `densecap caption`
# loads an NVILA-8B-shaped random checkpoint (tools/fixtures/make_nvila_8b_bench_model.py: Qwen2-7B
# LLM with an untied head, so400m tower, mlp_downsample; 16.2 GB of bf16, made here if missing) and
# captions one short clip, once per precision, one run at a time; the peak RSS of each run is
# measured (`/usr/bin/time`'s maximum resident set, and /proc sampled every 0.2 s for the anonymous
# and file-backed parts at that peak).
#
# Targets (from the issue): peak RSS ≤ 18 GiB with the weights kept in their stored bf16, ≤ 10 GiB
# at int8. `--precision fp32` keeps the LLM's weights as stored (bf16, widened per GEMM tile) and
# widens only the tower and projector; `--precision bf16` packs them for the bf16 dot products
# (still 2 bytes a weight); `--precision int8` quantises them at load (1 byte a weight + scales;
# the embedding table stays bf16 for the lookup).
#
# The clip: BENCH_CLIP_SECONDS of ffmpeg's testsrc2 at 640×360, 25 fps (generated, cached). The run
# is load + one caption: --fps 0.5, BENCH_FRAMES frames per event, --min-length the whole clip (one
# event), --semantic off, BENCH_NEW_TOKENS new tokens, --batch 1.
#
# MEMORY: each run needs most of the machine. Before each, the script waits (up to BENCH_WAIT_S)
# until MemAvailable ≥ BENCH_MIN_AVAILABLE_GIB, and skips the run (reported as such) otherwise.
#
# Usage: bench/memory8b.sh [--setup-only | --report-only]
#   --setup-only   make the checkpoint and the clip, then stop
#   --report-only  write the report again from the last run's saved results
#
# Environment:
#   DENSECAP_BENCH_DIR       cache dir (default /var/tmp/densecap-bench): the checkpoint, the clip,
#                            logs in logs/memory8b/, results in memory8b-results.md
#   DENSECAP                 densecap binary; unset: `swift build -c release` of this checkout
#   BENCH_MODEL              checkpoint folder (default $DENSECAP_BENCH_DIR/nvila-8b-random)
#   BENCH_PRECISIONS         precisions to run, in order (default "int8 bf16 fp32")
#   BENCH_THREADS            --threads (default: all cores)
#   BENCH_CLIP_SECONDS       clip length (default 6)
#   BENCH_FRAMES             --frames-per-event (default 2)
#   BENCH_NEW_TOKENS         --max-new-tokens (default 4)
#   BENCH_MIN_AVAILABLE_GIB  MemAvailable needed to start a run (default 19)
#   BENCH_WAIT_S             how long to wait for it (default 900)
set -euo pipefail

SETUP_ONLY=0
REPORT_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --setup-only) SETUP_ONLY=1 ;;
        --report-only) REPORT_ONLY=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "memory8b.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODEL=${BENCH_MODEL:-$BENCH_DIR/nvila-8b-random}
PRECISIONS=${BENCH_PRECISIONS:-int8 bf16 fp32}
THREADS=${BENCH_THREADS:-$(nproc)}
CLIP_SECONDS=${BENCH_CLIP_SECONDS:-6}
FRAMES=${BENCH_FRAMES:-2}
NEW_TOKENS=${BENCH_NEW_TOKENS:-4}
MIN_AVAIL_GIB=${BENCH_MIN_AVAILABLE_GIB:-19}
WAIT_S=${BENCH_WAIT_S:-900}
RUNDIR="$BENCH_DIR/logs/memory8b"
RESULTS="$BENCH_DIR/memory8b-results.md"
CLIP="$BENCH_DIR/caption-clips/testsrc2-${CLIP_SECONDS}s.mp4"
for v in THREADS CLIP_SECONDS FRAMES NEW_TOKENS MIN_AVAIL_GIB WAIT_S; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
for p in $PRECISIONS; do
    case "$p" in fp32 | bf16 | int8) ;; *) die "BENCH_PRECISIONS: '$p' is not fp32, bf16 or int8" ;; esac
done

# The issue's limits, GiB.
limit() { case "$1" in int8) echo 10 ;; *) echo 18 ;; esac; }
gib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1048576 }'; }
avail_kib() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }

setup() {
    if [[ ! -f "$MODEL/config.json" || ! -f "$MODEL/llm/model.safetensors.index.json" ]]; then
        [[ -z "${BENCH_MODEL:-}" ]] || die "BENCH_MODEL=$MODEL is not an NVILA checkpoint"
        log "generating $MODEL with tools/fixtures/make_nvila_8b_bench_model.py (about 16 GB, several minutes)"
        python3 "$REPO/tools/fixtures/make_nvila_8b_bench_model.py" "$MODEL" 2> >(tee "$BENCH_DIR/logs/memory8b-make-model.log" >&2)
        [[ -f "$MODEL/llm/model.safetensors.index.json" ]] || die "the fixture script did not write $MODEL"
    fi
    if [[ ! -f "$CLIP" ]]; then
        mkdir -p "$(dirname "$CLIP")"
        ffmpeg -v error -y -f lavfi -i "testsrc2=size=640x360:rate=25" -t "$CLIP_SECONDS" -c:v libx264 -preset ultrafast \
            -pix_fmt yuv420p -an "$CLIP.tmp.mp4"
        mv "$CLIP.tmp.mp4" "$CLIP"
    fi
}

# wait_for_memory: true once MemAvailable ≥ the minimum, false after WAIT_S seconds without.
wait_for_memory() {
    local need=$((MIN_AVAIL_GIB * 1048576)) waited=0
    while (($(avail_kib) < need)); do
        ((waited == 0)) && log "waiting for $MIN_AVAIL_GIB GiB available (now $(gib "$(avail_kib)") GiB)"
        ((waited >= WAIT_S)) && return 1
        sleep 10
        waited=$((waited + 10))
    done
}

declare -A WALL=() MAXRSS=() ANON=() FILE=() AVAIL=() STATS=() STATUS=() CMD=()

# run PRECISION: one caption run; its peak RSS from /usr/bin/time, and from /proc the anonymous and
# file-backed parts at the sample with the highest VmRSS.
run() {
    local p=$1 out="$RUNDIR/out-$1" err="$RUNDIR/$1.stderr"
    rm -rf "$out"
    mkdir -p "$out"
    local cmd=("$DENSECAP" caption "$CLIP" --model "$MODEL" --precision "$p" --threads "$THREADS" --out "$out"
        --formats json --fps 0.5 --frames-per-event "$FRAMES" --min-length "$CLIP_SECONDS" --semantic off
        --max-new-tokens "$NEW_TOKENS" --batch 1 --force)
    CMD[$p]=$(shell_words "${cmd[@]}")
    if ! wait_for_memory; then
        STATUS[$p]="skipped: under $MIN_AVAIL_GIB GiB available for ${WAIT_S} s"
        log "$p: ${STATUS[$p]}"
        return
    fi
    AVAIL[$p]=$(avail_kib)
    log "$p: ${CMD[$p]} ($(gib "${AVAIL[$p]}") GiB available)"
    local start=$SECONDS child="" peak=0 anon=0 file=0 rss a f
    /usr/bin/time -f '%M %e' -o "$RUNDIR/$p.time" "${cmd[@]}" >"$RUNDIR/$p.stdout" 2>"$err" &
    local tpid=$!
    while kill -0 "$tpid" 2>/dev/null; do
        [[ -n "$child" ]] || child=$(pgrep -P "$tpid" | head -n 1 || true)
        if [[ -n "$child" ]] && read -r rss a f < <(awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
                END { if (r) print r, a, f }' "/proc/$child/status" 2>/dev/null); then
            if ((rss > peak)); then peak=$rss anon=$a file=$f; fi
        fi
        sleep 0.2
    done
    if ! wait "$tpid"; then
        STATUS[$p]="failed (exit status; see $err): $(tail -n 1 "$err")"
        log "$p: ${STATUS[$p]}"
        return
    fi
    read -r "MAXRSS[$p]" "WALL[$p]" < <(tail -n 1 "$RUNDIR/$p.time")
    ANON[$p]=$anon
    FILE[$p]=$file
    STATS[$p]=$(grep -o 'caption stats: .*' "$err" | tail -n 1 || true)
    STATUS[$p]=ok
    log "$p: done in $((SECONDS - start)) s, peak RSS $(gib "${MAXRSS[$p]}") GiB"
}

SAVED=(PRECISIONS THREADS CLIP_SECONDS FRAMES NEW_TOKENS MIN_AVAIL_GIB MODEL CLIP WALL MAXRSS ANON FILE AVAIL STATS STATUS CMD
    START_TIME LOAD_START LOAD_END machine mem_gib kernel rev densecap_version model_bytes DENSECAP DENSECAP_ORIGIN)

if ((REPORT_ONLY)); then
    [[ -f "$RUNDIR/run.env" ]] || die "no completed run to report in $RUNDIR"
    # shellcheck disable=SC1091
    source "$RUNDIR/run.env"
else
    bench_lock
    mkdir -p "$RUNDIR" "$BENCH_DIR/logs"
    setup
    ((SETUP_ONLY)) && { log "ready: $MODEL, $CLIP"; exit 0; }
    densecap_binary
    "$DENSECAP" doctor >"$RUNDIR/doctor.txt" 2>&1 || die "densecap doctor failed"
    machine=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
    mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
    kernel=$(uname -sr)
    rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "no commit")
    densecap_version=$("$DENSECAP" --version 2>&1 | head -n 1 || true)
    model_bytes=$(find "$MODEL" -name '*.safetensors' -printf '%s\n' | awk '{ s += $1 } END { print s }')
    START_TIME=$(date -u '+%Y-%m-%d %H:%M UTC')
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    for p in $PRECISIONS; do run "$p"; done
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
    declare -p "${SAVED[@]}" >"$RUNDIR/run.env"
fi

report() {
    echo "#### NVILA-8B-shaped checkpoint: load + one caption, peak RSS per precision, $THREADS threads"
    echo
    echo "- Date: $START_TIME; machine: $machine, $(nproc) cores, $mem_gib GiB RAM, no swap, $kernel; load average $LOAD_START at start, $LOAD_END at end"
    echo "- Model: \`$MODEL\` (random weights from tools/fixtures/make_nvila_8b_bench_model.py: Qwen2-7B-shaped LLM, hidden 3584, 28 layers, 28/4 heads, intermediate 18944, vocab 151648, untied head, 4 shards; so400m tower; mlp_downsample 13824 → 3584; $(awk -v b="$model_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB of bf16 safetensors)"
    echo "- Clip: \`$CLIP\` ($CLIP_SECONDS s of testsrc2, 640×360); one event, $FRAMES frames, $NEW_TOKENS new tokens"
    echo "- densecap: ${densecap_version:-?}, $DENSECAP_ORIGIN; bench/ at $rev"
    echo "- Reproduce: \`bench/memory8b.sh\`"
    echo
    echo '```'
    grep -E '^(blas kernels|cpu features|low precision)' "$RUNDIR/doctor.txt" || true
    echo '```'
    echo
    echo "| precision | LLM weights held as | peak RSS GiB (time) | anon / file GiB at the sampled peak | limit GiB | result | wall s | MemAvailable at start GiB |"
    echo "|---|---|---:|---:|---:|---|---:|---:|"
    local p held
    for p in $PRECISIONS; do
        case "$p" in fp32) held="bf16 as stored" ;; bf16) held="packed bf16" ;; int8) held="int8 + row scales" ;; esac
        if [[ "${STATUS[$p]:-not run}" != ok ]]; then
            echo "| $p | $held | – | – | $(limit "$p") | ${STATUS[$p]:-not run} | – | – |"
            continue
        fi
        local result=FAIL
        awk -v r="${MAXRSS[$p]}" -v l="$(limit "$p")" 'BEGIN { exit !(r <= l * 1048576) }' && result=PASS
        echo "| $p | $held | $(gib "${MAXRSS[$p]}") | $(gib "${ANON[$p]}") / $(gib "${FILE[$p]}") | $(limit "$p") | $result | ${WALL[$p]} | $(gib "${AVAIL[$p]}") |"
    done
    echo
    for p in $PRECISIONS; do
        [[ -n "${STATS[$p]:-}" ]] && echo "- $p: ${STATS[$p]}"
    done
    echo
    echo "Commands (stderr of each in \`$RUNDIR\`):"
    echo
    for p in $PRECISIONS; do
        [[ -n "${CMD[$p]:-}" ]] && echo "- \`${CMD[$p]}\`"
    done
}

report | tee "$RESULTS"
log "results written to $RESULTS"
