"""Fixtures for the Trove black-box compatibility tests.

- `trove`: one server for the whole session (main user from the environment, alt user from the
  config, virtual-hosted domain `localhost`, two mountpaths).
- `trove_factory` / `fresh_trove`: servers of a single test, for restart and crash tests.
- `s3`, `s3_alt`: boto3 clients (path style, us-east-1, no retries) for the session server.
- `bucket_name`, `bucket`: a unique name; a created bucket that is emptied and deleted afterwards.
- `aws`: runs aws-cli (from `.venv-awscli`) against the session server.
- `moto`, `gcs`, `azurite`: cloud emulators (emulators.py) shared by the session, started on first use;
  `emulator_factory`: emulators of a single test (for stop/restart/crash tests and special modes).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emulators import EMULATORS, Azurite, EmulatorMissing, GcsEmulator, Moto
from support import (
    ALT,
    COMPAT_DIR,
    MAIN,
    REGION,
    Trove,
    delete_bucket_recursively,
    kill_started_processes,
    new_bucket_name,
    trove_binary,
)

# Keep the developer's AWS settings (profiles, endpoints, checksum options) out of the tests.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_sessionfinish(session, exitstatus):
    kill_started_processes()


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trove(tmp_path_factory) -> Trove:
    server = Trove(tmp_path_factory.mktemp("trove-session")).start()
    yield server
    server.stop()


@pytest.fixture
def trove_factory(tmp_path):
    """`make(start=True, **Trove kwargs)` -> a Trove of this test only; all are killed afterwards."""
    servers: list[Trove] = []

    def make(start: bool = True, **kwargs) -> Trove:
        server = Trove(tmp_path / f"trove{len(servers)}", **kwargs)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.kill9()


@pytest.fixture
def fresh_trove(trove_factory) -> Trove:
    return trove_factory()


# ---------------------------------------------------------------------------------------------
# Clients and buckets
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3(trove):
    return trove.client(MAIN)


@pytest.fixture(scope="session")
def s3_alt(trove):
    return trove.client(ALT)


@pytest.fixture
def bucket_name() -> str:
    """A fresh, unused bucket name (not created)."""
    return new_bucket_name()


@pytest.fixture
def bucket(s3, bucket_name) -> str:
    """A bucket of the main user, emptied and deleted after the test."""
    s3.create_bucket(Bucket=bucket_name)
    yield bucket_name
    delete_bucket_recursively(s3, bucket_name)


# ---------------------------------------------------------------------------------------------
# aws-cli
# ---------------------------------------------------------------------------------------------

AWS_CLI = COMPAT_DIR / ".venv-awscli" / "bin" / "aws"


@pytest.fixture
def aws(trove, tmp_path):
    """`aws(*args, check=True)` runs aws-cli against the session server as the main user."""
    if not AWS_CLI.exists():
        pytest.skip(f"{AWS_CLI} missing: run compat-tests/setup.sh")
    home = tmp_path / "aws-home"
    home.mkdir()
    config = home / "config"
    config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": MAIN.access_key,
        "AWS_SECRET_ACCESS_KEY": MAIN.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_DEFAULT_OUTPUT": "json",
        "AWS_PAGER": "",
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def run(*args, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(AWS_CLI), "--endpoint-url", trove.endpoint, *map(str, args)]
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


# ---------------------------------------------------------------------------------------------
# Cloud emulators
# ---------------------------------------------------------------------------------------------


def _start_emulator(emulator):
    try:
        return emulator.start()
    except EmulatorMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Moto:
    """moto_server (S3, any key accepted), shared by the session."""
    emulator = _start_emulator(Moto(tmp_path_factory.mktemp("moto")))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory) -> GcsEmulator:
    """gcp-storage-emulator (GCS JSON API, anonymous), shared by the session."""
    emulator = _start_emulator(GcsEmulator(tmp_path_factory.mktemp("gcs")))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Azurite:
    """Azurite blob service (account devstoreaccount1), shared by the session."""
    emulator = _start_emulator(Azurite(tmp_path_factory.mktemp("azurite")))
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator_factory(tmp_path):
    """`make(provider, start=True, **kwargs)` -> a new emulator of this test only ("aws" | "gcp" | "azure";
    kwargs go to the class, e.g. enforce_auth=True for moto); all are stopped afterwards."""
    made = []

    def make(provider: str, start: bool = True, **kwargs):
        emulator = EMULATORS[provider](tmp_path / f"{provider}-emulator{len(made)}", **kwargs)
        made.append(emulator)
        return _start_emulator(emulator) if start else emulator

    yield make
    for emulator in made:
        emulator.stop()  # also ends a paused (SIGSTOP) emulator


def pytest_report_header(config):
    binary = trove_binary()
    return f"trove binary: {binary} ({'present' if Path(binary).is_file() else 'MISSING'})"
