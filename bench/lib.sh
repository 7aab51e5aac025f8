# shellcheck shell=bash
# Helpers shared by the bench/*.sh scripts. Source it; it sets REPO (the checkout) and BENCH_DIR
# (the cache dir, created, as an absolute path). Its functions call the script's log() and die().
#
# Environment: DENSECAP_BENCH_DIR (default /var/tmp/densecap-bench).

# log MESSAGE… / die MESSAGE…: progress on stderr as `[NAME HH:MM:SS] …`, and a fatal error as
# `NAME.sh: …` (NAME: the script's name), unless the script defined its own before sourcing this.
declare -F log >/dev/null || log() { printf '[%s %s] %s\n' "$(basename "$0" .sh)" "$(date +%H:%M:%S)" "$*" >&2; }
declare -F die >/dev/null || die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${DENSECAP_BENCH_DIR:-/var/tmp/densecap-bench}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

# shell_words ARGS...: the command line as one string, quoting only the words that need it.
shell_words() {
    local word quoted=()
    for word in "$@"; do
        if [[ "$word" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then quoted+=("$word"); else quoted+=("'${word//\'/\'\\\'\'}'"); fi
    done
    echo "${quoted[*]}"
}

# bench_lock: one benchmark at a time per cache dir, since two timed runs on the same cores spoil
# each other's numbers. Waits for a running one to finish; the lock goes with the process.
bench_lock() {
    exec 9>>"$BENCH_DIR/.bench.lock"
    if ! flock -n 9; then
        log "waiting for the benchmark already running here ($(cat "$BENCH_DIR/.bench.lock.owner" 2>/dev/null || echo "unknown"))"
        flock 9
    fi
    echo "pid $$, $(basename "$0"), since $(date +%H:%M:%S)" >"$BENCH_DIR/.bench.lock.owner"
}

# densecap_binary: sets DENSECAP to the binary under test and DENSECAP_ORIGIN to where it came from.
# With DENSECAP unset, builds this checkout (`swift build -c release`, incremental).
# shellcheck disable=SC2034 # DENSECAP_ORIGIN is for the calling script's report
densecap_binary() {
    if [[ -z "${DENSECAP:-}" ]]; then
        log "swift build -c release (incremental)"
        (cd "$REPO" && swift build -c release >&2)
        DENSECAP="$REPO/.build/release/densecap"
        DENSECAP_ORIGIN="built from this checkout"
    else
        DENSECAP_ORIGIN="DENSECAP=$DENSECAP, not rebuilt"
    fi
    [[ -x "$DENSECAP" ]] || die "densecap binary not found at $DENSECAP (set DENSECAP or BENCH_PEERS_ONLY=1)"
}

# bench_header: when, which densecap (commit and DENSECAP_ORIGIN) and on what machine, on one line.
bench_header() {
    local cpu
    cpu=$(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    echo "UTC $(date -u +%Y-%m-%dT%H:%M), densecap $(cd "$REPO" && git rev-parse --short HEAD) (${DENSECAP_ORIGIN:-}), ${cpu:-unknown CPU}, $(nproc) cores"
}
