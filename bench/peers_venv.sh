#!/usr/bin/env bash
# The Python venv of the engine benchmark's peers: PyTorch fp32 (bench/llm_torch.py) and
# llama.cpp's GGUF converter (bench/convert_gguf.py). Creates it once under the cache dir and
# prints the path of its python on stdout; progress goes to stderr.
#
# Usage: bench/peers_venv.sh
#
# Torch: machines set up like ours carry the CPU-only wheel torch==2.13.0+cpu in a pip find-links
# directory (PIP_FIND_LINKS=/opt/wheels, not on PyPI); a fresh machine falls back to plain PyPI
# torch (the CUDA build, about 5 GB; it runs on the CPU all the same). transformers stays 4.x so
# that config.json keeps the published keys (feasibility §6); sentencepiece, pyyaml, tqdm and
# requests are what convert_hf_to_gguf.py and the vendored gguf-py import.
#
# Environment:
#   DENSECAP_BENCH_DIR   cache dir (default /var/tmp/densecap-bench); the venv is venv-peers/
#   BENCH_TORCH          torch requirement(s) instead of the default
#                        (e.g. "torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu")
#   BENCH_PEERS_PIP      the other requirements
#                        (default "transformers>=4.46,<5 tokenizers safetensors numpy sentencepiece
#                        pyyaml tqdm requests")
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$BENCH_DIR/venv-peers"
PREFERRED_TORCH="torch==2.13.0+cpu"
read -r -a PEERS_PIP <<<"${BENCH_PEERS_PIP:-transformers>=4.46,<5 tokenizers safetensors numpy sentencepiece pyyaml tqdm requests}"
STAMP="$VENV/.densecap-bench-stamp"
STAMP_TEXT="torch=${BENCH_TORCH:-$PREFERRED_TORCH|torch} pip=${PEERS_PIP[*]}"

log() { printf '[peers-venv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
    echo "$VENV/bin/python"
    exit 0
fi

start=$(date +%s)
[[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; python3 -m venv "$VENV"; }
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if [[ -n "${BENCH_TORCH:-}" ]]; then
    read -r -a torch_req <<<"$BENCH_TORCH"
    log "installing ${torch_req[*]}"
    "${pip[@]}" "${torch_req[@]}" >&2
elif log "installing $PREFERRED_TORCH (local find-links wheel)" && "${pip[@]}" "$PREFERRED_TORCH" >&2; then
    :
else
    log "$PREFERRED_TORCH is not available here; installing torch from PyPI (CUDA build, about 5 GB, runs on the CPU)"
    "${pip[@]}" torch >&2
fi
log "installing ${PEERS_PIP[*]}"
"${pip[@]}" "${PEERS_PIP[@]}" >&2
echo "$STAMP_TEXT" >"$STAMP"
log "venv ready in $(($(date +%s) - start)) s"
echo "$VENV/bin/python"
