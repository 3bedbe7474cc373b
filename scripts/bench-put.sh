#!/usr/bin/env bash
# PUT benchmark with durability on (storage.fsync = true, the default): 4 KiB objects over 64 connections and
# 1 MiB objects over 16, with per-file fsyncs and with group commit (storage.group_commit), against the disk's
# own fsynced sequential write rate measured in the same run on the same filesystem (dd of 1 GiB with
# conv=fsync, and of 1 MiB files each fsynced).
#
# Environment: TROVE_BIN (else a release build), ROUNDS [2], SMALL [20000 objects], LARGE [1000 objects],
# DIR (the filesystem to measure; default a temporary directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-2} SMALL=${SMALL:-20000} LARGE=${LARGE:-1000}
. scripts/trove-bin.sh
WORK=$(mktemp -d ${DIR:+-p "$DIR"})
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey

echo "filesystem: $(df -T "$WORK" | awk 'NR==2 {print $1, $2}'); $(date -u +%FT%TZ); trove $("$TROVE_BIN" --version)"
for round in $(seq "$ROUNDS"); do
  dd if=/dev/zero of="$WORK/dd" bs=1M count=1024 conv=fsync 2>&1 | awk -v r="$round" '/copied/ {print "round=" r " disk dd 1 GiB conv=fsync: " $(NF-1), $NF}'
  rm -f "$WORK/dd"
  t0=$(date +%s.%N)
  for i in $(seq 200); do dd if=/dev/zero of="$WORK/f$i" bs=1M count=1 conv=fsync 2>/dev/null; done
  echo "round=$round disk 200 x 1 MiB files, each fsynced: $(echo "200 * 1.048576 / ($(date +%s.%N) - $t0)" | bc -l | xargs printf '%.0f') MB/s"
  rm -f "$WORK"/f*
  for group in false true; do
    rm -rf "$WORK/data"
    TROVE_STORAGE__GROUP_COMMIT=$group "$TROVE_BIN" serve --listen "127.0.0.1:$PORT" --mountpath "$WORK/data" \
      >"$WORK/trove.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v1/health" >/dev/null && break; sleep 0.1; done
    "$TROVE_BIN" bench --endpoint "http://127.0.0.1:$PORT" --bucket put-small --objects "$SMALL" --size 4KiB \
      --concurrency 64 --duration 0 | grep PUT | sed "s/^/round=$round group_commit=$group 4KiB x64 /"
    "$TROVE_BIN" bench --endpoint "http://127.0.0.1:$PORT" --bucket put-large --objects "$LARGE" --size 1MiB \
      --concurrency 16 --duration 0 | grep PUT | sed "s/^/round=$round group_commit=$group 1MiB x16 /"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  done
done
