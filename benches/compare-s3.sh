#!/usr/bin/env bash
# Whole-job time with local output vs S3 output (s3s-fs on loopback), same
# input and the default 4-rung ladder. Uploads overlap the encode, so S3
# should add little. Prints a Markdown table.
#
#   benches/compare-s3.sh [RUNS] [SHAPE]   (default 1 run, bench-noise-1080p30-60s:
#                                           noise, so every rung spends its full bit rate)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
shape=${2:-bench-noise-1080p30-60s}

source benches/common.sh
s3s="$HOME/.cache/strata-tools/bin/s3s-fs"
[ -x "$s3s" ] || cargo install --locked --quiet s3s-fs@0.14.1 --features binary --root "$HOME/.cache/strata-tools"
input=$(bash fixtures/make-media.sh "$shape" fixtures/cache)

work=$(mktemp -d)
while port=$((20000 + RANDOM % 30000)); (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do :; done
mkdir -p "$work/s3/vod"
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret STRATA_S3_ENDPOINT="http://127.0.0.1:$port"

best() { # best wall seconds of $runs runs of "$@"
  local b=""
  for _ in $(seq "$runs"); do
    local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    local w; w=$(awk "BEGIN{print $t1 - $t0}")
    if [ -z "$b" ] || awk "BEGIN{exit !($w < $b)}"; then b=$w; fi
  done
  echo "$b"
}
local_s=$(best "$strata" transcode "$input" -o "$work/local")
s3_s=$(best "$strata" transcode "$input" -o "s3://vod/bench/")
bytes=$(du -sb "$work/local" | cut -f1)
printf '| output | wall s |\n|---|---|\n'
printf '| local disk | %.1f |\n' "$local_s"
printf '| S3 (s3s-fs, loopback) | %.1f |\n' "$s3_s"
printf '| S3 overhead | %+.1f %% (%d MB uploaded) |\n' "$(awk "BEGIN{print ($s3_s / $local_s - 1) * 100}")" $((bytes / 1000000))
