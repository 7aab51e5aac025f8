#!/usr/bin/env bash
# Installs what densecap builds and tests with on Debian 12, only what is missing:
# FFmpeg's libraries and CLI (tests make their clips with it; DejaVu for their clock overlay and
# the needle-in-a-haystack heatmap), OpenBLAS, Cairo, pkg-config, SQLite (the archive's embedded
# store), PostgreSQL (the archive tests start a server of their own) and Python's venv (the openai
# client check against `densecap serve`).
# Swift itself must be on PATH or in /opt/swift (Debian 12 does not package it).
set -euo pipefail

packages=(libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libopenblas-dev libcairo2-dev fonts-dejavu-core pkg-config ffmpeg
          libsqlite3-dev postgresql)
# The openai client check (tools/openai_check.sh) makes a venv: Debian's python3 needs python3-venv.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then packages+=(python3 python3-venv); fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "setup: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    else
        echo "setup: no Swift toolchain found (need Swift 6; put it on PATH or in /opt/swift)" >&2
        exit 1
    fi
fi
