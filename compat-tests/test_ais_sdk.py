"""The AIS Python SDK (PyPI `aistore`, unmodified) against Trove's native API, with moto as the aws backend:
buckets, listing (msgpack) with the `cached` flag, object GET/PUT/HEAD, prefetch by list / template / range and
waiting for the job, evicting by list / template / prefix, and evicting a whole bucket.

The wire contract is AIS's (what `aistore` 2.0.0 sends and parses; full notes in the PR / wire spec). Choices made
where AIS leaves room, all of them what the SDK needs:
- Listing answers msgpack (`Content-Type: application/msgpack` exactly) with a NON-EMPTY `UUID`:
  `list_objects_iter` otherwise restarts the listing forever.
- The `cached` entry flag (`EntryIsCached` = 64) is asserted when "cached" is among the requested props.
- A cached copy exists iff `HEAD /v1/objects/B/O?provider=aws&presence=2` answers 200 (404 otherwise); that
  HEAD never goes to the backend.
- Jobs are found by `client.job(id).wait()` through `what=qryxstats` (to learn the kind) and then `what=status`
  (bodies with the SDK's capitalised `"ID"`/`"Kind"` keys), right after the start call returned the id.
- `bucket.evict(keep_md=True)` sends `keep_bck_md=True` (capital T, Python's `str(True)`); it drops every cached
  copy and keeps the bucket attached. Without keep_md the bucket is detached as well (docs/native-api.md).
- Evicting names that are not cached (or do not exist) is not an error (AIS).

The SDK client uses `retry_config` with no retries (a public constructor argument): with its defaults a 5xx
answer is retried for ~93 s before the test could fail. One test uses the plain `Client(endpoint, token=...)`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

import msgspec
import pytest
import requests
from urllib3 import Retry

aistore = pytest.importorskip("aistore", reason="aistore missing: run compat-tests/setup.sh")
from tenacity import Retrying, stop_after_attempt  # noqa: E402  (a dependency of aistore)

from aistore.sdk import Client, ListObjectFlag  # noqa: E402
from aistore.sdk.errors import AISError, ErrObjNotFound  # noqa: E402
from aistore.sdk.multiobj import ObjectRange  # noqa: E402
from aistore.sdk.retry_config import RetryConfig  # noqa: E402

from native_support import (  # noqa: E402
    ADMIN_TOKEN,
    GO_ZERO_TIME,
    attach,
    describe,
    fresh_origin,
    presence,
    presences,
    put_objects,
    start_gateway,
)
from support import Trove, delete_bucket_recursively, new_bucket_name, random_bytes, wait_until  # noqa: E402
from test_backends import start_trove  # noqa: E402

JOB_TIMEOUT = 30  # seconds for any job of these (small) tests


def no_retries() -> RetryConfig:
    return RetryConfig(
        http_retry=Retry(total=0, status_forcelist=(), respect_retry_after_header=False),
        network_retry=Retrying(stop=stop_after_attempt(1), reraise=True),
    )


def sdk(trove: Trove) -> Client:
    return Client(trove.endpoint, token=ADMIN_TOKEN, timeout=(3, 30), retry_config=no_retries())


@dataclass
class Gateway:
    trove: Trove
    moto: object
    client: Client


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, moto) -> Gateway:
    """One Trove for the module with the session moto as its aws backend (short backend timeouts)."""
    trove = start_gateway(tmp_path_factory.mktemp("trove-ais-sdk"), moto, timeout_secs=5,
                          connect_timeout_secs=1, max_attempts=1)
    yield Gateway(trove, moto, sdk(trove))
    trove.stop()


@pytest.fixture
def origin(gateway) -> str:
    """A fresh moto bucket attached under its own name (provider aws)."""
    with fresh_origin(gateway.trove, gateway.moto) as name:
        yield name


def names_of(buckets) -> set[str]:
    return {b.name for b in buckets}


def wait_cached(trove: Trove, bucket: str, key: str, timeout: float = 10) -> None:
    assert wait_until(lambda: presence(trove, bucket, key) == 200, timeout=timeout), \
        f"{bucket}/{key} never became present (HEAD ?presence=2)"


def wait_ok(client: Client, job_id: str):
    result = client.job(job_id).wait(timeout=JOB_TIMEOUT, verbose=False)
    assert result.success, f"job {job_id} failed: {result}"
    assert result.job_id == job_id, result
    return result


# ---------------------------------------------------------------------------------------------
# Client, cluster, buckets
# ---------------------------------------------------------------------------------------------


def test_client_with_sdk_defaults_and_token(gateway):
    Client("http://127.0.0.1:9", token="never-used")  # constructing a client sends nothing
    plain = Client(gateway.trove.endpoint, token=ADMIN_TOKEN)  # the SDK's own defaults
    assert isinstance(plain.cluster().list_buckets(provider=""), list)
    assert plain.cluster().get_uuid()
    wrong = Client(gateway.trove.endpoint, token="wrong-token", retry_config=no_retries())
    with pytest.raises(AISError) as e:
        wrong.cluster().list_buckets(provider="")
    assert e.value.status_code == 401


def test_list_buckets(gateway, origin):
    ais_name = new_bucket_name()
    s3 = gateway.trove.client()
    s3.create_bucket(Bucket=ais_name)
    try:
        cluster = gateway.client.cluster()
        aws = cluster.list_buckets(provider="aws")
        assert origin in names_of(aws), f"attached bucket missing from provider=aws: {aws}"
        assert all(b.provider == "aws" for b in aws), aws
        assert ais_name not in names_of(aws)

        ais = cluster.list_buckets()  # the SDK's default provider is "ais"
        assert ais_name in names_of(ais), f"S3-created bucket missing from provider=ais: {ais}"
        assert all(b.provider == "ais" for b in ais), ais
        assert origin not in names_of(ais)

        everything = cluster.list_buckets(provider="")
        assert {origin, ais_name} <= names_of(everything)
        by_name = {b.name: b for b in everything}
        assert by_name[origin].provider == "aws" and by_name[ais_name].provider == "ais"
    finally:
        delete_bucket_recursively(s3, ais_name)


# ---------------------------------------------------------------------------------------------
# Listing objects
# ---------------------------------------------------------------------------------------------

LIST_NAMES = ["lst/a.bin", "lst/b.bin", "lst/c/d.bin", "other.bin"]


def test_list_objects_wire_format(gateway, origin):
    """The raw answer the SDK decodes: msgpack, exact Content-Type, Go field names, integer sizes."""
    put_objects(gateway.moto, origin, LIST_NAMES)
    value = {"prefix": "", "pagesize": 0, "uuid": "", "props": "name,size,cached", "continuation_token": "",
             "flags": "0", "target": ""}
    r = requests.get(f"{gateway.trove.endpoint}/v1/buckets/{origin}", params={"provider": "aws"},
                     headers={"Accept": "application/msgpack", "Content-Type": "application/json",
                              "Authorization": f"Bearer {ADMIN_TOKEN}"},
                     data=json.dumps({"action": "list", "name": "", "value": value}), timeout=30)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type") == "application/msgpack", dict(r.headers)
    page = msgspec.msgpack.decode(r.content)
    assert isinstance(page, dict) and {"UUID", "ContinuationToken", "Flags"} <= set(page), page
    assert page["UUID"], "UUID must not be empty (list_objects_iter relies on it)"
    assert page["ContinuationToken"] == ""
    assert isinstance(page["Flags"], int)
    entries = page.get("Entries") or []
    assert sorted(e["n"] for e in entries) == sorted(LIST_NAMES)
    assert all(isinstance(e.get("s"), int) for e in entries), entries


def test_list_objects_sizes_and_cached_flag(gateway, origin):
    data = put_objects(gateway.moto, origin, LIST_NAMES)
    s3 = gateway.trove.client()
    assert s3.get_object(Bucket=origin, Key="lst/b.bin")["Body"].read() == data["lst/b.bin"]
    wait_cached(gateway.trove, origin, "lst/b.bin")

    bck = gateway.client.bucket(origin, provider="aws")
    entries = bck.list_all_objects(props="name,size,cached")
    assert {e.name: e.size for e in entries} == {n: len(b) for n, b in data.items()}
    assert {e.name for e in entries if e.is_cached()} == {"lst/b.bin"}, \
        [(e.name, e.flags) for e in entries]
    assert all(e.is_ok() for e in entries), [(e.name, e.flags) for e in entries]

    lst = bck.list_all_objects(prefix="lst/", props="name,size")
    assert sorted(e.name for e in lst) == ["lst/a.bin", "lst/b.bin", "lst/c/d.bin"]

    # Paging: continuation tokens and the listing id go back and forth.
    first = bck.list_objects(props="name,size", page_size=2)
    assert 1 <= len(first.entries) <= 2 and first.continuation_token != "", first
    assert first.uuid, "UUID must not be empty"
    paged = bck.list_all_objects(props="name,size,cached", page_size=1)
    assert [(e.name, e.size, e.is_cached()) for e in paged] == [(e.name, e.size, e.is_cached()) for e in entries]

    # The iterator stops only with a non-empty UUID; 20 is far more than the 4 objects.
    it = list(itertools.islice(bck.list_objects_iter(props="name,size", page_size=3), 20))
    assert sorted(e.name for e in it) == sorted(LIST_NAMES), "list_objects_iter repeated or lost entries"
    objs = list(itertools.islice(bck.list_all_objects_iter(), 20))
    assert {o.name: o.props_cached.size for o in objs} == {n: len(b) for n, b in data.items()}


def test_list_only_cached_objects(gateway, origin):
    """`ListObjectFlag.CACHED` (LsCached, flags "1"): only the objects Trove holds."""
    data = put_objects(gateway.moto, origin, LIST_NAMES)
    bck = gateway.client.bucket(origin, provider="aws")
    assert bck.object("other.bin").get_reader().read_all() == data["other.bin"]
    wait_cached(gateway.trove, origin, "other.bin")
    cached = bck.list_all_objects(props="name,size", flags=[ListObjectFlag.CACHED])
    assert [(e.name, e.size) for e in cached] == [("other.bin", len(data["other.bin"]))]


# ---------------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------------


def test_put_and_get_through_the_sdk(gateway, origin):
    bck = gateway.client.bucket(origin, provider="aws")
    body = random_bytes(48 * 1024, seed=101)
    bck.object("sdk/put.bin").get_writer().put_content(body)
    assert gateway.moto.get_object(origin, "sdk/put.bin") == body, "PUT did not reach the backend"
    assert bck.object("sdk/put.bin").get_reader().read_all() == body

    odd = "sdk/dir with space/ünïcode+plus=eq.bin"
    bck.object(odd).get_writer().put_content(b"odd name")
    assert gateway.moto.get_object(origin, odd) == b"odd name"
    assert bck.object(odd).get_reader().read_all() == b"odd name"

    cold = random_bytes(20 * 1024, seed=102)
    gateway.moto.put_object(origin, "sdk/cold.bin", cold)
    assert bck.object("sdk/cold.bin").get_reader().read_all() == cold  # cold GET from the backend
    wait_cached(gateway.trove, origin, "sdk/cold.bin")
    assert bck.object("sdk/cold.bin").get_reader().read_all() == cold  # warm
    assert b"".join(bck.object("sdk/cold.bin").get_reader(chunk_size=4096)) == cold  # streamed
    assert bck.object("sdk/cold.bin").get_reader(byte_range="bytes=10-19").read_all() == cold[10:20]


def test_head_object(gateway, origin):
    bck = gateway.client.bucket(origin, provider="aws")
    body = random_bytes(10 * 1024, seed=103)
    gateway.moto.put_object(origin, "h.bin", body)
    attrs = bck.object("h.bin").head()
    assert attrs.size == len(body), "HEAD must carry the object size in Content-Length"
    assert bck.object("h.bin").get_reader().read_all() == body
    wait_cached(gateway.trove, origin, "h.bin")
    obj = bck.object("h.bin")
    props = obj.props  # HEAD ?props=checksum,atime,version,copies,custom,location
    assert props.size == len(body)
    assert props.present, "Ais-Present: true expected for a cached object"
    assert props.name == "h.bin" and props.bucket_name == origin


def test_missing_object_is_err_obj_not_found(gateway, origin):
    bck = gateway.client.bucket(origin, provider="aws")
    with pytest.raises(AISError) as e:
        bck.object("no/such.bin").get_reader().read_all()
    assert e.value.status_code == 404
    # The SDK picks ErrObjNotFound when the message names the object as aws://bucket/object (AIS does).
    assert isinstance(e.value, ErrObjNotFound), f"{type(e.value).__name__}: {e.value.message}"
    with pytest.raises(AISError) as e:
        bck.object("no/such.bin").head()
    assert e.value.status_code == 404


# ---------------------------------------------------------------------------------------------
# Prefetch, then serve with the backend down
# ---------------------------------------------------------------------------------------------


def test_prefetch_by_list_template_and_range_then_backend_down(trove_factory, emulator_factory):
    emu = emulator_factory("aws")
    trove = start_trove(trove_factory, emu, timeout_secs=2, connect_timeout_secs=1, max_attempts=1)
    origin = new_bucket_name()
    emu.create_bucket(origin)
    attach(trove, emu, origin)
    shards = [f"shard-{i:03d}.bin" for i in range(1000)]  # the 1,000 objects
    listed = ["list/a.bin", "list/b.bin", "list/c d.bin"]
    ranged = [f"rng-{i:02d}.bin" for i in range(10)]
    data = put_objects(emu, origin, shards + listed + ranged + ["not-prefetched.bin"], size=1024, seed=7)
    client = sdk(trove)
    bck = client.bucket(origin, provider="aws")

    by_list = bck.objects(obj_names=listed).prefetch()
    assert by_list and by_list == by_list.strip(), repr(by_list)
    result = wait_ok(client, by_list)
    assert result.end_time is not None
    status = client.job(by_list).status()
    assert status.uuid == by_list and status.end_time > 0 and not status.aborted and status.err == "", status

    by_template = bck.objects(obj_template="shard-{000..999}.bin").prefetch()
    wait_ok(client, by_template)
    snaps = [s for s in client.job(by_template).get_details().list_snapshots() if s.id == by_template]
    assert len(snaps) == 1, snaps
    snap = snaps[0]
    assert snap.kind == "prefetch-listrange", snap
    assert snap.end_time and snap.end_time != GO_ZERO_TIME and not snap.aborted, snap
    assert snap.stats is not None and snap.stats.objects == 1000, snap.stats
    assert snap.stats.bytes == sum(len(data[n]) for n in shards), snap.stats

    # ObjectRange always sends the three-part form: {"template": "rng-{00..09..1}.bin"}.
    by_range = bck.objects(obj_range=ObjectRange("rng-", 0, 9, pad_width=2, suffix=".bin")).prefetch(
        continue_on_error=True, num_workers=2)
    result = client.job(by_range, job_kind="prefetch-listrange").wait(timeout=JOB_TIMEOUT, verbose=False)
    assert result.success, result
    assert f"prefetch-listrange[{by_template}]" not in client.cluster().list_running_jobs()

    prefetched = shards + listed + ranged
    got = presences(trove, origin, prefetched)
    assert [k for k, st in got.items() if st != 200] == [], "not cached after prefetch"
    assert presence(trove, origin, "not-prefetched.bin") == 404
    cached = {e.name for e in bck.list_all_objects(props="name,size,cached") if e.is_cached()}
    assert cached == set(prefetched)

    emu.stop()
    s3 = trove.client()
    start = time.monotonic()
    for name in prefetched:
        assert s3.get_object(Bucket=origin, Key=name)["Body"].read() == data[name], name
    for name in (shards[0], listed[2], ranged[-1]):
        assert bck.object(name).get_reader().read_all() == data[name]
    assert time.monotonic() - start < 30, "reads of cached objects waited for the stopped backend"


# ---------------------------------------------------------------------------------------------
# Evict
# ---------------------------------------------------------------------------------------------


def test_evict_by_template_list_and_prefix(gateway, origin):
    ev = [f"ev-{i:02d}" for i in range(20)]
    others = ["dir/a.bin", "dir/b.bin", "keep/x.bin"]
    data = put_objects(gateway.moto, origin, ev + others, size=1024, seed=9)
    client, trove = gateway.client, gateway.trove
    bck = client.bucket(origin, provider="aws")
    wait_ok(client, bck.objects(obj_template="ev-{00..19}").prefetch())
    wait_ok(client, bck.objects(obj_names=others).prefetch())
    assert set(presences(trove, origin, ev + others).values()) == {200}

    wait_ok(client, bck.objects(obj_template="ev-{00..09}").evict())
    got = presences(trove, origin, ev + others)
    assert {k for k, st in got.items() if st == 404} == set(ev[:10]), got
    assert {k for k, st in got.items() if st == 200} == set(ev[10:] + others), got

    wait_ok(client, bck.objects(obj_names=["ev-10", "ev-not-there"]).evict())
    assert presence(trove, origin, "ev-10") == 404 and presence(trove, origin, "ev-11") == 200

    wait_ok(client, bck.objects(obj_template="dir/").evict())  # no braces: a prefix
    got = presences(trove, origin, others)
    assert got == {"dir/a.bin": 404, "dir/b.bin": 404, "keep/x.bin": 200}, got

    assert gateway.moto.list_keys(origin) == sorted(ev + others), "evict must not touch the backend"
    cached = {e.name for e in bck.list_all_objects(props="name,size,cached") if e.is_cached()}
    assert cached == set(ev[11:] + ["keep/x.bin"])
    assert bck.object("ev-00").get_reader().read_all() == data["ev-00"]  # cold again, still readable


def test_bucket_evict_keep_md(gateway, origin):
    names = [f"k-{i}" for i in range(5)]
    data = put_objects(gateway.moto, origin, names, size=1024, seed=11)
    client, trove = gateway.client, gateway.trove
    bck = client.bucket(origin, provider="aws")
    wait_ok(client, bck.objects(obj_names=names).prefetch())
    assert set(presences(trove, origin, names).values()) == {200}

    bck.evict(keep_md=True)  # DELETE ?keep_bck_md=True {"action": "evict-remote-bck"}
    assert set(presences(trove, origin, names).values()) == {404}
    assert origin in names_of(client.cluster().list_buckets(provider="aws")), "keep_md must keep the bucket"
    entries = bck.list_all_objects(props="name,size,cached")
    assert sorted(e.name for e in entries) == names and not any(e.is_cached() for e in entries)
    assert bck.object("k-3").get_reader().read_all() == data["k-3"]
    assert gateway.moto.list_keys(origin) == names

    bck.evict()  # keep_bck_md=False: the copies and the bucket's entry go
    assert origin not in names_of(client.cluster().list_buckets(provider="aws"))
    assert gateway.moto.list_keys(origin) == names, "cloud data is never deleted by evict"
