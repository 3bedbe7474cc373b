"""Three `trove serve` processes on loopback as one cluster: joining, the replicated registry, forwarding,
cluster-wide listing, leader loss, and intra-cluster authentication."""

import concurrent.futures
import contextlib
import subprocess
import hashlib
import os
import time

import botocore
import pytest
import requests

from support import ALT, Trove, require_binary

SECRET = "cluster-tests-secret-0123456789"
ADMIN = "cluster-tests-admin-token-0123456789"


class Node(Trove):
    """A cluster node: the shared cluster secret and admin token, and `--join URL` when given."""

    def __init__(self, root, join: str | None = None, **kw):
        env = {"TROVE_CLUSTER_SECRET": SECRET, "TROVE_ADMIN_TOKEN": ADMIN}
        env.update(kw.pop("env", {}))
        super().__init__(root, mountpaths=1, env=env, **kw)
        self.join = join

    def command(self):
        cmd = super().command()
        return cmd + (["--join", self.join] if self.join else [])

    def native(self, method, path, headers=None, **kw):
        headers = {"Authorization": f"Bearer {ADMIN}", **(headers or {})}
        return requests.request(method, f"{self.endpoint}{path}", headers=headers, timeout=30, **kw)

    def smap(self) -> dict:
        r = self.native("GET", "/v1/daemon", params={"what": "smap"})
        r.raise_for_status()
        return r.json()


def wait_for(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (requests.RequestException, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Node 1 alone with objects written, then nodes 2 and 3 joining through it."""
    root = tmp_path_factory.mktemp("cluster")
    first = Node(root / "n1").start()
    s3 = first.client()
    s3.create_bucket(Bucket="before-join")
    for i in range(20):
        s3.put_object(Bucket="before-join", Key=f"k{i}", Body=f"value {i}".encode())
    nodes = [first]
    for n in (2, 3):
        nodes.append(Node(root / f"n{n}", join=first.endpoint).start(timeout=90))
    wait_for(lambda: all(len(n.smap()["tmap"]) == 3 for n in nodes), what="every node sees three")
    yield nodes
    for n in nodes:
        n.kill9()


def test_every_node_has_the_same_map(cluster):
    maps = [n.smap() for n in cluster]
    assert {m["uuid"] for m in maps} == {maps[0]["uuid"]}
    assert {m["version"] for m in maps} == {maps[0]["version"]}
    assert all(set(m["tmap"]) == set(maps[0]["tmap"]) for m in maps)
    # AIS's shape: every node in pmap and tmap, a primary, direct URLs.
    m = maps[0]
    assert set(m["pmap"]) == set(m["tmap"])
    assert m["proxy_si"]["daemon_id"] in m["pmap"]
    urls = {s["public_net"]["direct_url"] for s in m["tmap"].values()}
    assert urls == {n.endpoint for n in cluster}


def test_objects_written_before_the_join_read_through_every_node(cluster):
    for n in cluster:
        s3 = n.client()
        for i in range(20):
            assert s3.get_object(Bucket="before-join", Key=f"k{i}")["Body"].read() == f"value {i}".encode()


def test_a_bucket_made_on_one_node_is_visible_on_all_when_the_call_returns(cluster):
    cluster[1].client().create_bucket(Bucket="made-on-two")
    for n in cluster:
        names = [b["Name"] for b in n.client().list_buckets()["Buckets"]]
        assert "made-on-two" in names
        n.client().head_bucket(Bucket="made-on-two")


def test_concurrent_creates_of_one_name_exactly_one_wins(cluster):
    # Two different owners: the loser gets BucketAlreadyExists, never a second bucket.
    clients = [cluster[0].client(), cluster[2].client(ALT)]

    def create(c):
        try:
            c.create_bucket(Bucket="contested")
            return "ok"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = sorted(ex.map(create, clients))
    assert results == ["BucketAlreadyExists", "ok"], results


def test_objects_spread_over_nodes_read_back_identically_everywhere(cluster):
    s3s = [n.client() for n in cluster]
    s3s[0].create_bucket(Bucket="spread")
    bodies = {f"dir/obj-{i}": os.urandom(1000 + 37 * i) for i in range(60)}
    for i, (k, b) in enumerate(bodies.items()):
        s3s[i % 3].put_object(Bucket="spread", Key=k, Body=b)
    per_node = [sum(len(f) for _, _, f in os.walk(n.mountpaths[0] / "@ais" / "spread")) for n in cluster]
    # Each node owns its HRW share (HRW over three nodes: none empty, none with everything).
    assert all(0 < c < 60 for c in per_node), per_node
    for c in s3s:
        for k, b in bodies.items():
            r = c.get_object(Bucket="spread", Key=k)
            assert r["Body"].read() == b
            assert r["ETag"].strip('"') == hashlib.md5(b).hexdigest()
            assert c.get_object(Bucket="spread", Key=k, Range="bytes=5-9")["Body"].read() == b[5:10]
            assert c.head_object(Bucket="spread", Key=k)["ContentLength"] == len(b)


def test_listing_merges_every_node_with_paging(cluster):
    s3 = cluster[2].client()
    s3.create_bucket(Bucket="listed")
    keys = sorted(f"p{i // 10}/k{i:03}" for i in range(55))
    for i, k in enumerate(keys):
        cluster[i % 3].client().put_object(Bucket="listed", Key=k, Body=b"x")
    for n in cluster:
        got, token = [], None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            page = n.client().list_objects_v2(Bucket="listed", MaxKeys=7, **kw)
            got += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        assert got == keys
        folded = n.client().list_objects_v2(Bucket="listed", Delimiter="/")
        assert [p["Prefix"] for p in folded["CommonPrefixes"]] == [f"p{i}/" for i in range(6)]


def test_multipart_parts_through_different_nodes(cluster):
    s3s = [n.client() for n in cluster]
    s3s[0].create_bucket(Bucket="mpu-spread")
    up = s3s[1].create_multipart_upload(Bucket="mpu-spread", Key="big")
    part = os.urandom(5 * 1024 * 1024)
    parts = []
    for n in (1, 2, 3):
        r = s3s[n % 3].upload_part(Bucket="mpu-spread", Key="big", UploadId=up["UploadId"], PartNumber=n, Body=part)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3s[2].complete_multipart_upload(Bucket="mpu-spread", Key="big", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts})
    for c in s3s:
        assert c.get_object(Bucket="mpu-spread", Key="big")["Body"].read() == part * 3


def test_delete_bucket_checks_every_node(cluster):
    s3s = [n.client() for n in cluster]
    s3s[0].create_bucket(Bucket="to-delete")
    for i in range(9):
        s3s[i % 3].put_object(Bucket="to-delete", Key=f"k{i}", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3s[1].delete_bucket(Bucket="to-delete")
    assert e.value.response["Error"]["Code"] == "BucketNotEmpty"
    # The bucket is whole and writable after the refused delete.
    s3s[2].put_object(Bucket="to-delete", Key="after", Body=b"y")
    for i in range(9):
        s3s[2].delete_object(Bucket="to-delete", Key=f"k{i}")
    s3s[0].delete_object(Bucket="to-delete", Key="after")
    s3s[2].delete_bucket(Bucket="to-delete")
    for c in s3s:
        assert "to-delete" not in [b["Name"] for b in c.list_buckets()["Buckets"]]
    # Created again: empty on every node.
    s3s[1].create_bucket(Bucket="to-delete")
    for c in s3s:
        assert c.list_objects_v2(Bucket="to-delete")["KeyCount"] == 0


def test_no_client_sees_a_redirect(cluster):
    s3 = cluster[0].client()
    s3.create_bucket(Bucket="no-redirect")
    for i in range(12):
        key = f"r{i}"
        s3.put_object(Bucket="no-redirect", Key=key, Body=b"z" * i)
        for n in cluster:
            # Presigned (the signature covers this node's host), so the request is plain HTTP.
            url = n.client().generate_presigned_url("get_object", Params={"Bucket": "no-redirect", "Key": key})
            r = requests.get(url, allow_redirects=False, timeout=30)
            assert r.status_code == 200 and r.content == b"z" * i


def test_requests_posing_as_forwarded_or_as_nodes_are_refused(cluster):
    s3 = cluster[0].client()
    s3.create_bucket(Bucket="posing")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "posing", "Key": "k"})
    forged = {"trove-forwarded": "x.1.00", "trove-smap-version": "1"}
    r = requests.put(url, data=b"data", headers=forged, timeout=30)
    assert r.status_code == 403
    # Raft and the gateways' own calls need the cluster's signature.
    for path in ("/v1/raft/vote", "/v1/raft/append", "/v1/raft/join", "/v1/intra/walk"):
        r = requests.post(f"{cluster[1].endpoint}{path}", data=b"{}", timeout=30)
        assert r.status_code in (401, 403), (path, r.status_code)


def test_a_node_of_another_cluster_cannot_join(tmp_path):
    other = Node(tmp_path / "other", env={"TROVE_CLUSTER_SECRET": "another-cluster-secret-000"}).start()
    try:
        stranger = Node(tmp_path / "stranger", join=other.endpoint)
        stranger.proc = None
        # Our secret against their cluster: the join is refused and the node does not start.
        with pytest.raises(RuntimeError):
            stranger.start(timeout=60)
    finally:
        other.kill9()


def test_leader_killed_a_new_one_takes_over_and_it_rejoins(cluster):
    leader_id = cluster[0].smap()["proxy_si"]["daemon_id"]
    leader = next(n for n in cluster if n.smap()["pmap"][leader_id]["public_net"]["direct_url"] == n.endpoint)
    others = [n for n in cluster if n is not leader]
    leader.kill9()
    started = time.monotonic()

    def new_leader():
        m = others[0].smap()
        return m["proxy_si"]["daemon_id"] != leader_id

    wait_for(new_leader, timeout=30, what="a new leader")
    # Metadata writes resume on the survivors.
    wait_for(lambda: others[0].client().create_bucket(Bucket="after-failover"), timeout=30, what="a write")
    took = time.monotonic() - started
    print(f"new leader and a metadata write {took:.1f}s after kill -9")
    for n in others:
        n.client().head_bucket(Bucket="after-failover")
    # The old leader restarts, catches up and serves.
    leader.start(timeout=60)
    wait_for(lambda: "after-failover" in [b["Name"] for b in leader.client().list_buckets()["Buckets"]],
             what="the restarted node catches up")
    assert leader.smap()["version"] == others[0].smap()["version"]


def test_metadata_writes_fail_with_503_without_quorum_while_reads_go_on(tmp_path):
    nodes = [Node(tmp_path / "q1").start()]
    for n in (2, 3):
        nodes.append(Node(tmp_path / f"q{n}", join=nodes[0].endpoint).start(timeout=90))
    try:
        wait_for(lambda: all(len(n.smap()["tmap"]) == 3 for n in nodes), what="three nodes")
        s3 = nodes[0].client()
        s3.create_bucket(Bucket="quorum")
        for i in range(12):
            s3.put_object(Bucket="quorum", Key=f"k{i}", Body=b"v")
        # Find the objects node 1 owns: they stay readable through node 1 alone.
        nodes[1].kill9()
        nodes[2].kill9()
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_bucket(Bucket="no-quorum")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert time.monotonic() - started < 30
        own = sum(1 for _, _, f in os.walk(nodes[0].mountpaths[0] / "@ais" / "quorum") for _ in f)
        readable = 0
        for i in range(12):
            try:
                s3.get_object(Bucket="quorum", Key=f"k{i}")["Body"].read()
                readable += 1
            except botocore.exceptions.ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert readable >= own
    finally:
        for n in nodes:
            n.kill9()


def cli(node: Node, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
    env.update({"TROVE_ENDPOINT": node.endpoint, "TROVE_ADMIN_TOKEN": ADMIN})
    return subprocess.run([str(require_binary()), *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_cli_shows_the_cluster_and_takes_a_node_out_and_back(cluster):
    live = [n for n in cluster if n.running]
    shown = cli(live[0], "cluster", "show")
    assert shown.returncode == 0, shown.stderr
    ids = list(live[0].smap()["tmap"])
    for i in ids:
        assert i in shown.stdout
    assert "TOTAL" in shown.stdout and "active" in shown.stdout
    s3 = live[0].client()
    s3.create_bucket(Bucket="maint")
    bodies = {f"m{i}": os.urandom(300 + i) for i in range(30)}
    for k, b in bodies.items():
        s3.put_object(Bucket="maint", Key=k, Body=b)
    victim = next(i for i in ids if live[1].smap()["pmap"][i]["public_net"]["direct_url"] != live[0].endpoint)
    out = cli(live[1], "cluster", "maintenance", victim)
    assert out.returncode == 0, out.stderr
    for n in live:
        snode = n.smap()["tmap"][victim]
        assert snode["flags"] == 4 and snode["trove"]["state"] == "maintenance"
    # The node in maintenance owns nothing; what it holds is still read (from it, as a neighbor).
    for n in live:
        for k, b in bodies.items():
            assert n.client().get_object(Bucket="maint", Key=k)["Body"].read() == b
    s3.put_object(Bucket="maint", Key="during", Body=b"new")
    out = cli(live[2], "cluster", "activate", victim)
    assert out.returncode == 0, out.stderr
    assert live[0].smap()["tmap"][victim]["flags"] == 0
    assert live[1].client().get_object(Bucket="maint", Key="during")["Body"].read() == b"new"
    # Unknown node: a clear error, non-zero exit.
    bad = cli(live[0], "cluster", "maintenance", "no-such-node")
    assert bad.returncode != 0 and "no-such-node" in bad.stderr


def test_voters_grow_one_three_five_and_a_node_can_be_removed(tmp_path):
    nodes = [Node(tmp_path / "v1").start()]
    try:
        voters = lambda: len(nodes[0].smap()["trove"]["voters"])  # noqa: E731
        assert voters() == 1
        nodes.append(Node(tmp_path / "v2", join=nodes[0].endpoint).start(timeout=90))
        wait_for(lambda: len(nodes[0].smap()["tmap"]) == 2, what="two nodes")
        assert voters() == 1 and len(nodes[0].smap()["trove"]["learners"]) == 1
        nodes.append(Node(tmp_path / "v3", join=nodes[1].endpoint).start(timeout=90))
        wait_for(lambda: voters() == 3, what="three voters")
        for n in (4, 5):
            nodes.append(Node(tmp_path / f"v{n}", join=nodes[0].endpoint).start(timeout=90))
        wait_for(lambda: voters() == 5, what="five voters")
        m = nodes[4].smap()
        assert len(m["tmap"]) == 5 and len(m["trove"]["voters"]) == 5
        # Removing one: four members, voters back to three or kept at four's quorum size.
        leader = m["trove"]["leader"]
        victim = next(i for i in m["tmap"] if i != leader)
        url = m["tmap"][victim]["public_net"]["direct_url"]
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "rm-unsafe", "value": {"sid": victim}})
        assert r.status_code == 200, r.text
        for n in nodes:
            if n.endpoint != url:
                wait_for(lambda n=n: victim not in n.smap()["tmap"], what="the node gone from every map")
        assert victim not in nodes[0].smap()["trove"]["voters"] + nodes[0].smap()["trove"]["learners"]
        survivor = next(n for n in nodes if n.endpoint != url)
        survivor.client().create_bucket(Bucket="after-remove")
    finally:
        for n in nodes:
            n.kill9()


def cloud_cluster(tmp_path, emulator_factory, origin: str, keys: list[str], body) -> tuple:
    """A moto origin holding `keys` (with `body(key)`), and three nodes set up from its standard environment."""
    from emulators import standard_env

    moto = emulator_factory("aws")
    moto.create_bucket(origin)
    for k in keys:
        moto.put_object(origin, k, body(k))
    env = standard_env(moto)
    nodes = [Node(tmp_path / "c1", env=env).start()]
    for n in (2, 3):
        nodes.append(Node(tmp_path / f"c{n}", join=nodes[0].endpoint, env=env).start(timeout=90))
    wait_for(lambda: all(len(n.smap()["tmap"]) == 3 for n in nodes), what="three nodes")
    return moto, nodes


def test_prefetch_on_three_nodes_caches_each_share_and_serves_with_the_origin_down(tmp_path, emulator_factory):
    origin = "prefetch-origin"
    keys = [f"shard-{i:04}" for i in range(1000)]
    moto, nodes = cloud_cluster(tmp_path, emulator_factory, origin, keys, lambda k: k.encode() * 3)
    try:
        r = nodes[1].native("POST", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "create-bck"})
        assert r.status_code == 200, r.text
        r = nodes[2].native("POST", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "prefetch-listrange", "value": {"template": "shard-{0000..0999}"}})
        assert r.status_code == 200, r.text
        job = r.text.strip()

        def done():
            st = nodes[0].native("GET", "/v1/cluster", params={"what": "status"}, json={"id": job}).json()
            return st if st["is_idle"] else None

        status = wait_for(done, timeout=180, what="the prefetch job")
        assert not status["aborted"] and not status["err"], status
        per_node = nodes[0].native("GET", "/v1/cluster", params={"what": "qryxstats"}, json={"id": job}).json()
        assert len(per_node) == 3
        fetched = {node: int(snaps[0]["stats"]["loc-objs"]) for node, snaps in per_node.items()}
        assert sum(fetched.values()) == 1000, fetched
        # Each node cached exactly its share: the files on its disk are the objects it owns.
        for n in nodes:
            on_disk = sum(len(f) for _, _, f in os.walk(n.mountpaths[0] / "@aws" / origin))
            sid = next(i for i, s in n.smap()["tmap"].items() if s["public_net"]["direct_url"] == n.endpoint)
            assert on_disk == fetched[sid], (sid, on_disk, fetched)
        moto.stop()
        for i, n in enumerate(nodes):
            s3 = n.client()
            for k in keys[i::37]:
                assert s3.get_object(Bucket=origin, Key=k)["Body"].read() == k.encode() * 3
    finally:
        for n in nodes:
            n.kill9()


def test_a_killed_node_s_cloud_objects_are_refilled_by_the_next_node(tmp_path, emulator_factory):
    origin = "refill-origin"
    keys = [f"obj-{i}" for i in range(40)]
    _moto, nodes = cloud_cluster(tmp_path, emulator_factory, origin, keys, str.encode)
    try:
        r = nodes[0].native("POST", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "create-bck"})
        assert r.status_code == 200, r.text
        for k in keys:
            nodes[0].client().get_object(Bucket=origin, Key=k)["Body"].read()
        leader = nodes[0].smap()["trove"]["leader"]
        victim = next(n for n in nodes if n.smap()["tmap"].get(leader, {}).get("public_net", {}).get(
            "direct_url") != n.endpoint)
        victim.kill9()
        survivors = [n for n in nodes if n is not victim]
        for n in survivors:
            s3 = n.client()
            for k in keys:
                assert s3.get_object(Bucket=origin, Key=k)["Body"].read() == k.encode()
    finally:
        for n in nodes:
            n.kill9()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_1gib_object_through_a_node_that_does_not_own_it_keeps_memory_flat(cluster):
    import hashlib
    import http.client
    import threading
    from urllib.parse import urlsplit

    live = [n for n in cluster if n.running]
    front = live[0]
    s3 = front.client()
    s3.create_bucket(Bucket="big-through")
    key = None
    for i in range(50):
        k = f"big-{i}"
        s3.put_object(Bucket="big-through", Key=k, Body=b"probe")
        held = {f for _, _, files in os.walk(front.mountpaths[0]) for f in files}
        s3.delete_object(Bucket="big-through", Key=k)
        if k not in held:
            key = k
            break
    assert key, "some key is owned by another node"
    size, chunk = 1 << 30, 1 << 20
    block = os.urandom(chunk)
    peaks = {n.proc.pid: 0 for n in live}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in peaks:
                with contextlib.suppress(OSError):
                    peaks[pid] = max(peaks[pid], rss_kib(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        url = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": "big-through", "Key": key}))
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
        conn.putrequest("PUT", f"{url.path}?{url.query}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        md5 = hashlib.md5()
        for _ in range(size // chunk):
            conn.send(block)
            md5.update(block)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
        got = s3.get_object(Bucket="big-through", Key=key)
        assert got["ContentLength"] == size
        back = hashlib.md5()
        for part in got["Body"].iter_chunks(chunk):
            back.update(part)
        assert back.hexdigest() == md5.hexdigest()
        ranged = s3.get_object(Bucket="big-through", Key=key, Range=f"bytes={size - 10}-")["Body"].read()
        assert ranged == block[-10:]
    finally:
        stop.set()
        sampler.join()
    print("peak RSS MiB by node:", {pid: kib // 1024 for pid, kib in peaks.items()})
    assert all(kib < 200 * 1024 for kib in peaks.values()), peaks
    s3.delete_object(Bucket="big-through", Key=key)
