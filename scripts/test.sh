#!/usr/bin/env bash
# The test command: set-up, build, run every test. Usage: scripts/test.sh [swift test options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build --build-tests
swift test "$@"
