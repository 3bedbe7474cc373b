#!/usr/bin/env bash
# Forwarding benchmark: cache-hit GETs served by the node that owns the objects vs the same GETs sent to
# another node, which forwards them (and streams the answer back), with the project's load tool in one run.
#
# A two-node cluster on loopback; node 1 is put in maintenance so node 2 owns every object. Per size: PUT
# through node 2, then `trove bench --get-only` against node 2 (owner) and against node 1 (forwarded), ROUNDS
# times. Prints objects/s and the ratio forwarded/owner per size, and the CPU per request of the whole cluster
# (both nodes, from /proc) for each, with its ratio (a forwarded GET costs CPU on two nodes).
#
# Environment: TROVE_BIN (else a release build), SIZES ["4KiB 1MiB"], OBJECTS [1000], CONCURRENCY [16],
# DURATION [6], ROUNDS [2], PORT [19500].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZES=${SIZES:-"4KiB 1MiB"} OBJECTS=${OBJECTS:-1000} CONCURRENCY=${CONCURRENCY:-16} DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-2} PORT=${PORT:-19500}
. scripts/trove-bin.sh
WORK=$(mktemp -d)
trap 'scripts/cluster.sh down --dir "$WORK" >/dev/null; rm -rf "$WORK"' EXIT

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_ADMIN_TOKEN=bench-admin-token-0123456789
scripts/cluster.sh up 2 --dir "$WORK" --port "$PORT" >/dev/null
owner="http://127.0.0.1:$((PORT + 1))" front="http://127.0.0.1:$PORT"
node1=$(TROVE_ENDPOINT=$front "$TROVE_BIN" cluster show | awk -v u="$front" '$3 == u {print $1}')
TROVE_ENDPOINT=$front "$TROVE_BIN" cluster maintenance "$node1" >/dev/null

rate() { sed -n 's/.*objects\/s=\([0-9.]*\).*/\1/p' | tail -1; }
count() { sed -n 's/.*objects=\([0-9]*\).*/\1/p' | tail -1; }
PIDS_BOTH="$(cat "$WORK/node-1.pid") $(cat "$WORK/node-2.pid")"
ticks() { local t=0 p; for p in $PIDS_BOTH; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
for size in $SIZES; do
  bucket="bench-$(echo "$size" | tr 'A-Z' 'a-z')"
  "$TROVE_BIN" bench --endpoint "$owner" --bucket "$bucket" --objects "$OBJECTS" --size "$size" \
    --concurrency "$CONCURRENCY" --duration 1 >/dev/null
  for round in $(seq "$ROUNDS"); do
    # run ENDPOINT: "objects/s cluster-CPU-microseconds-per-request"
    run() {
      local t0 t1 out
      t0=$(ticks)
      out=$("$TROVE_BIN" bench --endpoint "$1" --bucket "$bucket" --objects "$OBJECTS" --size "$size" \
        --concurrency "$CONCURRENCY" --duration "$DURATION" --get-only | tee -a "$WORK/all.txt" | grep GET)
      t1=$(ticks)
      echo "$(echo "$out" | rate) $(awk -v d=$((t1 - t0)) -v n="$(echo "$out" | count)" -v hz="$HZ" \
        'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
    }
    direct=$(run "$owner")
    forwarded=$(run "$front")
    python3 - "$size" "$round" $direct $forwarded <<'PY'
import sys
size, r, d, dc, f, fc = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:7])
print(f"{size} round {r}: owner {d:.0f} obj/s ({dc:.1f} us CPU/req), forwarded {f:.0f} obj/s ({fc:.1f} us CPU/req "
      f"on both nodes), forwarded/owner {f / d:.2f}, CPU forwarded/owner {fc / dc:.2f}")
PY
  done
done
