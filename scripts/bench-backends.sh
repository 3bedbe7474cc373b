#!/usr/bin/env bash
# Read-through benchmark: 1 MiB GETs through Trove from an S3 origin (moto server) vs straight from moto,
# with the project's load tool (`trove bench`), in one run.
#
#   direct   trove bench --get-once against moto            (each object once, straight from the origin)
#   cold     trove bench --get-once against Trove           (each object once, not cached: backend fetch + fill)
#   warm     trove bench --get-once against Trove           (each object once more: from Trove's disk)
#   direct2  direct again, so drift over the run shows
# Prints each phase and the ratios cold/direct and direct/warm (objects/s). With ORIGIN=trove the origin is a
# second Trove (fsync off) instead of moto: a fast origin, so that Trove's own share of a cold GET shows; then
# also the time to first byte of one cold GET of a 1 MiB and of a 1 GiB object (and of the same GETs straight
# from the origin), which a streaming fill keeps independent of the object's size. Needs compat-tests'
# virtualenv for moto and boto3 (created by compat-tests/setup.sh when missing).
#
# Environment: OBJECTS [300], SIZE [1MiB], CONCURRENCY [8], ROUNDS [3], FSYNC [true] (Trove's storage.fsync),
# ORIGIN [moto|trove], TTFB_LARGE [1GiB], TTFB_SAMPLES [3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OBJECTS=${OBJECTS:-300} SIZE=${SIZE:-1MiB} CONCURRENCY=${CONCURRENCY:-8} ROUNDS=${ROUNDS:-3} FSYNC=${FSYNC:-true}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
cargo build --release -q -p trove-gateway
TROVE=${CARGO_TARGET_DIR:-$PWD/target}/release/trove
[ -x compat-tests/.venv/bin/moto_server ] || bash compat-tests/setup.sh >/dev/null

ORIGIN=${ORIGIN:-moto} TTFB_LARGE=${TTFB_LARGE:-1GiB} TTFB_SAMPLES=${TTFB_SAMPLES:-3}
export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_STORAGE__FSYNC=$FSYNC
if [ "$ORIGIN" = trove ]; then ORIGIN_KEY=$TROVE_ACCESS_KEY ORIGIN_SECRET=$TROVE_SECRET_KEY; fi
. scripts/moto-origin.sh
if [ "$ORIGIN" = trove ]; then start_trove_origin; else start_moto; fi
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

# Time to first byte of a cold GET, small vs large object (one GET each, fresh keys, after a warm-up GET).
if [ "$ORIGIN" = trove ]; then
  bucket=bench-ttfb
  "$TROVE" bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket" --objects $((2 * TTFB_SAMPLES + 1)) \
    --size 1MiB --concurrency 1 --duration 1 >/dev/null
  "$TROVE" bench --endpoint "http://127.0.0.1:$MPORT" --bucket "$bucket-large" --objects "$TTFB_SAMPLES" \
    --size "$TTFB_LARGE" --concurrency 1 --duration 1 --get-once >/dev/null
  trove_config "$bucket" "$WORK/trove-ttfb.toml"
  cat >>"$WORK/trove-ttfb.toml" <<TOML

[[buckets]]
name = "$bucket-large"
source = "s3://$bucket-large"
TOML
  start_trove "$WORK/trove-ttfb.toml"
  compat-tests/.venv/bin/python - "$MPORT" "$TPORT" "$bucket" "$TTFB_LARGE" <<'PY'
import os, sys, time
import boto3
from botocore.config import Config
origin, front, bucket, large = sys.argv[1:]
def client(port):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=os.environ["TROVE_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["TROVE_SECRET_KEY"],
                        config=Config(s3={"addressing_style": "path"}))
def first_byte(s3, b, key):
    t = time.perf_counter()
    body = s3.get_object(Bucket=b, Key=key)["Body"]
    body.read(1)
    took = time.perf_counter() - t
    # The rest is read too: a fill still running (a GiB being written) would slow the next sample.
    while body.read(8 << 20):
        pass
    return took * 1e3
import statistics
o, f = client(origin), client(front)
keys = [c["Key"] for c in o.list_objects_v2(Bucket=bucket)["Contents"]]
bigs = [c["Key"] for c in o.list_objects_v2(Bucket=bucket + "-large")["Contents"]]
n = len(bigs)
first_byte(f, bucket, keys[0])  # warm-up: connections, the backend client
small, huge = [], []
for i in range(n):  # alternating, each key read once (cold)
    small.append(first_byte(f, bucket, keys[1 + i]))
    huge.append(first_byte(f, bucket + "-large", bigs[i]))
d_small = [first_byte(o, bucket, keys[1 + n + i]) for i in range(n)]
d_huge = [first_byte(o, bucket + "-large", k) for k in bigs]
med = statistics.median
print(f"ttfb cold (median of {n}): 1MiB={med(small):.1f}ms {large}={med(huge):.1f}ms ratio={med(huge) / med(small):.2f} "
      f"(each: {', '.join(f'{x:.1f}' for x in small)} / {', '.join(f'{x:.1f}' for x in huge)}) | "
      f"straight from the origin: 1MiB={med(d_small):.1f}ms {large}={med(d_huge):.1f}ms")
PY
fi
