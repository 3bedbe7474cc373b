"""Providers set up from their ecosystem's standard environment, without a `[backends.*]` section.

As aws-cli, gsutil and az expect: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_REGION` + `AWS_ENDPOINT_URL`
(path-style) for `s3://`, `STORAGE_EMULATOR_HOST` for `gs://`, `AZURE_STORAGE_CONNECTION_STRING` for `az://`.
- each provider on its emulator, configured by environment only: CLI attach, cold and warm GET, write-through PUT,
  ListObjectsV2, DELETE, checked with the provider's own client;
- a `[backends.*]` section overrides the environment (which points at a closed port);
- with neither, `trove serve` starts, the S3 API works, and attaching a cloud bucket fails with one error line
  that says the provider is not set up.

The test process's own provider variables are removed for each test (`clean_provider_env`), so that a server
only sees what a test gives it; `server_provider_env` reads back what the server process really got.
"""

from __future__ import annotations

import os

import pytest
import requests

from emulators import Emulator, standard_env
from support import free_port, new_bucket_name, random_bytes, s3_error
from test_backends import (
    EMULATOR_FIXTURE,
    PROVIDERS,
    TROVE_ENV,
    backends_toml,
    cli_fails_with_one_line,
    cli_ok,
    metric_sum,
    metrics_text,
    read,
    settle,
    status,
    trove_cli,
)

# Every variable that sets a provider up (docs/backends.md), and the ones the SDKs read next to them.
PROVIDER_VARS = {
    "aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    "gcp": ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"),
    "azure": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
              "AZURE_STORAGE_SAS_TOKEN"),
}
ALL_PROVIDER_VARS = {v for names in PROVIDER_VARS.values() for v in names}
SCHEME = {"aws": "s3", "gcp": "gs", "azure": "az"}


@pytest.fixture(autouse=True)
def clean_provider_env(monkeypatch):
    """No provider variable in this process's environment (servers and CLI runs inherit it) during the test."""
    for name in ALL_PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu(request, provider) -> Emulator:
    return request.getfixturevalue(EMULATOR_FIXTURE[provider])


def server_provider_env(trove) -> dict:
    """The provider variables in the running server process's environment (from /proc)."""
    raw = open(f"/proc/{trove.proc.pid}/environ", "rb").read().split(b"\0")
    env = dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)
    return {k: v for k, v in env.items() if k in ALL_PROVIDER_VARS}


def closed_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # bound and released: nothing listens there


def assert_not_set_up(trove, provider: str) -> str:
    """`trove bucket attach <scheme>://<valid name>` fails with one line saying the provider is not set up."""
    proc = trove_cli(trove, "bucket", "attach", f"{SCHEME[provider]}://{new_bucket_name()}")
    cli_fails_with_one_line(proc)
    line = proc.stderr.strip()
    assert f"backends.{provider}" in line or "environment" in line, line
    return line


# ---------------------------------------------------------------------------------------------
# Environment only
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_from_standard_environment(trove_factory, emu, provider):
    env = standard_env(emu)
    trove = trove_factory(env={**TROVE_ENV, **env})
    assert "[backends" not in trove.config_path.read_text()
    assert server_provider_env(trove) == env

    origin = new_bucket_name()
    emu.create_bucket(origin)
    try:
        body = random_bytes(200 * 1024, seed=70)
        emu.put_object(origin, "data/obj.bin", body)
        cli_ok(trove_cli(trove, "bucket", "attach", emu.uri(origin)))
        s3 = trove.client()

        assert read(s3, origin, "data/obj.bin") == body  # cold
        settle(trove, "data/obj.bin", body)
        before = metrics_text(trove)
        assert read(s3, origin, "data/obj.bin") == body  # warm, the origin's object still there
        after = metrics_text(trove)
        assert metric_sum(after, "trove_backend_requests_total", provider=provider) == \
            metric_sum(before, "trove_backend_requests_total", provider=provider), "warm GET went to the backend"
        assert metric_sum(after, "trove_cache_hits_total") - metric_sum(before, "trove_cache_hits_total") >= 1

        s3.put_object(Bucket=origin, Key="up/new.txt", Body=b"written through", ContentType="text/plain")
        assert emu.get_object(origin, "up/new.txt") == b"written through"
        assert emu.head_object(origin, "up/new.txt").content_type == "text/plain"

        listed = s3.list_objects_v2(Bucket=origin)
        assert [o["Key"] for o in listed["Contents"]] == ["data/obj.bin", "up/new.txt"]
        assert [o["Size"] for o in listed["Contents"]] == [len(body), len(b"written through")]

        assert status(s3.delete_object(Bucket=origin, Key="data/obj.bin")) == 204
        assert emu.head_object(origin, "data/obj.bin") is None
        assert emu.list_keys(origin) == ["up/new.txt"]
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=origin, Key="data/obj.bin")

        for other in PROVIDERS:  # only this provider's environment was given
            if other != provider:
                assert_not_set_up(trove, other)
    finally:
        emu.delete_bucket(origin)


# ---------------------------------------------------------------------------------------------
# A section overrides the environment
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_section_overrides_environment(trove_factory, emu, provider):
    """The environment points at a closed port, `[backends.<provider>]` at the emulator: the config wins."""
    env = standard_env(emu, endpoint=closed_endpoint())
    trove = trove_factory(extra_config=backends_toml(emu, connect_timeout_secs=1, max_attempts=1),
                          env={**TROVE_ENV, **env})
    assert server_provider_env(trove) == env

    origin = new_bucket_name()
    emu.create_bucket(origin)
    try:
        emu.put_object(origin, "obj", b"from the configured endpoint")
        cli_ok(trove_cli(trove, "bucket", "attach", emu.uri(origin)))
        s3 = trove.client()
        assert read(s3, origin, "obj") == b"from the configured endpoint"
        s3.put_object(Bucket=origin, Key="written", Body=b"through")
        assert emu.get_object(origin, "written") == b"through"
    finally:
        emu.delete_bucket(origin)


# ---------------------------------------------------------------------------------------------
# Neither environment nor section
# ---------------------------------------------------------------------------------------------


def test_no_provider_environment_nor_section(trove_factory):
    trove = trove_factory(env=TROVE_ENV)
    assert "[backends" not in trove.config_path.read_text()
    assert server_provider_env(trove) == {}
    assert requests.get(f"{trove.endpoint}/v1/health", timeout=5).status_code == 200

    # (`s3://x` would fail on its name first: S3 bucket names have 3 to 63 characters.)
    proc = trove_cli(trove, "bucket", "attach", "s3://xyz")
    cli_fails_with_one_line(proc)
    assert "backends.aws" in proc.stderr or "environment" in proc.stderr, proc.stderr
    for provider in PROVIDERS:
        assert_not_set_up(trove, provider)

    s3 = trove.client()
    assert s3.list_buckets()["Buckets"] == []  # nothing was attached
    local = new_bucket_name()
    s3.create_bucket(Bucket=local)
    s3.put_object(Bucket=local, Key="k", Body=b"local data")
    assert read(s3, local, "k") == b"local data"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=local)["Contents"]] == ["k"]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [local]
