# Throwaway servers for tests and benches; source it, then call the functions.
# Each one picks a free port, waits until the server answers, and registers
# its own cleanup in STRATA_CLEANUP (run `strata_cleanup` from an EXIT trap).

STRATA_CLEANUP=()
strata_cleanup() {
  local c
  for c in "${STRATA_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
}

# free_port: a port nobody answers on.
free_port() {
  local p
  while p=$((20000 + RANDOM % 30000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do :; done
  echo "$p"
}

wait_port() {
  local _
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "servers.sh: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

# start_postgres: a fresh cluster in a temp dir; sets STRATA_PG_URL. initdb
# refuses to run as root, so the cluster then belongs to the postgres user.
start_postgres() {
  local bin dir port as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  dir=$(mktemp -d)
  port=$(free_port)
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as=(su postgres -c); else as=(bash -c); fi
  "${as[@]}" "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
  "${as[@]}" "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-p $port -k $dir -c listen_addresses=127.0.0.1' start" >/dev/null
  STRATA_CLEANUP+=("${as[*]} '$bin/pg_ctl -D $dir/data -m immediate stop'; rm -rf '$dir'")
  STRATA_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# start_s3s ACCESS SECRET: s3s-fs 0.14.1 over a temp dir (installed once under
# ~/.cache/strata-tools; 0.15+ needs rustc 1.96); sets STRATA_S3_URL and
# STRATA_S3_DIR.
start_s3s() {
  local tools="$HOME/.cache/strata-tools" port
  STRATA_S3S_FS="$tools/bin/s3s-fs"
  if [ ! -x "$STRATA_S3S_FS" ]; then
    cargo install --locked --quiet s3s-fs@0.14.1 --features binary --root "$tools"
  fi
  STRATA_S3_DIR=$(mktemp -d)
  port=$(free_port)
  "$STRATA_S3S_FS" --host 127.0.0.1 --port "$port" --access-key "$1" --secret-key "$2" "$STRATA_S3_DIR" \
    >"$STRATA_S3_DIR.log" 2>&1 &
  STRATA_CLEANUP+=("kill $!; rm -rf '$STRATA_S3_DIR' '$STRATA_S3_DIR.log'")
  wait_port "$port"
  STRATA_S3_URL="http://127.0.0.1:$port"
}
