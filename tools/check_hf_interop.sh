#!/usr/bin/env bash
# Checks that densecap and huggingface_hub share one cache, both ways (not part of swift test):
#  (a) a cache filled by huggingface_hub.snapshot_download is listed and used by densecap
#      (models list, --model ORG/NAME offline, models pull downloads nothing);
#  (b) a cache filled by `densecap models pull` is used by huggingface_hub with HF_HUB_OFFLINE=1;
#  and the two caches have the same blobs/, refs/ and snapshots/ (names, symlink targets, bytes).
# The Hub is tools/hf_interop_server.py on 127.0.0.1, serving the tiny Qwen2 engine fixture as
# test-org/tiny-qwen2 (model.safetensors through an LFS-style redirect). huggingface_hub comes from
# PyPI into a throwaway venv (HF_INTEROP_VERSION pins it, e.g. HF_INTEROP_VERSION=0.36.0).
#
# usage: tools/check_hf_interop.sh   (DENSECAP_BIN=path/to/densecap to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

work=$(mktemp -d /tmp/densecap-interop.XXXXXX)
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

bin=${DENSECAP_BIN:-}
if [[ -z "$bin" ]]; then
    swift build --product densecap -j 2 >&2
    bin="$(swift build --show-bin-path)/densecap"
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "huggingface_hub${HF_INTEROP_VERSION:+==$HF_INTEROP_VERSION}"
py="$work/venv/bin/python"
echo "huggingface_hub $("$py" -c 'import huggingface_hub; print(huggingface_hub.__version__)')"

repo=test-org/tiny-qwen2
fixture=Tests/EngineTests/Fixtures/tiny-qwen2
log="$work/requests.log"
python3 tools/hf_interop_server.py --port-file "$work/port" --log "$log" "$repo=$fixture" &
server_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
endpoint="http://127.0.0.1:$(cat "$work/port")"

unset HF_TOKEN HF_HOME HF_HUB_CACHE HF_HUB_OFFLINE HF_ENDPOINT HUGGING_FACE_HUB_TOKEN
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_XET=1 HF_TOKEN_PATH="$work/no-token"
passed=0 failed=0
check() {  # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        echo "PASS: $name"
        passed=$((passed + 1))
    else
        echo "FAIL: $name"
        failed=$((failed + 1))
    fi
}
no_file_downloads() { ! grep -Eq '^GET (/[^/]+/[^/]+/resolve/|/lfs/)' "$log"; }

# (a) huggingface_hub fills the cache; densecap uses it.
hf_cache="$work/hf-cache"
hf_path=$(HF_HUB_CACHE="$hf_cache" "$py" -c "
import huggingface_hub as h
print(h.snapshot_download('$repo', endpoint='$endpoint'))")
echo "huggingface_hub snapshot: $hf_path"
: >"$log"
listing=$(HF_HUB_CACHE="$hf_cache" HF_HUB_OFFLINE=1 "$bin" models list --json)
check "(a) models list shows the HF-made snapshot" "$py" -c "
import json, sys
m = json.loads(sys.argv[1])['models']
assert [x['repo'] for x in m] == ['$repo'], m
r = m[0]['revisions'][0]
assert r['refs'] == ['main'] and r['path'] == '$hf_path' and r['files'] == 6, r" "$listing"
check "(a) generate --model $repo runs offline from the HF cache" \
    sh -c '"$@" >/dev/null' - env HF_HUB_CACHE="$hf_cache" HF_HUB_OFFLINE=1 "$bin" generate -q --model "$repo" hi --max-new-tokens 4
pulled=$(HF_HUB_CACHE="$hf_cache" HF_ENDPOINT="$endpoint" "$bin" models pull -q "$repo")
check "(a) models pull on the HF cache downloads nothing" test "$pulled" = "$hf_path"
check "(a) ... no file requests reached the server" no_file_downloads

# (b) densecap fills the cache; huggingface_hub uses it.
dc_cache="$work/dc-cache"
dc_path=$(HF_HUB_CACHE="$dc_cache" HF_ENDPOINT="$endpoint" "$bin" models pull -q "$repo")
echo "densecap snapshot: $dc_path"
: >"$log"
check "(b) huggingface_hub offline uses densecap's cache" env HF_HUB_CACHE="$dc_cache" HF_HUB_OFFLINE=1 "$py" -c "
import filecmp, os, huggingface_hub as h
p = h.snapshot_download('$repo')
assert p == '$dc_path', p
f = h.hf_hub_download('$repo', 'model.safetensors')
assert filecmp.cmp(f, '$fixture/model.safetensors', shallow=False)
info = h.scan_cache_dir()
assert not info.warnings, info.warnings
(r,) = info.repos
size = sum(os.path.getsize(os.path.join('$fixture', n)) for n in os.listdir('$fixture'))
assert r.repo_id == '$repo' and r.size_on_disk == size and r.nb_files == 6, (r.repo_id, r.size_on_disk, size)
assert {ref for rev in r.revisions for ref in rev.refs} == {'main'}"
check "(b) huggingface_hub online finds everything cached" env HF_HUB_CACHE="$dc_cache" "$py" -c "
import huggingface_hub as h
assert h.snapshot_download('$repo', endpoint='$endpoint') == '$dc_path'"
check "(b) ... no file requests reached the server" no_file_downloads

# The same layout from both: names, symlink targets and bytes of blobs/, refs/, snapshots/.
layout() { (cd "$1/models--test-org--tiny-qwen2" && find blobs refs snapshots -printf '%p %y %l\n' | sort && cat refs/main && sha256sum blobs/*); }
check "both caches have the same layout" diff <(layout "$hf_cache") <(layout "$dc_cache")

echo "interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
