#!/usr/bin/env bash
# Whole-job benchmark: the same 4-rung ladder through ffmpeg (one process,
# libx264 veryfast, same GOP, bitrates and segment length) and through strata,
# on the same generated 60 s 1080p30 input with audio. Prints wall time, CPU
# time, peak RSS and fps for both, and their ratios.
#
#   benches/compare-ffmpeg.sh [RUNS]      (default 1 run each; the best is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}

source benches/common.sh
command -v /usr/bin/time >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
input=$(bash fixtures/make-media.sh bench-1080p30-60s fixtures/cache)
frames=1800
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ffmpeg_job() {
  rm -rf "$work/ffmpeg" && mkdir -p "$work/ffmpeg"
  ffmpeg -v error -y -i "$input" \
    -filter_complex "[0:v]split=4[a][b][c][d];[a]scale=1920:1080[v0];[b]scale=1280:720[v1];[c]scale=854:480[v2];[d]scale=640:360[v3]" \
    -map "[v0]" -map "[v1]" -map "[v2]" -map "[v3]" -map 0:a \
    -c:v libx264 -preset veryfast -bf 2 -g 360 -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*6)" \
    -b:v:0 5000k -maxrate:v:0 5000k -bufsize:v:0 3000k \
    -b:v:1 2800k -maxrate:v:1 2800k -bufsize:v:1 1680k \
    -b:v:2 1400k -maxrate:v:2 1400k -bufsize:v:2 840k \
    -b:v:3 800k -maxrate:v:3 800k -bufsize:v:3 480k \
    -c:a aac -b:a 128k -ac 2 -ar 48000 \
    -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 -master_pl_name master.m3u8 \
    -var_stream_map "v:0,agroup:aud v:1,agroup:aud v:2,agroup:aud v:3,agroup:aud a:0,agroup:aud" \
    "$work/ffmpeg/stream_%v/index.m3u8"
}
strata_job() {
  rm -rf "$work/strata"
  "$strata" transcode "$input" -o "$work/strata" >/dev/null
}

# measure NAME: runs NAME_job $runs times, keeps the fastest: "wall cpu rss_kb".
measure() {
  local best=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" bash -c "$(declare -f "$1_job"); input='$input' work='$work' strata='$strata' $1_job"
    read -r wall user sys rss <"$work/time"
    local line; line="$wall $(awk "BEGIN{print $user + $sys}") $rss"
    if [ -z "$best" ] || awk "BEGIN{exit !($wall < ${best%% *})}"; then best=$line; fi
  done
  echo "$best"
}

read -r fw fc fr <<<"$(measure ffmpeg)"
read -r sw sc sr <<<"$(measure strata)"
calc() { awk "BEGIN{print $1}"; }
printf '| tool | wall s | CPU s | peak RSS MB | fps |\n|---|---|---|---|---|\n'
printf '| ffmpeg | %.1f | %.1f | %d | %.1f |\n' "$fw" "$fc" $((fr / 1024)) "$(calc "$frames / $fw")"
printf '| strata | %.1f | %.1f | %d | %.1f |\n' "$sw" "$sc" $((sr / 1024)) "$(calc "$frames / $sw")"
printf '| strata / ffmpeg | %.2f | %.2f | %.2f | %.2f |\n' "$(calc "$sw / $fw")" "$(calc "$sc / $fc")" \
  "$(calc "$sr / $fr")" "$(calc "$fw / $sw")"
