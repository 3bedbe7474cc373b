#!/usr/bin/env bash
# Prefetch throughput: `trove prefetch` of N objects from an S3 origin (moto server) into Trove's cache, against
# `aws s3 sync` of the same objects from the same origin to a local directory, in one run.
#
# Prints both times, objects/s and the ratio (sync time / prefetch time; above 1 = prefetch is faster).
# Needs compat-tests' virtualenvs (moto, aws-cli), created by compat-tests/setup.sh when missing.
#
# Environment: OBJECTS [1000], SIZE [1MiB], WORKERS [16] (prefetch workers), ROUNDS [1]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OBJECTS=${OBJECTS:-1000} SIZE=${SIZE:-1MiB} WORKERS=${WORKERS:-16} ROUNDS=${ROUNDS:-1}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
cargo build --release -q -p trove-gateway
TROVE=${CARGO_TARGET_DIR:-$PWD/target}/release/trove
[ -x compat-tests/.venv/bin/moto_server ] && [ -x compat-tests/.venv-awscli/bin/aws ] || bash compat-tests/setup.sh >/dev/null

. scripts/moto-origin.sh
start_moto

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_ADMIN_TOKEN=bench-admin-token
export TROVE_ENDPOINT=http://127.0.0.1:$TPORT
export AWS_ACCESS_KEY_ID=moto AWS_SECRET_ACCESS_KEY=moto AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
last=$(printf '%07d' $((OBJECTS - 1)))
now() { python3 -c 'import time; print(time.monotonic())'; }

for round in $(seq "$ROUNDS"); do
  bucket="prefetch-bench-$round"
  trove_config "$bucket" "$WORK/trove.toml"
  rm -rf "$WORK/sync"
  start_trove "$WORK/trove.toml"
  tpid=$TPID
  "$TROVE" bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket" --objects "$OBJECTS" --size "$SIZE" \
    --concurrency 8 --get-once >/dev/null

  t0=$(now)
  compat-tests/.venv-awscli/bin/aws --endpoint-url "http://127.0.0.1:$MPORT" s3 sync "s3://$bucket" "$WORK/sync" --only-show-errors
  t1=$(now)
  "$TROVE" prefetch "s3://$bucket" --template "bench/obj-{0000000..$last}" --num-workers "$WORKERS" --wait 2>/dev/null >/dev/null
  t2=$(now)
  synced=$(find "$WORK/sync" -type f | wc -l)
  cached=$("$TROVE" ls "s3://$bucket" --cached | wc -l)
  kill "$tpid"; wait "$tpid" 2>/dev/null || true
  python3 - "$round" "$t0" "$t1" "$t2" "$OBJECTS" "$synced" "$cached" <<'PY'
import sys
r, t0, t1, t2, n, synced, cached = sys.argv[1], *map(float, sys.argv[2:5]), *map(int, sys.argv[5:])
sync, pre = t1 - t0, t2 - t1
print(f"round {r}: aws s3 sync {sync:.2f} s ({synced} files, {n / sync:.0f} objects/s) | "
      f"trove prefetch {pre:.2f} s ({cached} cached, {n / pre:.0f} objects/s) | sync time / prefetch time = {sync / pre:.2f}")
PY
done
