#!/usr/bin/env bash
# Dataset benchmarks: GetBatch of OBJECTS x SIZE_KIB KiB objects vs the same objects as separate GETs, and
# archpath reads (files/s) from one SHARD_MIB MiB TAR shard of FILE_KIB KiB files, against a release
# `trove serve` on a temporary mountpath, with the AIS Python SDK (compat-tests' virtualenv, created by
# compat-tests/setup.sh when missing). Prints one line per measurement (scripts/bench_datasets.py).
#
# Environment: OBJECTS [1000], SIZE_KIB [10], ROUNDS [3], SHARD_MIB [1024], FILE_KIB [100], READS [2000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
cargo build --release -q -p trove-gateway
TROVE=${CARGO_TARGET_DIR:-$PWD/target}/release/trove
[ -x compat-tests/.venv/bin/python ] && compat-tests/.venv/bin/python -c 'import aistore' 2>/dev/null \
  || bash compat-tests/setup.sh >/dev/null

WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey ADMIN_TOKEN=bench-admin-token-0123456789
TROVE_ADMIN_TOKEN=$ADMIN_TOKEN "$TROVE" serve --listen "127.0.0.1:$PORT" --mountpath "$WORK/data" >"$WORK/trove.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v1/health" >/dev/null && break; sleep 0.1; done
ENDPOINT=http://127.0.0.1:$PORT TMPDIR=$WORK compat-tests/.venv/bin/python scripts/bench_datasets.py
