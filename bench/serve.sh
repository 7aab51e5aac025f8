#!/usr/bin/env bash
# `densecap serve` under concurrent load on loopback (issue 13).
#
# Phase 1 (tiny): the tiny NVILA-Lite fixture checkpoint (Tests/EngineTests/Fixtures/tiny-nvila-lite),
#   CLIENTS clients (default 16) sending chat requests back to back for SECONDS (default 120): the
#   fixture image as a PNG data URL plus a question, 16 new tokens, greedy; every fourth request
#   streamed (bench/serve_load.py, httpx in a throwaway venv).
# Phase 2 (large): a few requests on the NVILA-Lite-2B-shaped random checkpoint
#   ($DENSECAP_BENCH_DIR/nvila-lite-2b-random, made by tools/fixtures/make_nvila_lite_bench_model.py
#   when missing, which needs the fixtures venv): LARGE_CLIENTS (4) clients × LARGE_REQUESTS (2)
#   requests each, a 448×448 JPEG (one tile), 16 new tokens.
# Per phase: requests, failed (must be 0; an empty answer is not a failure, it is counted apart:
# the 2B-shaped random checkpoint often generates tokens that decode to nothing), p50/p95 latency, throughput, peak RSS of the server
# sampled every second (/proc/PID/status VmRSS), and for the long phase the largest RSS of the first
# minute against that of the last minute (flat: no growth with the number of requests served).
#
# Usage: bench/serve.sh [--quick]
#   --quick   30 s of load and no large phase (a smoke test of the script)
#
# Environment:
#   DENSECAP_BENCH_DIR  cache dir (default /var/tmp/densecap-bench): venv-serve-load/, results in
#                       serve-results[-quick].md, server logs in serve-logs/
#   DENSECAP            densecap binary; unset: `swift build -c release` of this checkout
#   CLIENTS, LOAD_SECONDS  phase 1 load (16, 120)
#   BENCH_BATCH         densecap serve --batch (default 4)
#   LARGE_MODEL         phase 2 checkpoint (default $DENSECAP_BENCH_DIR/nvila-lite-2b-random)
#   LARGE_CLIENTS, LARGE_REQUESTS  phase 2 load (4, 2); BENCH_SKIP_LARGE=1 skips phase 2
set -euo pipefail

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "serve.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

log() { echo "[serve-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=${CLIENTS:-16}
if ((QUICK)); then SECONDS_LOAD=${LOAD_SECONDS:-30}; SUFFIX=-quick; BENCH_SKIP_LARGE=1; else SECONDS_LOAD=${LOAD_SECONDS:-120}; SUFFIX=; fi
BATCH=${BENCH_BATCH:-4}
LARGE_MODEL=${LARGE_MODEL:-$BENCH_DIR/nvila-lite-2b-random}
LARGE_CLIENTS=${LARGE_CLIENTS:-4}
LARGE_REQUESTS=${LARGE_REQUESTS:-2}
TINY_MODEL="$REPO/Tests/EngineTests/Fixtures/tiny-nvila-lite"
TINY_IMAGE="$REPO/Tests/EngineTests/Fixtures/nvila-image.png"
RESULTS="$BENCH_DIR/serve-results$SUFFIX.md"
LOGS="$BENCH_DIR/serve-logs"
mkdir -p "$LOGS"

VENV="$BENCH_DIR/venv-serve-load"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import httpx" 2>/dev/null; then
    log "creating $VENV (httpx)"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check httpx >&2
fi

densecap_binary
bench_lock

work=$(mktemp -d /tmp/densecap-serve-bench.XXXXXX)
server_pid=
sampler_pid=
cleanup() {
    [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null || true
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        sleep 2
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME MODEL: starts `densecap serve` on an ephemeral port; sets BASE and server_pid;
# returns once /health answers 200.
start_server() {
    local name=$1 model=$2
    "$DENSECAP" serve --model "$model" --served-model-name bench --port 0 --batch "$BATCH" --max-queue 64 \
        >"$work/$name.stdout" 2>"$LOGS/$name.log" &
    server_pid=$!
    BASE=
    local deadline=$((SECONDS + 1800))
    until [[ -n "$BASE" ]]; do
        BASE=$(head -n 1 "$work/$name.stdout" 2>/dev/null || true)
        kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(tail -n 3 "$LOGS/$name.log")"
        [[ -n "$BASE" ]] || sleep 0.2
    done
    until "$VENV/bin/python" -c "import httpx,sys; sys.exit(httpx.get('$BASE/health').status_code != 200)" 2>/dev/null; do
        kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(tail -n 3 "$LOGS/$name.log")"
        ((SECONDS < deadline)) || die "the server was not ready in 30 minutes"
        sleep 0.5
    done
}

# sample_rss FILE: "elapsed_s rss_kib" every second for the server, in the background.
sample_rss() {
    local file=$1 t0
    t0=$(date +%s.%N)
    (
        while kill -0 "$server_pid" 2>/dev/null; do
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || true)
            [[ -n "$rss" ]] && awk -v now="$(date +%s.%N)" -v t0="$t0" -v rss="$rss" 'BEGIN { printf "%.1f %s\n", now - t0, rss }'
            sleep 1
        done
    ) >"$file" &
    sampler_pid=$!
}

stop_server() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=
    kill -TERM "$server_pid"
    wait "$server_pid" || die "the server exited with status $? on SIGTERM"
    server_pid=
}

# rss_summary FILE SECONDS: peak, first-minute max, last-minute max (MiB) as JSON fields.
rss_summary() {
    awk -v total="$2" '
        { t = $1; r = $2 / 1024; if (r > peak) peak = r
          if (t <= 60) { if (r > first) first = r }
          if (t >= total - 60) { if (r > last) last = r }
          n++ }
        END { printf "{\"samples\": %d, \"peak_mib\": %.1f, \"first_minute_max_mib\": %.1f, \"last_minute_max_mib\": %.1f}\n", n, peak, first, last }
    ' "$1"
}

field() { "$VENV/bin/python" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
log "phase 1: tiny model, $CLIENTS clients for $SECONDS_LOAD s"
start_server tiny "$TINY_MODEL"
sample_rss "$LOGS/tiny.rss"
load_start=$SECONDS
tiny=$("$VENV/bin/python" "$REPO/bench/serve_load.py" --url "$BASE" --model bench --image "$TINY_IMAGE" \
    --clients "$CLIENTS" --duration "$SECONDS_LOAD" --max-tokens 16)
sleep 1
stop_server
tiny_rss=$(rss_summary "$LOGS/tiny.rss" "$((SECONDS - load_start))")
log "tiny: $tiny"
log "tiny RSS: $tiny_rss"

large="skipped"
large_rss=
if [[ "${BENCH_SKIP_LARGE:-0}" != 1 ]]; then
    [[ -f "$LARGE_MODEL/config.json" ]] || python3 "$REPO/tools/fixtures/make_nvila_lite_bench_model.py" "$LARGE_MODEL"
    ffmpeg -v error -y -f lavfi -i "testsrc2=s=448x448" -frames:v 1 "$work/448.jpg"
    log "phase 2: $LARGE_MODEL, $LARGE_CLIENTS clients × $LARGE_REQUESTS requests"
    start_server large "$LARGE_MODEL"
    sample_rss "$LOGS/large.rss"
    large=$("$VENV/bin/python" "$REPO/bench/serve_load.py" --url "$BASE" --model bench --image "$work/448.jpg" \
        --clients "$LARGE_CLIENTS" --requests-per-client "$LARGE_REQUESTS" --max-tokens 16)
    stop_server
    large_rss=$(rss_summary "$LOGS/large.rss" 0)
    log "large: $large"
fi

doctor=$("$DENSECAP" doctor 2>&1 | grep -Ei 'blas|kernel|precision' | sed 's/^/    /' || true)
{
    echo "# densecap serve under load ($started, densecap $commit, $DENSECAP_ORIGIN)"
    echo
    echo "Command: bench/serve.sh$( ((QUICK)) && echo ' --quick'); batch $BATCH, max-queue 64; $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| phase | clients | requests | failed | empty answers | p50 s | p95 s | max s | requests/s | completion tokens/s | peak RSS MiB | RSS max 1st min → last min MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    echo "| tiny-nvila-lite, ${SECONDS_LOAD} s | $(field "$tiny" clients) | $(field "$tiny" requests) | $(field "$tiny" failed) | $(field "$tiny" empty_answers) | $(field "$tiny" p50_s) | $(field "$tiny" p95_s) | $(field "$tiny" max_s) | $(field "$tiny" requests_per_s) | $(field "$tiny" completion_tokens_per_s) | $(field "$tiny_rss" peak_mib) | $(field "$tiny_rss" first_minute_max_mib) → $(field "$tiny_rss" last_minute_max_mib) |"
    if [[ "$large" != skipped ]]; then
        echo "| NVILA-Lite-2B-shaped, $LARGE_CLIENTS × $LARGE_REQUESTS | $(field "$large" clients) | $(field "$large" requests) | $(field "$large" failed) | $(field "$large" empty_answers) | $(field "$large" p50_s) | $(field "$large" p95_s) | $(field "$large" max_s) | $(field "$large" requests_per_s) | $(field "$large" completion_tokens_per_s) | $(field "$large_rss" peak_mib) | – |"
    else
        echo "| NVILA-Lite-2B-shaped | skipped | | | | | | | | | | |"
    fi
    echo
    echo "Errors (first 5): tiny $(field "$tiny" errors)$([[ "$large" != skipped ]] && echo "; large $(field "$large" errors)")"
    echo
    echo "densecap doctor:"
    echo "$doctor"
} | tee "$RESULTS"
log "results in $RESULTS"
[[ "$(field "$tiny" failed)" == 0 ]] || die "failed requests under load"
[[ "$large" == skipped || "$(field "$large" failed)" == 0 ]] || die "failed requests on the large model"
