#!/usr/bin/env bash
# Fuzzes the parsers of untrusted model files (safetensors headers and data, the config.json files
# of an NVILA checkpoint) with libFuzzer for a fixed time, under AddressSanitizer.
#
#   tools/fuzz_model_files.sh [SECONDS]      (default 120)
#
# Builds Engine and what it imports with coverage instrumentation and ASan into .build/fuzz (a
# build path of its own: the normal build is untouched), links tools/fuzz/ModelFileFuzz.swift
# against it, seeds a corpus from the test fixtures (Tests/EngineTests/Fixtures) and runs. Exits
# non-zero on any crash, sanitizer report, hang (10 s per input) or harness finding (an error that
# is not a typed one-line error); the input that caused it is saved under .build/fuzz/findings/.
# Prints libFuzzer's final statistics (executions, coverage).
set -euo pipefail

seconds=${1:-120}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/.build/fuzz
cd "$root"

echo "== building Engine with -sanitize=fuzzer,address (.build/fuzz)" >&2
swift build --build-path "$build" --target Engine \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >&2
bin=$(swift build --build-path "$build" --show-bin-path)

echo "== linking the fuzz target" >&2
openblas_include=$(pkg-config --cflags-only-I openblas)
mapfile -t objects < <(find "$bin" -path '*.build/*.o' | sort)
swiftc -sanitize=fuzzer,address -parse-as-library -g -module-name ModelFileFuzz \
    -I "$bin/Modules" $openblas_include \
    -Xcc -fmodule-map-file="$root/Sources/COpenBLAS/module.modulemap" \
    -Xcc -fmodule-map-file="$bin/CKernels.build/module.modulemap" \
    -Xcc -I"$root/Sources/CKernels/include" \
    tools/fuzz/ModelFileFuzz.swift "${objects[@]}" -o "$build/fuzz-model-files"

echo "== seed corpus from the test fixtures" >&2
fixtures=Tests/EngineTests/Fixtures
seeds=$build/seeds
rm -rf "$seeds" && mkdir -p "$seeds" "$build/corpus" "$build/findings"
n=0
while IFS= read -r file; do
    # Byte 0 selects the kind (0: safetensors); large files keep their header and 4 KiB of data.
    header=$(od -An -t u8 -N8 "$file" | tr -d ' ')
    n=$((n + 1))
    { printf '\x00'; head -c $((8 + header + 4096)) "$file"; } > "$seeds/safetensors-$n"
done < <(find "$fixtures" -name '*.safetensors' | sort)
# Kinds 1–4: the checkpoint's config files.
shopt -s nullglob
seed_configs() {
    local kind=$1
    shift
    for file in "$@"; do
        n=$((n + 1))
        { printf "\\x0$kind"; cat "$file"; } > "$seeds/config$kind-$n"
    done
}
seed_configs 1 "$fixtures"/tiny-nvila*/config.json
seed_configs 2 "$fixtures"/*/llm/config.json "$fixtures"/tiny-qwen2*/config.json
seed_configs 3 "$fixtures"/*/vision_tower/config.json
seed_configs 4 "$fixtures"/*/mm_projector/config.json
echo "$(ls "$seeds" | wc -l) seeds" >&2

echo "== fuzzing for $seconds s" >&2
set +e
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "$build/fuzz-model-files" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -detect_leaks=0 \
    -print_final_stats=1 -artifact_prefix="$build/findings/" "$build/corpus" "$seeds" 2> "$build/fuzz.log"
status=$?
set -e
grep -E '^stat::|^#[0-9]+ *DONE|ERROR|==ERROR|Fatal error|deadly signal|timeout' "$build/fuzz.log" || true
if [ "$status" -ne 0 ]; then
    echo "fuzz_model_files: FAILED (libFuzzer exit $status); log $build/fuzz.log, inputs in $build/findings/" >&2
    exit 1
fi
echo "fuzz_model_files: no crash, hang or untyped error in $seconds s (log $build/fuzz.log)" >&2
