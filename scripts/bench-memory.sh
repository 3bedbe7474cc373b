#!/usr/bin/env bash
# Memory benchmark: peak RSS of the nodes while one very large object is PUT, read, read through a forwarding
# node, and cold-read from an origin (issue target: under 100 MiB at 5 GiB).
#
# A two-node cluster on loopback with node 1 in maintenance, so node 2 owns every object and node 1 forwards;
# a third, single-node Trove is the origin, attached as a remote AIS cluster (`origin`) whose bucket is
# attached under an S3 name. The object is a sparse file (zeros: the disk is not what is measured). RSS is
# sampled from /proc/PID/status every 50 ms during each phase; each line prints the phase, its time and rate,
# and the peak RSS of each node (and the origin) during it.
#
# Environment: TROVE_BIN (else a release build), SIZE [5G] (as for truncate), PORT [19600].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZE=${SIZE:-5G} PORT=${PORT:-19600}
. scripts/trove-bin.sh
WORK=$(mktemp -d)
ORIGIN_PID=
cleanup() {
  [ -n "$ORIGIN_PID" ] && kill "$ORIGIN_PID" 2>/dev/null
  scripts/cluster.sh down --dir "$WORK" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_ADMIN_TOKEN=bench-admin-token-0123456789
scripts/cluster.sh up 2 --dir "$WORK" --port "$PORT" >/dev/null
front="http://127.0.0.1:$PORT" owner="http://127.0.0.1:$((PORT + 1))" origin="http://127.0.0.1:$((PORT + 10))"
node1=$(TROVE_ENDPOINT=$front "$TROVE_BIN" cluster show | awk -v u="$front" '$3 == u {print $1}')
TROVE_ENDPOINT=$front "$TROVE_BIN" cluster maintenance "$node1" >/dev/null
"$TROVE_BIN" serve --listen "127.0.0.1:$((PORT + 10))" --mountpath "$WORK/origin" >"$WORK/origin.log" 2>&1 &
ORIGIN_PID=$!
for _ in $(seq 100); do curl -sf "$origin/v1/health" >/dev/null && break; sleep 0.1; done
FRONT_PID=$(cat "$WORK/node-1.pid") OWNER_PID=$(cat "$WORK/node-2.pid")

# S3 wants x-amz-content-sha256 with SigV4 (curl sends it only when given).
s3() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$TROVE_ACCESS_KEY:$TROVE_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
truncate -s "$SIZE" "$WORK/object"
bytes=$(stat -c %s "$WORK/object")
s3 -X PUT "$owner/big" >/dev/null
s3 -X PUT "$origin/origin-data" >/dev/null
s3 -T "$WORK/object" "$origin/origin-data/obj" >/dev/null
s3 -T "$WORK/object" "$origin/origin-data/obj2" >/dev/null
TROVE_ENDPOINT=$front "$TROVE_BIN" cluster remote-attach "origin=$origin" --token "$TROVE_ADMIN_TOKEN" >/dev/null
TROVE_ENDPOINT=$front "$TROVE_BIN" bucket attach ais://@origin/origin-data --as remote-data >/dev/null

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# phase NAME -- CURL ARGS...: runs one transfer while sampling every node's RSS; prints time, rate and peaks.
phase() {
  local name=$1; shift 2
  local pids=("$FRONT_PID" "$OWNER_PID" "$ORIGIN_PID") peaks="$WORK/peaks"
  (
    declare -A max=()
    while [ ! -e "$WORK/stop" ]; do
      for p in "${pids[@]}"; do r=$(rss_kib "$p"); [ "${r:-0}" -gt "${max[$p]:-0}" ] && max[$p]=$r; done
      for p in "${pids[@]}"; do echo "$p ${max[$p]:-0}"; done >"$peaks"
      sleep 0.05
    done
  ) &
  local sampler=$! t0 t1
  t0=$(date +%s.%N)
  s3 "$@" >/dev/null
  t1=$(date +%s.%N)
  touch "$WORK/stop"; wait "$sampler"; rm -f "$WORK/stop"
  awk -v n="$name" -v t0="$t0" -v t1="$t1" -v b="$bytes" -v f="$FRONT_PID" -v o="$OWNER_PID" -v g="$ORIGIN_PID" '
    {peak[$1] = $2}
    END {printf "%-34s %6.1fs %7.0f MB/s  peak RSS MiB: forwarder %5.1f  owner %5.1f  origin %5.1f\n",
         n, t1 - t0, b / (t1 - t0) / 1e6, peak[f] / 1024, peak[o] / 1024, peak[g] / 1024}' "$peaks"
}

echo "object: $bytes bytes; $(date -u +%FT%TZ); trove $("$TROVE_BIN" --version)"
echo "idle RSS MiB: forwarder $(( $(rss_kib "$FRONT_PID") / 1024 ))  owner $(( $(rss_kib "$OWNER_PID") / 1024 ))  origin $(( $(rss_kib "$ORIGIN_PID") / 1024 ))"
phase "PUT (owner)" -- -T "$WORK/object" "$owner/big/obj"
phase "GET (owner)" -- -o /dev/null "$owner/big/obj"
phase "GET (forwarded)" -- -o /dev/null "$front/big/obj"
phase "PUT (forwarded)" -- -T "$WORK/object" "$front/big/obj-f"
phase "cold GET from the origin (owner)" -- -o /dev/null "$owner/remote-data/obj"
phase "cold GET from the origin (forwarded)" -- -o /dev/null "$front/remote-data/obj2"
phase "warm GET (forwarded)" -- -o /dev/null "$front/remote-data/obj2"
