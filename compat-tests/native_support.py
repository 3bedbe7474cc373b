"""Helpers for the AIS native-API tests (test_ais_sdk.py, test_jobs.py): raw `/v1/...` calls with the admin
token, object presence (`HEAD /v1/objects/B/O?presence=2`), jobs (start, status, stats, wait) and a private
moto + Trove pair per module.

The request shapes follow AIS's wire format as the AIS Python SDK (PyPI `aistore`) sends it; see the notes at the
top of test_ais_sdk.py and test_jobs.py.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from emulators import EmulatorMissing, Moto
from support import Trove, new_bucket_name, random_bytes
from test_backends import ADMIN_TOKEN, TROVE_ENV, attach, backends_toml, describe, detach, native

__all__ = [
    "ADMIN_TOKEN", "TROVE_ENV", "attach", "backends_toml", "describe", "detach", "native",
    "GO_ZERO_TIME", "presence", "presences", "start_job", "job_status", "wait_job", "job_snaps", "job_snap",
    "running_jobs", "put_objects", "start_private_moto", "start_gateway", "fresh_origin", "error_json",
]

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def object_path(bucket: str, key: str) -> str:
    return f"/v1/objects/{bucket}/{quote(key)}"


def presence(trove: Trove, bucket: str, key: str, provider: str = "aws") -> int:
    """Status of `HEAD /v1/objects/B/O?provider=P&presence=2`: 200 iff a cached copy is in Trove, else 404."""
    r = native(trove, "HEAD", object_path(bucket, key), params={"provider": provider, "presence": "2"},
               timeout=20)
    return r.status_code


def presences(trove: Trove, bucket: str, keys, provider: str = "aws") -> dict[str, int]:
    return {k: presence(trove, bucket, k, provider) for k in keys}


def error_json(r: requests.Response) -> dict:
    """The AIS error body `{"message", "method", "url_path", "status"}` of a failed native call."""
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {describe(r)}") from None
    assert isinstance(body, dict) and body.get("message"), f"no AIS error message: {describe(r)}"
    assert body.get("status") in (None, r.status_code), f"status field differs: {describe(r)}"
    return body


def start_job(trove: Trove, bucket: str, action: str, value: dict, *, method: str | None = None,
              provider: str = "aws") -> str:
    """Start a multi-object job (`prefetch-listrange`: POST, `evict-listrange`: DELETE) and return its id, which
    AIS sends as the plain-text body."""
    method = method or ("DELETE" if action in ("evict-listrange", "delete-listrange") else "POST")
    r = native(trove, method, f"/v1/buckets/{bucket}", {"action": action, "name": "", "value": value},
               params={"provider": provider})
    assert r.status_code == 200, describe(r)
    job_id = r.text
    assert job_id and job_id == job_id.strip() and not job_id.startswith(("{", "[", '"')), \
        f"job id must be a bare plain-text id: {describe(r)}"
    return job_id


def job_status(trove: Trove, job_id: str, *, sdk_casing: bool = False) -> dict:
    """`GET /v1/cluster?what=status` with `xact.QueryMsg {"id": ...}` (or the SDK's `{"ID": ..., "Kind": ...}`)."""
    body = ({"ID": job_id, "Kind": "", "DaemonID": "", "Bck": None, "Buckets": None} if sdk_casing
            else {"id": job_id})
    r = native(trove, "GET", "/v1/cluster", body, params={"what": "status"}, timeout=20)
    assert r.status_code == 200, describe(r)
    status = r.json()
    assert isinstance(status, dict), describe(r)
    return status


def wait_job(trove: Trove, job_id: str, timeout: float = 30) -> dict:
    """Poll `what=status` until `end_time != 0`; returns the final status."""
    deadline = time.monotonic() + timeout
    while True:
        status = job_status(trove, job_id)
        if int(status.get("end_time") or 0) != 0:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not finished within {timeout}s: {status}")
        time.sleep(0.1)


def job_snaps(trove: Trove, job_id: str = "", kind: str = "") -> list[dict]:
    """Every snapshot of `GET /v1/cluster?what=qryxstats` (`{"<node id>": [Snap, ...]}`) flattened."""
    body = {}
    if job_id:
        body["id"] = job_id
    if kind:
        body["kind"] = kind
    r = native(trove, "GET", "/v1/cluster", body, params={"what": "qryxstats"}, timeout=20)
    assert r.status_code == 200, describe(r)
    multi = r.json()
    assert isinstance(multi, dict), f"qryxstats must be an object keyed by node id: {describe(r)}"
    snaps = []
    for node, node_snaps in multi.items():
        assert isinstance(node_snaps, list), f"qryxstats[{node}] must be a list: {describe(r)}"
        snaps += node_snaps
    return snaps


def job_snap(trove: Trove, job_id: str) -> dict:
    snaps = [s for s in job_snaps(trove, job_id) if s.get("id") == job_id]
    assert len(snaps) == 1, f"expected one snapshot of {job_id}, got {snaps}"
    return snaps[0]


def running_jobs(trove: Trove, kind: str = "") -> list[str]:
    """`GET /v1/cluster?what=running_all` with the SDK's body: `["<kind>[<id>]", ...]`."""
    r = native(trove, "GET", "/v1/cluster", {"kind": kind, "node": "", "show_active": True},
               params={"what": "running_all"}, timeout=20)
    assert r.status_code == 200, describe(r)
    running = r.json()
    assert isinstance(running, list), f"running_all must be a JSON array (never null): {describe(r)}"
    return running


def put_objects(moto: Moto, bucket: str, names, *, size: int = 2048, seed: int = 0) -> dict[str, bytes]:
    """Put each name into the moto bucket with distinct random content (sizes vary a little around `size`)."""
    data = {}
    for i, name in enumerate(names):
        body = random_bytes(size + (i * 37) % 512, seed=seed * 100_003 + i)
        moto.put_object(bucket, name, body)
        data[name] = body
    return data


def start_private_moto(root: Path) -> Moto:
    try:
        return Moto(root).start()
    except EmulatorMissing as e:
        pytest.skip(str(e))


def start_gateway(root: Path, moto: Moto, **backend_config) -> Trove:
    """A Trove with `moto` as its aws backend and the tests' admin token (not started by a fixture factory, so it
    can live for a module)."""
    server = Trove(root, extra_config=backends_toml(moto, **backend_config), env=TROVE_ENV)
    server.start()
    return server


@contextlib.contextmanager
def fresh_origin(trove: Trove, moto: Moto):
    """A new moto bucket attached to `trove` under its own name; detached and deleted afterwards."""
    name = new_bucket_name()
    moto.create_bucket(name)
    attach(trove, moto, name)
    try:
        yield name
    finally:
        with contextlib.suppress(requests.RequestException):
            detach(trove, name)
        with contextlib.suppress(Exception):
            moto.delete_bucket(name)


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
