"""Cloud backends: buckets of AWS S3 (moto), GCS (gcp-storage-emulator) and Azure Blob (Azurite) attached into
Trove's namespace and served through its S3 API: read-through caching (cold, warm, ranged, single flight),
write-through PUT/multipart/copy/delete, listings paged from the backend, metadata and key fidelity, revalidation
(`versioning.validate_warm_get`, `?latest-ver=true`), an unavailable or hung backend, SigV4 towards the origin,
and attaching/detaching through config, `auto_attach`, the native API and the CLI.

Each provider's emulator runs once per session (conftest `moto`, `gcs`, `azurite`) behind one Trove per module
(`gateway`); tests that stop or pause an origin, or need another config, start their own emulator and Trove.
Every test works in fresh bucket names and checks the backend with the provider's own Python client.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from emulators import Emulator, standard_env
from support import (
    MAIN,
    MiB,
    Trove,
    etag,
    key_path,
    new_bucket_name,
    random_bytes,
    raw_request,
    require_binary,
    s3_error,
    server_env,
    wait_until,
)

PROVIDERS = ["aws", "gcp", "azure"]
EMULATOR_FIXTURE = {"aws": "moto", "gcp": "gcs", "azure": "azurite"}
ADMIN_TOKEN = "trove-backend-tests-admin-token-0123456789"
TROVE_ENV = {"TROVE_ADMIN_TOKEN": ADMIN_TOKEN}

# What an unavailable backend may answer: 503 (ServiceUnavailable / SlowDown) or 500 with a message.
UNAVAILABLE = (500, 503)
# Bound for any request while the backend is down or hung (timeout_secs=2, max_attempts=2 in those tests).
DOWN_BOUND_SECS = 20


# ---------------------------------------------------------------------------------------------
# Helpers: config, native API, CLI, metrics
# ---------------------------------------------------------------------------------------------


def backends_toml(*emulators: Emulator, timeout_secs: int = 10, connect_timeout_secs: int = 2,
                  max_attempts: int = 2, buckets: list[dict] | tuple = (), **per_provider: dict) -> str:
    """`[backends]`, one `[backends.<provider>]` per emulator (`per_provider={"aws": {"auto_attach": True}}`
    adds or overrides keys) and `[[buckets]]` entries (`{"name", "source", "props"?}`)."""
    parts = [
        "[backends]",
        f"timeout_secs = {timeout_secs}",
        f"connect_timeout_secs = {connect_timeout_secs}",
        f"max_attempts = {max_attempts}",
        "",
    ]
    for emu in emulators:
        parts.append(emu.backend_config(**per_provider.get(emu.provider, {})))
    for b in buckets:
        parts += ["[[buckets]]", f"name = {json.dumps(b['name'])}", f"source = {json.dumps(b['source'])}"]
        if b.get("props"):
            parts.append(f"props = {toml_inline(b['props'])}")
        parts.append("")
    return "\n".join(parts) + "\n"


def toml_inline(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def start_trove(trove_factory, *emulators: Emulator, **config) -> Trove:
    """A Trove of this test only, with these emulators as backends (see `backends_toml` for `config`)."""
    return trove_factory(extra_config=backends_toml(*emulators, **config), env=TROVE_ENV)


def native(trove: Trove, method: str, path: str, body: dict | None = None, *, params: dict | None = None,
           token: str | None = ADMIN_TOKEN, timeout: float = 60) -> requests.Response:
    """One native API request (`/v1/...`) with a JSON body (AIS sends JSON control messages on GET too)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body) if body is not None else None
    return requests.request(method, trove.endpoint + path, params=params, headers=headers, data=data,
                            timeout=timeout)


def describe(r: requests.Response) -> str:
    return f"{r.request.method} {r.url} -> {r.status_code} {r.text[:500]!r}"


def attach(trove: Trove, emu: Emulator, origin: str, *, name: str | None = None) -> str:
    """Attach backend bucket `origin` of `emu`: under its own name (`POST /v1/buckets/ORIGIN?provider=P`), or
    under S3 name `name` (`POST /v1/buckets/NAME?provider=ais` with `backend_bck`). Returns the S3 name."""
    if name is None:
        r = native(trove, "POST", f"/v1/buckets/{origin}", {"action": "create-bck"},
                   params={"provider": emu.provider})
    else:
        value = {"backend_bck": {"name": origin, "provider": emu.provider}}
        r = native(trove, "POST", f"/v1/buckets/{name}", {"action": "create-bck", "value": value},
                   params={"provider": "ais"})
    assert r.ok, describe(r)
    return name or origin


def detach(trove: Trove, name: str) -> requests.Response:
    return native(trove, "DELETE", f"/v1/buckets/{name}", {"action": "destroy-bck"})


def listed_buckets(trove: Trove) -> list[dict]:
    r = native(trove, "GET", "/v1/buckets/", {"action": "list"})
    assert r.status_code == 200, describe(r)
    return r.json() or []


def bucket_props(trove: Trove, name: str) -> dict:
    r = native(trove, "HEAD", f"/v1/buckets/{name}")
    assert r.status_code == 200, describe(r)
    assert "Ais-Bucket-Props" in r.headers, f"no Ais-Bucket-Props header in {dict(r.headers)}"
    return json.loads(r.headers["Ais-Bucket-Props"])


def set_props(trove: Trove, name: str, partial: dict) -> None:
    r = native(trove, "PATCH", f"/v1/buckets/{name}", {"action": "set-bprops", "value": partial})
    assert r.ok, describe(r)


def trove_cli(trove: Trove, *args: str, token: str = ADMIN_TOKEN, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the `trove` CLI against `trove` (TROVE_ENDPOINT, TROVE_ADMIN_TOKEN)."""
    env = server_env(None, {"TROVE_ENDPOINT": trove.endpoint, "TROVE_ADMIN_TOKEN": token})
    return subprocess.run([str(require_binary()), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def cli_ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def cli_fails_with_one_line(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode != 0, f"{proc.args} succeeded unexpectedly\nstdout:\n{proc.stdout}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"{proc.args}: expected one error line on stderr, got {proc.stderr!r}"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def metrics_text(trove: Trove) -> str:
    """The metrics of every node (a cluster's totals are the sums over its nodes)."""
    texts = []
    for endpoint in trove.endpoints:
        # The token is sent although /v1/metrics is meant to be public: it must not hurt either way.
        r = requests.get(f"{endpoint}/v1/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert r.status_code == 200, describe(r)
        texts.append(r.text)
    return "\n".join(texts)


def metric(trove: Trove, name: str, **labels: str) -> float:
    return metric_sum(metrics_text(trove), name, **labels)


@contextlib.contextmanager
def within(seconds: float, what: str = "request"):
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"{what} took {elapsed:.1f}s (bound {seconds}s)"


def status(response) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def read(s3, bucket: str, key: str, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def is_cached(trove: Trove, basename: str, size: int) -> bool:
    """Whether a complete cached copy (`size` bytes) of the key with last segment `basename` is on disk."""
    for path in cached_copies(trove, basename):
        with contextlib.suppress(OSError):
            if path.stat().st_size == size:
                return True
    return False


def settle(trove: Trove, key: str, body: bytes, timeout: float = 10) -> None:
    """Wait until the cached copy of `key` holds `body`: a cold GET may commit its copy just after the response
    ends. Tests of other features wait for that, so that only `test_write_right_after_cold_get_is_not_undone`
    is about the race."""
    basename = key.rsplit("/", 1)[-1]

    def done():
        for path in cached_copies(trove, basename):
            with contextlib.suppress(OSError):
                if path.stat().st_size == len(body) and path.read_bytes() == body:
                    return True
        return False

    assert wait_until(done, timeout=timeout), f"{key} ({len(body)} bytes) was never cached"


def cached_copies(trove: Trove, basename: str) -> list[Path]:
    """Files named `basename` in Trove's mountpaths outside the work area (`%wk`): the cached copies of a
    key whose last segment is `basename` (the layout keeps ordinary keys readable)."""
    found = []
    for mp in trove.all_mountpaths:
        for dirpath, _dirs, files in os.walk(mp):
            rel = Path(dirpath).relative_to(mp).parts
            if rel and rel[0] == "%wk":
                continue
            if basename in files:
                found.append(Path(dirpath) / basename)
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, moto, gcs, azurite) -> Trove:
    """One Trove for the module with all three backends (auto_attach off), set up from the providers' standard
    environment only, as a user with aws-cli, gsutil and az configured would run it: no `[backends.*]`."""
    env = dict(TROVE_ENV)
    for emu in (moto, gcs, azurite):
        env.update(standard_env(emu))
    server = Trove(tmp_path_factory.mktemp("trove-backends"), extra_config=backends_toml(), env=env)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw_s3(gateway):
    return gateway.client()


@pytest.fixture
def emu(request, provider) -> Emulator:
    """The session emulator of `provider` (tests parametrize `provider`)."""
    return request.getfixturevalue(EMULATOR_FIXTURE[provider])


@dataclass
class Attached:
    trove: Trove
    emu: Emulator
    origin: str  # the bucket (container) at the backend
    name: str  # its S3 name in Trove
    s3: object  # boto3 client of `trove`

    @property
    def provider(self) -> str:
        return self.emu.provider


@pytest.fixture
def origin(emu) -> str:
    """A new, empty bucket at the backend, deleted afterwards."""
    name = new_bucket_name()
    emu.create_bucket(name)
    yield name
    emu.delete_bucket(name)


@pytest.fixture
def attached(gateway, gw_s3, emu, origin) -> Attached:
    """`origin` attached to the module's Trove under its own name; detached afterwards."""
    attach(gateway, emu, origin)
    yield Attached(gateway, emu, origin, origin, gw_s3)
    with contextlib.suppress(requests.RequestException):
        detach(gateway, origin)


@pytest.fixture
def origin_aws(moto) -> str:
    """A new, empty bucket in the session moto, deleted afterwards (for tests that are not per provider)."""
    name = new_bucket_name()
    moto.create_bucket(name)
    yield name
    moto.delete_bucket(name)


@pytest.fixture
def attached_aws(gateway, gw_s3, moto, origin_aws) -> Attached:
    attach(gateway, moto, origin_aws)
    yield Attached(gateway, moto, origin_aws, origin_aws, gw_s3)
    with contextlib.suppress(requests.RequestException):
        detach(gateway, origin_aws)


parametrize_providers = pytest.mark.parametrize("provider", PROVIDERS)


# ---------------------------------------------------------------------------------------------
# Attached buckets in the S3 and native views
# ---------------------------------------------------------------------------------------------


@parametrize_providers
def test_attached_bucket_is_visible(attached):
    a = attached
    assert status(a.s3.head_bucket(Bucket=a.name)) == 200
    assert a.name in [b["Name"] for b in a.s3.list_buckets()["Buckets"]]
    entries = [b for b in listed_buckets(a.trove) if b.get("name") == a.name]
    assert entries, f"{a.name} missing from the native bucket list"
    assert entries[0].get("provider") == a.provider
    props = bucket_props(a.trove, a.name)
    assert isinstance(props, dict)


@parametrize_providers
def test_unattached_backend_bucket_is_invisible(gateway, gw_s3, emu, origin):
    emu.put_object(origin, "k", b"v")
    with s3_error(None, 404):
        gw_s3.head_bucket(Bucket=origin)
    with s3_error("NoSuchBucket", 404):
        gw_s3.get_object(Bucket=origin, Key="k")
    assert origin not in [b["Name"] for b in gw_s3.list_buckets()["Buckets"]]


@parametrize_providers
def test_attach_missing_origin_is_404(gateway, emu):
    missing = new_bucket_name()
    r = native(gateway, "POST", f"/v1/buckets/{missing}", {"action": "create-bck"},
               params={"provider": emu.provider})
    assert r.status_code == 404, describe(r)
    assert r.json().get("message"), describe(r)
    assert missing not in [b.get("name") for b in listed_buckets(gateway)]


def test_native_bucket_api_needs_the_token(gateway, moto, origin_aws):
    body = {"action": "create-bck"}
    for token in (None, "wrong-token"):
        r = native(gateway, "POST", f"/v1/buckets/{origin_aws}", body, params={"provider": "aws"}, token=token)
        assert r.status_code == 401, describe(r)
    assert origin_aws not in [b.get("name") for b in listed_buckets(gateway)]


def test_metrics_are_public(gateway):
    r = requests.get(f"{gateway.endpoint}/v1/metrics", timeout=10)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    for name in ("trove_cold_gets_total", "trove_backend_requests_total", "trove_cache_hits_total",
                 "trove_cache_misses_total"):
        assert f"# TYPE {name} counter" in r.text or name not in r.text, name
    metric_sum(r.text, "trove_cold_gets_total", provider="aws")  # parses


def test_metric_sum():
    text = """# HELP trove_cold_gets_total x
# TYPE trove_cold_gets_total counter
trove_cold_gets_total{provider="aws"} 3
trove_cold_gets_total{provider="gcp"} 4
trove_backend_requests_total{provider="aws",op="get"} 5 1700000000000
trove_backend_requests_total{op="head",provider="aws"} 1.5e1
trove_cache_hits_total 7
"""
    assert metric_sum(text, "trove_cold_gets_total", provider="aws") == 3
    assert metric_sum(text, "trove_cold_gets_total") == 7
    assert metric_sum(text, "trove_backend_requests_total", provider="aws") == 20
    assert metric_sum(text, "trove_backend_requests_total", provider="aws", op="get") == 5
    assert metric_sum(text, "trove_cache_hits_total") == 7
    assert metric_sum(text, "trove_cache_misses_total") == 0
    assert metric_sum(text, "trove_cold_gets_total", provider="azure") == 0


@parametrize_providers
def test_backend_bucket_deleted_behind_trove(attached):
    a = attached
    a.emu.delete_bucket(a.origin)
    with s3_error(None, 404):
        a.s3.head_bucket(Bucket=a.name)


# ---------------------------------------------------------------------------------------------
# Read-through
# ---------------------------------------------------------------------------------------------


@parametrize_providers
def test_cold_then_warm_get(attached):
    a = attached
    p = a.provider
    body = random_bytes(512 * 1024, seed=1)
    a.emu.put_object(a.origin, "data/obj.bin", body, content_type="application/x-test")

    cold0 = metric(a.trove, "trove_cold_gets_total", provider=p)
    gets0 = metric(a.trove, "trove_backend_requests_total", provider=p, op="get")
    miss0 = metric(a.trove, "trove_cache_misses_total")
    got = a.s3.get_object(Bucket=a.name, Key="data/obj.bin")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "application/x-test"
    assert metric(a.trove, "trove_cold_gets_total", provider=p) - cold0 == 1
    assert metric(a.trove, "trove_backend_requests_total", provider=p, op="get") - gets0 >= 1
    assert metric(a.trove, "trove_cache_misses_total") - miss0 >= 1
    settle(a.trove, "data/obj.bin", body)

    text = metrics_text(a.trove)
    cold1 = metric_sum(text, "trove_cold_gets_total", provider=p)
    backend1 = metric_sum(text, "trove_backend_requests_total", provider=p)
    hits1 = metric_sum(text, "trove_cache_hits_total")
    warm = a.s3.get_object(Bucket=a.name, Key="data/obj.bin")
    assert warm["Body"].read() == body
    assert warm["ETag"] == got["ETag"]
    text = metrics_text(a.trove)
    assert metric_sum(text, "trove_cold_gets_total", provider=p) == cold1
    assert metric_sum(text, "trove_backend_requests_total", provider=p) == backend1, "warm GET went to the backend"
    assert metric_sum(text, "trove_cache_hits_total") - hits1 >= 1

    head = a.s3.head_object(Bucket=a.name, Key="data/obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == got["ETag"]
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="data/missing.bin")


@parametrize_providers
def test_ranged_cold_get_then_background_fill(attached):
    a = attached
    body = random_bytes(2 * MiB, seed=2)
    key = unique("bgfill") + ".bin"
    a.emu.put_object(a.origin, key, body)

    got = a.s3.get_object(Bucket=a.name, Key=key, Range="bytes=1000-1999")
    assert status(got) == 206
    assert got["ContentRange"] == f"bytes 1000-1999/{len(body)}"
    assert got["ContentLength"] == 1000
    assert got["Body"].read() == body[1000:2000]

    tail = a.s3.get_object(Bucket=a.name, Key=key, Range=f"bytes={len(body) - 5000}-")
    assert status(tail) == 206
    assert tail["Body"].read() == body[-5000:]

    # cache.background_fill (default on): the whole object lands in the cache without another request
    assert wait_until(lambda: is_cached(a.trove, key, len(body)), timeout=20), \
        f"{key} was not cached in the background: {cached_copies(a.trove, key)}"
    a.emu.delete_object(a.origin, key)  # from now on only the cached copy has it
    assert read(a.s3, a.name, key) == body
    assert read(a.s3, a.name, key, Range="bytes=100-199") == body[100:200]


@pytest.mark.parametrize("provider", ["aws", "azure"])  # the GCS emulator answers suffix ranges with everything
def test_suffix_range_on_cold_object(attached):
    a = attached
    body = random_bytes(300 * 1024, seed=3)
    a.emu.put_object(a.origin, "suffix.bin", body)
    got = a.s3.get_object(Bucket=a.name, Key="suffix.bin", Range="bytes=-100")
    assert status(got) == 206
    assert got["ContentRange"] == f"bytes {len(body) - 100}-{len(body) - 1}/{len(body)}"
    assert got["Body"].read() == body[-100:]


@parametrize_providers
def test_ranged_cold_get_without_background_fill(attached):
    a = attached
    set_props(a.trove, a.name, {"cache": {"background_fill": False}})
    assert bucket_props(a.trove, a.name)["cache"]["background_fill"] is False
    body = random_bytes(1 * MiB, seed=4)
    key = unique("nofill") + ".bin"
    a.emu.put_object(a.origin, key, body)
    got = a.s3.get_object(Bucket=a.name, Key=key, Range="bytes=10-19")
    assert status(got) == 206 and got["Body"].read() == body[10:20]
    time.sleep(1.0)
    assert not is_cached(a.trove, key, len(body)), "cached although cache.background_fill is off"
    assert read(a.s3, a.name, key) == body


@parametrize_providers
def test_concurrent_cold_gets_share_one_fetch(attached):
    a = attached
    body = random_bytes(3 * MiB, seed=5)
    a.emu.put_object(a.origin, "shared.bin", body)
    cold0 = metric(a.trove, "trove_cold_gets_total", provider=a.provider)
    barrier = threading.Barrier(8)

    def get(_):
        barrier.wait(timeout=30)
        return read(a.s3, a.name, "shared.bin")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(get, range(8)))
    assert all(r == body for r in results), [len(r) for r in results]
    assert metric(a.trove, "trove_cold_gets_total", provider=a.provider) - cold0 == 1


@parametrize_providers
def test_metadata_round_trip(attached):
    """An object written with the provider's own client, read through Trove: cold HEAD, cold GET, warm GET."""
    a = attached
    data = gzip.compress(b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000)))
    meta = {"color": "blue", "owner": "team-data"}
    a.emu.put_object(a.origin, "tables/data.csv", data, content_type="text/csv", content_encoding="gzip",
                     cache_control="max-age=3600", content_disposition='attachment; filename="data.csv"',
                     metadata=meta)

    def check(r):
        assert r["ContentLength"] == len(data)
        assert r["ContentType"] == "text/csv"
        assert r["ContentEncoding"] == "gzip"
        assert r["CacheControl"] == "max-age=3600"
        assert r["ContentDisposition"] == 'attachment; filename="data.csv"'
        assert r["Metadata"] == meta
        assert r["LastModified"] is not None
        assert r["ETag"].startswith('"') and r["ETag"].endswith('"'), r["ETag"]
        if a.provider == "aws":
            assert r["ETag"] == etag(data)

    head = a.s3.head_object(Bucket=a.name, Key="tables/data.csv")
    check(head)
    cold = a.s3.get_object(Bucket=a.name, Key="tables/data.csv")
    check(cold)
    assert cold["Body"].read() == data  # the stored gzip bytes, not decompressed
    warm = a.s3.get_object(Bucket=a.name, Key="tables/data.csv")
    check(warm)
    assert warm["Body"].read() == data
    assert cold["ETag"] == warm["ETag"] == head["ETag"]
    assert cold["LastModified"] == warm["LastModified"]
    check(a.s3.head_object(Bucket=a.name, Key="tables/data.csv"))


# ---------------------------------------------------------------------------------------------
# Write-through
# ---------------------------------------------------------------------------------------------


@parametrize_providers
def test_put_is_written_through(attached):
    a = attached
    body = random_bytes(200 * 1024, seed=6)
    put = a.s3.put_object(Bucket=a.name, Key="up/loaded.json", Body=body, ContentType="application/json",
                          Metadata={"color": "red", "owner": "trove"})
    assert status(put) == 200
    info = a.emu.head_object(a.origin, "up/loaded.json")
    assert info is not None, "not at the backend after PUT returned"
    assert info.size == len(body)
    assert info.content_type == "application/json"
    assert info.metadata == {"color": "red", "owner": "trove"}
    assert a.emu.get_object(a.origin, "up/loaded.json") == body

    got = a.s3.get_object(Bucket=a.name, Key="up/loaded.json")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"color": "red", "owner": "trove"}
    if a.provider == "aws":
        assert put["ETag"] == etag(body)

    a.s3.put_object(Bucket=a.name, Key="up/loaded.json", Body=b"second version")
    assert a.emu.get_object(a.origin, "up/loaded.json") == b"second version"
    assert read(a.s3, a.name, "up/loaded.json") == b"second version"
    assert "up/loaded.json" in a.emu.list_keys(a.origin)


@parametrize_providers
def test_delete_and_delete_objects_reach_the_backend(attached):
    a = attached
    for k in ("del/one", "del/two", "del/three", "keep"):
        a.emu.put_object(a.origin, k, k.encode())
    assert read(a.s3, a.name, "del/one") == b"del/one"
    settle(a.trove, "del/one", b"del/one")

    assert status(a.s3.delete_object(Bucket=a.name, Key="del/one")) == 204
    assert a.emu.head_object(a.origin, "del/one") is None
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="del/one")  # the cached copy went too

    res = a.s3.delete_objects(Bucket=a.name, Delete={"Objects": [{"Key": "del/two"}, {"Key": "del/three"}]})
    assert sorted(d["Key"] for d in res.get("Deleted", [])) == ["del/three", "del/two"]
    assert not res.get("Errors")
    assert a.emu.list_keys(a.origin) == ["keep"]
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="del/two")


@parametrize_providers
def test_write_right_after_cold_get_is_not_undone(attached):
    """A DELETE or PUT through Trove that closely follows a cold GET of the same key must win over the
    cached copy that the GET is still committing. Repeated, as the window is small."""
    a = attached
    stale = []
    for i in range(20):
        key = f"race/{i}"
        a.emu.put_object(a.origin, key, b"old" * 100)
        assert read(a.s3, a.name, key) == b"old" * 100
        if i % 2:
            a.s3.put_object(Bucket=a.name, Key=key, Body=b"new")
            with contextlib.suppress(Exception):
                if read(a.s3, a.name, key) != b"new":
                    stale.append(f"{key}: old bytes after PUT")
        else:
            a.s3.delete_object(Bucket=a.name, Key=key)
            with contextlib.suppress(Exception):
                read(a.s3, a.name, key)
                stale.append(f"{key}: still readable after DELETE")
    assert not stale, stale


@parametrize_providers
def test_latest_ver_right_after_cold_get_sees_the_backend(attached):
    """`?latest-ver=true` closely following a cold GET must ask the backend, not join the fill still in flight
    from before the object changed. Repeated, as the window is small."""
    a = attached
    stale = []
    for i in range(20):
        key = f"lvrace/{i}"
        a.emu.put_object(a.origin, key, b"old" * 100)
        assert read(a.s3, a.name, key) == b"old" * 100
        a.emu.delete_object(a.origin, key)
        r = raw_request("GET", a.trove.endpoint, key_path(a.name, key), query="latest-ver=true", user=MAIN)
        if r.status_code != 404:
            stale.append(f"{key}: {r.status_code} after the backend deleted it")
    assert not stale, stale


@parametrize_providers
def test_multipart_upload_lands_as_one_object(attached):
    a = attached
    body = random_bytes(5 * MiB + 100 * 1024, seed=7)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    a.s3.upload_fileobj(io.BytesIO(body), a.name, "big/archive.tar", Config=cfg,
                        ExtraArgs={"ContentType": "application/x-tar"})
    assert a.emu.list_keys(a.origin) == ["big/archive.tar"]  # one object, no leftover parts
    info = a.emu.head_object(a.origin, "big/archive.tar")
    assert info.size == len(body)
    assert info.content_type == "application/x-tar"
    assert a.emu.get_object(a.origin, "big/archive.tar") == body
    assert read(a.s3, a.name, "big/archive.tar") == body
    assert a.s3.list_multipart_uploads(Bucket=a.name).get("Uploads", []) == []


@parametrize_providers
def test_copy_object_within_attached_bucket(attached):
    a = attached
    body = random_bytes(150 * 1024, seed=8)
    a.emu.put_object(a.origin, "src.bin", body, content_type="image/png", metadata={"color": "green"})
    res = a.s3.copy_object(Bucket=a.name, Key="dst/copy.bin", CopySource={"Bucket": a.name, "Key": "src.bin"})
    assert status(res) == 200
    assert a.emu.get_object(a.origin, "dst/copy.bin") == body
    info = a.emu.head_object(a.origin, "dst/copy.bin")
    assert info.content_type == "image/png"
    assert info.metadata == {"color": "green"}
    got = a.s3.get_object(Bucket=a.name, Key="dst/copy.bin")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"color": "green"}
    assert a.emu.get_object(a.origin, "src.bin") == body


# ---------------------------------------------------------------------------------------------
# Listings
# ---------------------------------------------------------------------------------------------

LIST_KEYS = sorted(
    [f"list/a/{i:02d}" for i in range(7)]
    + [f"list/b/c/{i}" for i in range(3)]
    + [f"list/d{i}" for i in range(5)]
    + ["list/e"]
)


def page_v2(s3, bucket, provider, max_keys, **kwargs):
    """All pages of ListObjectsV2 -> (keys, common prefixes, number of pages)."""
    keys, prefixes, pages, token = [], [], 0, None
    while True:
        args = dict(kwargs, Bucket=bucket, MaxKeys=max_keys)
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        pages += 1
        page_keys = [o["Key"] for o in page.get("Contents", [])]
        page_prefixes = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if provider != "gcp":  # the GCS emulator ignores paging: Trove may answer in one page
            assert len(page_keys) + len(page_prefixes) <= max_keys
            assert page["KeyCount"] == len(page_keys) + len(page_prefixes)
        keys += page_keys
        prefixes += page_prefixes
        if not page["IsTruncated"]:
            assert not page.get("NextContinuationToken")
            return keys, prefixes, pages
        token = page["NextContinuationToken"]
        assert token and pages < 100


def page_v1(s3, bucket, provider, max_keys, **kwargs):
    """All pages of ListObjects (v1), following NextMarker or the last key -> (keys, prefixes, pages).

    With a delimiter, moto 5.2.5 itself repeats every CommonPrefix on each v1 page and does not count them
    against max-keys; a gateway that forwards v1 listings to it inherits that, so only the union is checked."""
    keys, prefixes, pages, marker = [], [], 0, None
    while True:
        args = dict(kwargs, Bucket=bucket, MaxKeys=max_keys)
        if marker:
            args["Marker"] = marker
        page = s3.list_objects(**args)
        pages += 1
        page_keys = [o["Key"] for o in page.get("Contents", [])]
        page_prefixes = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if provider != "gcp" and "Delimiter" not in kwargs:
            assert len(page_keys) + len(page_prefixes) <= max_keys
        keys += page_keys
        prefixes += page_prefixes
        if not page["IsTruncated"]:
            return keys, prefixes, pages
        marker = page.get("NextMarker") or (page_keys[-1] if page_keys else None)
        assert marker and pages < 100


@parametrize_providers
def test_list_pages_through_the_backend(attached):
    a = attached
    for k in LIST_KEYS + ["other/x"]:
        a.emu.put_object(a.origin, k, b"x" * 3)
    multi_page = a.provider != "gcp"

    keys, prefixes, pages = page_v2(a.s3, a.name, a.provider, 4, Prefix="list/")
    assert keys == LIST_KEYS and prefixes == []
    if multi_page:
        assert pages >= 4  # 16 keys, at most 4 per page

    keys, prefixes, pages = page_v2(a.s3, a.name, a.provider, 3, Prefix="list/", Delimiter="/")
    assert keys == [f"list/d{i}" for i in range(5)] + ["list/e"]
    assert prefixes == ["list/a/", "list/b/"]
    if multi_page:
        assert pages >= 3  # 8 entries, at most 3 per page

    keys, prefixes, pages = page_v1(a.s3, a.name, a.provider, 5, Prefix="list/")
    assert keys == LIST_KEYS
    if multi_page:
        assert pages >= 4  # 16 keys, at most 5 per page

    keys, prefixes, _ = page_v1(a.s3, a.name, a.provider, 2, Prefix="list/", Delimiter="/")
    assert keys == [f"list/d{i}" for i in range(5)] + ["list/e"]
    assert sorted(set(prefixes)) == ["list/a/", "list/b/"]  # see page_v1 about moto's repeats

    everything = a.s3.list_objects_v2(Bucket=a.name)
    assert [o["Key"] for o in everything["Contents"]] == LIST_KEYS + ["other/x"]
    assert all(o["Size"] == 3 for o in everything["Contents"])
    assert [p["Prefix"] for p in a.s3.list_objects_v2(Bucket=a.name, Delimiter="/")["CommonPrefixes"]] == \
        ["list/", "other/"]

    if a.provider != "gcp":  # the GCS emulator ignores startOffset as it ignores paging
        after = a.s3.list_objects_v2(Bucket=a.name, Prefix="list/", StartAfter="list/a/03")
        assert [o["Key"] for o in after.get("Contents", [])] == [k for k in LIST_KEYS if k > "list/a/03"]
    empty = a.s3.list_objects_v2(Bucket=a.name, Prefix="nothing/")
    assert empty["KeyCount"] == 0 and "Contents" not in empty


# ---------------------------------------------------------------------------------------------
# Keys that are hard to carry
# ---------------------------------------------------------------------------------------------

HARD_KEYS = [
    "dir/trailing/",
    "a//b",
    "100%.txt",
    "pct%20literal",
    "hash#tag",
    "tilde~x",
    "plus+sign",
    "with space",
    "unicodé/日本語.bin",
]


@parametrize_providers
def test_hard_keys_round_trip(attached):
    """Each key is written through Trove (`t/...`) and with the provider's client (`p/...`), read back both
    ways and listed under the same name. Problems are collected per key and reported together."""
    a = attached
    via_trove = {f"t/{k}": f"trove:{k}".encode() for k in HARD_KEYS}
    via_provider = {f"p/{k}": f"provider:{k}".encode() for k in HARD_KEYS}
    problems: dict[str, str] = {}

    def attempt(key, what, fn):
        if key in problems:
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - collected, asserted below
            problems[key] = f"{what}: {type(e).__name__}: {str(e)[:200]}"

    def check(got, want):
        assert got == want, f"got {got[:60]!r}"

    for key, body in via_trove.items():
        attempt(key, "PUT via Trove", lambda: a.s3.put_object(Bucket=a.name, Key=key, Body=body))
    for key, body in via_provider.items():
        attempt(key, "PUT via provider", lambda: a.emu.put_object(a.origin, key, body))
    for key, body in {**via_trove, **via_provider}.items():
        attempt(key, "GET via Trove", lambda: check(read(a.s3, a.name, key), body))
        attempt(key, "GET via provider", lambda: check(a.emu.get_object(a.origin, key), body))
    for prefix, objects in (("t/", via_trove), ("p/", via_provider)):
        # no delimiter: Azurite lists a key with a trailing '/' without it in delimiter listings
        at_backend = set(a.emu.list_keys(a.origin, prefix))
        v2 = {o["Key"] for o in a.s3.list_objects_v2(Bucket=a.name, Prefix=prefix).get("Contents", [])}
        v1 = {o["Key"] for o in a.s3.list_objects(Bucket=a.name, Prefix=prefix).get("Contents", [])}
        for key in objects:
            if key in problems:
                continue
            for where, listed in (("backend listing", at_backend), ("ListObjectsV2", v2), ("ListObjects", v1)):
                if key not in listed:
                    problems[key] = f"missing from the {where}: {sorted(listed)}"
                    break
        extra = (v2 | v1) - set(objects)
        assert not extra, f"listed under {prefix} but never written: {sorted(extra)}"
    assert not problems, "\n".join(f"{k!r}: {v}" for k, v in problems.items())


@pytest.mark.parametrize("provider", ["azure"])
def test_azure_blob_names_keep_their_slashes(attached):
    """`dir/` and `dir` are two blobs: neither may be served or written as the other."""
    a = attached
    a.s3.put_object(Bucket=a.name, Key="t/dir/", Body=b"slash")
    a.s3.put_object(Bucket=a.name, Key="t/dir", Body=b"no slash")
    assert sorted(a.emu.list_keys(a.origin, "t/")) == ["t/dir", "t/dir/"]
    assert a.emu.get_object(a.origin, "t/dir/") == b"slash"
    assert read(a.s3, a.name, "t/dir/") == b"slash"
    assert read(a.s3, a.name, "t/dir") == b"no slash"
    a.s3.delete_object(Bucket=a.name, Key="t/dir/")
    assert a.emu.list_keys(a.origin, "t/") == ["t/dir"]


# ---------------------------------------------------------------------------------------------
# Revalidation
# ---------------------------------------------------------------------------------------------


@parametrize_providers
def test_validate_warm_get(attached):
    a = attached
    v1, v2, v3 = (random_bytes(64 * 1024, seed=s) for s in (10, 11, 12))  # same size, different bytes
    a.emu.put_object(a.origin, "versioned.bin", v1)
    assert read(a.s3, a.name, "versioned.bin") == v1
    settle(a.trove, "versioned.bin", v1)

    a.emu.put_object(a.origin, "versioned.bin", v2)
    assert read(a.s3, a.name, "versioned.bin") == v1, "without validate_warm_get a warm GET is served from disk"

    set_props(a.trove, a.name, {"versioning": {"validate_warm_get": True}})
    assert bucket_props(a.trove, a.name)["versioning"]["validate_warm_get"] is True
    got = a.s3.get_object(Bucket=a.name, Key="versioned.bin")
    assert got["Body"].read() == v2
    settle(a.trove, "versioned.bin", v2)
    assert read(a.s3, a.name, "versioned.bin") == v2

    a.emu.delete_object(a.origin, "versioned.bin")
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="versioned.bin")

    # the cached copy was dropped: with validation off again, a new backend object is fetched, not v2
    set_props(a.trove, a.name, {"versioning": {"validate_warm_get": False}})
    a.emu.put_object(a.origin, "versioned.bin", v3)
    assert read(a.s3, a.name, "versioned.bin") == v3


@parametrize_providers
def test_latest_ver_query_revalidates_one_request(attached):
    a = attached
    v1, v2 = random_bytes(32 * 1024, seed=20), random_bytes(32 * 1024, seed=21)
    a.emu.put_object(a.origin, "lv.bin", v1)
    assert read(a.s3, a.name, "lv.bin") == v1
    settle(a.trove, "lv.bin", v1)
    a.emu.put_object(a.origin, "lv.bin", v2)
    assert read(a.s3, a.name, "lv.bin") == v1

    path = key_path(a.name, "lv.bin")
    r = raw_request("GET", a.trove.endpoint, path, query="latest-ver=true", user=MAIN)
    assert r.status_code == 200 and r.content == v2, (r.status_code, r.text[:300])
    settle(a.trove, "lv.bin", v2)  # the refetched copy replaces the old one
    assert read(a.s3, a.name, "lv.bin") == v2

    a.emu.delete_object(a.origin, "lv.bin")
    assert read(a.s3, a.name, "lv.bin") == v2  # still cached, no validation without the parameter
    r = raw_request("GET", a.trove.endpoint, path, query="latest-ver=true", user=MAIN)
    assert r.status_code == 404, (r.status_code, r.text[:300])
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="lv.bin")


def test_bucket_props_round_trip(attached_aws):
    a = attached_aws
    props = bucket_props(a.trove, a.name)
    assert props["cache"]["background_fill"] is True
    assert props["cache"]["serve_stale"] is False
    assert props["versioning"]["validate_warm_get"] is False
    assert "enabled" in props["lru"] and "dont_evict_time" in props["lru"]

    set_props(a.trove, a.name, {"lru": {"enabled": False}, "cache": {"serve_stale": True}})
    props = bucket_props(a.trove, a.name)
    assert props["lru"]["enabled"] is False
    assert props["cache"]["serve_stale"] is True
    assert props["cache"]["background_fill"] is True  # a partial update leaves the rest alone
    set_props(a.trove, a.name, {"lru": {"enabled": True}})
    props = bucket_props(a.trove, a.name)
    assert props["lru"]["enabled"] is True and props["cache"]["serve_stale"] is True


# ---------------------------------------------------------------------------------------------
# Attach and detach: native API, config, auto_attach, CLI
# ---------------------------------------------------------------------------------------------


@parametrize_providers
def test_attach_under_another_name(gateway, gw_s3, emu, origin):
    name = new_bucket_name()
    attach(gateway, emu, origin, name=name)
    try:
        emu.put_object(origin, "from-provider", b"one")
        assert read(gw_s3, name, "from-provider") == b"one"
        gw_s3.put_object(Bucket=name, Key="from-trove", Body=b"two")
        assert emu.get_object(origin, "from-trove") == b"two"
        assert [o["Key"] for o in gw_s3.list_objects_v2(Bucket=name)["Contents"]] == ["from-provider", "from-trove"]
        s3_names = [b["Name"] for b in gw_s3.list_buckets()["Buckets"]]
        assert name in s3_names and origin not in s3_names
        with s3_error(None, 404):
            gw_s3.head_bucket(Bucket=origin)
        assert name in [b.get("name") for b in listed_buckets(gateway)]
    finally:
        r = detach(gateway, name)
    assert r.ok, describe(r)
    with s3_error(None, 404):
        gw_s3.head_bucket(Bucket=name)
    assert emu.list_keys(origin) == ["from-provider", "from-trove"]


@parametrize_providers
def test_detach_keeps_cloud_data_and_drops_cached_copies(gateway, gw_s3, emu, origin):
    v1, v2 = random_bytes(10_000, seed=30), random_bytes(10_000, seed=31)
    emu.put_object(origin, "obj", v1)
    attach(gateway, emu, origin)
    assert read(gw_s3, origin, "obj") == v1
    settle(gateway, "obj", v1)

    r = detach(gateway, origin)
    assert r.ok, describe(r)
    with s3_error(None, 404):
        gw_s3.head_bucket(Bucket=origin)
    with s3_error("NoSuchBucket", 404):
        gw_s3.get_object(Bucket=origin, Key="obj")
    assert origin not in [b["Name"] for b in gw_s3.list_buckets()["Buckets"]]
    assert origin not in [b.get("name") for b in listed_buckets(gateway)]
    assert emu.get_object(origin, "obj") == v1  # the cloud data is untouched

    emu.put_object(origin, "obj", v2)
    attach(gateway, emu, origin)
    try:
        assert read(gw_s3, origin, "obj") == v2, "a cached copy survived the detach"
    finally:
        detach(gateway, origin)


@parametrize_providers
def test_attach_in_config_with_props(trove_factory, moto, gcs, azurite, emu, origin):
    name = unique("cfg")
    v1, v2 = random_bytes(20_000, seed=40), random_bytes(20_000, seed=41)
    emu.put_object(origin, "obj", v1)
    trove = start_trove(trove_factory, moto, gcs, azurite, buckets=[
        {"name": name, "source": emu.uri(origin), "props": {"versioning": {"validate_warm_get": True}}}])
    s3 = trove.client()
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket_props(trove, name)["versioning"]["validate_warm_get"] is True
    assert read(s3, name, "obj") == v1
    emu.put_object(origin, "obj", v2)
    assert read(s3, name, "obj") == v2  # validate_warm_get from the config


@parametrize_providers
def test_auto_attach(trove_factory, moto, gcs, azurite, emu, provider):
    trove = start_trove(trove_factory, moto, gcs, azurite, **{provider: {"auto_attach": True}})
    s3 = trove.client()
    origin = new_bucket_name()
    emu.create_bucket(origin)  # after Trove started: found on first use
    try:
        emu.put_object(origin, "k", b"auto")
        assert status(s3.head_bucket(Bucket=origin)) == 200
        assert read(s3, origin, "k") == b"auto"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=origin)["Contents"]] == ["k"]
        assert origin in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert any(b.get("name") == origin and b.get("provider") == provider for b in listed_buckets(trove))
        s3.put_object(Bucket=origin, Key="written", Body=b"through")
        assert emu.get_object(origin, "written") == b"through"

        missing = new_bucket_name()
        with s3_error(None, 404):
            s3.head_bucket(Bucket=missing)
        with s3_error("NoSuchBucket", 404):
            s3.get_object(Bucket=missing, Key="k")

        # CreateBucket makes a local bucket even when the provider has one of that name.
        other = new_bucket_name()
        emu.create_bucket(other)
        try:
            s3.create_bucket(Bucket=other)
            s3.put_object(Bucket=other, Key="local-only", Body=b"x")
            assert emu.head_object(other, "local-only") is None
            s3.delete_object(Bucket=other, Key="local-only")
            s3.delete_bucket(Bucket=other)
        finally:
            emu.delete_bucket(other)
    finally:
        emu.delete_bucket(origin)


@parametrize_providers
def test_delete_bucket_detaches_and_keeps_cloud_data(gateway, gw_s3, emu, origin):
    emu.put_object(origin, "obj", b"kept")
    attach(gateway, emu, origin)
    assert read(gw_s3, origin, "obj") == b"kept"
    settle(gateway, "obj", b"kept")
    gw_s3.delete_bucket(Bucket=origin)  # cached copies exist: still a detach, not BucketNotEmpty
    with s3_error(None, 404):
        gw_s3.head_bucket(Bucket=origin)
    assert origin not in [b.get("name") for b in listed_buckets(gateway)]
    assert emu.get_object(origin, "obj") == b"kept"


@parametrize_providers
def test_cli_attach_ls_detach(gateway, gw_s3, emu, origin):
    name = unique("cli")
    uri = emu.uri(origin)
    emu.put_object(origin, "k", b"via cli")
    cli_ok(trove_cli(gateway, "bucket", "attach", uri, "--as", name))
    try:
        out = cli_ok(trove_cli(gateway, "bucket", "ls"))
        assert any(name in line.split() and uri in line.split() for line in out.splitlines()), out
        assert read(gw_s3, name, "k") == b"via cli"

        cli_fails_with_one_line(trove_cli(gateway, "bucket", "attach", emu.uri(new_bucket_name()),
                                          "--as", unique("cli-missing")))
        cli_fails_with_one_line(trove_cli(gateway, "bucket", "ls", token="wrong-token"))
    finally:
        cli_ok(trove_cli(gateway, "bucket", "detach", name))
    out = cli_ok(trove_cli(gateway, "bucket", "ls"))
    assert not any(name in line.split() for line in out.splitlines()), out
    with s3_error(None, 404):
        gw_s3.head_bucket(Bucket=name)
    assert emu.get_object(origin, "k") == b"via cli"
    cli_fails_with_one_line(trove_cli(gateway, "bucket", "detach", name))


# ---------------------------------------------------------------------------------------------
# Unavailable origins (each test has its own emulator and Trove)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def down_setup(trove_factory, emulator_factory, provider):
    """A private emulator, a Trove with short backend timeouts and a bucket of it attached."""
    emu = emulator_factory(provider)
    trove = start_trove(trove_factory, emu, timeout_secs=2, connect_timeout_secs=1, max_attempts=2)
    origin = new_bucket_name()
    emu.create_bucket(origin)
    attach(trove, emu, origin)
    return Attached(trove, emu, origin, origin, trove.client())


@parametrize_providers
def test_backend_down(down_setup):
    a = down_setup
    warm, cold = random_bytes(300 * 1024, seed=50), random_bytes(1 * MiB, seed=51)
    a.emu.put_object(a.origin, "warm.bin", warm)
    a.emu.put_object(a.origin, "cold.bin", cold)
    assert read(a.s3, a.name, "warm.bin") == warm

    a.emu.stop()
    with within(DOWN_BOUND_SECS, "uncached GET with the backend down"), s3_error(None, UNAVAILABLE):
        a.s3.get_object(Bucket=a.name, Key="cold.bin")
    with within(DOWN_BOUND_SECS, "warm GET with the backend down"):
        assert read(a.s3, a.name, "warm.bin") == warm  # served from disk
    with within(DOWN_BOUND_SECS, "HeadBucket with the backend down"), s3_error(None, 503):
        a.s3.head_bucket(Bucket=a.name)
    with within(DOWN_BOUND_SECS, "ListObjectsV2 with the backend down"), s3_error(None, UNAVAILABLE):
        a.s3.list_objects_v2(Bucket=a.name)
    with within(DOWN_BOUND_SECS, "PUT with the backend down"), s3_error(None, UNAVAILABLE):
        a.s3.put_object(Bucket=a.name, Key="new.bin", Body=b"not stored")

    a.emu.restart()  # same port, data kept
    assert read(a.s3, a.name, "cold.bin") == cold  # nothing partial was cached by the failed GET
    with s3_error("NoSuchKey", 404):
        a.s3.get_object(Bucket=a.name, Key="new.bin")  # the failed write-through left nothing behind
    assert a.emu.head_object(a.origin, "new.bin") is None
    assert wait_until(lambda: a.trove.work_files() == [], timeout=5), a.trove.work_files()


@parametrize_providers
def test_backend_hung(down_setup):
    a = down_setup
    body = random_bytes(200 * 1024, seed=52)
    a.emu.put_object(a.origin, "obj.bin", body)
    a.emu.pause()  # connections are accepted, nothing is answered
    try:
        with within(DOWN_BOUND_SECS, "uncached GET with the backend hung"), s3_error(None, UNAVAILABLE):
            a.s3.get_object(Bucket=a.name, Key="obj.bin")
    finally:
        a.emu.resume()
    assert read(a.s3, a.name, "obj.bin") == body
    assert wait_until(lambda: a.trove.work_files() == [], timeout=5), a.trove.work_files()


@parametrize_providers
def test_backend_stalls_mid_fill(down_setup):
    """The origin hangs while a cold GET streams: the client gets a prefix of the right bytes and then either the
    rest or an error, within a bound; afterwards the object is served whole and correct, never truncated."""
    a = down_setup
    body = random_bytes(24 * MiB, seed=54)
    a.emu.put_object(a.origin, "big.bin", body)
    s3 = a.trove.client(read_timeout=DOWN_BOUND_SECS + 10)
    got = s3.get_object(Bucket=a.name, Key="big.bin")
    data = got["Body"].read(64 * 1024)
    a.emu.pause()
    try:
        with within(DOWN_BOUND_SECS + 5, "the rest of a cold GET whose origin hung"):
            with contextlib.suppress(Exception):
                while chunk := got["Body"].read(1024 * 1024):
                    data += chunk
    finally:
        a.emu.resume()
    assert data == body[: len(data)], "wrong bytes before the stall"
    assert read(a.s3, a.name, "big.bin") == body
    assert read(a.s3, a.name, "big.bin") == body
    assert wait_until(lambda: a.trove.work_files() == [], timeout=5), a.trove.work_files()


@parametrize_providers
def test_backend_down_validating_warm_get(down_setup):
    a = down_setup
    body = random_bytes(100 * 1024, seed=53)
    a.emu.put_object(a.origin, "obj.bin", body)
    a.emu.put_object(a.origin, "uncached.bin", body)
    assert read(a.s3, a.name, "obj.bin") == body
    set_props(a.trove, a.name, {"versioning": {"validate_warm_get": True}})

    a.emu.stop()
    with within(DOWN_BOUND_SECS), s3_error(None, 503):
        a.s3.get_object(Bucket=a.name, Key="obj.bin")  # cannot validate, serve_stale is off
    set_props(a.trove, a.name, {"cache": {"serve_stale": True}})
    with within(DOWN_BOUND_SECS):
        assert read(a.s3, a.name, "obj.bin") == body  # stale copy served
    with within(DOWN_BOUND_SECS), s3_error(None, UNAVAILABLE):
        a.s3.get_object(Bucket=a.name, Key="uncached.bin")  # nothing to serve

    a.emu.restart()
    assert read(a.s3, a.name, "obj.bin") == body
    assert read(a.s3, a.name, "uncached.bin") == body


# ---------------------------------------------------------------------------------------------
# Credentials towards the origin
# ---------------------------------------------------------------------------------------------


def test_sigv4_towards_moto(trove_factory, emulator_factory):
    emu = emulator_factory("aws", enforce_auth=True)
    origin = new_bucket_name()
    emu.create_bucket(origin)
    body = random_bytes(100 * 1024, seed=60)
    emu.put_object(origin, "obj.bin", body)

    good = start_trove(trove_factory, emu)
    attach(good, emu, origin)
    s3 = good.client()
    assert read(s3, origin, "obj.bin") == body
    s3.put_object(Bucket=origin, Key="written.bin", Body=b"signed")
    assert emu.get_object(origin, "written.bin") == b"signed"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=origin)["Contents"]] == ["obj.bin", "written.bin"]

    bad = start_trove(trove_factory, emu, aws={"secret_key": "wrong-secret"},
                      buckets=[{"name": origin, "source": emu.uri(origin)}])
    with s3_error("AccessDenied", 403):
        bad.client().get_object(Bucket=origin, Key="written.bin")
    other = new_bucket_name()
    emu.create_bucket(other)
    r = native(bad, "POST", f"/v1/buckets/{other}", {"action": "create-bck"}, params={"provider": "aws"})
    assert not r.ok, describe(r)


@pytest.mark.parametrize("credential", ["sas", "connection_string"])
def test_azure_credentials(trove_factory, azurite, credential):
    """Besides the account key (every other Azure test): an account SAS, and a connection string."""
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    if credential == "sas":
        sas = generate_account_sas(
            azurite.account, azurite.key, ResourceTypes(service=True, container=True, object=True),
            AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1))
        settings = {"key": None, "sas": sas}
    else:
        settings = {"account": None, "key": None, "endpoint": None, "connection_string": azurite.connection_string}
    trove = start_trove(trove_factory, azurite, azure=settings)
    origin = new_bucket_name()
    azurite.create_bucket(origin)
    try:
        azurite.put_object(origin, "obj", b"from azure")
        attach(trove, azurite, origin)
        s3 = trove.client()
        assert read(s3, origin, "obj") == b"from azure"
        s3.put_object(Bucket=origin, Key="written", Body=b"through", ContentType="text/plain")
        assert azurite.get_object(origin, "written") == b"through"
        assert azurite.head_object(origin, "written").content_type == "text/plain"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=origin)["Contents"]] == ["obj", "written"]
    finally:
        azurite.delete_bucket(origin)
