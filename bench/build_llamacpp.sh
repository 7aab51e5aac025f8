#!/usr/bin/env bash
# llama.cpp peer of the engine benchmark: fetches the llama.cpp source that PyPI's
# llama-cpp-python sdist vendors, builds only `llama-bench` with CMake, and converts a transformers
# checkpoint to an F32 GGUF with the vendored convert_hf_to_gguf.py (through bench/convert_gguf.py,
# which accepts the tiny test tokenizer's unknown pre-tokenizer hash). Everything lives in the cache
# dir; nothing of llama.cpp is committed. Each step is skipped when its output is already there.
#
# Usage: bench/build_llamacpp.sh [--fetch-only] [MODEL_DIR [OUT.gguf]]
#   --fetch-only  download and unpack the sdist, then stop (no build, no conversion)
#   MODEL_DIR     convert this checkpoint (default OUT.gguf: $DENSECAP_BENCH_DIR/gguf/<name>-f32.gguf);
#                 it is converted again when config.json or a weight file is newer than the GGUF
#
# Prints key=value lines on stdout for bench/engine.sh: llamacpp_pypi, llamacpp_src, llamacpp_build_id,
# llama_bench, build_s (seconds the build took when it ran), and with MODEL_DIR gguf, gguf_bytes,
# convert_s. Progress and tool output go to stderr; full logs to $DENSECAP_BENCH_DIR/logs.
#
# Environment:
#   DENSECAP_BENCH_DIR     cache dir (default /var/tmp/densecap-bench); llama.cpp under llamacpp/
#   BENCH_LLAMACPP_PYPI    the sdist to build (default llama-cpp-python==0.3.36)
#   BENCH_BUILD_JOBS       parallel compile jobs (default: number of cores)
#   CMAKE                  cmake binary; when unset and no cmake >= 3.14 is on PATH, PyPI's `cmake`
#                          is installed into the peers venv
set -euo pipefail

FETCH_ONLY=0
POSITIONAL=()
for arg in "$@"; do
    case "$arg" in
        --fetch-only) FETCH_ONLY=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        -*) echo "build_llamacpp.sh: unknown option '$arg'" >&2; exit 2 ;;
        *) POSITIONAL+=("$arg") ;;
    esac
done
((${#POSITIONAL[@]} <= 2)) || { echo "build_llamacpp.sh: too many arguments" >&2; exit 2; }
MODEL_DIR=${POSITIONAL[0]:-}
GGUF=${POSITIONAL[1]:-}

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC=${BENCH_LLAMACPP_PYPI:-llama-cpp-python==0.3.36}
JOBS=${BENCH_BUILD_JOBS:-$(nproc)}
LLAMA_DIR="$BENCH_DIR/llamacpp"
LOGDIR="$BENCH_DIR/logs"
mkdir -p "$LLAMA_DIR/sdist" "$LOGDIR"

log() { printf '[llamacpp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build_llamacpp.sh: %s\n' "$*" >&2; exit 1; }

[[ "$SPEC" =~ ^llama[-_]cpp[-_]python==([0-9][0-9A-Za-z.]*)$ ]] ||
    die "BENCH_LLAMACPP_PYPI must pin one version, e.g. llama-cpp-python==0.3.36 (got '$SPEC')"
VERSION=${BASH_REMATCH[1]}
SRC_ROOT="$LLAMA_DIR/src-$VERSION"
SRC="$SRC_ROOT/vendor/llama.cpp"
BUILD="$LLAMA_DIR/build-$VERSION"
LLAMA_BENCH="$BUILD/bin/llama-bench"
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF)

# ---------------------------------------------------------------------------------------------
# Source: the sdist from PyPI (pip runs its PEP 517 metadata step, about a minute)
# ---------------------------------------------------------------------------------------------
if [[ ! -f "$SRC/convert_hf_to_gguf.py" ]]; then
    tarball=$(find "$LLAMA_DIR/sdist" -maxdepth 1 -name "llama_cpp_python-$VERSION.tar.gz" | head -n 1)
    if [[ -z "$tarball" ]]; then
        log "pip download --no-deps --no-binary llama-cpp-python $SPEC"
        start=$(date +%s)
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
            -d "$LLAMA_DIR/sdist" "$SPEC" >&2
        tarball="$LLAMA_DIR/sdist/llama_cpp_python-$VERSION.tar.gz"
        [[ -f "$tarball" ]] || die "pip download did not leave $tarball"
        log "downloaded $(basename "$tarball") ($(($(stat -c %s "$tarball") / 1048576)) MiB) in $(($(date +%s) - start)) s"
    fi
    log "unpacking $(basename "$tarball")"
    rm -rf "$SRC_ROOT.part"
    mkdir -p "$SRC_ROOT.part"
    tar -xzf "$tarball" -C "$SRC_ROOT.part" --strip-components=1
    [[ -f "$SRC_ROOT.part/vendor/llama.cpp/convert_hf_to_gguf.py" ]] ||
        die "$(basename "$tarball") carries no vendor/llama.cpp/convert_hf_to_gguf.py"
    rm -rf "$SRC_ROOT"
    mv "$SRC_ROOT.part" "$SRC_ROOT"
fi

# The sdist has no .git, so llama.cpp's own build info says "unknown". Identify the source by the
# sdist's version, ggml's version and a hash of the vendored C/C++ sources that llama-bench compiles.
ggml_version() {
    local f="$SRC/ggml/CMakeLists.txt" major minor patch
    major=$(sed -n 's/^set(GGML_VERSION_MAJOR \([0-9]*\)).*/\1/p' "$f")
    minor=$(sed -n 's/^set(GGML_VERSION_MINOR \([0-9]*\)).*/\1/p' "$f")
    patch=$(sed -n 's/^set(GGML_VERSION_PATCH \([0-9]*\)).*/\1/p' "$f")
    [[ -n "$major" ]] && echo "ggml $major.$minor.$patch" || echo "ggml ?"
}
source_hash() {
    (cd "$SRC" && find src ggml/src tools/llama-bench -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' \) -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
}
BUILD_ID="llama-cpp-python $VERSION sdist, $(ggml_version), source sha256 $(source_hash)"

emit() { printf '%s=%s\n' "$1" "$2"; }
emit llamacpp_pypi "$SPEC"
emit llamacpp_src "$SRC"
emit llamacpp_build_id "$BUILD_ID"
((FETCH_ONLY)) && exit 0

# ---------------------------------------------------------------------------------------------
# Build: llama-bench only
# ---------------------------------------------------------------------------------------------
find_cmake() {
    local c v
    for c in "${CMAKE:-}" "$(command -v cmake || true)"; do
        [[ -n "$c" && -x "$c" ]] || continue
        v=$("$c" --version | sed -n '1s/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
        if [[ -n "$v" ]] && awk -v v="$v" 'BEGIN { split(v, a, "."); exit !(a[1] > 3 || (a[1] == 3 && a[2] >= 14)) }'; then
            echo "$c"
            return
        fi
    done
    local py
    py=$("$REPO/bench/peers_venv.sh")
    if [[ ! -x "$(dirname "$py")/cmake" ]]; then
        log "no cmake >= 3.14 on PATH; installing PyPI's cmake into the peers venv"
        "$py" -m pip install --quiet --disable-pip-version-check cmake >&2
    fi
    echo "$(dirname "$py")/cmake"
}

STAMP="$BUILD/densecap-build"
STAMP_TEXT="$BUILD_ID; ${CMAKE_FLAGS[*]}"
if [[ ! -x "$LLAMA_BENCH" || ! -f "$STAMP" || "$(head -n 1 "$STAMP")" != "$STAMP_TEXT" ]]; then
    CMAKE_BIN=$(find_cmake)
    rm -f "$STAMP"
    log "configuring with $("$CMAKE_BIN" --version | head -n 1) (${CMAKE_FLAGS[*]})"
    start=$(date +%s)
    "$CMAKE_BIN" -S "$SRC" -B "$BUILD" "${CMAKE_FLAGS[@]}" >"$LOGDIR/llamacpp-configure.log" 2>&1 ||
        { tail -n 30 "$LOGDIR/llamacpp-configure.log" >&2; die "cmake configure failed; see $LOGDIR/llamacpp-configure.log"; }
    log "building llama-bench with $JOBS jobs (a few minutes on 2 cores); log: $LOGDIR/llamacpp-build.log"
    "$CMAKE_BIN" --build "$BUILD" --target llama-bench -j "$JOBS" >"$LOGDIR/llamacpp-build.log" 2>&1 ||
        { tail -n 30 "$LOGDIR/llamacpp-build.log" >&2; die "llama-bench build failed; see $LOGDIR/llamacpp-build.log"; }
    [[ -x "$LLAMA_BENCH" ]] || die "the build did not produce $LLAMA_BENCH"
    build_s=$(($(date +%s) - start))
    printf '%s\nbuild_s=%s\ndate=%s\n' "$STAMP_TEXT" "$build_s" "$(date -u '+%Y-%m-%d %H:%M UTC')" >"$STAMP"
    log "llama-bench built in $build_s s"
fi
emit llama_bench "$LLAMA_BENCH"
emit build_s "$(sed -n 's/^build_s=//p' "$STAMP")"

[[ -n "$MODEL_DIR" ]] || exit 0

# ---------------------------------------------------------------------------------------------
# GGUF: F32, from the transformers checkpoint
# ---------------------------------------------------------------------------------------------
[[ -f "$MODEL_DIR/config.json" ]] || die "$MODEL_DIR: no config.json (not a transformers checkpoint)"
[[ -f "$MODEL_DIR/tokenizer.json" ]] || die "$MODEL_DIR: no tokenizer.json"
MODEL_DIR=$(cd "$MODEL_DIR" && pwd)
[[ -n "$GGUF" ]] || GGUF="$BENCH_DIR/gguf/$(basename "$MODEL_DIR")-f32.gguf"
mkdir -p "$(dirname "$GGUF")"
INFO="$GGUF.info"

fresh=1
if [[ ! -f "$GGUF" || ! -f "$INFO" || "$(sed -n 's/^source=//p' "$INFO")" != "$BUILD_ID" ]]; then
    fresh=0
elif [[ -n "$(find "$MODEL_DIR" -maxdepth 1 \( -name '*.safetensors' -o -name 'config.json' -o -name 'tokenizer*.json' \) -newer "$GGUF" -print -quit)" ]]; then
    fresh=0
fi
if ((!fresh)); then
    PY=$("$REPO/bench/peers_venv.sh")
    need_kib=$(($(du -sk "$MODEL_DIR" | cut -f1) * 2 + 1048576)) # bf16 -> f32, plus 1 GiB
    free_kib=$(df -Pk "$(dirname "$GGUF")" | awk 'NR == 2 { print $4 }')
    ((free_kib > need_kib)) || die "the F32 GGUF needs about $((need_kib / 1048576)) GiB free in $(dirname "$GGUF")"
    convert_log="$LOGDIR/llamacpp-convert-$(basename "$GGUF" .gguf).log"
    log "converting $MODEL_DIR to F32 GGUF (log: $convert_log)"
    rm -f "$GGUF" "$INFO" "$GGUF.part"
    start=$(date +%s)
    "$PY" "$REPO/bench/convert_gguf.py" "$SRC" "$MODEL_DIR" --outtype f32 --outfile "$GGUF.part" \
        >"$convert_log" 2>&1 || { tail -n 30 "$convert_log" >&2; die "conversion failed; see $convert_log"; }
    convert_s=$(($(date +%s) - start))
    mv "$GGUF.part" "$GGUF"
    printf 'source=%s\nmodel=%s\nconvert_s=%s\ndate=%s\n' "$BUILD_ID" "$MODEL_DIR" "$convert_s" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" >"$INFO"
    log "wrote $GGUF ($(($(stat -c %s "$GGUF") / 1048576)) MiB) in $convert_s s"
fi
emit gguf "$GGUF"
emit gguf_bytes "$(stat -c %s "$GGUF")"
emit convert_s "$(sed -n 's/^convert_s=//p' "$INFO")"
