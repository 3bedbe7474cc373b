#!/usr/bin/env bash
# Listing benchmark: a flat AIS-local bucket of KEYS keys (one directory), listed in full with ListObjectsV2
# pages of 1,000 by `trove bench --list`, which prints the time of the first, median, slowest and last page and
# the total. Then the node is restarted and the bucket listed again (its index is rebuilt by the start-up scan).
# Also prints the node's RSS with the bucket indexed (the index holds every key in memory).
#
# Environment: TROVE_BIN (else a release build), KEYS [1000000], PORT [19700]. The PUTs run with fsync off (the
# listing does not depend on it, and the setup is 1,000,000 PUTs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KEYS=${KEYS:-1000000} PORT=${PORT:-19700}
. scripts/trove-bin.sh
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_STORAGE__FSYNC=false
endpoint="http://127.0.0.1:$PORT"
start() {
  "$TROVE_BIN" serve --listen "127.0.0.1:$PORT" --mountpath "$WORK/data" >>"$WORK/trove.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do curl -sf "$endpoint/v1/health" >/dev/null && return; sleep 0.1; done
  echo "trove did not start" >&2; exit 1
}
rss() { awk '/^VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$PID/status"; }
bench() { "$TROVE_BIN" bench --endpoint "$endpoint" --bucket flat --objects "$KEYS" --size 16 "$@"; }

start
echo "keys: $KEYS; $(date -u +%FT%TZ); trove $("$TROVE_BIN" --version)"
echo "RSS empty: $(rss)"
bench --concurrency 64 --duration 0 --list | grep -v '^bench:' | sed 's/^/first listing after the PUTs: /'
echo "RSS with $KEYS keys indexed: $(rss)"
bench --get-only --list | grep LIST | sed 's/^/again: /'
kill "$PID"; wait "$PID" 2>/dev/null || true
t0=$(date +%s.%N)
start
bench --get-only --list | grep LIST | sed 's/^/after a restart: /'
echo "restart to the end of the first full listing: $(echo "$(date +%s.%N) - $t0" | bc) s; RSS $(rss)"
