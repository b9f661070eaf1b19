#!/usr/bin/env bash
# The slides package for a 20-slide deck (python-pptx, 16:9, bullets and
# notes): `strata slides` end to end (LibreOffice to PDF, hayro at 1920 px,
# thumbnails, slides.json), cold (page cache dropped, where allowed) and then
# warm, plus the same deck as a ready PDF (rasterising only). Prints a
# Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
python=${STRATA_PYTHON:-$HOME/.cache/strata-tools/pyenv/bin/python}
"$python" -c 'import pptx' 2>/dev/null || {
  /usr/bin/python3 -m venv "$HOME/.cache/strata-tools/pyenv"
  "$python" -m pip install --quiet python-pptx==1.0.2 msoffcrypto-tool==6.1.0
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" fixtures/make-deck.py deck20 "$work/deck20.pptx"
soffice --headless --norestore -env:UserInstallation="file://$work/profile" \
  --convert-to pdf --outdir "$work" "$work/deck20.pptx" >/dev/null 2>&1

run() { # wall seconds of one `strata slides` run
  local t0 t1; rm -rf "$work/out"; t0=$(date +%s.%N)
  "$strata" slides "$1" -o "$work/out" >/dev/null
  t1=$(date +%s.%N); awk "BEGIN{printf \"%.2f\", $t1 - $t0}"
}
cold=""
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cold=" (page cache dropped)"; fi
c=$(run "$work/deck20.pptx")
w1=$(run "$work/deck20.pptx"); w2=$(run "$work/deck20.pptx")
p1=$(run "$work/deck20.pdf"); p2=$(run "$work/deck20.pdf")
printf '| run | wall s |\n|---|---|\n'
printf '| pptx, first run%s | %s |\n' "$cold" "$c"
printf '| pptx, warm | %s, %s |\n' "$w1" "$w2"
printf '| the same deck as PDF (rasterise + thumbnails + JSON only) | %s, %s |\n' "$p1" "$p2"
