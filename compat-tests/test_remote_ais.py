"""Remote AIS clusters attached by alias, as AIS attaches them: two Trove clusters on loopback (one node, three
nodes), the native calls (`attach`/`detach` with `Ais-Remote-Ais-*` headers, `what=remote`), the CLI, the rules
AIS checks, a cluster attached while offline whose UUID is learned when it answers, and a defunct one."""

import os

import botocore
import pytest
import requests

from support import free_port
from test_cluster import ADMIN, Node, cli, wait_for
from test_rebalance import metric_total


def attach(node: Node, alias: str, *urls: str, token: str | None = ADMIN) -> requests.Response:
    """Trove answers its cluster map to its admin token only: the remote's token goes with the attach."""
    headers = {"Ais-Remote-Ais-Alias": alias, "Ais-Remote-Ais-Url": ",".join(urls)}
    if token:
        headers["Trove-Remote-Token"] = token
    return node.native("PUT", "/v1/cluster/attach", params={"what": "remote"}, headers=headers)


def remotes(node: Node) -> dict:
    r = node.native("GET", "/v1/cluster", params={"what": "remote"})
    assert r.status_code == 200, r.text
    return r.json()


def by_alias(node: Node) -> dict:
    return {r["alias"]: r for r in remotes(node)["a"]}


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote-ais")
    # Parallel ranged cold fetches from 1 MiB up, so that a test-sized object takes that path.
    here = Node(root / "here", env={"TROVE_CACHE__PARALLEL_FETCH_THRESHOLD": str(1 << 20),
                                    "TROVE_CACHE__PARALLEL_FETCH_CHUNK": str(256 << 10)}).start()
    there = [Node(root / "there1").start()]
    for i in (2, 3):
        there.append(Node(root / f"there{i}", join=there[0].endpoint).start(timeout=90))
    wait_for(lambda: all(len(n.smap()["tmap"]) == 3 for n in there), what="three nodes there")
    yield here, there
    for n in [here, *there]:
        n.kill9()


def test_attach_by_alias_shows_the_remote_uuid_and_map(two_clusters):
    here, there = two_clusters
    # Without the remote's token its map is not readable: attached, but not identified (AIS allows offline).
    r = attach(here, "remais", there[0].endpoint, token=None)
    assert r.status_code == 200, r.text
    assert by_alias(here)["remais"]["uuid"] == "defunct"
    r = attach(here, "remais", there[0].endpoint, there[1].endpoint)
    assert r.status_code == 200, r.text
    view = remotes(here)
    assert view["ver"] >= 1
    entry = by_alias(here)["remais"]
    assert entry["uuid"] == there[0].smap()["uuid"]
    assert entry["url"] in (there[0].endpoint, there[1].endpoint)
    assert len(entry["smap"]["tmap"]) == 3
    # The alias and the UUID name the same cluster: detaching by UUID works, then it is gone.
    r = here.native("PUT", "/v1/cluster/detach", params={"what": "remote"},
                    headers={"Ais-Remote-Ais-Alias": entry["uuid"]})
    assert r.status_code == 200, r.text
    assert "remais" not in by_alias(here)
    assert attach(here, "remais", there[2].endpoint).status_code == 200


def test_the_rules_ais_checks(two_clusters):
    here, there = two_clusters
    bad = [
        attach(here, "what", there[0].endpoint),                   # a reserved alias
        attach(here, "x", there[0].endpoint),                      # too short
        attach(here, "mixed", here.endpoint, there[0].endpoint),   # two URLs, two clusters
        attach(here, "myself", here.endpoint),                     # this cluster itself
        attach(here, "ftp-url", "ftp://127.0.0.1:1"),              # not http(s)
    ]
    for r in bad:
        assert r.status_code == 400, r.text
        assert r.json()["message"]
    r = here.native("PUT", "/v1/cluster/attach", params={"what": "remote"}, headers={"Ais-Remote-Ais-Alias": "nourl"})
    assert r.status_code == 400
    r = here.native("PUT", "/v1/cluster/detach", params={"what": "remote"}, headers={"Ais-Remote-Ais-Alias": "nope"})
    assert r.status_code == 404
    # The same cluster under a second alias.
    assert attach(here, "remais", there[0].endpoint).status_code == 200
    assert attach(here, "second", there[1].endpoint).status_code == 400
    assert set(by_alias(here)) >= {"remais"} and "mixed" not in by_alias(here)


def test_the_registry_is_replicated_and_a_stopped_remote_is_defunct(two_clusters, tmp_path):
    here, there = two_clusters
    # Attached through one node of the three, seen by another.
    assert attach(there[0], "here-side", here.endpoint).status_code == 200
    seen = by_alias(there[2])["here-side"]
    assert seen["uuid"] == here.smap()["uuid"]
    # A cluster that stops answering is reported defunct; the registry keeps it.
    lone = Node(tmp_path / "lone").start()
    assert attach(there[1], "lone", lone.endpoint).status_code == 200
    uuid = by_alias(there[1])["lone"]["uuid"]
    lone.kill9()
    assert by_alias(there[2])["lone"]["uuid"] == "defunct"
    lone.start()
    wait_for(lambda: by_alias(there[0])["lone"]["uuid"] == uuid, what="the remote back")
    lone.kill9()


def test_a_remote_attached_while_offline_is_identified_when_it_answers(two_clusters, tmp_path):
    here, _ = two_clusters
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert attach(here, "later", url).status_code == 200
    assert by_alias(here)["later"]["uuid"] == "defunct"
    late = Node(tmp_path / "late", port=port).start()
    try:
        wait_for(lambda: by_alias(here)["later"]["uuid"] == late.smap()["uuid"], what="the UUID learned")
        # Recorded in the map: another cluster answering on that URL now would not be taken for it.
        late.kill9()
        impostor = Node(tmp_path / "impostor", port=port).start()
        try:
            assert by_alias(here)["later"]["uuid"] == "defunct"
        finally:
            impostor.kill9()
    finally:
        late.kill9()


def test_cli_attaches_shows_and_detaches(two_clusters):
    here, there = two_clusters
    out = cli(here, "cluster", "remote-attach", f"viacli={there[2].endpoint}", "--token", ADMIN)
    # The cluster may be attached under "remais" by an earlier test: then the CLI reports AIS's refusal.
    if out.returncode != 0:
        assert "attached already" in out.stderr, out.stderr
        assert cli(here, "cluster", "remote-detach", "remais").returncode == 0
        out = cli(here, "cluster", "remote-attach", f"viacli={there[2].endpoint}", "--token", ADMIN)
    assert out.returncode == 0, out.stderr
    shown = cli(here, "cluster", "show", "remote")
    assert shown.returncode == 0, shown.stderr
    assert "viacli" in shown.stdout and there[0].smap()["uuid"] in shown.stdout
    gone = cli(here, "cluster", "remote-detach", "viacli")
    assert gone.returncode == 0, gone.stderr
    assert "viacli" not in by_alias(here)
    bad = cli(here, "cluster", "remote-detach", "viacli")
    assert bad.returncode != 0 and "no remote cluster" in bad.stderr


def wait_job(node: Node, job_id: str) -> dict:
    def status():
        s = node.native("GET", "/v1/cluster", params={"what": "status"}, json={"ID": job_id}).json()
        return s if s["end_time"] != 0 else None

    s = wait_for(status, what=f"job {job_id} done")
    assert not s.get("err") and not s.get("aborted"), s
    return s


def test_copies_to_and_from_a_remote_cluster(two_clusters):
    """copy-bck between a remote cluster's bucket and this cluster's: from the remote (its listing, `presence=0`)
    into a new local bucket, and from a local bucket into a bucket of the remote cluster (addressed
    `ais/@alias#/name/`); a missing remote bucket is not made here."""
    here, there = two_clusters
    assert attach(here, "cprem", there[0].endpoint).status_code == 200
    try:
        origin = there[0].client()
        origin.create_bucket(Bucket="cpsrc")
        data = {f"a/{i}": os.urandom(2000 + i) for i in range(6)}
        for k, v in data.items():
            origin.put_object(Bucket="cpsrc", Key=k, Body=v)
        job = here.native("POST", "/v1/buckets/cpsrc", params={
            "provider": "ais", "namespace": "@cprem", "bck_to": "ais/@#/cpdst/", "presence": "0"},
            json={"action": "copy-bck", "value": {"prefix": "", "prepend": "", "dry_run": False}})
        assert job.status_code == 200, job.text
        wait_job(here, job.text)
        s3 = here.client()
        for k, v in data.items():
            assert s3.get_object(Bucket="cpdst", Key=k)["Body"].read() == v, k
        # Back the other way, into a bucket of the remote cluster (no bucket of that name is made here).
        origin.create_bucket(Bucket="cpback")
        job = here.native("POST", "/v1/buckets/cpdst", params={"provider": "ais", "bck_to": "ais/@cprem#/cpback/"},
                          json={"action": "copy-bck", "value": {"prefix": "a/", "prepend": "copied/", "dry_run": False}})
        assert job.status_code == 200, job.text
        wait_job(here, job.text)
        for k, v in data.items():
            assert origin.get_object(Bucket="cpback", Key=f"copied/{k}")["Body"].read() == v, k
        # Here the name stands for the remote bucket: reads go through to it.
        assert s3.get_object(Bucket="cpback", Key="copied/a/0")["Body"].read() == data["a/0"]
        # A remote bucket that does not exist is not made here.
        job = here.native("POST", "/v1/buckets/cpdst", params={"provider": "ais", "bck_to": "ais/@cprem#/nosuch/"},
                          json={"action": "copy-bck", "value": {"prefix": "", "prepend": "", "dry_run": False}})
        assert job.status_code == 404, job.text
        assert "nosuch" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        here.native("PUT", "/v1/cluster/detach", params={"what": "remote"}, headers={"Ais-Remote-Ais-Alias": "cprem"})


def remote_object_gets(nodes: list[Node]) -> float:
    """Object reads the remote cluster's nodes served (its health checks and intra-cluster calls count apart)."""
    return metric_total(nodes, "trove_requests_total", op="NativeGetObject")


def test_large_remote_objects_arrive_in_parallel_ranges_and_latest_ver_revalidates(two_clusters):
    here, there = two_clusters
    assert attach(here, "bigrem", there[0].endpoint).status_code == 200
    origin = there[0].client()
    origin.create_bucket(Bucket="big")
    body = os.urandom(3 << 20)
    origin.put_object(Bucket="big", Key="shard.bin", Body=body)
    q = {"provider": "ais", "namespace": "@bigrem"}
    uuid = there[0].smap()["uuid"]
    before, sent = remote_object_gets(there), metric_total([here], "trove_backend_requests_total",
                                                             provider="ais", op="get")
    # A cold ranged read in the middle of a 3 MiB object: served at once, the whole object filled in 256 KiB ranges.
    r = here.native("GET", "/v1/objects/big/shard.bin", params=q, headers={"Range": "bytes=2000000-2000099"})
    assert r.status_code == 206 and r.content == body[2000000:2000100], (r.status_code, r.text)
    wait_for(lambda: cached_size(here, "big", "shard.bin") == len(body), what="the whole object cached")
    ranges = metric_total([here], "trove_backend_requests_total", provider="ais", op="get") - sent
    assert ranges >= 4, ranges  # the first response plus ranged reads in parallel
    assert remote_object_gets(there) - before >= ranges
    warm = remote_object_gets(there)
    r = here.native("GET", "/v1/objects/big/shard.bin", params=q)
    assert r.status_code == 200 and r.content == body
    assert remote_object_gets(there) == warm
    # Changed on the remote cluster: a plain read serves the cached copy, `latest-ver` fetches the new one.
    origin.put_object(Bucket="big", Key="shard.bin", Body=b"version two")
    assert here.native("GET", "/v1/objects/big/shard.bin", params=q).content == body
    r = here.native("GET", "/v1/objects/big/shard.bin", params={**q, "latest-ver": "true"})
    assert r.status_code == 200 and r.content == b"version two", r.status_code
    assert here.native("GET", "/v1/objects/big/shard.bin", params=q).content == b"version two"
    # Prefetch with latest-ver refreshes a cached copy the remote changed; without it, the copy stays.
    origin.put_object(Bucket="big", Key="shard.bin", Body=b"version three")
    for latest, expect in ((False, b"version two"), (True, b"version three")):
        job = here.native("POST", "/v1/buckets/big", params=q, json={
            "action": "prefetch-listrange", "name": "",
            "value": {"objnames": ["shard.bin"], "latest-ver": latest}})
        assert job.status_code == 200, job.text
        wait_for(lambda: here.native("GET", "/v1/cluster", params={"what": "status"}, json={"ID": job.text}).json()
                 ["end_time"] != 0, what="the prefetch done")
        assert here.native("GET", "/v1/objects/big/shard.bin", params=q).content == expect
    out = cli(here, "bucket", "attach", "ais://@bigrem/big", "--as", "bigs3")
    assert out.returncode == 0, out.stderr
    # Detached, the cluster's buckets are out of reach on the native API; an S3 name still reads its cached
    # copies, and what needs the cluster answers 503.
    r = here.native("PUT", "/v1/cluster/detach", params={"what": "remote"}, headers={"Ais-Remote-Ais-Alias": "bigrem"})
    assert r.status_code == 200, r.text
    r = here.native("GET", "/v1/objects/big/shard.bin", params={"provider": "ais", "namespace": f"@{uuid}#"})
    assert r.status_code == 404, (r.status_code, r.text)
    s3 = here.client()
    assert s3.get_object(Bucket="bigs3", Key="shard.bin")["Body"].read() == b"version three"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="bigs3", Key="new", Body=b"x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # Attached again, its buckets (still registered by UUID) answer again.
    assert attach(here, "bigrem", there[0].endpoint).status_code == 200
    assert here.native("GET", "/v1/objects/big/shard.bin", params=q).content == b"version three"
    s3.put_object(Bucket="bigs3", Key="new", Body=b"x")
    assert origin.get_object(Bucket="big", Key="new")["Body"].read() == b"x"
    assert here.native("PUT", "/v1/cluster/detach", params={"what": "remote"},
                       headers={"Ais-Remote-Ais-Alias": "bigrem"}).status_code == 200


def cached_size(node: Node, bucket: str, key: str) -> int:
    uuid_dirs = list((node.mountpaths[0] / "@ais").glob("@*#"))
    for d in uuid_dirs:
        for root, _, files in os.walk(d / bucket):
            if key in files:
                return os.path.getsize(os.path.join(root, key))
    return -1


def test_a_remote_bucket_attached_under_an_s3_name_is_cached_like_a_cloud_bucket(two_clusters):
    here, there = two_clusters
    assert attach(here, "remais", there[0].endpoint).status_code == 200
    origin = there[0].client()
    origin.create_bucket(Bucket="data")
    bodies = {f"dir/obj-{i}": (f"remote object {i} " * 50).encode() for i in range(12)}
    for k, b in bodies.items():
        origin.put_object(Bucket="data", Key=k, Body=b)
    out = cli(here, "bucket", "attach", "ais://@remais/data", "--as", "remdata")
    assert out.returncode == 0, out.stderr
    # On the native API by alias and by UUID, as AIS addresses remote buckets (`namespace=@uuid#`).
    uuid = there[0].smap()["uuid"]
    for ns in ("@remais", f"@{uuid}#"):
        r = here.native("GET", "/v1/objects/data/dir/obj-1", params={"provider": "ais", "namespace": ns})
        assert r.status_code == 200 and r.content == bodies["dir/obj-1"], (ns, r.status_code, r.text)
    # The AIS Python SDK, unmodified: the bucket in the remote cluster's namespace, by UUID and by alias.
    from aistore.sdk import Client
    from aistore.sdk.namespace import Namespace
    sdk = Client(here.endpoint, token=ADMIN)
    for name in (uuid, "remais"):
        bck = sdk.bucket("data", provider="ais", namespace=Namespace(uuid=name))
        assert bck.object("dir/obj-2").get_reader().read_all() == bodies["dir/obj-2"]
        assert sorted(e.name for e in bck.list_all_objects(prefix="dir/")) == sorted(bodies)
    r = here.native("GET", "/v1/objects/data/dir/obj-1", params={"provider": "ais", "namespace": "@Bghort1l#"})
    assert r.status_code == 404, r.text
    r = here.native("GET", "/v1/objects/data/dir/obj-1", params={"provider": "ais", "namespace": "@#prod"})
    assert r.status_code == 400, r.text
    # Every attached cluster's buckets (`namespace=@`), and one cluster's.
    for ns in ("@", "@remais"):
        listed = here.native("GET", "/v1/buckets/", params={"provider": "ais", "namespace": ns},
                             json={"action": "list", "name": "", "value": None}).json()
        assert {"name": "data", "provider": "ais", "namespace": {"uuid": uuid, "name": ""}} in listed, listed
    # Attached by its own name on the native API (as AIS adds a remote bucket), then prefetched by template.
    origin.create_bucket(Bucket="shards")
    for i in range(8):
        origin.put_object(Bucket="shards", Key=f"shard-{i}.tar", Body=f"shard {i}".encode() * 100)
    r = here.native("POST", "/v1/buckets/shards", params={"provider": "ais", "namespace": "@remais"},
                    json={"action": "create-bck", "name": "", "value": None})
    assert r.status_code == 200, r.text
    job = here.native("POST", "/v1/buckets/shards", params={"provider": "ais", "namespace": f"@{uuid}#"},
                      json={"action": "prefetch-listrange", "name": "", "value": {"template": "shard-{0..3}.tar"}})
    assert job.status_code == 200, job.text
    wait_for(lambda: here.native("GET", "/v1/cluster", params={"what": "status"}, json={"ID": job.text}).json()
             ["end_time"] != 0, what="the prefetch done")
    # The CLI takes the same bucket by its AIS URI.
    out = cli(here, "prefetch", "ais://@remais/shards", "--template", "shard-{4..7}.tar", "--wait")
    assert out.returncode == 0, out.stderr
    listed = cli(here, "ls", "ais://@remais/shards", "--cached")
    assert listed.returncode == 0, listed.stderr
    assert all(f"shard-{i}.tar" in listed.stdout for i in range(8)), listed.stdout
    assert sdk.bucket("shards", namespace=Namespace(uuid="remais")).object("shard-3.tar").head().present
    s3 = here.client()
    # Listed from the remote cluster, with a delimiter.
    page = s3.list_objects_v2(Bucket="remdata", Prefix="dir/", Delimiter="/")
    assert sorted(o["Key"] for o in page["Contents"]) == sorted(bodies)
    assert s3.list_objects_v2(Bucket="remdata", Delimiter="/")["CommonPrefixes"] == [{"Prefix": "dir/"}]
    # Cold, then warm: the warm read does not reach the remote cluster.
    for k, b in bodies.items():
        assert s3.get_object(Bucket="remdata", Key=k)["Body"].read() == b
    gets = metric_total([here], "trove_backend_requests_total", provider="ais", op="get")
    assert gets >= len(bodies)
    # Counted on both sides: where the requests leave and where they arrive (object reads on the remote's nodes).
    served = remote_object_gets(there)
    assert served >= len(bodies) - 2  # two were read (and cached) by the SDK above
    for k, b in bodies.items():
        assert s3.get_object(Bucket="remdata", Key=k)["Body"].read() == b
        assert s3.get_object(Bucket="remdata", Key=k, Range="bytes=3-9")["Body"].read() == b[3:10]
    assert metric_total([here], "trove_backend_requests_total", provider="ais", op="get") == gets
    assert remote_object_gets(there) == served
    # Cached as AIS lays remote buckets out: @ais/@<uuid>#/<bucket>/.
    uuid = there[0].smap()["uuid"]
    cached = [f for _, _, fs in os.walk(here.mountpaths[0] / "@ais" / f"@{uuid}#" / "data") for f in fs]
    assert len(cached) >= len(bodies), cached
    # With validate_warm_get, a warm read sees an object changed on the remote cluster (its checksum differs).
    r = here.native("PATCH", "/v1/buckets/remdata", json={"action": "set-bprops", "name": "",
                                                           "value": {"versioning": {"validate_warm_get": True}}})
    assert r.status_code == 200, r.text
    origin.put_object(Bucket="data", Key="dir/obj-5", Body=b"changed at the origin")
    assert s3.get_object(Bucket="remdata", Key="dir/obj-5")["Body"].read() == b"changed at the origin"
    bodies["dir/obj-5"] = b"changed at the origin"
    r = here.native("PATCH", "/v1/buckets/remdata", json={"action": "set-bprops", "name": "",
                                                           "value": {"versioning": {"validate_warm_get": False}}})
    assert r.status_code == 200, r.text
    # Write-through and delete reach the remote cluster.
    s3.put_object(Bucket="remdata", Key="written-here", Body=b"through")
    assert origin.get_object(Bucket="data", Key="written-here")["Body"].read() == b"through"
    s3.delete_object(Bucket="remdata", Key="dir/obj-0")
    with pytest.raises(Exception):
        origin.head_object(Bucket="data", Key="dir/obj-0")
    # With the remote cluster gone, what is cached still reads.
    for n in there:
        n.kill9()
    for k in list(bodies)[1:]:
        assert s3.get_object(Bucket="remdata", Key=k)["Body"].read() == bodies[k]
    for i in range(8):
        assert s3.get_object(Bucket="shards", Key=f"shard-{i}.tar")["Body"].read() == f"shard {i}".encode() * 100
    # Evicted, the copies are gone (and the remote being down, a read now fails).
    r = here.native("DELETE", "/v1/buckets/shards", params={"provider": "ais", "namespace": "@remais"},
                    json={"action": "evict-listrange", "name": "", "value": {"template": "shard-{0..7}.tar"}})
    assert r.status_code == 200, r.text
    wait_for(lambda: here.native("GET", "/v1/cluster", params={"what": "status"}, json={"ID": r.text}).json()
             ["end_time"] != 0, what="the evict done")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket="shards", Key="shard-3.tar")
    assert by_alias(here)["remais"]["uuid"] == "defunct"

