"""Rebalance: when the set of active nodes changes, AIS-local objects move to their HRW owners while clients go
on reading, writing and listing; a decommissioned node drains before it leaves."""

import os
import random
import threading
import time

import botocore
import xxhash

from test_cluster import Node, wait_for

MLCG32 = 1103515245
M64 = (1 << 64) - 1


def _xoshiro(z: int) -> int:
    a, b, c = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
    z = (z + a) & M64
    z = ((z ^ (z >> 30)) * b) & M64
    z = ((z ^ (z >> 27)) * c) & M64
    z = ((z ^ (z >> 31)) + a) & M64
    z = ((z ^ (z >> 30)) * b) & M64
    z = ((z ^ (z >> 27)) * c) & M64
    z = ((z ^ (z >> 31)) * 5) & M64
    return (((z << 7) | (z >> 57)) & M64) * 9 & M64


def hrw_owner(node_ids, bucket: str, key: str, provider: str = "ais") -> str:
    """AIS's HRW (docs: aistore-compat 5.1) over equal-capacity nodes, as Trove places objects."""
    digest = xxhash.xxh64_intdigest(f"{provider}/@#/{bucket}/{key}".encode(), seed=MLCG32)
    return max(node_ids, key=lambda n: _xoshiro(xxhash.xxh64_intdigest(n.encode(), seed=MLCG32) ^ digest))


def node_id(node: Node) -> str:
    return next(i for i, s in node.smap()["tmap"].items() if s["public_net"]["direct_url"] == node.endpoint)


def on_disk(node: Node, bucket: str) -> set[str]:
    return {f for _, _, files in os.walk(node.mountpaths[0] / "@ais" / bucket) for f in files}


def settled(nodes: list[Node], bucket: str, keys, active: list[str]) -> bool:
    """Every key on exactly its owner's disk, and nowhere else."""
    where = {node_id(n): on_disk(n, bucket) for n in nodes}
    for k in keys:
        holders = [i for i, held in where.items() if k in held]
        if holders != [hrw_owner(active, bucket, k)]:
            return False
    return True


def test_join_moves_objects_to_their_owners_while_clients_work(tmp_path):
    nodes = [Node(tmp_path / "n1").start()]
    nodes.append(Node(tmp_path / "n2", join=nodes[0].endpoint).start(timeout=90))
    errors: list[str] = []
    stop = threading.Event()
    try:
        wait_for(lambda: len(nodes[0].smap()["tmap"]) == 2, what="two nodes")
        s3 = nodes[0].client()
        bucket = "moving"
        s3.create_bucket(Bucket=bucket)
        data: dict[str, bytes] = {}
        for i in range(300):
            k = f"obj-{i:04}"
            data[k] = os.urandom(200 + i)
            s3.put_object(Bucket=bucket, Key=k, Body=data[k])
        lock = threading.Lock()

        def reader():
            while not stop.is_set():
                with lock:
                    k = random.choice(list(data))
                    want = data[k]
                try:
                    got = random.choice(nodes).client().get_object(Bucket=bucket, Key=k)["Body"].read()
                    if got != want:
                        with lock:
                            if data.get(k) == want:
                                errors.append(f"GET {k}: wrong bytes")
                except botocore.exceptions.ClientError as e:
                    errors.append(f"GET {k}: {e.response['Error']['Code']}")

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                k = f"new-{i:05}"
                body = os.urandom(100 + i % 500)
                try:
                    random.choice(nodes).client().put_object(Bucket=bucket, Key=k, Body=body)
                    with lock:
                        data[k] = body
                except botocore.exceptions.ClientError as e:
                    errors.append(f"PUT {k}: {e.response['Error']['Code']}")

        def lister():
            while not stop.is_set():
                with lock:
                    before = set(data)
                keys, token = [], None
                client = random.choice(nodes).client()
                while True:
                    page = client.list_objects_v2(Bucket=bucket, MaxKeys=100,
                                                  **({"ContinuationToken": token} if token else {}))
                    keys += [o["Key"] for o in page.get("Contents", [])]
                    if not page["IsTruncated"]:
                        break
                    token = page["NextContinuationToken"]
                if len(keys) != len(set(keys)):
                    errors.append("a listing returned a key twice")
                missing = before - set(keys)
                if missing:
                    errors.append(f"a listing missed {len(missing)} keys, e.g. {sorted(missing)[:3]}")

        threads = [threading.Thread(target=f, daemon=True) for f in (reader, reader, writer, lister)]
        for t in threads:
            t.start()
        time.sleep(1)
        nodes.append(Node(tmp_path / "n3", join=nodes[1].endpoint).start(timeout=90))
        ids = [node_id(n) for n in nodes]
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors[:10]
        wait_for(lambda: settled(nodes, bucket, list(data), ids), timeout=120, what="every object on its owner")
        for n in nodes:
            c = n.client()
            for k in random.sample(list(data), 50):
                assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == data[k]
        status = nodes[0].native("GET", "/v1/cluster", params={"what": "status_all"}, json={"kind": "rebalance"})
        assert status.status_code == 200 and any(j["kind"] == "rebalance" for j in status.json())
    finally:
        stop.set()
        for n in nodes:
            n.kill9()


def test_decommission_drains_a_node_before_it_leaves(tmp_path):
    nodes = [Node(tmp_path / "d1").start()]
    for n in (2, 3):
        nodes.append(Node(tmp_path / f"d{n}", join=nodes[0].endpoint).start(timeout=90))
    try:
        wait_for(lambda: len(nodes[0].smap()["tmap"]) == 3, what="three nodes")
        s3 = nodes[0].client()
        s3.create_bucket(Bucket="drained")
        data = {f"k{i:03}": os.urandom(300 + i) for i in range(200)}
        for k, b in data.items():
            s3.put_object(Bucket="drained", Key=k, Body=b)
        leader = nodes[0].smap()["trove"]["leader"]
        victim = next(n for n in nodes if node_id(n) != leader)
        vid = node_id(victim)
        assert on_disk(victim, "drained"), "the victim holds objects before"
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "decommission-node", "value": {"sid": vid}})
        assert r.status_code == 200, r.text
        rest = [n for n in nodes if n is not victim]
        ids = [node_id(n) for n in rest]
        wait_for(lambda: settled(rest, "drained", list(data), ids) and not on_disk(victim, "drained"), timeout=120,
                 what="the decommissioned node drained")
        # Drained, it leaves the cluster by itself.
        wait_for(lambda: vid not in nodes[0].smap()["tmap"], timeout=60, what="the drained node left")
        victim.kill9()
        for n in rest:
            c = n.client()
            for k, b in data.items():
                assert c.get_object(Bucket="drained", Key=k)["Body"].read() == b
    finally:
        for n in nodes:
            n.kill9()


def metric_total(nodes: list[Node], name: str, **labels) -> float:
    """A counter summed over the nodes (label filters exact)."""
    total = 0.0
    for n in nodes:
        text = n.native("GET", "/v1/metrics").text
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()) and head.split("{")[0] == name:
                total += float(value)
    return total


def test_after_a_join_the_new_owner_pulls_cached_copies_from_the_old_one(tmp_path, emulator_factory):
    from test_cluster import cloud_cluster

    origin = "pull-origin"
    keys = [f"obj-{i:03}" for i in range(40)]
    moto, nodes = cloud_cluster(tmp_path, emulator_factory, origin, keys, lambda k: (k * 50).encode())
    third = None
    try:
        # Two of the three nodes first: take the third out, so the objects are cached on the other two.
        ids = [node_id(n) for n in nodes]
        r = nodes[0].native("POST", f"/v1/buckets/{origin}", params={"provider": "aws"},
                            json={"action": "create-bck"})
        assert r.status_code == 200, r.text
        third = nodes[2]
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "start-maintenance", "value": {"sid": ids[2]}})
        assert r.status_code == 200, r.text
        for k in keys:
            assert nodes[0].client().get_object(Bucket=origin, Key=k)["Body"].read() == (k * 50).encode()
        gets_before = metric_total(nodes, "trove_backend_requests_total", provider="aws", op="get")
        # The third node comes back: it owns about a third of the keys, which the others have cached.
        r = nodes[0].native("PUT", "/v1/cluster", json={"action": "stop-maintenance", "value": {"sid": ids[2]}})
        assert r.status_code == 200, r.text
        owned_by_third = [k for k in keys if hrw_owner(ids, origin, k, provider="aws") == ids[2]]
        assert owned_by_third
        for k in owned_by_third:
            assert nodes[1].client().get_object(Bucket=origin, Key=k)["Body"].read() == (k * 50).encode()
        gets_after = metric_total(nodes, "trove_backend_requests_total", provider="aws", op="get")
        assert gets_after == gets_before, "the new owner went to the backend instead of its neighbours"
        assert metric_total(nodes, "trove_cache_neighbor_fills_total") >= len(owned_by_third)
        assert set(owned_by_third) <= on_disk_cloud(third, origin)
    finally:
        for n in nodes:
            n.kill9()


def on_disk_cloud(node: Node, origin: str) -> set[str]:
    return {f for _, _, files in os.walk(node.mountpaths[0] / "@aws" / origin) for f in files}
