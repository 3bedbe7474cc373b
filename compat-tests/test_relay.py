"""Reads of objects another node owns, relayed to the owner below hyper (`cluster/relay.rs`): the client gets
the owner's answer byte for byte (bar Date and request id), for small bodies and for large spliced ones, for
HEAD, ranges and errors, pipelined and with `Connection: close`; a client that leaves mid-body leaves no
connection behind; an owner killed with -9 gets the usual 503 (hyper's path), and once it is back the relay
works again over the connections it had pooled before."""

import os
import socket
import time

import pytest

from support import MAIN, User, key_path, raw_request
from test_backends import metric_sum, metrics_text
from test_cluster import Node, wait_for
from test_direct_reads import read_response, signed_head
from test_fast_path import comparable

BUCKET = "relayed"
SIZES = {"empty": 0, "small": 4096, "copied": (64 << 10) + 1, "spliced": (5 << 20) + 3}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("relay")
    first = Node(root / "n1").start()
    nodes = [first] + [Node(root / f"n{n}", join=first.endpoint).start(timeout=90) for n in (2, 3)]
    wait_for(lambda: all(len(n.smap()["tmap"]) == 3 for n in nodes), what="every node sees three")
    first.client().create_bucket(Bucket=BUCKET)
    yield nodes
    for n in nodes:
        n.kill9()


def owner(nodes, key: str) -> int:
    """The index of the node whose disk holds `key`."""
    found = [i for i, n in enumerate(nodes) if (n.mountpaths[0] / "@ais" / BUCKET / "%ob" / key).exists()]
    assert len(found) == 1, f"{key} is on nodes {found}"
    return found[0]


@pytest.fixture(scope="module")
def placed(nodes):
    """Per size, a key owned by node 2 or 3 (so node 1 relays it) and its body."""
    s3 = nodes[0].client()
    chosen = {}
    for name, size in SIZES.items():
        body = os.urandom(size)
        for i in range(50):
            key = f"{name}/{i}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/x-test", Metadata={"m": "v"})
            if owner(nodes, key) != 0:
                chosen[name] = (key, body)
                break
        assert name in chosen, f"no {name} key placed away from node 1"
    return chosen


def relayed(node) -> float:
    return metric_sum(metrics_text(node), "trove_relayed_reads_total")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("size", list(SIZES))
def test_the_owners_answer_comes_back_unchanged(nodes, placed, method, size):
    key, body = placed[size]
    home = nodes[owner(nodes, key)]
    before = relayed(nodes[0])
    via = raw_request(method, nodes[0].endpoint, key_path(BUCKET, key))
    direct = raw_request(method, home.endpoint, key_path(BUCKET, key))
    assert via.status_code == direct.status_code == 200
    assert via.content == direct.content == (b"" if method == "HEAD" else body)
    assert comparable(via) == comparable(direct)
    assert relayed(nodes[0]) == before + 1


def test_ranges_and_errors_are_the_owners(nodes, placed):
    key, body = placed["spliced"]
    home = nodes[owner(nodes, key)]
    for rng, status in [("bytes=0-0", 206), ("bytes=1000-3000000", 206), ("bytes=-7", 206), ("bytes=99999999-", 416)]:
        via = raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key), headers={"Range": rng})
        direct = raw_request("GET", home.endpoint, key_path(BUCKET, key), headers={"Range": rng})
        assert via.status_code == direct.status_code == status, rng
        assert comparable(via) == comparable(direct), rng
        if status == 206:
            assert via.content == direct.content
    # A key no node has: whichever node owns the name answers, through node 1.
    for i in range(20):
        via = raw_request("GET", nodes[0].endpoint, key_path(BUCKET, f"missing/{i}"))
        assert via.status_code == 404 and b"<Code>NoSuchKey</Code>" in via.content
    # A wrong signature is refused by the owner, as it would be without forwarding.
    key, _ = placed["small"]
    wrong = User(MAIN.access_key, "not-the-secret")
    bad = raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key), user=wrong)
    assert bad.status_code == 403 and b"SignatureDoesNotMatch" in bad.content


def test_pipelined_reads_come_back_in_order(nodes, placed):
    keys = [placed[n][0] for n in ("small", "spliced", "empty", "copied")]
    local = next(f"local/{i}" for i in range(100) if nodes[0].client().put_object(
        Bucket=BUCKET, Key=f"local/{i}", Body=b"here") and owner(nodes, f"local/{i}") == 0)
    keys.insert(2, local)
    with socket.create_connection(("127.0.0.1", nodes[0].port), timeout=30) as sock:
        sock.sendall(b"".join(signed_head(nodes[0], "GET", key_path(BUCKET, k)) for k in keys))
        buf = bytearray()
        for k in keys:
            status, _, got = read_response(sock, buf)
            want = b"here" if k == local else next(b for kk, b in placed.values() if kk == k)
            assert (status, got) == (200, want), k


def test_connection_close_is_honoured(nodes, placed):
    key, body = placed["copied"]
    with socket.create_connection(("127.0.0.1", nodes[0].port), timeout=30) as sock:
        sock.sendall(signed_head(nodes[0], "GET", key_path(BUCKET, key), "Connection: close\r\n"))
        buf = bytearray()
        status, headers, got = read_response(sock, buf)
        assert (status, got, headers.get("connection")) == (200, body, "close")
        assert sock.recv(1) == b"", "the connection stayed open"


def open_fds(node) -> int:
    return len(os.listdir(f"/proc/{node.proc.pid}/fd"))


def test_clients_leaving_mid_body_leave_nothing_open(nodes, placed):
    key, _ = placed["spliced"]
    raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key))
    baseline = open_fds(nodes[0])
    for _ in range(10):
        sock = socket.create_connection(("127.0.0.1", nodes[0].port), timeout=30)
        sock.sendall(signed_head(nodes[0], "GET", key_path(BUCKET, key)))
        assert sock.recv(4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    deadline = time.time() + 20
    # Each cut relay drops its connection to the owner too; the pool keeps at most what it had.
    while open_fds(nodes[0]) > baseline + 2 and time.time() < deadline:
        time.sleep(0.2)
    assert open_fds(nodes[0]) <= baseline + 2, "connections of clients that left are still open"
    assert raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key)).status_code == 200


def test_an_owner_killed_and_back(nodes, placed):
    key, body = placed["small"]
    i = owner(nodes, key)
    assert raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key)).content == body
    nodes[i].kill9()
    down = raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key))
    assert down.status_code == 503 and b"ServiceUnavailable" in down.content
    nodes[i].start(timeout=90)
    wait_for(lambda: raw_request("GET", nodes[i].endpoint, key_path(BUCKET, key)).status_code == 200,
             what="the owner serving again")
    # Node 1's pooled connections to the old process are dead: the relay retries on a fresh one.
    before = relayed(nodes[0])
    for _ in range(5):
        got = raw_request("GET", nodes[0].endpoint, key_path(BUCKET, key))
        assert (got.status_code, got.content) == (200, body)
    assert relayed(nodes[0]) == before + 5
