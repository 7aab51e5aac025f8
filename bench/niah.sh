#!/usr/bin/env bash
# Needle-in-a-haystack benchmark: haystack feature throughput (frames/s through decode, tower and
# projector) and seconds per cell (all needles' teacher-forced passes), `densecap niah` (embedding
# mode, LongVA scoring) against PyTorch fp32 running the same protocol the way LongVA computes it
# (bench/niah_torch.py), side by side in one run, on the same NVILA-Lite-2B-shaped random-weight
# checkpoint (SigLIP-so400m + mlp_downsample_3x3_fix + Qwen2.5-1.5B; not committed, about 4 GB),
# the same synthetic haystack (`densecap niah make-haystack`) and the same needles.
#
# Kept small: 8 haystack frames at 1 fps, cells N ∈ {4, 8} × depth ∈ {0, 1}, one needle (28 minutes
# measured on 2 cores under a load average of 15; an idle machine needs a fraction of that).
#
# Usage: bench/niah.sh
#
# Environment:
#   DENSECAP_BENCH_DIR   cache dir (default /var/tmp/densecap-bench): model, haystack, results
#   DENSECAP             densecap binary; when unset, `swift build -c release` of this checkout
#   BENCH_THREADS        threads for both engines (default: all cores)
#   BENCH_NIAH_MODEL     checkpoint folder (default $DENSECAP_BENCH_DIR/nvila-lite-2b-random, made by
#                        tools/fixtures/make_nvila_lite_bench_model.py)
#
# Results go to stdout and $DENSECAP_BENCH_DIR/niah-results.md; raw outputs in logs/niah/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export DENSECAP_BENCH_DIR="$BENCH_DIR"
log() { printf '[niah %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'niah.sh: %s\n' "$*" >&2; exit 1; }

THREADS=${BENCH_THREADS:-$(nproc)}
MODEL=${BENCH_NIAH_MODEL:-$BENCH_DIR/nvila-lite-2b-random}
RUNDIR="$BENCH_DIR/logs/niah"
RESULTS="$BENCH_DIR/niah-results.md"
SWEEP=(--min-frames 4 --max-frames 8 --frame-interval 4 --depth-interval 1)
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR/needles"

bench_lock
if [[ ! -f "$MODEL/config.json" ]]; then
    maker="$REPO/tools/fixtures/make_nvila_lite_bench_model.py"
    log "writing the random NVILA-Lite-2B-shaped checkpoint to $MODEL ($(basename "$maker"))"
    python3 "$maker" "$MODEL" >&2
fi
densecap_binary

# The haystack and one needle (a Mandelbrot picture with a multiple-choice question).
"$DENSECAP" niah make-haystack --seed 1 --duration 10 --out "$RUNDIR/haystack.mp4" >"$RUNDIR/haystack.recipe.json" \
    || die "make-haystack failed"
ffmpeg -nostdin -loglevel error -y -f lavfi -i mandelbrot=s=640x480 -frames:v 1 "$RUNDIR/needles/fractal.png"
cat >"$RUNDIR/needles/dataset.json" <<'EOF'
[{"path": "fractal.png",
  "prompt": "\nFind the frame with a fractal. What is its main colour?\nA. Red\nB. Blue\nC. Green\nD. Grey\nAnswer with the option's letter from the given choices directly.",
  "answer": "B"}]
EOF

machine=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
rev=$(git -C "$REPO" rev-parse --short HEAD)
[[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]] || rev="$rev+dirty"
start_time=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$DENSECAP" doctor >"$RUNDIR/doctor.txt" 2>&1 || die "densecap doctor failed"

log "densecap niah ($THREADS threads)"
/usr/bin/time -f '%e %M' -o "$RUNDIR/densecap.time" "$DENSECAP" niah --model "$MODEL" --haystack "$RUNDIR/haystack.mp4" \
    --needles "$RUNDIR/needles/dataset.json" "${SWEEP[@]}" --threads "$THREADS" --out "$RUNDIR/densecap-out" \
    >"$RUNDIR/densecap.stdout" 2>"$RUNDIR/densecap.stderr" || die "densecap failed: $(tail -3 "$RUNDIR/densecap.stderr")"
log "PyTorch fp32 ($THREADS threads)"
/usr/bin/time -f '%e %M' -o "$RUNDIR/torch.time" env OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
    python3 "$REPO/bench/niah_torch.py" "$MODEL" --haystack "$RUNDIR/haystack.mp4" --needles "$RUNDIR/needles/dataset.json" \
    "${SWEEP[@]}" --threads "$THREADS" >"$RUNDIR/torch.json" 2>"$RUNDIR/torch.stderr" \
    || die "PyTorch failed: $(tail -3 "$RUNDIR/torch.stderr")"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
dc_fps=$(sed -n 's/.*haystack throughput: .*(\([0-9.]*\) frames\/s).*/\1/p' "$RUNDIR/densecap.stderr")
dc_cell=$(sed -n 's/.*cells: .*(\([0-9.]*\) s per cell).*/\1/p' "$RUNDIR/densecap.stderr")
[[ -n "$dc_fps" && -n "$dc_cell" ]] || die "densecap printed no timings: $(tail -3 "$RUNDIR/densecap.stderr")"
t_fps=$(jq -r .frames_per_second "$RUNDIR/torch.json")
t_cell=$(jq -r .seconds_per_cell "$RUNDIR/torch.json")
# Do both engines pick the same argmax ids (random weights: a check of numerics, not of skill)?
dc_pred=$(jq -c '[.answers[].predictedIDs]' "$RUNDIR"/densecap-out/cells/frame_*_depth_*.json | sort | tr -d '\n')
t_pred=$(jq -c '.cells[].predicted' "$RUNDIR/torch.json" | sort | tr -d '\n')
same="no"
[[ "$dc_pred" == "$t_pred" ]] && same="yes"

{
    echo "### Needle-in-a-haystack benchmark: NVILA-Lite-2B-shaped random checkpoint, embedding mode, fp32, $THREADS threads"
    echo
    echo "- Date: $start_time; machine: $machine, $(nproc) cores, load average $load_start at start, $load_end at end (shared machine: other builds may run)"
    echo "- Model: \`$MODEL\` (SigLIP-so400m + mlp_downsample_3x3_fix + Qwen2.5-1.5B, random bf16 weights, run in fp32 by both)"
    echo "- Haystack: \`densecap niah make-haystack --seed 1 --duration 10\` (640×360, 24 fps; sha256 $(sha256sum "$RUNDIR/haystack.mp4" | cut -c1-16)…), 8 frames at the references' 1 fps rule"
    echo "- Sweep: N ∈ {4, 8} × depth ∈ {0, 1}, 1 needle: 4 cells, prompts of 5–9 frames × 121 tokens"
    echo "- densecap $rev; PyTorch $(jq -r .torch "$RUNDIR/torch.json"); same argmax ids in every cell: $same"
    echo "- Reproduce: \`bench/niah.sh\`"
    echo
    echo '```'
    cat "$RUNDIR/doctor.txt"
    echo '```'
    echo
    echo "| engine | haystack frames/s | s per cell | wall s | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|"
    echo "| densecap | $(calc %.3f "$dc_fps") | $(calc %.2f "$dc_cell") | $(cut -d' ' -f1 "$RUNDIR/densecap.time") | $(calc %.0f "$(cut -d' ' -f2 "$RUNDIR/densecap.time") / 1024") |"
    echo "| PyTorch fp32 (LongVA's way) | $(calc %.3f "$t_fps") | $(calc %.2f "$t_cell") | $(cut -d' ' -f1 "$RUNDIR/torch.time") | $(calc %.0f "$(cut -d' ' -f2 "$RUNDIR/torch.time") / 1024") |"
    echo
    echo "| ratio (densecap ÷ PyTorch) | value |"
    echo "|---|---:|"
    echo "| haystack throughput | $(calc %.2f "$dc_fps / $t_fps")× |"
    echo "| cell speed (PyTorch s ÷ densecap s) | $(calc %.2f "$t_cell / $dc_cell")× |"
} | tee "$RESULTS"
log "results written to $RESULTS"
