#!/usr/bin/env bash
# run.sh - run ceph s3-tests (github.com/ceph/s3-tests) against a running S3 endpoint.
#
# Usage:
#   run.sh ENDPOINT MAIN_ACCESS MAIN_SECRET ALT_ACCESS ALT_SECRET S3TESTS_DIR [-- extra pytest args...]
#
#   ENDPOINT     http://host:port (or host:port)
#   MAIN_*/ALT_* credentials of two different users ("main" and "alt")
#   S3TESTS_DIR  a checkout of ceph/s3-tests (not modified; config and results go to OUT_DIR)
#
# Runs the tests listed in NODEIDS_FILE. The last line on stdout is exactly "N passed, M failed";
# M counts failed tests, errors and listed tests the checkout does not have. Skipped tests count as
# neither (they are reported on stderr). Exit status 0 when M is 0.
#
# Environment (defaults in brackets):
#   NODEIDS_FILE  one node id per line, e.g. s3tests/functional/test_s3.py::test_bucket_list_empty;
#                 a bare test name means s3tests/functional/test_s3.py::NAME; '#' starts a comment;
#                 an id without [params] selects all its parametrizations [expected-pass.txt here]
#   OUT_DIR       s3tests.conf, pytest.log, junit.xml, passed.txt, failed.txt [a new temp dir]
#   PASSED_FILE   node ids that passed, sorted [$OUT_DIR/passed.txt]
#   TIMEOUT       per-test timeout in seconds (pytest-timeout) [120]
#   PYTHON        interpreter that has the s3-tests requirements and pytest-timeout (no venv then)
#   VENV          venv created from the checkout's requirements.txt otherwise [compat-tests/.venv-s3tests]
#   REGION        signing region [us-east-1]
#   BUCKET_PREFIX bucket name template with {random} [s3t-{random}-]
#   MAIN_USER_ID MAIN_DISPLAY_NAME MAIN_EMAIL  owner the server reports for main
#                 [testid / M. Tester / tester@ceph.com]
#   ALT_USER_ID ALT_DISPLAY_NAME ALT_EMAIL     owner the server reports for alt
#                 [56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234 / john.doe /
#                  john.doe@example.com]
#   API_NAME      LocationConstraint for the location tests [default]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 6 ] || usage
ENDPOINT=$1 MAIN_ACCESS=$2 MAIN_SECRET=$3 ALT_ACCESS=$4 ALT_SECRET=$5 S3TESTS_DIR=$6
shift 6
[ "${1:-}" = "--" ] && shift
EXTRA_ARGS=("$@")

S3TESTS_DIR=$(cd "$S3TESTS_DIR" && pwd)
[ -f "$S3TESTS_DIR/s3tests/functional/__init__.py" ] || { echo "not an s3-tests checkout: $S3TESTS_DIR" >&2; exit 2; }

abspath() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s' "$PWD/$1" ;; esac; }
NODEIDS_FILE=$(abspath "${NODEIDS_FILE:-$HERE/expected-pass.txt}")
[ -r "$NODEIDS_FILE" ] || { echo "cannot read $NODEIDS_FILE" >&2; exit 2; }
OUT_DIR=${OUT_DIR:-$(mktemp -d -t s3tests-out.XXXXXX)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
PASSED_FILE=$(abspath "${PASSED_FILE:-$OUT_DIR/passed.txt}")
TIMEOUT=${TIMEOUT:-120}

# ---- endpoint ---------------------------------------------------------------------------------
IS_SECURE=False
hostport=$ENDPOINT
case "$hostport" in
  https://*) IS_SECURE=True; hostport=${hostport#https://} ;;
  http://*) hostport=${hostport#http://} ;;
esac
hostport=${hostport%%/*}
HOST=${hostport%:*}
PORT=${hostport##*:}
if [ "$HOST" = "$hostport" ]; then
  if [ "$IS_SECURE" = True ]; then PORT=443; else PORT=80; fi
fi

# ---- python -----------------------------------------------------------------------------------
if [ -z "${PYTHON:-}" ]; then
  VENV=${VENV:-$HERE/../.venv-s3tests}
  marker=$VENV/.requirements.sha256
  want=$( (cat "$S3TESTS_DIR/requirements.txt"; echo pytest-timeout) | sha256sum | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$marker" 2>/dev/null)" != "$want" ]; then
    echo "preparing $VENV" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    rm -f "$marker"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet \
      -r "$S3TESTS_DIR/requirements.txt" pytest-timeout < /dev/null >&2
    echo "$want" > "$marker"
  fi
  PYTHON=$VENV/bin/python
fi
"$PYTHON" -c 'import boto3, pytest, pytest_timeout' 2>/dev/null || {
  echo "$PYTHON lacks the s3-tests requirements or pytest-timeout" >&2; exit 2; }

# ---- s3tests.conf -----------------------------------------------------------------------------
CONF=$OUT_DIR/s3tests.conf
DEFAULT_BUCKET_PREFIX='s3t-{random}-'
BUCKET_PREFIX=${BUCKET_PREFIX:-$DEFAULT_BUCKET_PREFIX}
umask 077
cat > "$CONF" <<EOF
[DEFAULT]
host = $HOST
port = $PORT
is_secure = $IS_SECURE
ssl_verify = False

[fixtures]
bucket prefix = $BUCKET_PREFIX

[s3 main]
display_name = ${MAIN_DISPLAY_NAME:-M. Tester}
user_id = ${MAIN_USER_ID:-testid}
email = ${MAIN_EMAIL:-tester@ceph.com}
api_name = ${API_NAME-default}
access_key = $MAIN_ACCESS
secret_key = $MAIN_SECRET
kms_keyid = testkey-1
kms_keyid2 = testkey-2
storage_classes =
lc_debug_interval = 10

[s3 alt]
display_name = ${ALT_DISPLAY_NAME:-john.doe}
user_id = ${ALT_USER_ID:-56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234}
email = ${ALT_EMAIL:-john.doe@example.com}
access_key = $ALT_ACCESS
secret_key = $ALT_SECRET

[s3 tenant]
display_name = testx\$tenanteduser
user_id = testx\$9876543210abcdef0123456789abcdef0123456789abcdef0123456789abcdef
email = tenanteduser@example.com
tenant = testx
access_key = $ALT_ACCESS
secret_key = $ALT_SECRET

[iam]
display_name = youruseridhere
user_id = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
email = s3@example.com
access_key = $MAIN_ACCESS
secret_key = $MAIN_SECRET

[iam root]
user_id = RGW11111111111111111
email = account1@ceph.com
access_key = $MAIN_ACCESS
secret_key = $MAIN_SECRET

[iam alt root]
user_id = RGW22222222222222222
email = account2@ceph.com
access_key = $ALT_ACCESS
secret_key = $ALT_SECRET
EOF
umask 022

# ---- environment for boto3 inside s3-tests: nothing from the caller's AWS setup ----------------
: > "$OUT_DIR/empty-aws-config"
export S3TEST_CONF=$CONF
export AWS_DEFAULT_REGION=${REGION:-us-east-1}
export AWS_CONFIG_FILE=$OUT_DIR/empty-aws-config AWS_SHARED_CREDENTIALS_FILE=$OUT_DIR/empty-aws-config
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
  AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 || true

cd "$S3TESTS_DIR"

# ---- selection: listed ids that this checkout has ---------------------------------------------
"$PYTHON" - "$NODEIDS_FILE" "$OUT_DIR" <<'PYEOF'
import subprocess, sys
wanted_file, out = sys.argv[1:]
wanted = []
for line in open(wanted_file, encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if line:
        wanted.append(line if "::" in line else f"s3tests/functional/test_s3.py::{line}")
modules = sorted({w.split("::", 1)[0] for w in wanted})
collect = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *modules],
                         capture_output=True, text=True)
collected = [l.strip() for l in collect.stdout.splitlines() if "::" in l]
selected, missing = [], []
for w in wanted:
    hits = [c for c in collected if c == w or c.startswith(w + "[")]
    (selected.extend(hits) if hits else missing.append(w))
selected = list(dict.fromkeys(selected))
open(f"{out}/selected.txt", "w").write("".join(s + "\n" for s in selected))
open(f"{out}/missing.txt", "w").write("".join(m + "\n" for m in missing))
sys.stderr.write(f"{len(selected)} tests selected, {len(missing)} listed ids not in this checkout\n")
if not collected:
    sys.stderr.write(collect.stdout[-2000:] + collect.stderr[-2000:])
PYEOF

mapfile -t SELECTED < "$OUT_DIR/selected.txt"
MISSING=$(grep -c . "$OUT_DIR/missing.txt" || true)
LOG=$OUT_DIR/pytest.log
JUNIT=$OUT_DIR/junit.xml
rm -f "$JUNIT"

echo "s3-tests $(git -C "$S3TESTS_DIR" rev-parse --short HEAD 2>/dev/null || echo '?') against $HOST:$PORT," \
  "${#SELECTED[@]} tests, ${TIMEOUT}s each; output in $OUT_DIR" >&2
if [ ${#SELECTED[@]} -gt 0 ]; then
  set +e
  "$PYTHON" -m pytest -p no:cacheprovider --timeout "$TIMEOUT" -o junit_family=xunit2 --junitxml "$JUNIT" -rfE \
    "${EXTRA_ARGS[@]}" "${SELECTED[@]}" > "$LOG" 2>&1
  RC=$?
  set -e
  echo "pytest exited $RC; log: $LOG" >&2
fi

# ---- results ----------------------------------------------------------------------------------
"$PYTHON" - "$JUNIT" "$OUT_DIR/selected.txt" "$PASSED_FILE" "$OUT_DIR/failed.txt" "$MISSING" <<'PYEOF'
import os, sys
import xml.etree.ElementTree as ET
junit, selected_file, passed_file, failed_file, missing = sys.argv[1:]
selected = [l.strip() for l in open(selected_file) if l.strip()]
outcome = {}
if os.path.exists(junit):
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            result = "failed"
        elif case.find("skipped") is not None:
            result = "skipped"
        else:
            result = "passed"
        if outcome.get(node) != "failed":  # a teardown error keeps the test failed
            outcome[node] = result
passed = sorted(n for n in selected if outcome.get(n) == "passed")
skipped = [n for n in selected if outcome.get(n) == "skipped"]
failed = [n for n in selected if outcome.get(n) not in ("passed", "skipped")]
open(passed_file, "w").write("".join(n + "\n" for n in passed))
open(failed_file, "w").write("".join(n + "\n" for n in failed))
sys.stderr.write(f"passed {len(passed)}, failed or errored {len(failed)}, skipped {len(skipped)}, "
                 f"not in checkout {missing}; passed list: {passed_file}\n")
print(f"{len(passed)} passed, {len(failed) + int(missing)} failed")
sys.exit(0 if not failed and int(missing) == 0 else 1)
PYEOF
