#!/usr/bin/env bash
# Read-through benchmark: 1 MiB GETs through Trove from an S3 origin (moto server) vs straight from moto,
# with the project's load tool (`trove bench`), in one run.
#
#   direct   trove bench --get-once against moto            (each object once, straight from the origin)
#   cold     trove bench --get-once against Trove           (each object once, not cached: backend fetch + fill)
#   warm     trove bench --get-once against Trove           (each object once more: from Trove's disk)
#   direct2  direct again, so drift over the run shows
# Prints each phase and the ratios cold/direct and direct/warm (objects/s). Needs compat-tests' virtualenv for
# moto (created by compat-tests/setup.sh when missing).
#
# Environment: OBJECTS [300], SIZE [1MiB], CONCURRENCY [8], ROUNDS [3], FSYNC [true] (Trove's storage.fsync)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OBJECTS=${OBJECTS:-300} SIZE=${SIZE:-1MiB} CONCURRENCY=${CONCURRENCY:-8} ROUNDS=${ROUNDS:-3} FSYNC=${FSYNC:-true}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
cargo build --release -q -p trove-gateway
TROVE=${CARGO_TARGET_DIR:-$PWD/target}/release/trove
[ -x compat-tests/.venv/bin/moto_server ] || bash compat-tests/setup.sh >/dev/null

. scripts/moto-origin.sh
start_moto

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_STORAGE__FSYNC=$FSYNC
run_bench() { "$TROVE" bench --objects "$OBJECTS" --size "$SIZE" --concurrency "$CONCURRENCY" "$@"; }
rate() { sed -n 's/.*objects\/s=\([0-9.]*\).*/\1/p' | tail -1; }

for round in $(seq "$ROUNDS"); do
  bucket="bench-$round"
  trove_config "$bucket" "$WORK/trove-$round.toml"
  start_trove "$WORK/trove-$round.toml"
  tpid=$TPID

  # PUT the objects straight into moto (creates the bucket there), then read them every way.
  run_bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket" --get-once >"$WORK/put.txt"
  direct=$(run_bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket" --get-only --get-once | tee -a "$WORK/all.txt" | rate)
  cold=$(run_bench --endpoint "http://127.0.0.1:$TPORT" --bucket "$bucket" --get-only --get-once | tee -a "$WORK/all.txt" | rate)
  warm=$(run_bench --endpoint "http://127.0.0.1:$TPORT" --bucket "$bucket" --get-only --get-once | tee -a "$WORK/all.txt" | rate)
  direct2=$(run_bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket" --get-only --get-once | tee -a "$WORK/all.txt" | rate)
  kill "$tpid"; wait "$tpid" 2>/dev/null || true
  FSYNC=$FSYNC python3 - "$round" "$direct" "$cold" "$warm" "$direct2" <<'PY'
import sys
r, d, c, w, d2 = sys.argv[1], *map(float, sys.argv[2:])
direct = (d + d2) / 2
print(f"round {r} (fsync={__import__('os').environ.get('FSYNC')}): objects/s direct={d:.0f}/{d2:.0f} cold={c:.0f} warm={w:.0f} | "
      f"cold time/direct time={direct / c:.2f}x  warm speed/direct speed={w / direct:.1f}x")
PY
done
