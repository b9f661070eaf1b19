#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then
# formatting, lints, and every test (unit, real pipelines, hls.js playback).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"

# The player used by the playback tests (hls.js + playwright-core).
if [ ! -d fixtures/player/node_modules/hls.js ] || [ ! -d fixtures/player/node_modules/playwright-core ]; then
  (cd fixtures/player && npm install --no-audit --no-fund --loglevel=error)
fi

# A strict S3-speaking server for the storage tests (0.15+ needs rustc 1.96).
tools="$HOME/.cache/strata-tools"
export STRATA_S3S_FS="$tools/bin/s3s-fs"
if [ ! -x "$STRATA_S3S_FS" ]; then
  cargo install --locked --quiet s3s-fs@0.14.1 --features binary --root "$tools"
fi
s3_root=$(mktemp -d)
# A port nobody answers on.
while s3_port=$((20000 + RANDOM % 30000)); (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; do :; done
"$STRATA_S3S_FS" --host 127.0.0.1 --port "$s3_port" --access-key strata-test --secret-key strata-test-secret "$s3_root" \
  >"$s3_root.log" 2>&1 &
s3_pid=$!
# A throwaway PostgreSQL cluster for the queue tests. initdb refuses to run
# as root, so the cluster belongs to the postgres user.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d)
chown postgres "$pg_dir"
while pg_port=$((20000 + RANDOM % 30000)); (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null; do :; done
su postgres -c "$pg_bin/initdb -D $pg_dir/data -A trust -U postgres" >/dev/null
su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/log -w -o '-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1' start" >/dev/null
export STRATA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

cleanup() {
  kill "$s3_pid" 2>/dev/null || true
  su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$s3_root" "$s3_root.log" "$pg_dir" "${log:-}"
}
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break; sleep 0.1; done
export STRATA_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port" STRATA_TEST_S3_ROOT="$s3_root"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
