#!/usr/bin/env bash
# The test command: set-up, build, run every test. Usage: scripts/test.sh [swift test options]
# The archive tests need a real PostgreSQL server: this starts one from Debian's postgresql in a
# temporary folder (loopback only, as the postgres user when run as root, which PostgreSQL
# refuses), hands its URL to the tests in DENSECAP_TEST_POSTGRES_URL, and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build --build-tests

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "test.sh: no initdb under /usr/lib/postgresql (setup installs postgresql)" >&2; exit 1; }
pg_dir=$(mktemp -d /tmp/densecap-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$pg_dir"
    as_pg=(runuser -u postgres --)
fi
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)
stop_pg() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
trap stop_pg EXIT
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -l "$pg_dir/log" \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
export DENSECAP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

swift test "$@"

# The official openai Python client (PyPI, in a throwaway venv) against `densecap serve` on loopback.
tools/openai_check.sh "$(swift build --show-bin-path)/densecap"
