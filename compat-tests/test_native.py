"""The AIS-compatible native API outside buckets: the cluster map (`what=smap`) and its auth."""

from __future__ import annotations

import requests

TOKEN = "native-test-admin-token"


def smap(trove, path: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{trove.endpoint}{path}", params={"what": "smap"}, headers=headers, timeout=10)


def test_cluster_map_is_stable_and_describes_the_node(trove_factory):
    trove = trove_factory(env={"TROVE_ADMIN_TOKEN": TOKEN})
    r = smap(trove, "/v1/daemon")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["uuid"] and m["version"] and m["creation_time"]
    assert smap(trove, "/v1/cluster").json() == m
    (node_id, target), = m["tmap"].items()
    assert target["daemon_type"] == "target" and target["daemon_id"] == node_id
    assert target["public_net"]["direct_url"] == trove.endpoint
    assert target["public_net"]["daemon_port"] == str(trove.port)
    assert m["proxy_si"]["daemon_type"] == "proxy" and node_id in m["pmap"]
    assert isinstance(target["id_digest"], int)

    trove.restart()
    again = smap(trove, "/v1/daemon").json()
    assert (again["uuid"], again["creation_time"]) == (m["uuid"], m["creation_time"]), "generated once, kept"

    assert smap(trove, "/v1/daemon", token=None).status_code == 401
    assert smap(trove, "/v1/daemon", token="wrong").status_code == 401
    bad = requests.get(f"{trove.endpoint}/v1/daemon", params={"what": "nonsense"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert bad.status_code == 400 and "message" in bad.json()


def test_ais_buckets_over_the_native_api(trove_factory):
    from test_backends import ADMIN_TOKEN, native

    trove = trove_factory(env={"TROVE_ADMIN_TOKEN": ADMIN_TOKEN})
    r = native(trove, "POST", "/v1/buckets/native-made", {"action": "create-bck", "name": "", "value": None},
               params={"provider": "ais"})
    assert r.status_code == 200, r.text
    again = native(trove, "POST", "/v1/buckets/native-made", {"action": "create-bck"}, params={"provider": "ais"})
    assert again.status_code == 409 and "already exists" in again.json()["message"]
    s3 = trove.client()
    assert "native-made" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket="native-made", Key="k", Body=b"v")
    listed = native(trove, "GET", "/v1/buckets", {"action": "list"}, params={"provider": "ais"}).json()
    assert {"name": "native-made", "provider": "ais"}.items() <= listed[0].items()
    r = native(trove, "DELETE", "/v1/buckets/native-made", {"action": "destroy-bck"}, params={"provider": "ais"})
    assert r.status_code == 200, r.text
    assert "native-made" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    bad = native(trove, "POST", "/v1/buckets/v1", {"action": "create-bck"}, params={"provider": "ais"})
    assert bad.status_code == 400


def test_prefetch_blob_threshold_fetches_in_ranges(trove_factory, moto):
    from native_support import start_job, wait_job
    from support import new_bucket_name
    from test_backends import TROVE_ENV, attach, backends_toml, metric

    cache = "[cache]\nparallel_fetch_chunk = 1048576\n"
    trove = trove_factory(extra_config=backends_toml(moto) + cache, env=TROVE_ENV)
    origin = new_bucket_name()
    moto.create_bucket(origin)
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB
    for k in ("plain", "ranged"):
        moto.put_object(origin, k, body)
    attach(trove, moto, origin)

    def gets():
        return metric(trove, "trove_backend_requests_total", provider="aws", op="get")

    before = gets()
    wait_job(trove, start_job(trove, origin, "prefetch-listrange", {"objnames": ["plain"]}))
    assert gets() - before == 1, "below the node's threshold: one GET"
    before = gets()
    wait_job(trove, start_job(trove, origin, "prefetch-listrange", {"objnames": ["ranged"], "blob-threshold": 1048576}))
    assert gets() - before == 3, "above blob-threshold: the first GET's first MiB, then two ranged reads"
    s3 = trove.client()
    assert s3.get_object(Bucket=origin, Key="ranged")["Body"].read() == body


def test_a_cloud_bucket_named_on_the_native_api_is_added_on_first_use(trove_factory, moto):
    """As AIS adds `s3://b` to its metadata the first time a call names it (unless `dont_add_remote_bck_md`)."""
    from support import new_bucket_name
    from test_backends import describe, listed_buckets, native, start_trove

    trove = start_trove(trove_factory, moto)
    origin, other = new_bucket_name(), new_bucket_name()
    for b in (origin, other):
        moto.create_bucket(b)
        moto.put_object(b, "k", b"first use")
    r = native(trove, "GET", f"/v1/objects/{other}/k", params={"provider": "aws", "dont_add_remote_bck_md": "true"})
    assert r.status_code == 404, describe(r)
    r = native(trove, "GET", f"/v1/objects/{origin}/k", params={"provider": "aws"})
    assert r.status_code == 200 and r.content == b"first use", describe(r)
    assert any(b["name"] == origin and b["provider"] == "aws" for b in listed_buckets(trove))
    assert not any(b["name"] == other for b in listed_buckets(trove))
    # Usable from S3 under its own name from then on.
    assert trove.client().get_object(Bucket=origin, Key="k")["Body"].read() == b"first use"
    # A bucket the cloud does not have stays unknown (404, nothing added).
    missing = new_bucket_name()
    r = native(trove, "GET", f"/v1/objects/{missing}/k", params={"provider": "aws"})
    assert r.status_code == 404 and "does not exist" in r.text, describe(r)
    r = native(trove, "HEAD", f"/v1/buckets/{missing}", params={"provider": "aws"})
    assert r.status_code == 404, describe(r)
    assert not any(b["name"] == missing for b in listed_buckets(trove))
