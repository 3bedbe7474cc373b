"""ceph s3-tests: every test listed in s3tests/expected-pass.txt must pass against Trove.

Runs only when S3TESTS_DIR points at a checkout of github.com/ceph/s3-tests (kept outside this
repository). The runner, s3tests/run.sh, writes the s3-tests config, prepares a venv from the
checkout's requirements and runs the listed node ids."""

import os
import re
import subprocess

import pytest

from support import ALT, COMPAT_DIR, User

RUNNER = COMPAT_DIR / "s3tests" / "run.sh"
EXPECTED = COMPAT_DIR / "s3tests" / "expected-pass.txt"

# The users s3-tests expects (its config names their owner ids and display names).
S3T_MAIN = User("S3TMAINACCESSKEY0001", "s3t-main-secret-key", id="testid", display_name="M. Tester")
S3T_ALT = User("S3TALTACCESSKEY00001", "s3t-alt-secret-key", id=ALT.id, display_name=ALT.display_name)


# The SSE-KMS key ids the suite's configuration names (kms_keyid, kms_keyid2), and its lifecycle "day"
# (lc_debug_interval = 10 in the runner's configuration).
S3T_KMS_KEYS = """
[lifecycle]
day_secs = 10

[sse.kms_keys]
testkey-1 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
testkey-2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
"""


def expected_tests() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in EXPECTED.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


@pytest.mark.timeout(4 * 3600)
def test_ceph_s3tests(trove_factory, tmp_path):
    s3tests_dir = os.environ.get("S3TESTS_DIR")
    if not s3tests_dir:
        pytest.skip("S3TESTS_DIR not set: ceph s3-tests not run")

    trove = trove_factory(users=(S3T_MAIN, S3T_ALT), extra_config=S3T_KMS_KEYS)
    out_dir = tmp_path / "s3tests-out"
    env = dict(os.environ, OUT_DIR=str(out_dir), NODEIDS_FILE=str(EXPECTED),
               MAIN_USER_ID=S3T_MAIN.id, MAIN_DISPLAY_NAME=S3T_MAIN.display_name,
               ALT_USER_ID=S3T_ALT.id, ALT_DISPLAY_NAME=S3T_ALT.display_name)
    proc = subprocess.run(
        ["bash", str(RUNNER), trove.endpoint, S3T_MAIN.access_key, S3T_MAIN.secret_key,
         S3T_ALT.access_key, S3T_ALT.secret_key, s3tests_dir],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=4 * 3600 - 60,
    )
    report = f"runner output in {out_dir}\nstderr:\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines and re.fullmatch(r"\d+ passed, \d+ failed", lines[-1]), f"runner failed (rc {proc.returncode})\n{report}"

    passed = set((out_dir / "passed.txt").read_text().split())
    not_passed = [t for t in expected_tests() if t not in passed and not any(p.startswith(t + "[") for p in passed)]
    assert not not_passed, (
        f"{lines[-1]}; {len(not_passed)} listed tests did not pass:\n" + "\n".join(not_passed) + "\n" + report
    )
