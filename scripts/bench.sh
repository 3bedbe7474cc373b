#!/usr/bin/env bash
# Cache-hit GET benchmark: Trove vs nginx serving the very same files, same machine, same run.
#
# Starts a release `trove serve` on a temporary mountpath, PUTs N objects of each size with `trove bench`,
# then points nginx (static files, sendfile, open_file_cache) at the objects' files inside Trove's data
# directory, so both servers read identical bytes from the same page cache. Each round measures:
#   - trove bench (signed SigV4 GETs) against Trove           (served by the GET fast path)
#   - trove bench --anonymous against Trove   (objects are public-read: no SigV4 on either side; s3s path)
#   - trove bench --anonymous against nginx   (same load tool)
# Each trove bench line ends with the server's CPU time per request, from /proc.
#   - wrk against Trove, replaying signed GETs written by `trove bench --wrk-script` (an independent load tool)
#   - wrk against nginx, the same objects                (the reference load tool)
#   - presigned GETs against Trove (trove bench --presigned)
# and then ranged GETs: 1 MiB ranges out of 256 MiB shards, trove bench and wrk (compare with the 1 MiB GETs).
# Prints one line per measurement. Needs nginx and wrk (Debian: nginx-light wrk; installed when missing and root).
#
# Environment: SIZES ["4KiB 1MiB"], OBJECTS [1000], DURATION [10], ROUNDS [2], CONN_SMALL [64], CONN_LARGE [16],
# SHARDS [4] (256 MiB each; 0 skips the ranged GETs), TROVE_ENV (extra environment for trove serve, e.g.
# TROVE_SERVER__DIRECT_READS=false for an A/B run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZES=${SIZES:-"4KiB 1MiB"} OBJECTS=${OBJECTS:-1000} DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-2}
CONN_SMALL=${CONN_SMALL:-64} CONN_LARGE=${CONN_LARGE:-16}

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "bench: needs nginx and wrk (apt-get install nginx-light wrk)" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
cargo build --release -q -p trove-gateway
TROVE=${CARGO_TARGET_DIR:-$PWD/target}/release/trove

WORK=$(mktemp -d)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TPORT=$(free_port) NPORT=$(free_port)
export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey
SHARDS=${SHARDS:-4}
# shellcheck disable=SC2086
env ${TROVE_ENV:-} "$TROVE" serve --listen "127.0.0.1:$TPORT" --mountpath "$WORK/data" >"$WORK/trove.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$TPORT/v1/health" >/dev/null && break; sleep 0.1; done

mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    open_file_cache max=10000 inactive=60s;
    client_body_temp_path $WORK/nginx-tmp;
    proxy_temp_path $WORK/nginx-tmp;
    fastcgi_temp_path $WORK/nginx-tmp;
    uwsgi_temp_path $WORK/nginx-tmp;
    scgi_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:$NPORT;
        # /<bucket>/<key> -> the object's file in Trove's layout (<mountpath>/@ais/<bucket>/%ob/<key>)
        location ~ ^/([^/]+)/(.*)\$ { alias $WORK/data/@ais/\$1/%ob/\$2; }
    }
}
NGINX
nginx -c "$WORK/nginx.conf" &
PIDS+=($!)
sleep 0.5

TROVE_PID=${PIDS[0]} NGINX_PID=${PIDS[1]}
# CPU time (clock ticks) used so far by a process and its children's threads: server cost per request is a
# steadier figure than throughput when the load tool shares the machine's cores.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }
HZ=$(getconf CLK_TCK)
# measure LABEL PIDS... -- COMMAND...: runs the load, prints its GET line plus the server's CPU per request.
measure() {
  local label=$1; shift; local pids=()
  while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  local t0 t1 line n
  t0=$(ticks "${pids[@]}"); line=$("$@" | grep GET); t1=$(ticks "${pids[@]}")
  n=$(echo "$line" | sed 's/.*objects=\([0-9]*\).*/\1/')
  echo "$label $line server-cpu/req=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1fus", n ? d * 1e6 / hz / n : 0}')"
}

# measure_wrk LABEL PIDS... -- wrk ARGS...: wrk's requests/s and transfer/s, non-2xx count, server CPU per request.
measure_wrk() {
  local label=$1; shift; local pids=()
  while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  local t0 t1 out n
  t0=$(ticks "${pids[@]}"); out=$(wrk "$@"); t1=$(ticks "${pids[@]}")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | awk -v l="$label" -v d=$((t1 - t0)) -v n="$n" -v hz="$HZ" '
    /Requests\/sec/ {rps=$2} /Transfer\/sec/ {tr=$2} /Non-2xx/ {bad=$NF}
    END {printf "%s requests/s=%s transfer/s=%s non-2xx=%d server-cpu/req=%.1fus\n", l, rps, tr, bad, n ? d * 1e6 / hz / n : 0}'
}
bench() { "$TROVE" bench --endpoint "http://127.0.0.1:$TPORT" "$@"; }

echo "machine: $(nproc) cores; $(date -u +%FT%TZ); trove $("$TROVE" --version); ${TROVE_ENV:-}"
for size in $SIZES; do
  bucket="bench-$(echo "$size" | tr 'A-Z' 'a-z')"
  conn=$CONN_SMALL; [ "$size" = "4KiB" ] || conn=$CONN_LARGE
  common=(--bucket "$bucket" --objects "$OBJECTS" --size "$size" --concurrency "$conn")
  bench "${common[@]}" --duration 1 --acl public-read | grep PUT | sed "s/^/size=$size trove-put /"
  for round in $(seq "$ROUNDS"); do
    # Signed scripts are written per round: they stay valid for 15 minutes.
    bench "${common[@]}" --get-only --wrk-script "$WORK/trove.lua" >/dev/null
    "$TROVE" bench --endpoint "http://127.0.0.1:$NPORT" "${common[@]}" --get-only --anonymous \
      --wrk-script "$WORK/nginx.lua" >/dev/null
    measure "size=$size round=$round trove" "$TROVE_PID" -- bench "${common[@]}" --duration "$DURATION" --get-only
    measure "size=$size round=$round trove-presigned" "$TROVE_PID" -- bench "${common[@]}" --duration "$DURATION" \
      --get-only --presigned
    measure "size=$size round=$round trove-anon" "$TROVE_PID" -- bench "${common[@]}" --duration "$DURATION" \
      --get-only --anonymous
    # shellcheck disable=SC2046
    measure "size=$size round=$round nginx" $(nginx_pids) -- "$TROVE" bench --endpoint "http://127.0.0.1:$NPORT" \
      "${common[@]}" --duration "$DURATION" --get-only --anonymous
    measure_wrk "size=$size round=$round trove-wrk" "$TROVE_PID" -- -t2 -c"$conn" -d"${DURATION}s" \
      -s "$WORK/trove.lua" "http://127.0.0.1:$TPORT"
    # shellcheck disable=SC2046
    measure_wrk "size=$size round=$round nginx-wrk" $(nginx_pids) -- -t2 -c"$conn" -d"${DURATION}s" \
      -s "$WORK/nginx.lua" "http://127.0.0.1:$NPORT"
  done
done

if [ "$SHARDS" -gt 0 ]; then
  shard=(--bucket bench-shards --objects "$SHARDS" --size 256MiB --range 1MiB)
  bench "${shard[@]}" --concurrency 2 --duration 1 | grep PUT | sed "s/^/size=256MiB trove-put /"
  shard+=(--concurrency "$CONN_LARGE")
  for round in $(seq "$ROUNDS"); do
    bench "${shard[@]}" --get-only --wrk-script "$WORK/ranged.lua" >/dev/null
    measure "range=1MiB-of-256MiB round=$round trove" "$TROVE_PID" -- bench "${shard[@]}" --duration "$DURATION" --get-only
    measure_wrk "range=1MiB-of-256MiB round=$round trove-wrk" "$TROVE_PID" -- -t2 -c"$CONN_LARGE" -d"${DURATION}s" \
      -s "$WORK/ranged.lua" "http://127.0.0.1:$TPORT"
  done
fi
curl -s "http://127.0.0.1:$TPORT/v1/metrics" | grep -E '^trove_(direct_reads|sendfile_bytes)_total' | sed 's/^/trove-metrics /'
