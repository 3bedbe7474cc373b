#!/usr/bin/env bash
# Runs every test of the project: Rust unit tests of each crate, then the black-box compatibility suite
# (compat-tests/, pytest) against a real `trove` process with boto3 and aws-cli. Installs what the tests need
# (Python virtualenvs from PyPI) by itself. Works with no stdin (CI=true).
#
# Optional environment:
#   CARGO_TARGET_DIR   cargo's target directory; when unset, a shared /work/target is reused if it exists
#   S3TESTS_DIR        a ceph/s3-tests checkout: also run the s3-tests listed in compat-tests/s3tests/expected-pass.txt
#                      (defaults to ../shared/s3-tests/suite next to the clone when that copy exists)
#   PYTEST_ARGS        extra pytest arguments (e.g. "-k multipart -x")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then
  export CARGO_TARGET_DIR=/work/target
fi
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

echo "== build"
cargo build --workspace --all-targets

echo "== unit tests"
cargo test --workspace

if [ -z "${S3TESTS_DIR:-}" ] && [ -d ../shared/s3-tests/suite/s3tests ]; then
  S3TESTS_DIR=$(cd ../shared/s3-tests/suite && pwd)
  export S3TESTS_DIR
fi
if [ -n "${S3TESTS_DIR:-}" ]; then
  echo "== ceph s3-tests from $S3TESTS_DIR (expected-pass list) run with the compatibility tests"
else
  echo "== ceph s3-tests: no suite found (set S3TESTS_DIR); skipped"
fi

echo "== compatibility tests"
bash compat-tests/setup.sh
export TROVE_BIN="$TARGET/debug/trove"
# shellcheck disable=SC2086
compat-tests/.venv/bin/python -m pytest -p no:cacheprovider -q compat-tests ${PYTEST_ARGS:-}

# The same S3 clients against a three-node cluster, requests spread over the nodes (in-cluster forwarding,
# merged listings, cluster-wide deletes and uploads, cloud read-through on the owning node; raw reads of other
# nodes' objects relayed below hyper; every version of a key on its owner).
echo "== compatibility tests against a three-node cluster"
# shellcheck disable=SC2086
TROVE_TEST_CLUSTER=3 compat-tests/.venv/bin/python -m pytest -p no:cacheprovider -q \
  compat-tests/test_objects.py compat-tests/test_multipart.py compat-tests/test_list.py \
  compat-tests/test_buckets.py compat-tests/test_awscli.py compat-tests/test_backends.py \
  compat-tests/test_direct_reads.py compat-tests/test_fast_path.py compat-tests/test_versioning.py compat-tests/test_object_lock.py compat-tests/test_sse.py compat-tests/test_bucket_configs.py compat-tests/test_acls.py \
  compat-tests/test_download.py \
  compat-tests/test_hardening.py::test_stalled_upload_body_times_out compat-tests/test_hardening.py::test_large_form_upload_streams_to_disk ${PYTEST_ARGS:-}
