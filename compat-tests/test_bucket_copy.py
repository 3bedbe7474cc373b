"""Bucket copies as AIS jobs (`copy-bck`, `copy-listrange`) through the AIS Python SDK, unmodified: a moto-backed
(aws) bucket into an AIS-local one — by list (read through from moto), whole (`presence=0`, the backend's
listing) and as far as it is cached (AIS's default) —, AIS-local to AIS-local with a prefix and `prepend`, the
destination created when missing, metadata kept, and the refusals AIS gives. The same on three nodes."""

from __future__ import annotations

import pytest
import requests

aistore = pytest.importorskip("aistore", reason="aistore missing: run compat-tests/setup.sh")

from native_support import ADMIN_TOKEN, TROVE_ENV, fresh_origin, put_objects, start_gateway  # noqa: E402
from support import new_bucket_name, random_bytes  # noqa: E402
from test_ais_sdk import sdk, wait_ok  # noqa: E402

H = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, moto):
    trove = start_gateway(tmp_path_factory.mktemp("trove-copy"), moto)
    yield trove
    trove.stop()


def keys_of(trove, bucket):
    return sorted(o["Key"] for o in trove.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def copy_from_moto(trove, moto):
    client = sdk(trove)
    with fresh_origin(trove, moto) as origin:
        data = put_objects(moto, origin, [f"train/{i:03d}" for i in range(20)] + ["other/x"], size=3000)
        src = client.bucket(origin, provider="aws")
        # By list: each object read through from moto on its owner and written to the destination.
        dst1 = new_bucket_name()
        job = src.objects(obj_names=["train/000", "train/001", "other/x"]).copy(client.bucket(dst1), prepend="p/")
        wait_ok(client, job[0])
        assert keys_of(trove, dst1) == ["p/other/x", "p/train/000", "p/train/001"]
        got = trove.client().get_object(Bucket=dst1, Key="p/train/001")["Body"].read()
        assert got == data["train/001"]
        # AIS's default: a cloud bucket is copied as far as the cluster holds it.
        trove.client().get_object(Bucket=origin, Key="train/005")
        dst2 = new_bucket_name()
        wait_ok(client, src.copy(client.bucket(dst2), prefix_filter="train/"))
        assert "train/005" in keys_of(trove, dst2) and "other/x" not in keys_of(trove, dst2)
        # presence=0: the whole bucket, from its backend's listing.
        dst3 = new_bucket_name()
        r = requests.post(f"{trove.endpoint}/v1/buckets/{origin}", headers=H, timeout=10,
                          params={"provider": "aws", "bck_to": f"ais/@#/{dst3}/", "presence": "0"},
                          json={"action": "copy-bck", "value": {"prefix": "", "prepend": "", "dry_run": False}})
        assert r.status_code == 200, r.text
        wait_ok(client, r.text)
        assert keys_of(trove, dst3) == sorted(data)
        for k, v in data.items():
            assert trove.client().get_object(Bucket=dst3, Key=k)["Body"].read() == v


def test_copy_from_a_moto_bucket(gateway, moto):
    copy_from_moto(gateway, moto)


def test_copy_between_ais_buckets(gateway):
    client = sdk(gateway)
    s3 = gateway.client()
    src = new_bucket_name()
    s3.create_bucket(Bucket=src)
    for i in range(30):
        s3.put_object(Bucket=src, Key=f"a/{i:02d}", Body=random_bytes(500 + i), ContentType="text/x-sample",
                      Metadata={"n": str(i)})
    s3.put_object(Bucket=src, Key="b/skip", Body=b"x")
    dst = new_bucket_name()  # created by the copy
    wait_ok(client, client.bucket(src).copy(client.bucket(dst), prefix_filter="a/", prepend="copied/"))
    assert keys_of(gateway, dst) == [f"copied/a/{i:02d}" for i in range(30)]
    head = s3.head_object(Bucket=dst, Key="copied/a/07")
    assert head["ContentType"] == "text/x-sample" and head["Metadata"] == {"n": "7"}
    # A template.
    dst2 = new_bucket_name()
    s3.create_bucket(Bucket=dst2)
    wait_ok(client, client.bucket(src).objects(obj_template="a/{00..04}").copy(client.bucket(dst2))[0])
    assert keys_of(gateway, dst2) == [f"a/{i:02d}" for i in range(5)]
    # Dry run copies nothing.
    dst3 = new_bucket_name()
    wait_ok(client, client.bucket(src).copy(client.bucket(dst3), dry_run=True))
    assert keys_of(gateway, dst3) == []


def test_copy_refusals(gateway):
    s3 = gateway.client()
    src = new_bucket_name()
    s3.create_bucket(Bucket=src)
    post = lambda params, value: requests.post(  # noqa: E731
        f"{gateway.endpoint}/v1/buckets/{src}", headers=H, timeout=10, params={"provider": "ais", **params},
        json={"action": "copy-bck", "value": value})
    assert post({}, {}).status_code == 400  # no bck_to
    assert post({"bck_to": f"ais/@#/{src}/"}, {}).status_code == 400  # onto itself
    assert post({"bck_to": "ais/@#/x/"}, {"synchronize": True, "prepend": "p/"}).status_code == 400
    assert post({"bck_to": "nonsense"}, {}).status_code == 400


def test_copy_on_three_nodes(trove_factory, moto):
    from native_support import backends_toml

    t = trove_factory(cluster=3, env=dict(TROVE_ENV), extra_config=backends_toml(moto))
    copy_from_moto(t, moto)


def test_copy_into_a_versioned_bucket_on_three_nodes(trove_factory):
    """Each copy becomes the key's new version, whichever node owns the key; copying again adds a version."""
    t = trove_factory(cluster=3, env=dict(TROVE_ENV))
    client, s3 = sdk(t), t.client()
    src, dst = new_bucket_name(), new_bucket_name()
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    s3.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})
    data = {f"k/{i:02d}": random_bytes(700 + i) for i in range(12)}
    for k, v in data.items():
        s3.put_object(Bucket=src, Key=k, Body=v)
    wait_ok(client, client.bucket(src).copy(client.bucket(dst)))
    s3.put_object(Bucket=src, Key="k/00", Body=b"second")
    wait_ok(client, client.bucket(src).copy(client.bucket(dst)))
    versions = s3.list_object_versions(Bucket=dst)["Versions"]
    by_key = {}
    for v in versions:
        by_key.setdefault(v["Key"], []).append(v)
    assert sorted(by_key) == sorted(data)
    assert all(len(vs) == 2 and all(v["VersionId"] != "null" for v in vs) for vs in by_key.values()), by_key
    for k, vs in by_key.items():
        latest = next(v for v in vs if v["IsLatest"])
        got = s3.get_object(Bucket=dst, Key=k)
        assert got["VersionId"] == latest["VersionId"]
        assert got["Body"].read() == (b"second" if k == "k/00" else data[k])
        older = next(v for v in vs if not v["IsLatest"])
        assert s3.get_object(Bucket=dst, Key=k, VersionId=older["VersionId"])["Body"].read() == data[k]
