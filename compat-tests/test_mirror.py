"""Redundancy across nodes and membership changes with real processes: `mirror.copies` keeps AIS-local objects
on N distinct nodes, a node killed with -9 loses nothing acknowledged, the leader marks it down and the copies
are repaired on the others, and the node coming back does not bring deleted objects back. A rebalance killed
midway resumes after the restart; cached copies move when their bucket asks for it."""

import json
import os
import random
import threading
import time

import botocore

from test_cluster import Node, wait_for
from test_rebalance import _xoshiro, MLCG32, metric_total, node_id, on_disk, on_disk_cloud, hrw_owner

import xxhash

FAST_DOWN = "[rebalance]\ndown_after_secs = 3\n"


def hrw_ranked(node_ids, bucket: str, key: str, provider: str = "ais") -> list[str]:
    """Nodes in HRW order for a key (equal capacities), as Trove ranks them."""
    digest = xxhash.xxh64_intdigest(f"{provider}/@#/{bucket}/{key}".encode(), seed=MLCG32)
    score = lambda n: _xoshiro(xxhash.xxh64_intdigest(n.encode(), seed=MLCG32) ^ digest)  # noqa: E731
    return sorted(node_ids, key=score, reverse=True)


def holders(nodes, bucket: str) -> dict[str, set[str]]:
    return {node_id(n): on_disk(n, bucket) for n in nodes}


def placed(nodes, bucket: str, keys, active: list[str], copies: int, gone=()) -> bool:
    """Every key on exactly its first `copies` active nodes in HRW order; every gone key on no node."""
    where = holders(nodes, bucket)
    for k in keys:
        want = set(hrw_ranked(active, bucket, k)[:copies])
        if {i for i, held in where.items() if k in held} != want:
            return False
    return not any(k in held for held in where.values() for k in gone)


def node_state(node: Node, of: str) -> str:
    return node.smap()["tmap"][of]["trove"]["state"]


def mirror(node: Node, bucket: str, copies: int):
    r = node.native("PATCH", f"/v1/buckets/{bucket}",
                    json={"action": "set-bprops", "value": {"mirror": {"enabled": True, "copies": copies}}})
    assert r.status_code == 200, r.text


def test_two_copies_survive_a_kill_are_repaired_and_deletes_stay_deleted(tmp_path):
    nodes = [Node(tmp_path / "m1", extra_config=FAST_DOWN).start()]
    for n in (2, 3):
        nodes.append(Node(tmp_path / f"m{n}", join=nodes[0].endpoint, extra_config=FAST_DOWN).start(timeout=90))
    stop = threading.Event()
    try:
        wait_for(lambda: len(nodes[0].smap()["tmap"]) == 3, what="three nodes")
        ids = [node_id(n) for n in nodes]
        bucket = "mirrored"
        nodes[0].client().create_bucket(Bucket=bucket)
        mirror(nodes[1], bucket, 2)
        data: dict[str, bytes] = {}
        for i in range(150):
            k = f"k{i:04}"
            data[k] = os.urandom(100 + 7 * i)
            nodes[i % 3].client().put_object(Bucket=bucket, Key=k, Body=data[k])
        # Acknowledged means on two nodes: the first two in HRW order.
        assert placed(nodes, bucket, data, ids, 2)
        assert metric_total(nodes, "trove_mirror_copies_total") == 150

        leader = nodes[0].smap()["trove"]["leader"]
        victim = next(n for n in nodes if node_id(n) != leader)
        vid = node_id(victim)
        live = [n for n in nodes if n is not victim]
        lock = threading.Lock()
        errors: list[str] = []
        deleted: set[str] = set()
        refused = [0]

        def reader():
            while not stop.is_set():
                with lock:
                    k = random.choice([k for k in data if k not in deleted])
                    want = data[k]
                try:
                    got = random.choice(live).client().get_object(Bucket=bucket, Key=k)["Body"].read()
                    if got != want:
                        errors.append(f"GET {k}: wrong bytes")
                except botocore.exceptions.ClientError as e:
                    errors.append(f"GET {k}: {e.response['Error']['Code']}")

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                k = f"new-{i:05}"
                body = os.urandom(50 + i % 300)
                try:
                    random.choice(live).client(retries={"max_attempts": 1}).put_object(Bucket=bucket, Key=k, Body=body)
                    with lock:
                        data[k] = body
                except (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError):
                    refused[0] += 1  # Not acknowledged: allowed while the owner is unreachable.
                # Deletes of objects that had a copy on the victim, while it is away.
                if victim.running or i % 3:
                    continue
                with lock:
                    on_victim = [k for k in data if k.startswith("k") and k not in deleted
                                 and vid in hrw_ranked(ids, bucket, k)[:2]]
                if not on_victim:
                    continue
                k = random.choice(on_victim)
                try:
                    random.choice(live).client(retries={"max_attempts": 1}).delete_object(Bucket=bucket, Key=k)
                    with lock:
                        deleted.add(k)
                except (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError):
                    pass

        threads = [threading.Thread(target=f, daemon=True) for f in (reader, reader, writer)]
        for t in threads:
            t.start()
        time.sleep(1)
        victim.kill9()
        # The leader marks it down; the rest go on.
        wait_for(lambda: node_state(live[0], vid) == "down", timeout=30, what="the killed node marked down")
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors[:10]
        assert deleted, "no delete happened while the node was away"
        live_ids = [node_id(n) for n in live]
        keys = [k for k in data if k not in deleted]
        # Repaired: two copies of everything on the two nodes left.
        wait_for(lambda: placed(live, bucket, keys, live_ids, 2, deleted), timeout=120, what="copies repaired")
        for n in live:
            c = n.client()
            for k in random.sample(keys, 40):
                assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == data[k]

        # Back with its old copies: it reconciles, becomes active, and the deleted objects stay deleted.
        victim.start(timeout=90)
        wait_for(lambda: node_state(live[0], vid) == "active", timeout=120, what="the node active again")
        wait_for(lambda: placed(nodes, bucket, keys, ids, 2, deleted), timeout=120, what="copies back in place")
        for n in nodes:
            c = n.client()
            for k in deleted:
                try:
                    c.head_object(Bucket=bucket, Key=k)
                    raise AssertionError(f"{k} came back on {n.endpoint}")
                except botocore.exceptions.ClientError as e:
                    assert e.response["Error"]["Code"] == "404"
            for k in random.sample(keys, 40):
                assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == data[k]
    finally:
        stop.set()
        for n in nodes:
            n.kill9()


def test_a_mirrored_write_fails_whole_when_a_copy_cannot_be_kept(tmp_path):
    # Two nodes, two copies: with the second node gone (and not yet marked down), a write it should hold a copy
    # of is refused and leaves nothing behind; reads of what was written are served by the surviving copy.
    slow_down = "[rebalance]\ndown_after_secs = 600\n"
    nodes = [Node(tmp_path / "w1", extra_config=slow_down).start()]
    nodes.append(Node(tmp_path / "w2", join=nodes[0].endpoint, extra_config=slow_down).start(timeout=90))
    try:
        wait_for(lambda: len(nodes[0].smap()["tmap"]) == 2, what="two nodes")
        s3 = nodes[0].client(retries={"max_attempts": 1})
        s3.create_bucket(Bucket="pair")
        from test_cluster import cli
        import json
        shown = cli(nodes[1], "bucket", "props", "pair", "mirror.enabled=true", "mirror.copies=2")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["mirror"] == {"enabled": True, "copies": 2}
        s3.put_object(Bucket="pair", Key="before", Body=b"kept twice")
        # Multipart uploads and copies are mirrored as they complete.
        from boto3.s3.transfer import TransferConfig
        import io
        big = os.urandom(6 * 1024 * 1024 + 5)
        s3.upload_fileobj(io.BytesIO(big), "pair", "multi",
                          Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
        s3.copy_object(Bucket="pair", Key="copied", CopySource={"Bucket": "pair", "Key": "before"})
        for k in ("before", "multi", "copied"):
            assert all(k in on_disk(n, "pair") for n in nodes), k
        # An unmirrored bucket beside it: its objects live on one node each.
        s3.create_bucket(Bucket="single")
        for i in range(20):
            s3.put_object(Bucket="single", Key=f"s{i}", Body=b"one copy")
        ids = [node_id(n) for n in nodes]
        nodes[1].kill9()
        # With the only holder away, "no such key" would be a guess: 503 (retryable), never 404.
        for i in range(20):
            owner = hrw_owner(ids, "single", f"s{i}")
            try:
                got = s3.get_object(Bucket="single", Key=f"s{i}")["Body"].read()
                assert owner == ids[0] and got == b"one copy"
            except botocore.exceptions.ClientError as e:
                assert owner == ids[1] and e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
        missing = next(k for k in (f"nope-{i}" for i in range(100)) if hrw_owner(ids, "single", k) == ids[0])
        try:
            s3.head_object(Bucket="single", Key=missing)
            raise AssertionError("a missing key was found")
        except botocore.exceptions.ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
        # Served by the copy that is left, whichever node owned it.
        assert s3.get_object(Bucket="pair", Key="before")["Body"].read() == b"kept twice"
        assert s3.get_object(Bucket="pair", Key="multi")["Body"].read() == big
        assert s3.get_object(Bucket="pair", Key="copied")["Body"].read() == b"kept twice"
        try:
            s3.put_object(Bucket="pair", Key="during", Body=b"x" * 1000)
            raise AssertionError("a write was acknowledged with one copy of two")
        except botocore.exceptions.ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "during" not in on_disk(nodes[0], "pair")
        work = [f for _, _, fs in os.walk(nodes[0].mountpaths[0]) for f in fs if len(f) == 32]
        assert not work, f"work files left behind: {work[:3]}"
    finally:
        for n in nodes:
            n.kill9()


def slow_join(tmp_path, nodes: list, bucket: str, rate: int, count: int, size: int):
    """One node holding `count` objects of about `size` bytes in `bucket`, then a second joining; both send at
    most `rate` bytes/s while rebalancing. Fills `nodes`; returns the objects and the node ids."""
    slow = f"[rebalance]\nrate_bytes_per_sec = {rate}\n"
    nodes.append(Node(tmp_path / f"{bucket}-1", extra_config=slow).start())
    s3 = nodes[0].client()
    s3.create_bucket(Bucket=bucket)
    data = {f"obj-{i:03}": os.urandom(size + i) for i in range(count)}
    for k, b in data.items():
        s3.put_object(Bucket=bucket, Key=k, Body=b)
    nodes.append(Node(tmp_path / f"{bucket}-2", join=nodes[0].endpoint, extra_config=slow).start(timeout=90))
    return data, [node_id(n) for n in nodes]


def test_a_rebalance_killed_midway_resumes_after_a_restart(tmp_path):
    # Slow sends (256 KiB/s) so the kill lands in the middle.
    nodes = []
    try:
        data, ids = slow_join(tmp_path, nodes, "resumed", 262144, 160, 16 * 1024)
        first = nodes[0]
        share = {k for k in data if hrw_owner(ids, "resumed", k) == ids[1]}
        assert len(share) > 40
        wait_for(lambda: len(on_disk(nodes[1], "resumed")) >= 10, timeout=60, what="the move under way")
        moved = len(on_disk(nodes[1], "resumed"))
        assert moved < len(share), "the rebalance finished before the kill"
        first.kill9()
        first.start(timeout=90)
        wait_for(lambda: placed(nodes, "resumed", data, ids, 1), timeout=180, what="the rebalance completed")
        for n in nodes:
            c = n.client()
            for k in random.sample(list(data), 30):
                assert c.get_object(Bucket="resumed", Key=k)["Body"].read() == data[k]
        jobs = first.native("GET", "/v1/cluster", params={"what": "status_all"}, json={"kind": "rebalance"}).json()
        assert any(j["kind"] == "rebalance" and j["end_time"] for j in jobs), jobs
    finally:
        for n in nodes:
            n.kill9()


def test_warm_cached_copies_move_when_the_bucket_asks(tmp_path, emulator_factory):
    from test_cluster import cloud_cluster

    origin = "moved-origin"
    keys = [f"obj-{i:03}" for i in range(40)]
    moto, nodes = cloud_cluster(tmp_path, emulator_factory, origin, keys, lambda k: (k * 40).encode())
    try:
        ids = [node_id(n) for n in nodes]
        r = nodes[0].native("POST", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "create-bck"})
        assert r.status_code == 200, r.text
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "start-maintenance", "value": {"sid": ids[2]}})
        assert r.status_code == 200, r.text
        for k in keys:
            assert nodes[0].client().get_object(Bucket=origin, Key=k)["Body"].read() == (k * 40).encode()
        r = nodes[0].native("PATCH", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "set-bprops", "value": {"cache": {"move_warm_copies": True}}})
        assert r.status_code == 200, r.text
        gets_before = metric_total(nodes, "trove_backend_requests_total", provider="aws", op="get")
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "stop-maintenance", "value": {"sid": ids[2]}})
        assert r.status_code == 200, r.text
        third = [k for k in keys if hrw_owner(ids, origin, k, provider="aws") == ids[2]]
        assert third
        # Moved without a read: on the new owner, and gone from the others.
        wait_for(lambda: set(third) <= on_disk_cloud(nodes[2], origin)
                 and not any(set(third) & on_disk_cloud(n, origin) for n in nodes[:2]),
                 timeout=60, what="warm copies moved to their owner")
        for k in third:
            assert nodes[0].client().get_object(Bucket=origin, Key=k)["Body"].read() == (k * 40).encode()
        assert metric_total(nodes, "trove_backend_requests_total", provider="aws", op="get") == gets_before
    finally:
        for n in nodes:
            n.kill9()


def test_a_stopped_rebalance_is_started_again_from_the_cli(tmp_path):
    from test_cluster import cli

    nodes = []
    try:
        data, ids = slow_join(tmp_path, nodes, "restarted", 131072, 120, 8 * 1024)
        first = nodes[0]

        def running():
            jobs = first.native("GET", "/v1/cluster", params={"what": "status_all"},
                                json={"kind": "rebalance", "show_active": True}).json()
            return [j["uuid"] for j in jobs]

        job = wait_for(running, timeout=30, what="a rebalance running")[0]
        wait_for(lambda: on_disk(nodes[1], "restarted"), timeout=30, what="the first objects moved")
        stopped = cli(first, "job", "stop", job)
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: not running(), timeout=30, what="the rebalance stopped")
        time.sleep(1)
        assert not placed(nodes, "restarted", data, ids, 1), "the rebalance ran on after its stop"
        started = cli(nodes[1], "cluster", "rebalance")
        assert started.returncode == 0, started.stderr
        new_id = started.stdout.strip()
        assert new_id.startswith("g") and new_id != job
        wait_for(lambda: placed(nodes, "restarted", data, ids, 1), timeout=120, what="the restarted rebalance done")
        jobs = first.native("GET", "/v1/cluster", params={"what": "status_all"}, json={"kind": "rebalance"}).json()
        assert any(j["uuid"] == new_id and j["end_time"] for j in jobs), jobs
        # Per node as AIS reports it: what node 1 sent out, what node 2 took in.
        snaps = first.native("GET", "/v1/cluster", params={"what": "qryxstats"}, json={"ID": new_id}).json()
        assert int(snaps[ids[0]][0]["stats"]["out-objs"]) > 0, snaps
        assert int(snaps[ids[1]][0]["stats"]["in-objs"]) > 0, json.dumps(snaps, indent=1)
        for k in random.sample(list(data), 30):
            assert nodes[1].client().get_object(Bucket="restarted", Key=k)["Body"].read() == data[k]
    finally:
        for n in nodes:
            n.kill9()
