#!/usr/bin/env bash
# Resize benchmark: densecap's Pillow-exact resampler (`densecap bench resize`) against Pillow
# itself (bench/resize_pillow.py), same source pattern, same target sizes, side by side in one run.
# The sizes are NVILA's: a 1920×1080 frame to the Dynamic-S2 scales 448², 896², 1344² and its 4×3
# grid 1792×1344. Pillow resizes on one thread, so densecap runs twice: on one thread (the
# like-for-like ratio) and on every core (what the pipeline gets).
#
# Usage: bench/resize.sh [--quick]
#   --quick   0.2 s per size instead of 2 s (smoke test)
#
# Environment:
#   DENSECAP_BENCH_DIR   cache dir (default /var/tmp/densecap-bench); Pillow's venv is venv-pillow/
#   DENSECAP             densecap binary; when unset, `swift build -c release` of this checkout
#   BENCH_THREADS        threads of the second densecap run (default: all cores, $(nproc))
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log() { printf '[resize-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

SECONDS_PER_SIZE=2
[[ "${1:-}" == "--quick" ]] && SECONDS_PER_SIZE=0.2
FROM=1920x1080
TO=448x448,896x896,1344x1344,1792x1344
THREADS=${BENCH_THREADS:-$(nproc)}
PILLOW_PIN="pillow==13.0.0 numpy==2.4.6"

VENV="$BENCH_DIR/venv-pillow"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$PILLOW_PIN" ]]; then
    log "creating $VENV ($PILLOW_PIN)"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PILLOW_PIN >&2
    echo "$PILLOW_PIN" >"$VENV/.stamp"
fi
densecap_binary
bench_lock

out="$BENCH_DIR/resize-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
log "densecap, 1 thread"
"$DENSECAP" bench resize --from "$FROM" --to "$TO" --threads 1 --seconds "$SECONDS_PER_SIZE" >"$out/densecap-1.json"
log "densecap, $THREADS threads"
"$DENSECAP" bench resize --from "$FROM" --to "$TO" --threads "$THREADS" --seconds "$SECONDS_PER_SIZE" >"$out/densecap-n.json"
log "Pillow"
"$VENV/bin/python" "$REPO/bench/resize_pillow.py" --from "$FROM" --to "$TO" --seconds "$SECONDS_PER_SIZE" >"$out/pillow.json"

"$VENV/bin/python" - "$out" "$THREADS" <<'PY'
import json, os, platform, sys
out, threads = sys.argv[1], sys.argv[2]
load = lambda name: {r["to"]: r["best_s"] for r in json.load(open(os.path.join(out, name)))["sizes"]}
one, many, pillow = load("densecap-1.json"), load("densecap-n.json"), load("pillow.json")
print(f"bicubic resize of a 1920x1080 RGB frame, best of repeated runs; {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
print(f"| target | Pillow 1 thread | densecap 1 thread | ratio | densecap {threads} threads | ratio |")
print("|---|---|---|---|---|---|")
for size in pillow:
    print(f"| {size} | {pillow[size]*1e3:.1f} ms | {one[size]*1e3:.1f} ms | {pillow[size]/one[size]:.2f}x "
          f"| {many[size]*1e3:.1f} ms | {pillow[size]/many[size]:.2f}x |")
PY
log "raw results in $out"
