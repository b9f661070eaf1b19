#!/usr/bin/env bash
# Quick start: install what is missing, generate a 13 s 1080p30 clip with
# audio, and transcode it into ./demo-out (master.m3u8, renditions, report.json).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
input=$(bash fixtures/make-media.sh 1080p30-av fixtures/cache)
cargo run --quiet --locked -p strata -- transcode "$input" -o demo-out "$@"
echo "published: $(pwd)/demo-out/master.m3u8"
