#!/usr/bin/env bash
# Runs tools/openai_check.py (the official `openai` client from PyPI) against `densecap serve` on
# an ephemeral loopback port with a tiny checkpoint from the engine fixtures. Fails when the
# check fails, the server does not become ready in time, or the server dies.
#
# Usage: tools/openai_check.sh [DENSECAP_BINARY]   (default .build/debug/densecap)
# Environment: DENSECAP_OPENAI_VENV  the venv (default /tmp/densecap-openai-venv; made once,
#              re-made when its stamp differs); OPENAI_CHECK_TIMEOUT seconds for the whole check (300).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/densecap}
venv=${DENSECAP_OPENAI_VENV:-/tmp/densecap-openai-venv}
requirement="openai>=1.40"
limit=${OPENAI_CHECK_TIMEOUT:-300}
log() { echo "[openai-check] $*" >&2; }

[[ -x "$binary" ]] || { log "no densecap binary at $binary"; exit 1; }
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.stamp" 2>/dev/null)" != "$requirement" ]]; then
    log "creating $venv ($requirement)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    timeout 240 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
    echo "$requirement" >"$venv/.stamp"
fi

work=$(mktemp -d /tmp/densecap-openai-check.XXXXXX)
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fixtures=Tests/EngineTests/Fixtures
export DENSECAP_CHECK_KEY="check-$RANDOM$RANDOM"
"$binary" serve --model "$fixtures/tiny-nvila-lite" --served-model-name tiny-nvila-lite --port 0 \
    --api-key-env DENSECAP_CHECK_KEY >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

deadline=$((SECONDS + limit))
base=
while [[ -z "$base" ]]; do
    base=$(head -n 1 "$work/stdout" 2>/dev/null || true)
    kill -0 "$server_pid" 2>/dev/null || { log "the server exited:"; cat "$work/stderr" >&2; exit 1; }
    ((SECONDS < deadline)) || { log "the server printed no address in ${limit} s"; exit 1; }
    [[ -n "$base" ]] || sleep 0.2
done
log "server at $base"
until python3 - "$base/health" <<'PY' 2>/dev/null
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200 else 1)
PY
do
    kill -0 "$server_pid" 2>/dev/null || { log "the server exited:"; cat "$work/stderr" >&2; exit 1; }
    ((SECONDS < deadline)) || { log "the server was not ready in ${limit} s"; exit 1; }
    sleep 0.3
done

timeout $((deadline - SECONDS > 10 ? deadline - SECONDS : 10)) "$venv/bin/python" tools/openai_check.py \
    --base-url "$base/v1" --model tiny-nvila-lite --api-key "$DENSECAP_CHECK_KEY" --image "$fixtures/nvila-image.png" \
    || { log "check failed; server log:"; tail -n 20 "$work/stderr" >&2; exit 1; }

kill -TERM "$server_pid"
wait "$server_pid" || { log "the server exited with status $? after SIGTERM"; exit 1; }
server_pid=
log "ok"
