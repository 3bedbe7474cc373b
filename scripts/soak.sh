#!/usr/bin/env bash
# Soak: a steady mixed load (GET hits and misses, PUT, LIST, DELETE, a prefetch job a minute) against one Trove
# whose cloud bucket comes from a moto server, for SECONDS; prints per-interval operations, errors, p50/p99 and
# the node's RSS and open descriptors, then the first and last tenth of the run side by side (scripts/soak.py).
# Needs compat-tests' virtualenv (boto3, moto; created by compat-tests/setup.sh when missing).
#
# Environment: SECONDS_TOTAL [3600, measured after WARMUP], WARMUP [300], RATE [100 ops/s], WORKERS [8],
# INTERVAL [60], COLD [20000 cloud objects]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_TOTAL=${SECONDS_TOTAL:-3600} WARMUP=${WARMUP:-300} RATE=${RATE:-100} WORKERS=${WORKERS:-8} INTERVAL=${INTERVAL:-60}
COLD=${COLD:-20000}
. scripts/trove-bin.sh
TROVE=$TROVE_BIN
[ -x compat-tests/.venv/bin/moto_server ] || bash compat-tests/setup.sh >/dev/null

. scripts/moto-origin.sh
start_moto
export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_ADMIN_TOKEN=soak-admin-token-0123456789
# The cloud objects the misses read, written straight into moto (16 KiB each).
compat-tests/.venv/bin/python - "$MPORT" "$COLD" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
port, n = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="moto", aws_secret_access_key="moto")
s3.create_bucket(Bucket="soak-cloud")
body = b"c" * (16 << 10)
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket="soak-cloud", Key=f"cold/{i:06d}", Body=body), range(n)))
PY
trove_config soak-cloud "$WORK/trove.toml"
start_trove "$WORK/trove.toml"
echo "soak: ${SECONDS_TOTAL}s after ${WARMUP}s of warm-up at $RATE ops/s, $WORKERS workers; $(date -u +%FT%TZ); trove $("$TROVE" --version)"
compat-tests/.venv/bin/python scripts/soak.py --endpoint "http://127.0.0.1:$TPORT" --admin-token "$TROVE_ADMIN_TOKEN" \
  --pid "$TPID" --cloud-bucket soak-cloud --cloud-objects "$COLD" --seconds "$SECONDS_TOTAL" --rate "$RATE" \
  --workers "$WORKERS" --interval "$INTERVAL" --warmup "$WARMUP"
