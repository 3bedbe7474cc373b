"""A network partition of a three-node cluster, made with network namespaces (root only): the minority side
refuses metadata writes with 503 while it goes on serving the objects it holds; the majority goes on; after
healing every node holds the same registry and map."""

import os
import subprocess
import time

import botocore
import pytest
import requests

from support import MAIN, config_toml, kill_process, require_binary, s3_client, server_env, spawn_logged
from test_cluster import wait_for

SECRET = "partition-tests-secret-0123456789"
ADMIN = "partition-tests-admin-token-0123456789"
NET = "10.77.0"
PORT = 8080


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL)


def netns_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    probe = sh("ip", "netns", "add", "trove-probe", check=False)
    if probe.returncode != 0:
        return f"ip netns does not work here: {probe.stderr.strip()}"
    sh("ip", "netns", "del", "trove-probe", check=False)
    return None


@pytest.fixture
def namespaces():
    """Three namespaces tp1..tp3 on a bridge (10.77.0.0/24, the test process at .254)."""
    why = netns_available()
    if why:
        pytest.skip(why)
    bridge = "trovebr0"
    created = []
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{NET}.254/24", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        for i in (1, 2, 3):
            ns = f"trovep{i}"
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "link", "add", f"tpv{i}", "type", "veth", "peer", "name", f"tpp{i}")
            sh("ip", "link", "set", f"tpp{i}", "netns", ns)
            sh("ip", "link", "set", f"tpv{i}", "master", bridge)
            sh("ip", "link", "set", f"tpv{i}", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NET}.{i}/24", "dev", f"tpp{i}")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", f"tpp{i}", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield created
    finally:
        for ns in created:
            sh("ip", "netns", "del", ns, check=False)
        for i in (1, 2, 3):
            sh("ip", "link", "del", f"tpv{i}", check=False)
        sh("ip", "link", "del", bridge, check=False)


def cut(ns: str, peer: int) -> None:
    sh("ip", "netns", "exec", ns, "ip", "route", "add", "blackhole", f"{NET}.{peer}/32")


def heal(ns: str, peer: int) -> None:
    sh("ip", "netns", "exec", ns, "ip", "route", "del", "blackhole", f"{NET}.{peer}/32", check=False)


def smap(i: int) -> dict:
    r = requests.get(f"http://{NET}.{i}:{PORT}/v1/daemon", params={"what": "smap"},
                     headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def test_partition_minority_refuses_metadata_writes_and_heals(namespaces, tmp_path):
    procs = []
    config = tmp_path / "trove.toml"
    config.write_text(config_toml())
    env = server_env(MAIN, {"TROVE_CLUSTER_SECRET": SECRET, "TROVE_ADMIN_TOKEN": ADMIN})
    try:
        for i in (1, 2, 3):
            root = tmp_path / f"n{i}"
            root.mkdir()
            cmd = ["ip", "netns", "exec", f"trovep{i}", str(require_binary()), "serve", "--listen",
                   f"{NET}.{i}:{PORT}", "--mountpath", str(root / "mp"), "--config", str(config)]
            if i > 1:
                cmd += ["--join", f"http://{NET}.1:{PORT}"]
            procs.append(spawn_logged(cmd, root / "trove.log", env, root))
            wait_for(lambda i=i: requests.get(f"http://{NET}.{i}:{PORT}/v1/health", timeout=2).ok, 90,
                     f"node {i} healthy")
        wait_for(lambda: all(len(smap(i)["tmap"]) == 3 for i in (1, 2, 3)), what="three nodes")
        clients = {i: s3_client(f"http://{NET}.{i}:{PORT}") for i in (1, 2, 3)}
        clients[1].create_bucket(Bucket="before")
        for k in range(30):
            clients[1].put_object(Bucket="before", Key=f"k{k}", Body=f"v{k}".encode())
        held = {f for _, _, files in os.walk(tmp_path / "n3" / "mp" / "@ais" / "before") for f in files}
        own3 = [k for k in range(30) if f"k{k}" in held]
        assert own3, "node 3 owns some objects"

        # Node 3 alone on one side.
        for a, b in ((3, 1), (3, 2), (1, 3), (2, 3)):
            cut(f"trovep{a}", b)
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            clients[3].create_bucket(Bucket="minority")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert time.monotonic() - started < 30, "the refusal is bounded"
        for k in own3:
            assert clients[3].get_object(Bucket="before", Key=f"k{k}")["Body"].read() == f"v{k}".encode()
        # The majority elects (if needed) and writes.
        wait_for(lambda: clients[1].create_bucket(Bucket="majority"), 60, "a write on the majority side")
        for c in (clients[1], clients[2]):
            assert "majority" in [b["Name"] for b in c.list_buckets()["Buckets"]]

        for a, b in ((3, 1), (3, 2), (1, 3), (2, 3)):
            heal(f"trovep{a}", b)

        def converged():
            maps = [smap(i) for i in (1, 2, 3)]
            regs = {m["trove"]["registry_version"] for m in maps}
            vers = {m["version"] for m in maps}
            names = [sorted(b["Name"] for b in clients[i].list_buckets()["Buckets"]) for i in (1, 2, 3)]
            return len(regs) == 1 and len(vers) == 1 and names[0] == names[1] == names[2] and "majority" in names[2]

        wait_for(converged, 60, "the same registry on every node after healing")
        assert "minority" not in [b["Name"] for b in clients[3].list_buckets()["Buckets"]]
    finally:
        for p in procs:
            kill_process(p)
