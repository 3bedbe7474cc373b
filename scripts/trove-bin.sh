# Sourced by the benchmark scripts: TROVE_BIN is the binary to run, a release build unless already set. A
# target directory outside the clone is reused when there is one (CARGO_TARGET_DIR, else /work/target).
if [ -z "${TROVE_BIN:-}" ]; then
  if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then export CARGO_TARGET_DIR=/work/target; fi
  cargo build --release -q -p trove-gateway
  TROVE_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/trove
fi
export TROVE_BIN
