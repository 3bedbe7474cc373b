# Sourced by the backend benchmarks: a moto server as the S3 origin and a Trove attached to it, both on free
# loopback ports, stopped (by PID) and cleaned up on exit.
#
# Provides: WORK (temp dir), MPORT, TPORT, start_moto, start_trove_origin, trove_config BUCKET FILE, start_trove
# CONFIG (sets TPID),
# wait_http URL. Expects TROVE (the binary) to be set.

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port) TPORT=$(free_port)

wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

start_moto() {
  compat-tests/.venv/bin/moto_server -H 127.0.0.1 -p "$MPORT" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$MPORT/"
}

# start_trove_origin: a second release Trove on MPORT instead of moto (a fast S3 origin), with the credentials
# ORIGIN_KEY / ORIGIN_SECRET.
start_trove_origin() {
  TROVE_ACCESS_KEY=$ORIGIN_KEY TROVE_SECRET_KEY=$ORIGIN_SECRET TROVE_STORAGE__FSYNC=false \
    "$TROVE" serve --listen "127.0.0.1:$MPORT" --mountpath "$WORK/origin" >"$WORK/origin.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$MPORT/v1/health"
}
ORIGIN_KEY=${ORIGIN_KEY:-moto} ORIGIN_SECRET=${ORIGIN_SECRET:-moto}

# trove_config BUCKET FILE: a config with the origin (moto) as the AWS backend and s3://BUCKET attached under
# its name.
trove_config() {
  cat >"$2" <<TOML
[backends.aws]
endpoint = "http://127.0.0.1:$MPORT"
region = "us-east-1"
access_key = "$ORIGIN_KEY"
secret_key = "$ORIGIN_SECRET"
path_style = true

[[buckets]]
name = "$1"
source = "s3://$1"
TOML
}

# start_trove CONFIG: a fresh data directory each time; TPID is the process.
start_trove() {
  rm -rf "$WORK/data"
  "$TROVE" serve --config "$1" --listen "127.0.0.1:$TPORT" --mountpath "$WORK/data" >"$WORK/trove.log" 2>&1 &
  TPID=$!
  PIDS+=($TPID)
  wait_http "http://127.0.0.1:$TPORT/v1/health"
}
