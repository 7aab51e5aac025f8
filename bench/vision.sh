#!/usr/bin/env bash
# Vision benchmark: one 448×448 tile through NVILA's SigLIP tower (patch embedding + 26 of 27
# encoder layers, the hidden_states[-2] NVILA takes), densecap (`densecap bench vision`, OpenBLAS)
# against PyTorch fp32 (bench/vision_torch.py), side by side in one run, on the same random-weight
# SigLIP-so400m-patch14-448 (tools/fixtures/make_siglip_bench_model.py, bf16 safetensors, 827 MB,
# not committed) and the same number of threads.
#
# Target (from the vision issue): densecap ≥ 1.0× PyTorch (PyTorch measured 3.9 s for 27 layers on
# this 2-core machine).
#
# Usage: bench/vision.sh [--quick]
#   --quick   one repeat each (smoke test)
#
# Environment:
#   DENSECAP_BENCH_DIR   cache dir (default /var/tmp/densecap-bench): model, peers' venv, results
#   DENSECAP             densecap binary; when unset, `swift build -c release` of this checkout
#   BENCH_THREADS        threads for both engines (default: all cores)
#   BENCH_REPEAT         timed passes per engine, the best counts (default 3)
#   BENCH_OPENBLAS_CORETYPE  as in bench/engine.sh ("none" removes OPENBLAS_CORETYPE)
#
# Results go to stdout and $DENSECAP_BENCH_DIR/vision-results.md; raw JSON in logs/vision/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export DENSECAP_BENCH_DIR="$BENCH_DIR"
log() { printf '[vision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'vision.sh: %s\n' "$*" >&2; exit 1; }

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
THREADS=${BENCH_THREADS:-$(nproc)}
REPEAT=${BENCH_REPEAT:-$((QUICK ? 1 : 3))}
MODEL="$BENCH_DIR/siglip-so400m-random"
RUNDIR="$BENCH_DIR/logs/vision"
RESULTS="$BENCH_DIR/vision-results.md"
mkdir -p "$RUNDIR"
case "${BENCH_OPENBLAS_CORETYPE:-}" in
    "") ;;
    none) unset OPENBLAS_CORETYPE ;;
    *) export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE" ;;
esac

bench_lock
if [[ ! -f "$MODEL/model.safetensors" ]]; then
    log "writing the random SigLIP-so400m to $MODEL (tools/fixtures/make_siglip_bench_model.py)"
    python3 "$REPO/tools/fixtures/make_siglip_bench_model.py" "$MODEL" >&2
fi
PY=$("$REPO/bench/peers_venv.sh")
densecap_binary

machine=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
rev=$(git -C "$REPO" rev-parse --short HEAD)
[[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]] || rev="$rev+dirty"
start_time=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

"$DENSECAP" doctor >"$RUNDIR/doctor.txt" 2>&1 || die "densecap doctor failed"
log "densecap bench vision ($THREADS threads, $REPEAT repeats)"
/usr/bin/time -f '%e %M' -o "$RUNDIR/densecap.time" "$DENSECAP" bench vision --model "$MODEL" --threads "$THREADS" \
    --repeats "$REPEAT" >"$RUNDIR/densecap.json" 2>"$RUNDIR/densecap.stderr" || die "densecap failed: $(tail -3 "$RUNDIR/densecap.stderr")"
log "PyTorch fp32 ($THREADS threads, $REPEAT repeats)"
/usr/bin/time -f '%e %M' -o "$RUNDIR/torch.time" env OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
    "$PY" "$REPO/bench/vision_torch.py" "$MODEL" --threads "$THREADS" --repeats "$REPEAT" \
    >"$RUNDIR/torch.json" 2>"$RUNDIR/torch.stderr" || die "PyTorch failed: $(tail -3 "$RUNDIR/torch.stderr")"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

J() { jq -r "$2" "$RUNDIR/$1.json"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
dc_s=$(J densecap .tile_s)
torch_s=$(J torch .seconds)
ratio=$(calc %.2f "$torch_s / $dc_s")
result=FAIL
awk -v r="$ratio" 'BEGIN { exit !(r >= 1.0) }' && result=PASS
repro="bench/vision.sh${1:+ $1}"
[[ -n "${BENCH_THREADS:-}" ]] && repro="BENCH_THREADS=$BENCH_THREADS $repro"
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && repro="BENCH_OPENBLAS_CORETYPE=$BENCH_OPENBLAS_CORETYPE $repro"

{
    echo "### Vision benchmark: one 448×448 tile through SigLIP-so400m (26 of 27 layers), fp32, $THREADS threads"
    echo
    echo "- Date: $start_time; machine: $machine, $(nproc) cores, load average $load_start at start, $load_end at end"
    echo "- Model: random-weight SigLIP-so400m-patch14-448 (\`$MODEL\`, bf16 safetensors, tools/fixtures/make_siglip_bench_model.py); $(calc %.3f "$(J densecap .tflop_per_tile)") TFLOP per tile by densecap's count, $(calc %.3f "$(J torch .flops) / 1e12") by PyTorch's script"
    echo "- densecap $rev: $(J densecap .blas); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
    echo "- PyTorch: torch $(J torch '.torch_version // "?"'), $(J torch '.blas // "?"'), attention $(J torch '.attn_implementation // "?"')"
    echo "- Best of $REPEAT timed passes each (PyTorch after one warm-up pass); reproduce: \`$repro\`"
    echo
    echo '```'
    cat "$RUNDIR/doctor.txt"
    echo '```'
    echo
    echo "| engine | kernels | s per tile | TFLOP/s | load s | peak RSS MiB |"
    echo "|---|---|---:|---:|---:|---:|"
    echo "| densecap | OpenBLAS $(J densecap .blas_core) | $(calc %.2f "$dc_s") | $(calc %.3f "$(J densecap .tflops)") | $(calc %.1f "$(J densecap .load_s)") | $(calc %.0f "$(cut -d' ' -f2 "$RUNDIR/densecap.time") / 1024") |"
    echo "| PyTorch fp32 | $(J torch '.blas_core // "?"') | $(calc %.2f "$torch_s") | $(calc %.3f "$(J torch .tflops)") | $(calc %.1f "$(J torch '.load_s // 0')") | $(calc %.0f "$(cut -d' ' -f2 "$RUNDIR/torch.time") / 1024") |"
    echo
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    echo "| densecap ≥ 1.0× PyTorch fp32 | ${ratio}× | $result |"
} | tee "$RESULTS"
log "results written to $RESULTS"
