#!/usr/bin/env bash
# Engine benchmark: the Qwen2 language model of densecap against PyTorch fp32 and llama.cpp F32,
# side by side in one run, on the same random-weight checkpoint of Qwen2.5-1.5B's shape (hidden
# 1536, 28 layers, 12/2 heads, intermediate 8960, vocab 151936; bf16 safetensors written by
# tools/fixtures/make_bench_model.py, not committed) and the same number of threads.
#
#   densecap   `densecap bench llm` (OpenBLAS) and `densecap bench gemm` (the sgemm peak)
#   PyTorch    bench/llm_torch.py: transformers Qwen2ForCausalLM loaded as float32
#   llama.cpp  `llama-bench` from the llama.cpp source that PyPI's llama-cpp-python sdist carries,
#              on the checkpoint converted to an F32 GGUF by its convert_hf_to_gguf.py
#              (bench/build_llamacpp.sh; built and converted in the cache dir, never committed)
#
# Measured: prefill tok/s of a 1024-token prompt in one pass (logits of the last position only),
# decode tok/s over 128 greedy single-token steps, prefill GFLOP/s (densecap's FLOP count: block
# weights, causal attention, LM head of the last position) and its share of the measured sgemm peak.
# densecap and PyTorch decode right after their prefill (KV cache at 1024..1152 positions);
# llama-bench's tg128 starts from an empty cache (see BENCH_LLAMA_TG_DEPTH).
#
# Targets (from the engine issue):
#   1. densecap prefill tok/s >= 1.0x PyTorch fp32
#   2. densecap prefill GFLOP/s >= 70 % of the sgemm peak `densecap bench gemm` measures (best of
#      one run before and one after the engines)
#   3. densecap decode tok/s >= 1.0x llama.cpp F32 (llama-bench tg128)
#
# Usage: bench/engine.sh [--quick] [--setup-only | --report-only]
#   --quick        a 4-layer model of the same width and vocabulary, one repeat (smoke test)
#   --setup-only   make the model, the peers' venv, llama-bench and the GGUF, then stop
#                  (run it as `nice -n 10 bench/engine.sh --setup-only` on a busy machine)
#   --report-only  write the report again from the last run's saved results (no set-up, no runs)
#
# Environment:
#   DENSECAP_BENCH_DIR   model, venv, llama.cpp, logs and results (default /var/tmp/densecap-bench)
#   DENSECAP             densecap binary; when unset, the script runs `swift build -c release`
#                        and uses .build/release/densecap
#   BENCH_PEERS_ONLY=1   run only PyTorch and llama.cpp (no densecap binary needed)
#   BENCH_REPEAT         repetitions per engine, the best counts (default 2; 1 with --quick)
#   BENCH_THREADS        threads for every engine (default: all cores, $(nproc))
#   BENCH_MODEL          checkpoint directory (default $DENSECAP_BENCH_DIR/qwen2.5-1.5b-random,
#                        with --quick qwen2.5-1.5b-random-4l); generated when missing
#   BENCH_MODEL_SCRIPT   the fixture script (default tools/fixtures/make_bench_model.py)
#   BENCH_LLAMA_TG_DEPTH also time llama.cpp's decode after a prompt of this many tokens
#                        (`llama-bench -p 0 -n 128 -d N`, an extra informational row; default off)
#   BENCH_PROMPT_TOKENS, BENCH_DECODE_TOKENS   (default 1024 and 128)
#   BENCH_OPENBLAS_CORETYPE  when set, replaces OPENBLAS_CORETYPE for the run: "none" removes it
#                        (densecap then picks the kernels itself), anything else is a core name
#                        (e.g. SkylakeX). Unset: OPENBLAS_CORETYPE and DENSECAP_BLAS_CORETYPE reach
#                        densecap as they are (no timed work of the peers runs on OpenBLAS); the
#                        report records the kernels that ran and, when the environment overrides
#                        them, densecap's own pick.
#   plus those of bench/peers_venv.sh (BENCH_TORCH, BENCH_PEERS_PIP) and bench/build_llamacpp.sh
#   (BENCH_LLAMACPP_PYPI, BENCH_BUILD_JOBS, CMAKE).
#
# Results go to stdout and to $DENSECAP_BENCH_DIR/engine-results.md (engine-results-quick.md with
# --quick); the raw JSON of each engine and all logs are in $DENSECAP_BENCH_DIR/logs/engine*.
# Progress goes to stderr.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

QUICK=0
SETUP_ONLY=0
REPORT_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --setup-only) SETUP_ONLY=1 ;;
        --report-only) REPORT_ONLY=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "engine.sh: unknown argument '$arg'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export DENSECAP_BENCH_DIR="$BENCH_DIR" # for bench/peers_venv.sh and bench/build_llamacpp.sh
PEERS_ONLY=${BENCH_PEERS_ONLY:-0}
REPEAT=${BENCH_REPEAT:-$((QUICK ? 1 : 2))}
THREADS=${BENCH_THREADS:-$(nproc)}
PROMPT=${BENCH_PROMPT_TOKENS:-1024}
DECODE=${BENCH_DECODE_TOKENS:-128}
TG_DEPTH=${BENCH_LLAMA_TG_DEPTH:-0}
QUICK_LAYERS=4
if ((QUICK)); then
    MODEL=${BENCH_MODEL:-$BENCH_DIR/qwen2.5-1.5b-random-${QUICK_LAYERS}l}
    RESULTS="$BENCH_DIR/engine-results-quick.md"
    TAG=engine-quick
else
    MODEL=${BENCH_MODEL:-$BENCH_DIR/qwen2.5-1.5b-random}
    RESULTS="$BENCH_DIR/engine-results.md"
    TAG=engine
fi
MODEL_SCRIPT=${BENCH_MODEL_SCRIPT:-$REPO/tools/fixtures/make_bench_model.py}
LOGDIR="$BENCH_DIR/logs"
RUNDIR="$LOGDIR/$TAG"
mkdir -p "$RUNDIR"

for v in REPEAT THREADS PROMPT DECODE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "engine.sh: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
[[ "$TG_DEPTH" =~ ^[0-9]+$ ]] || { echo "engine.sh: BENCH_LLAMA_TG_DEPTH must be a number" >&2; exit 2; }
case "${BENCH_OPENBLAS_CORETYPE:-}" in
    "") ;;
    none) unset OPENBLAS_CORETYPE ;;
    *) export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE" ;;
esac

log() { printf '[engine %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'engine.sh: %s\n' "$*" >&2; exit 1; }

for tool in python3 jq awk lscpu git tar /usr/bin/time; do
    command -v "$tool" >/dev/null || die "missing $tool"
done

declare -A LL=() CMD=() WALL=() RSS=()
ROWS=()

# ---------------------------------------------------------------------------------------------
# Set-up: model, peers' venv, llama-bench and GGUF (each only when missing)
# ---------------------------------------------------------------------------------------------

model_complete() {
    [[ -f "$MODEL/config.json" && -f "$MODEL/tokenizer.json" ]] &&
        compgen -G "$MODEL/*.safetensors" >/dev/null
}

setup() {
    local key value start
    if ! model_complete; then
        [[ -z "${BENCH_MODEL:-}" ]] || die "BENCH_MODEL=$MODEL is not a complete checkpoint (config.json, tokenizer.json, *.safetensors)"
        [[ -f "$MODEL_SCRIPT" ]] || die "the fixture script $MODEL_SCRIPT is missing (set BENCH_MODEL_SCRIPT)"
        start=$(date +%s)
        if ((QUICK)); then
            log "generating the ${QUICK_LAYERS}-layer model in $MODEL with $MODEL_SCRIPT (bench/make_quick_model.py)"
            python3 "$REPO/bench/make_quick_model.py" "$MODEL_SCRIPT" "$MODEL" --layers "$QUICK_LAYERS" \
                2> >(tee "$LOGDIR/$TAG-make-model.log" >&2)
        else
            log "generating the model in $MODEL with $MODEL_SCRIPT (a few minutes, about 3 GB)"
            python3 "$MODEL_SCRIPT" "$MODEL" 2> >(tee "$LOGDIR/$TAG-make-model.log" >&2)
        fi
        model_complete || die "the fixture script did not write a complete checkpoint to $MODEL"
        log "model written in $(($(date +%s) - start)) s"
    fi

    PY=$("$REPO/bench/peers_venv.sh")

    while IFS='=' read -r key value; do
        LL[$key]=$value
    done < <("$REPO/bench/build_llamacpp.sh" "$MODEL")
    [[ -x "${LL[llama_bench]:-}" && -f "${LL[gguf]:-}" ]] || die "bench/build_llamacpp.sh did not report llama-bench and a GGUF"
    # The same weights as F16 and Q8_0 GGUFs (llama.cpp's converter quantises Q8_0 itself: blocks of
    # 32 with one fp16 scale), for the precision rows.
    local outtype out
    for outtype in f16 q8_0; do
        out="${LL[gguf]%-f32.gguf}-$outtype.gguf"
        if [[ ! -f "$out" || "${LL[gguf]}" -nt "$out" ]]; then
            log "converting $MODEL to $outtype GGUF ($out)"
            "$PY" "$REPO/bench/convert_gguf.py" "${LL[llamacpp_src]}" "$MODEL" --outtype "$outtype" --outfile "$out.part" \
                >"$LOGDIR/$TAG-convert-$outtype.log" 2>&1 || die "GGUF $outtype conversion failed; see $LOGDIR/$TAG-convert-$outtype.log"
            mv "$out.part" "$out"
        fi
        LL[gguf_$outtype]=$out
    done

    DENSECAP_ORIGIN="not run"
    if ((!PEERS_ONLY)); then
        densecap_binary
        # An unknown subcommand with --help prints the top-level help and exits 0: look at the usage line.
        for sub in "bench llm" "bench gemm" doctor; do
            # shellcheck disable=SC2086 # $sub is two words on purpose
            [[ "$("$DENSECAP" $sub --help 2>&1)" == *"USAGE: densecap $sub"* ]] ||
                die "$DENSECAP has no \`$sub\` subcommand yet (BENCH_PEERS_ONLY=1 runs only the peers)"
        done
    fi
}

# ---------------------------------------------------------------------------------------------
# Run metadata
# ---------------------------------------------------------------------------------------------

collect_metadata() {
    machine=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
    cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo)
    simd=""
    local f
    for f in avx2 fma avx512f avx512bw avx512vl avx512_bf16 amx_tile; do
        [[ " $cpu_flags " == *" $f "* ]] && simd="${simd:+$simd }$f"
    done
    cores=$(nproc)
    mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
    rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "no commit")
    if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        rev="$rev+dirty"
    fi
    model_desc=$(jq -r '"hidden \(.hidden_size), \(.num_hidden_layers) layers, \(.num_attention_heads)/\(.num_key_value_heads) heads, intermediate \(.intermediate_size), vocab \(.vocab_size), \(.torch_dtype // .dtype) safetensors"' "$MODEL/config.json")
    model_bytes=$(du -cb "$MODEL"/*.safetensors | tail -n 1 | cut -f1)
    cmake_cache="$(dirname "$(dirname "${LL[llama_bench]}")")/CMakeCache.txt"
    ggml_options=$(sed -n 's/^\(GGML_\(NATIVE\|LLAMAFILE\|OPENMP\|BLAS\|CPU_REPACK\)\):[A-Z]*=\(.*\)/\1=\3/p' "$cmake_cache" | sort | paste -sd' ')

    model_origin="random weights from $(basename "$MODEL_SCRIPT")"
    ((QUICK)) && model_origin="$model_origin with ${QUICK_LAYERS} layers (bench/make_quick_model.py)"
    [[ -n "${BENCH_MODEL:-}" ]] && model_origin="BENCH_MODEL"
    densecap_version=""
    densecap_rev=""
    own_kernels=""
    if ((!PEERS_ONLY)); then
        densecap_version="$("$DENSECAP" --version 2>&1 | head -n 1 || true)"
        if [[ "$DENSECAP_ORIGIN" == "built from this checkout" ]]; then
            densecap_rev=$rev
        elif ! densecap_rev=$(git -C "$(dirname "$DENSECAP")" rev-parse --short HEAD 2>/dev/null); then
            # Not under a checkout's .build: a copy named after its commit (densecap-<rev>), or unknown.
            densecap_rev=unknown
            if [[ "$(basename "$DENSECAP")" =~ ^densecap-([0-9a-f]{7,40})$ ]]; then
                densecap_rev="${BASH_REMATCH[1]}, from the file name"
            fi
        fi
        # The kernels densecap picks by itself, to show what an inherited OPENBLAS_CORETYPE changes.
        own_kernels=$(env -u OPENBLAS_CORETYPE -u DENSECAP_BLAS_CORETYPE "$DENSECAP" doctor 2>/dev/null |
            sed -n 's/^blas kernels[[:space:]]*//p' || true)
    fi
    blas_env="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, DENSECAP_BLAS_CORETYPE=${DENSECAP_BLAS_CORETYPE:-unset}"
    kernel=$(uname -sr)
    repro="bench/engine.sh${ARGS:+ $ARGS}"
    local v
    for v in BENCH_PEERS_ONLY BENCH_REPEAT BENCH_THREADS BENCH_LLAMA_TG_DEPTH BENCH_PROMPT_TOKENS \
        BENCH_DECODE_TOKENS BENCH_MODEL BENCH_OPENBLAS_CORETYPE DENSECAP; do
        [[ -n "${!v:-}" ]] && repro="$v=${!v} $repro"
    done
    return 0
}

# ---------------------------------------------------------------------------------------------
# The timed runs, one after another
# ---------------------------------------------------------------------------------------------

# run_json KEY CMD...: runs CMD once, its stdout (JSON) to $RUNDIR/KEY.json, stderr to KEY.stderr;
# WALL[KEY] and RSS[KEY] (KiB) from /usr/bin/time.
run_json() {
    local key=$1 wall rss
    shift
    ROWS+=("$key")
    CMD[$key]=$(shell_words "$@")
    log "$key: ${CMD[$key]}"
    if ! /usr/bin/time -f '%e %M' -o "$RUNDIR/$key.time" "$@" >"$RUNDIR/$key.json" 2>"$RUNDIR/$key.stderr"; then
        tail -n 20 "$RUNDIR/$key.stderr" >&2
        die "$key failed; full stderr in $RUNDIR/$key.stderr"
    fi
    jq -e . "$RUNDIR/$key.json" >/dev/null 2>&1 || die "$key printed no JSON; see $RUNDIR/$key.json"
    read -r wall rss < <(tail -n 1 "$RUNDIR/$key.time")
    WALL[$key]=$wall
    RSS[$key]=$rss
    log "$key: done in $wall s, peak RSS $((rss / 1024)) MiB"
}

run_all() {
    rm -f "$RUNDIR"/*.json "$RUNDIR"/*.stderr "$RUNDIR"/*.time "$RUNDIR/run.env"
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    START_TIME=$(date -u '+%Y-%m-%d %H:%M UTC')
    if ((!PEERS_ONLY)); then
        log "densecap doctor"
        "$DENSECAP" doctor >"$RUNDIR/densecap-doctor.txt" 2>&1 || die "densecap doctor failed: $(tail -n 3 "$RUNDIR/densecap-doctor.txt")"
        run_json densecap_gemm "$DENSECAP" bench gemm --threads "$THREADS"
        run_json densecap_llm "$DENSECAP" bench llm --model "$MODEL" --prompt-tokens "$PROMPT" \
            --decode-tokens "$DECODE" --threads "$THREADS" --repeats "$REPEAT"
        local precision
        for precision in bf16 int8; do
            run_json "densecap_llm_$precision" "$DENSECAP" bench llm --model "$MODEL" --prompt-tokens "$PROMPT" \
                --decode-tokens "$DECODE" --threads "$THREADS" --repeats "$REPEAT" --precision "$precision"
        done
    fi
    run_json torch env OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" "$PY" "$REPO/bench/llm_torch.py" \
        "$MODEL" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --threads "$THREADS" --repeats "$REPEAT"
    run_json llamacpp "${LL[llama_bench]}" -m "${LL[gguf]}" -p "$PROMPT" -n "$DECODE" -t "$THREADS" \
        -r "$REPEAT" -o json
    local outtype
    for outtype in f16 q8_0; do
        run_json "llamacpp_$outtype" "${LL[llama_bench]}" -m "${LL[gguf_$outtype]}" -p "$PROMPT" -n "$DECODE" -t "$THREADS" \
            -r "$REPEAT" -o json
    done
    if ((TG_DEPTH > 0)); then
        run_json llamacpp_depth "${LL[llama_bench]}" -m "${LL[gguf]}" -p 0 -n "$DECODE" -d "$TG_DEPTH" \
            -t "$THREADS" -r "$REPEAT" -o json
    fi
    # The sgemm peak again: a few seconds of GEMM are easily slowed by other work on a shared
    # machine, and the best of two runs minutes apart is a steadier denominator.
    ((PEERS_ONLY)) || run_json densecap_gemm_end "$DENSECAP" bench gemm --threads "$THREADS"
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
}

# Everything the report needs, saved so that --report-only can write it again.
SAVED=(THREADS REPEAT PROMPT DECODE TG_DEPTH PEERS_ONLY QUICK QUICK_LAYERS MODEL LL CMD WALL RSS ROWS
    START_TIME LOAD_START LOAD_END machine cores simd mem_gib kernel rev model_desc model_bytes model_origin
    ggml_options repro DENSECAP DENSECAP_ORIGIN densecap_version densecap_rev own_kernels blas_env)

ARGS="$*"
if ((REPORT_ONLY)); then
    [[ -f "$RUNDIR/run.env" ]] || die "no completed run to report in $RUNDIR"
    # shellcheck disable=SC1091
    source "$RUNDIR/run.env"
else
    bench_lock
    setup
    if ((SETUP_ONLY)); then
        log "ready: model $MODEL, venv $PY, llama-bench ${LL[llama_bench]}, GGUF ${LL[gguf]}"
        exit 0
    fi
    collect_metadata
    run_all
    DENSECAP=${DENSECAP:-}
    declare -p "${SAVED[@]}" >"$RUNDIR/run.env"
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

J() { jq -r "$2" "$RUNDIR/$1.json"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# llama-bench reports avg and stddev over the repetitions and every sample; the best sample is
# used, like the best of the repeats for the other two engines.
llama_row() { # llama_row KEY N_PROMPT N_GEN FIELD: FIELD of the test with those sizes
    jq -r --argjson p "$2" --argjson n "$3" \
        "map(select(.n_prompt == \$p and .n_gen == \$n)) | first | $4" "$RUNDIR/$1.json"
}
LL_PP=$(llama_row llamacpp "$PROMPT" 0 '.samples_ts | max')
LL_PP_AVG=$(llama_row llamacpp "$PROMPT" 0 '"\(.avg_ts * 100 | round / 100) ± \(.stddev_ts * 100 | round / 100)"')
LL_TG=$(llama_row llamacpp 0 "$DECODE" '.samples_ts | max')
LL_TG_AVG=$(llama_row llamacpp 0 "$DECODE" '"\(.avg_ts * 100 | round / 100) ± \(.stddev_ts * 100 | round / 100)"')
[[ "$LL_PP" != null && "$LL_TG" != null ]] || die "llama-bench JSON lacks pp$PROMPT or tg$DECODE; see $RUNDIR/llamacpp.json"

FLOPS=$(J torch .prefill_flops)
TORCH_PP=$(J torch .prefill_tok_s)
TORCH_TG=$(J torch .decode_tok_s)
LL_PP_GFLOPS=$(calc %.6f "$FLOPS * $LL_PP / $PROMPT / 1e9")

# Reduced precision (engine-speed issue): densecap --precision bf16 / int8 against llama.cpp F16 and
# Q8_0 GGUFs of the same weights, all from this run.
precision_report() {
    local key pp tg q8_pp q8_tg i8_pp i8_tg
    echo
    echo "#### Per precision (densecap \`--precision\`, llama.cpp GGUF types of the same weights)"
    echo
    grep '^low precision' "$RUNDIR/densecap-doctor.txt" | sed 's/^/- doctor: /'
    echo
    echo "| engine | prefill tok/s (pp$PROMPT) | decode tok/s (tg$DECODE) | peak RSS MiB |"
    echo "|---|---:|---:|---:|"
    for key in densecap_llm densecap_llm_bf16 densecap_llm_int8; do
        echo "| densecap $(J "$key" '.precision // "fp32"') | $(calc %.1f "$(J "$key" .prefill_tok_s)") | $(calc %.2f "$(J "$key" .decode_tok_s)") | $((RSS[$key] / 1024)) |"
    done
    for key in llamacpp llamacpp_f16 llamacpp_q8_0; do
        pp=$(llama_row "$key" "$PROMPT" 0 '.samples_ts | max')
        tg=$(llama_row "$key" 0 "$DECODE" '.samples_ts | max')
        echo "| llama.cpp $(J "$key" '.[0].model_type') | $(calc %.1f "$pp") | $(calc %.2f "$tg") | $((RSS[$key] / 1024)) |"
    done
    q8_pp=$(llama_row llamacpp_q8_0 "$PROMPT" 0 '.samples_ts | max')
    q8_tg=$(llama_row llamacpp_q8_0 0 "$DECODE" '.samples_ts | max')
    i8_pp=$(J densecap_llm_int8 .prefill_tok_s)
    i8_tg=$(J densecap_llm_int8 .decode_tok_s)
    echo
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    target "densecap int8 decode ≥ 1.0× llama.cpp Q8_0 tg$DECODE" "$(calc %.6f "$i8_tg / $q8_tg")" 1.0 '%.2f×'
    target "densecap int8 prefill ≥ 1.0× llama.cpp Q8_0 pp$PROMPT" "$(calc %.6f "$i8_pp / $q8_pp")" 1.0 '%.2f×'
}

target() { # target TEXT VALUE LIMIT FORMAT
    local result=FAIL
    awk -v v="$2" -v l="$3" 'BEGIN { exit !(v >= l) }' && result=PASS
    echo "| $1 | $(calc "$4" "$2") | $result |"
}

report() {
    local peak="" dc_pp dc_tg dc_gf
    echo "### Engine benchmark: Qwen2 LLM, ${PROMPT}-token prefill and ${DECODE}-token decode, fp32, $THREADS threads"
    echo
    echo "- Date: $START_TIME"
    echo "- Machine: $machine, $cores cores ($simd), $mem_gib GiB RAM, $kernel; load average $LOAD_START at start, $LOAD_END at end"
    echo "- Model: \`$MODEL\` ($model_desc, $(calc %.2f "$model_bytes / 1e9") GB; $model_origin)"
    echo "- Prefill FLOPs: $(calc %.3f "$FLOPS / 1e12") TFLOP (2 per block weight per token + causal attention + LM head of the last position)"
    if ((PEERS_ONLY)); then
        echo "- densecap: not run (BENCH_PEERS_ONLY=1)"
    else
        echo "- densecap: ${densecap_version:-?}, $DENSECAP_ORIGIN (commit $densecap_rev); $blas_env"
    fi
    echo "- Benchmark scripts: bench/ at $rev"
    echo "- PyTorch: torch $(J torch .torch_version), transformers $(J torch .transformers_version), $(J torch .blas); CPU capability $(J torch .cpu_capability); MKL code path: $(J torch '.kernel_probe.mkl_isa // "?"'); fp32 linear via $(J torch 'if .kernel_probe.onednn_used_for_fp32_linear then "oneDNN" else (.kernel_probe.fp32_linear_calls // ["?"] | join(", ")) + " (MKL)" end'); attention $(J torch .attn_implementation)"
    echo "- llama.cpp: ${LL[llamacpp_build_id]}; built with ${ggml_options:-?} (+ -DLLAMA_CURL=OFF, tests/examples/server off) in ${LL[build_s]:-?} s; F32 GGUF $(calc %.2f "${LL[gguf_bytes]} / 1e9") GB converted in ${LL[convert_s]:-?} s; llama-bench cpu_info \"$(J llamacpp '.[0].cpu_info')\", backends $(J llamacpp '.[0].backends'), $(J llamacpp '.[0].type_k') KV cache"
    echo "- Timing: each engine runs once in this order, all at $THREADS threads; best of $REPEAT repeat(s) inside each (llama-bench: best sample of -r $REPEAT after its warm-up run)"
    echo "- Reproduce: \`$repro\`"
    echo
    if ((!PEERS_ONLY)); then
        peak=$(jq -s 'map(.peak_gflops) | max' "$RUNDIR/densecap_gemm.json" "$RUNDIR/densecap_gemm_end.json")
        echo '```'
        cat "$RUNDIR/densecap-doctor.txt"
        echo '```'
        echo
        if [[ -n "$own_kernels" && "$own_kernels" != "$(J densecap_gemm .blas_core)" ]]; then
            echo "**Note:** the OpenBLAS kernels above come from the environment ($blas_env). Without those variables densecap runs **$own_kernels** kernels on this CPU; \`BENCH_OPENBLAS_CORETYPE=none\` measures that."
            echo
        fi
        echo "sgemm (\`densecap bench gemm\`, C = X·Wᵀ, $(J densecap_gemm .blas_core) kernels, $(J densecap_gemm .threads) threads; run before and after the engines, the peak is the best of both):"
        echo
        echo "| M×K×N | GFLOP/s before | GFLOP/s after |"
        echo "|---|---:|---:|"
        jq -r -s '(.[0].shapes | map({key: "\(.m)×\(.k)×\(.n)", value: .gflops}) | from_entries) as $after
            | .[1].shapes[] | "| \(.m)×\(.k)×\(.n) | \(.gflops * 10 | round / 10) | \($after["\(.m)×\(.k)×\(.n)"] // 0 | . * 10 | round / 10) |"' \
            "$RUNDIR/densecap_gemm_end.json" "$RUNDIR/densecap_gemm.json"
        echo "| **peak** | | **$(calc %.1f "$peak")** |"
        echo
    fi
    local pct_head="% of sgemm peak"
    echo "| engine | kernels | prefill s | prefill tok/s | prefill GFLOP/s | $pct_head | decode tok/s | load s | peak RSS GiB |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    pct() { if [[ -n "$peak" ]]; then calc '%.0f %%' "100 * $1 / $peak"; else echo "–"; fi; }
    rss() { calc %.1f "${RSS[$1]} / 1048576"; }
    if ((!PEERS_ONLY)); then
        dc_pp=$(J densecap_llm .prefill_tok_s)
        dc_tg=$(J densecap_llm .decode_tok_s)
        dc_gf=$(J densecap_llm .prefill_gflops)
        echo "| densecap | OpenBLAS $(J densecap_llm .blas_core) | $(calc %.2f "$(J densecap_llm .prefill_s)") | $(calc %.1f "$dc_pp") | $(calc %.1f "$dc_gf") | $(pct "$dc_gf") | $(calc %.2f "$dc_tg") | $(calc %.1f "$(J densecap_llm .load_s)") | $(rss densecap_llm) |"
    fi
    echo "| PyTorch fp32 | $(J torch .blas_core) | $(calc %.2f "$(J torch .prefill_s)") | $(calc %.1f "$TORCH_PP") | $(calc %.1f "$(J torch .prefill_gflops)") | $(pct "$(J torch .prefill_gflops)") | $(calc %.2f "$TORCH_TG") | $(calc %.1f "$(J torch .load_s)") | $(rss torch) |"
    local ggml_kernels="ggml CPU"
    [[ "$ggml_options" == *"GGML_LLAMAFILE=ON"* ]] && ggml_kernels="ggml CPU + llamafile sgemm"
    echo "| llama.cpp F32 (pp$PROMPT, tg$DECODE) | $ggml_kernels | $(calc %.2f "$PROMPT / $LL_PP") | $(calc %.1f "$LL_PP") | $(calc %.1f "$LL_PP_GFLOPS") | $(pct "$LL_PP_GFLOPS") | $(calc %.2f "$LL_TG") | – | $(rss llamacpp) |"
    if ((TG_DEPTH > 0)); then
        local depth_tg
        depth_tg=$(llama_row llamacpp_depth 0 "$DECODE" '.samples_ts | max')
        echo "| llama.cpp F32 (tg$DECODE @ depth $TG_DEPTH) | | | | | | $(calc %.2f "$depth_tg") | – | $(rss llamacpp_depth) |"
    fi
    echo
    echo "llama-bench averages: pp$PROMPT $LL_PP_AVG tok/s, tg$DECODE $LL_TG_AVG tok/s. densecap and PyTorch decode after their ${PROMPT}-token prefill; llama-bench's tg$DECODE starts from an empty KV cache. Peak RSS is that of the whole process (llama-bench maps the GGUF). The % of sgemm peak is against densecap's OpenBLAS peak above for every engine."
    echo
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    if ((PEERS_ONLY)); then
        echo "| densecap prefill ≥ 1.0× PyTorch fp32 | – | not run (peers only) |"
        echo "| densecap prefill ≥ 70 % of sgemm peak | – | not run (peers only) |"
        echo "| densecap decode ≥ 1.0× llama.cpp F32 | – | not run (peers only) |"
    else
        target "densecap prefill ≥ 1.0× PyTorch fp32" "$(calc %.6f "$dc_pp / $TORCH_PP")" 1.0 '%.2f×'
        target "densecap prefill ≥ 70 % of sgemm peak" "$(calc %.6f "100 * $dc_gf / $peak")" 70 '%.0f %%'
        target "densecap decode ≥ 1.0× llama.cpp F32" "$(calc %.6f "$dc_tg / $LL_TG")" 1.0 '%.2f×'
        echo
        echo "Other ratios: densecap prefill $(calc %.2f "$dc_pp / $LL_PP")× llama.cpp; densecap decode $(calc %.2f "$dc_tg / $TORCH_TG")× PyTorch."
    fi
    ((PEERS_ONLY)) || precision_report
    echo
    echo "Commands (each engine's JSON and stderr: \`$RUNDIR\`):"
    echo
    ((PEERS_ONLY)) || echo "- densecap doctor: \`$(shell_words "$DENSECAP" doctor)\`"
    for key in "${ROWS[@]}"; do
        echo "- $key (${WALL[$key]} s wall in all): \`${CMD[$key]}\`"
    done
}

# densecap and bench/llm_torch.py share the FLOP formula; say so if they ever disagree.
if ((!PEERS_ONLY)); then
    dc_flops=$(J densecap_llm '.prefill_gflops * .prefill_s * 1e9')
    awk -v a="$dc_flops" -v b="$FLOPS" 'BEGIN { d = a / b - 1; exit !(d > 0.001 || d < -0.001) }' &&
        log "warning: densecap counts $dc_flops prefill FLOPs, bench/llm_torch.py $FLOPS"
fi

report | tee "$RESULTS"
log "results written to $RESULTS"
