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

# python-pptx (and msoffcrypto-tool, for the password-protected deck) make
# the test decks, in a virtualenv of Debian's python3.
export STRATA_PYTHON="$HOME/.cache/strata-tools/pyenv/bin/python"
if ! "$STRATA_PYTHON" -c 'import pptx, msoffcrypto' 2>/dev/null; then
  /usr/bin/python3 -m venv "$HOME/.cache/strata-tools/pyenv"
  "$STRATA_PYTHON" -m pip install --quiet --disable-pip-version-check python-pptx==1.0.2 msoffcrypto-tool==6.1.0
fi

# A strict S3-speaking server for the storage tests and a throwaway
# PostgreSQL cluster for the queue tests.
source scripts/servers.sh
trap 'strata_cleanup; rm -f "${log:-}"' EXIT
start_s3s strata-test strata-test-secret
start_postgres
export STRATA_S3S_FS STRATA_TEST_S3_ENDPOINT="$STRATA_S3_URL" STRATA_TEST_S3_ROOT="$STRATA_S3_DIR" \
  STRATA_TEST_POSTGRES_URL="$STRATA_PG_URL"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
