#!/usr/bin/env bash
# Scale-out: N `strata worker` processes (one job each at a time) against one
# PostgreSQL queue, 40 short transcode jobs queued up front. Reports jobs per
# minute, CPU utilisation of the whole machine while the jobs ran, the claim
# query's latency and the queue's overhead per job (the part of each worker's
# busy span not spent transcoding: claim, recording the result, waking up).
# Prints a Markdown table.
#
#   benches/scale-out.sh [JOBS] [WORKER COUNTS...]   (default: 40 jobs; 1 2 4 workers)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-40}
shift || true
counts=("${@:-1 2 4}")
read -r -a counts <<<"${counts[*]}"

source benches/common.sh
input=$(bash fixtures/make-media.sh bench-short-480p-av fixtures/cache)

source scripts/servers.sh
work=$(mktemp -d)
trap 'strata_cleanup; rm -rf "$work"' EXIT
start_postgres

# busy and total jiffies of the whole machine
cpu() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

printf '| workers | jobs | wall s | jobs/min | CPU busy | claim ms (mean / p95) | queue overhead per job ms |\n'
printf '|---|---|---|---|---|---|---|\n'
for n in "${counts[@]}"; do
  db="bench_$n"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$STRATA_PG_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  queue="${STRATA_PG_URL%/*}/$db"
  : >"$work/batch"
  for j in $(seq "$jobs"); do echo "$input $work/out-$n/$j" >>"$work/batch"; done
  "$strata" submit --queue "$queue" --batch "$work/batch" >/dev/null
  read -r b0 t0 < <(cpu)
  start=$(date +%s.%N)
  pids=()
  for w in $(seq "$n"); do
    "$strata" worker --queue "$queue" --concurrency 1 --poll-ms 200 --worker-id "w$w" --log-format json \
      2>"$work/w$n-$w.log" >/dev/null &
    pids+=($!)
  done
  # Count finished jobs in the workers' own logs: cheaper than asking the
  # database, so the polling does not show up in the CPU figure.
  while [ "$(cat "$work"/w"$n"-*.log | grep -c -e '"job succeeded"' -e '"job failed"')" -lt "$jobs" ]; do
    sleep 0.1
  done
  end=$(date +%s.%N)
  read -r b1 t1 < <(cpu)
  kill -TERM "${pids[@]}"
  wait "${pids[@]}"
  failed=$(psql -tA "$queue" -c "SELECT count(*) FROM strata_jobs WHERE state <> 'succeeded'")
  [ "$failed" = 0 ] || { echo "scale-out: $failed job(s) did not succeed" >&2; exit 1; }
  python3 - "$n" "$jobs" "$start" "$end" "$b0" "$t0" "$b1" "$t1" "$work"/w"$n"-*.log <<'PY'
import json, sys, statistics
from datetime import datetime
n, jobs = int(sys.argv[1]), int(sys.argv[2])
start, end = float(sys.argv[3]), float(sys.argv[4])
b0, t0, b1, t1 = map(float, sys.argv[5:9])
claims, overhead = [], 0.0
for path in sys.argv[9:]:
    lines = [json.loads(l) for l in open(path)]
    ts = lambda l: datetime.fromisoformat(l["timestamp"].replace("Z", "+00:00")).timestamp()
    claimed = [l for l in lines if l.get("message") == "job claimed"]
    done = [l for l in lines if l.get("message") == "job succeeded"]
    if not claimed:
        continue
    claims += [l["claim_ms"] for l in claimed]
    # From just before the first claim to the last recorded result.
    span = ts(done[-1]) - ts(claimed[0]) + claimed[0]["claim_ms"] / 1000
    overhead += span - sum(l["seconds"] for l in done)
wall = end - start
p95 = sorted(claims)[max(0, int(len(claims) * 0.95) - 1)]
print(f"| {n} | {jobs} | {wall:.1f} | {jobs / wall * 60:.1f} | {(b1 - b0) / (t1 - t0) * 100:.0f} % "
      f"| {statistics.mean(claims):.1f} / {p95:.1f} | {overhead / jobs * 1000:.0f} |")
PY
done
