#!/usr/bin/env bash
# Encoder comparison on the benchmark input with `strata bench`: x264
# ultrafast/veryfast/medium and openh264 on every rung of the default
# ladder. Writes the reports into benches/out/encoders (bench.md is the
# table for RESULTS.md).
#
#   benches/encoders.sh [SECONDS]   (default 10 s of bench-grain-1080p30-20s)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
source benches/common.sh
input=$(bash fixtures/make-media.sh bench-grain-1080p30-20s fixtures/cache)
out=benches/out/encoders
rm -rf "$out"
"$strata" bench "$input" -o "$out" \
  --encoders x264:veryfast,x264:ultrafast,x264:medium,openh264 --duration "$secs"
