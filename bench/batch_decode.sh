#!/usr/bin/env bash
# Batched decode (issue 14, item 4): decode steps and whole caption-like requests, one sequence at
# a time against BENCH_BATCH together, each ratio from one densecap process (same binary, same
# load), on the Qwen2.5-1.5B-shaped random checkpoint. Prints a Markdown report on stdout.
#
#   bench/batch_decode.sh
#
# Environment: DENSECAP (binary; default: build this checkout), BENCH_MODEL (default
# $BENCH_DIR/qwen2.5-1.5b-random, written by bench/engine.sh), BENCH_BATCH (4), BENCH_PRECISIONS
# ("int8 bf16 fp32"), BENCH_STEPS (decode steps per sequence, 32), BENCH_CAPTIONS (4: caption-like
# requests; 0 skips), BENCH_CAPTION_PROMPT ("1010 128": prompt tokens per request, one run each;
# 1010 is eight NVILA-Lite frames of 121 tokens and the prompt), BENCH_CAPTION_TOKENS (128: tokens
# per answer, caption's default --max-new-tokens), BENCH_THREADS (2), BENCH_REPEATS (3: one
# sequence and the batch alternated this many times, the best of each), BENCH_INT8_KERNELS
# ("avxvnni avx2": the other int8 kernels timed too, where the CPU has them; "" skips them),
# BENCH_LONG_CONTEXT ("1010": int8 decode steps also after prompts this long, each step attending
# to them, as a caption request's answer does; "" skips).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODEL=${BENCH_MODEL:-$BENCH_DIR/qwen2.5-1.5b-random}
BATCH=${BENCH_BATCH:-4}
PRECISIONS=${BENCH_PRECISIONS:-int8 bf16 fp32}
STEPS=${BENCH_STEPS:-32}
CAPTIONS=${BENCH_CAPTIONS:-4}
CAPTION_PROMPT=${BENCH_CAPTION_PROMPT:-1010 128}
CAPTION_TOKENS=${BENCH_CAPTION_TOKENS:-128}
THREADS=${BENCH_THREADS:-2}
REPEATS=${BENCH_REPEATS:-3}
INT8_KERNELS=${BENCH_INT8_KERNELS-avxvnni avx2}
LONG_CONTEXT=${BENCH_LONG_CONTEXT-1010}
[[ -f "$MODEL/config.json" ]] || die "no checkpoint at $MODEL (bench/engine.sh writes it)"
for tool in jq awk; do command -v "$tool" >/dev/null || die "$tool is needed"; done
bench_lock
densecap_binary
RUNDIR=$(mktemp -d)
trap 'rm -rf "$RUNDIR"' EXIT

# run KEY [ENV=VALUE...] -- ARGS...: one `densecap bench llm` run, its JSON in $RUNDIR/KEY.json.
run() {
    local key=$1 environment=()
    shift
    while [[ $1 != -- ]]; do environment+=("$1"); shift; done
    shift
    local command=(env -u OPENBLAS_CORETYPE "${environment[@]}" "$DENSECAP" bench llm --model "$MODEL" --threads "$THREADS" "$@")
    log "$(shell_words "${command[@]}")"
    "${command[@]}" >"$RUNDIR/$key.json" 2>"$RUNDIR/$key.log" || die "$key failed: $(tail -3 "$RUNDIR/$key.log")"
    echo "\`$(shell_words "${command[@]}")\`" >>"$RUNDIR/commands.md"
}

echo "#### Batched decode: $BATCH sequences together against one ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "- machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- densecap $(cd "$REPO" && git rev-parse --short HEAD) ($DENSECAP_ORIGIN); model: $MODEL; $THREADS threads"
echo
echo '```'
env -u OPENBLAS_CORETYPE "$DENSECAP" doctor | grep -E '^(blas kernels|cpu features|low precision|int8 kernels|precision auto)'
echo '```'
echo
for p in $PRECISIONS; do
    run "steps-$p" -- --precision "$p" --prompt-tokens 16 --decode-tokens "$STEPS" --batch "$BATCH" --repeats "$REPEATS"
done
kernels=()
for k in $INT8_KERNELS; do
    if env -u OPENBLAS_CORETYPE "$DENSECAP" doctor | grep -E '^int8 kernels' | grep -qw "$k"; then
        kernels+=("$k")
        run "steps-int8-$k" DENSECAP_INT8_KERNEL="$k" -- --precision int8 --prompt-tokens 16 --decode-tokens "$STEPS" --batch "$BATCH" --repeats "$REPEATS"
    fi
done
echo "Decode steps after 64-token prompts ($STEPS steps; \`Qwen2Model.forwardBatch\`; one sequence and the batch alternated, best of $REPEATS each):"
echo
echo "| precision | kernels | 1 sequence tok/s | $BATCH together, total tok/s | throughput × |"
echo "|---|---|---:|---:|---:|"
for key in $(for p in $PRECISIONS; do echo "steps-$p"; done) $(for k in "${kernels[@]}"; do echo "steps-int8-$k"; done); do
    jq -r --arg key "$key" '"| \(.precision)\(if ($key | test("int8-")) then " (DENSECAP_INT8_KERNEL=" + ($key | sub("steps-int8-"; "")) + ")" else "" end) | \(if .precision == "int8" then ([.kernels | scan("int8 [^;(]*")][0] | rtrimstr(" ")) elif .precision == "bf16" then (.kernels | split("; ")[0]) else "stored bf16 weights, streaming GEMV" end) | \(.batch1_decode_tok_s * 100 | round / 100) | \(.batch_decode_tok_s * 100 | round / 100) | \(.batch_speedup * 100 | round / 100)× |"' "$RUNDIR/$key.json"
done
echo
for context in $LONG_CONTEXT; do
    # The decode attention kernel, and its naive twin (DENSECAP_DECODE_ATTENTION=naive: the kernel before, same results).
    run "steps-long-$context" -- --precision int8 --prompt-tokens 16 --decode-tokens "$STEPS" --batch "$BATCH" --repeats "$REPEATS" \
        --batch-context-tokens "$context"
    run "steps-long-$context-naive" DENSECAP_DECODE_ATTENTION=naive -- --precision int8 --prompt-tokens 16 --decode-tokens "$STEPS" \
        --batch "$BATCH" --repeats "$REPEATS" --batch-context-tokens "$context"
    echo "Decode steps after $context-token prompts (int8, $STEPS steps, each attending to its sequence's $context-token prompt; alternated, best of $REPEATS each):"
    echo
    echo "| decode attention | context tokens | 1 sequence tok/s | $BATCH together, total tok/s | throughput × |"
    echo "|---|---:|---:|---:|---:|"
    for arm in "" -naive; do
        jq -r --arg arm "$arm" '"| \(if $arm == "" then "grouped kernel" else "naive twin (DENSECAP_DECODE_ATTENTION=naive)" end) | \(.batch_context_tokens) | \(.batch1_decode_tok_s * 100 | round / 100) | \(.batch_decode_tok_s * 100 | round / 100) | \(.batch_speedup * 100 | round / 100)× |"' "$RUNDIR/steps-long-$context$arm.json"
    done
    echo
done
if [[ $CAPTIONS -gt 0 ]]; then
    for prompt in $CAPTION_PROMPT; do
        run "captions-$prompt" -- --precision int8 --prompt-tokens 16 --decode-tokens "$CAPTION_TOKENS" --batch "$BATCH" \
            --captions "$CAPTIONS" --caption-prompt-tokens "$prompt"
    done
    echo "Caption-like requests (int8, \`generate\` one by one against \`generateBatch\` $BATCH at a time, as \`caption\`'s pass 2 answers;"
    echo "each request a prompt prefilled alone and $CAPTION_TOKENS answer tokens; the ids are checked equal). The decode part is"
    echo "each arm's time less the requests' prefills (requests × one prefill; both arms prefill every prompt alone):"
    echo
    echo "| requests | prompt tokens | one prefill s | one by one s | batched s | caption throughput × | decode part: one by one s | batched s | decode part × | decode steps × (same run) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for prompt in $CAPTION_PROMPT; do
        jq -r '(.captions * .caption_prefill_s) as $prefills | (.captions_one_by_one_s - $prefills) as $one | (.captions_batched_s - $prefills) as $many
            | "| \(.captions) | \(.caption_prompt_tokens) | \(.caption_prefill_s * 100 | round / 100) | \(.captions_one_by_one_s * 10 | round / 10) | \(.captions_batched_s * 10 | round / 10) | \(.caption_speedup * 100 | round / 100)× | \($one * 10 | round / 10) | \($many * 10 | round / 10) | \($one / $many * 100 | round / 100)× | \(.batch_speedup * 100 | round / 100)× |"' "$RUNDIR/captions-$prompt.json"
    done
    echo
fi
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg). Commands:"
echo
sed 's/^/- /' "$RUNDIR/commands.md"
