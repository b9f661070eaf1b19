#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: print `strata caps`, run a short hardware
# transcode (--hw nvidia: NVDEC decode, plus NVENC and CUDA scaling where the
# card has them) and check what it made. Runs in well under 5 minutes.
#
#   scripts/gpu-check.sh [STRATA_BINARY]   (default: build a release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
strata=${1:-}
if [ -z "$strata" ]; then
  cargo build --release --locked -q -p strata
  strata="$CARGO_TARGET_DIR/release/strata"
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi finds none); nothing to check" >&2
  exit 77
fi
nvidia-smi -L

echo "== strata caps"
timeout 60 "$strata" caps
timeout 60 "$strata" caps --json >caps.json.tmp
if ! grep -q '"vendor": "nvidia"' caps.json.tmp; then
  rm -f caps.json.tmp
  echo "gpu-check: FAIL: the GPU is there but GStreamer registers no nvcodec element (is gstreamer1.0-plugins-bad installed, and libnvidia-encode/libnvcuvid?)" >&2
  exit 1
fi
rm -f caps.json.tmp

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STRATA_FIXTURE_SECS=10
input=$(bash fixtures/make-media.sh 1080p30-av "$work/in")

echo "== strata transcode --hw nvidia"
start=$(date +%s.%N)
timeout 180 "$strata" transcode "$input" -o "$work/out" --hw nvidia
echo "wall: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s"
test -s "$work/out/master.m3u8" || { echo "gpu-check: FAIL: no master playlist" >&2; exit 1; }
python3 - "$work/out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
hw = r["hardware"]
print(json.dumps(hw, indent=2))
assert r["checks"]["verify"] == "passed", r["checks"]
assert hw["decoder"].startswith("nv"), f"decoded by {hw['decoder']}, not NVDEC"
gpu_rungs = [v for v in hw["video"] if v["vendor"] == "nvidia"]
print(f"decoder {hw['decoder']}, frames in {hw['frames_in']} memory, "
      f"{len(gpu_rungs)} of {len(hw['video'])} rungs on NVENC, encode {r['encode_fps']:.0f} fps")
PY
echo "gpu-check: OK"
