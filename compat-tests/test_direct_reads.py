"""Plain signed reads answered below hyper (`server.direct_reads`): the same answers as hyper gives, page-cached
bodies sent with `sendfile`, keep-alive and pipelining, a connection handed to hyper at its first other request,
and clients that stop reading or go away mid-body."""

import os
import socket
import time

import pytest

from support import MAIN, key_path, raw_request, sign_headers
from test_fast_path import comparable
from test_backends import metric

SIZES = {"empty": 0, "small": 4096, "edge": 64 << 10, "mib": 1 << 20, "big": (5 << 20) + 3}


@pytest.fixture(scope="module")
def objects(trove):
    s3 = trove.client()
    bucket = "direct-reads"
    s3.create_bucket(Bucket=bucket)
    bodies = {k: os.urandom(n) for k, n in SIZES.items()}
    for k, b in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=b, ContentType="application/x-test", Metadata={"m": "v"})
    return bucket, bodies


def signed_head(trove, method: str, path: str, extra: str = "") -> bytes:
    headers = sign_headers(method, trove.endpoint + path)
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def read_response(sock: socket.socket, buf: bytearray, head_only: bool = False) -> tuple[int, dict, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response head"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode().split("\r\n")
    del buf[:end + 4]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = 0 if head_only else int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed mid-body"
        buf += chunk
    body = bytes(buf[:n])
    del buf[:n]
    return status, headers, body


def connect(trove) -> socket.socket:
    return socket.create_connection(("127.0.0.1", trove.port), timeout=30)


def test_every_size_reads_back_with_the_same_headers_as_through_hyper(trove, objects):
    bucket, bodies = objects
    sent_before = metric(trove, "trove_sendfile_bytes_total")
    direct_before = metric(trove, "trove_direct_reads_total")
    for key, body in bodies.items():
        fast = raw_request("GET", trove.endpoint, key_path(bucket, key))
        # An extra header outside the fast path's allowlist sends the same read through hyper and s3s.
        slow = raw_request("GET", trove.endpoint, key_path(bucket, key),
                           headers={"x-amz-expected-bucket-owner": MAIN.access_key})
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content == body
        assert comparable(fast) == comparable(slow), key
        assert fast.headers["date"] and len(fast.headers["x-amz-request-id"]) == 16
        head = raw_request("HEAD", trove.endpoint, key_path(bucket, key))
        assert comparable(head) == comparable(slow) and head.content == b""
    assert metric(trove, "trove_direct_reads_total") - direct_before >= 2 * len(bodies)
    # The bodies above 64 KiB went out with sendfile (they were just written, so page-cached).
    assert metric(trove, "trove_sendfile_bytes_total") - sent_before >= SIZES["mib"] + SIZES["big"]


def test_keep_alive_pipelining_and_the_hand_over_to_hyper(trove, objects):
    bucket, bodies = objects
    with connect(trove) as sock:
        buf = bytearray()
        # Three reads in one write: answered in order on the one connection.
        keys = ["small", "mib", "empty"]
        sock.sendall(b"".join(signed_head(trove, "GET", key_path(bucket, k)) for k in keys))
        for k in keys:
            status, headers, body = read_response(sock, buf)
            assert status == 200 and body == bodies[k], k
            assert "connection" not in headers
        # A HEAD, then a request the direct loop does not answer (a listing): hyper takes over, and goes on
        # serving reads on the same connection.
        sock.sendall(signed_head(trove, "HEAD", key_path(bucket, "big")))
        status, headers, _ = read_response(sock, buf, head_only=True)
        assert status == 200 and int(headers["content-length"]) == SIZES["big"]
        sock.sendall(signed_head(trove, "GET", f"/{bucket}"))
        status, _, listing = read_response(sock, buf)
        assert status == 200 and b"<Key>mib</Key>" in listing
        sock.sendall(signed_head(trove, "GET", key_path(bucket, "mib")))
        status, _, body = read_response(sock, buf)
        assert status == 200 and body == bodies["mib"]
    # `Connection: close` is answered, then the connection closes.
    with connect(trove) as sock:
        buf = bytearray()
        sock.sendall(signed_head(trove, "GET", key_path(bucket, "small"), extra="Connection: close\r\n"))
        status, headers, body = read_response(sock, buf)
        assert status == 200 and body == bodies["small"] and headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_errors_and_refusals_come_from_s3_as_before(trove, objects):
    bucket, _ = objects
    with connect(trove) as sock:
        buf = bytearray()
        sock.sendall(signed_head(trove, "GET", key_path(bucket, "missing")))
        status, headers, body = read_response(sock, buf)
        assert status == 404 and b"<Code>NoSuchKey</Code>" in body
        assert headers["content-type"].startswith("application/xml")
    # Unsigned: refused by s3s (the bucket is private).
    with connect(trove) as sock:
        buf = bytearray()
        sock.sendall(f"GET {key_path(bucket, 'small')} HTTP/1.1\r\nHost: 127.0.0.1:{trove.port}\r\n\r\n".encode())
        status, _, body = read_response(sock, buf)
        assert status == 403 and b"AccessDenied" in body
    # Garbage instead of a head: hyper's 400, the connection closed.
    with connect(trove) as sock:
        sock.sendall(b"GET /\x01 nonsense\r\n\r\n")
        data = sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 400"), data[:100]


def open_fds(trove) -> int:
    return len(os.listdir(f"/proc/{trove.proc.pid}/fd"))


def test_clients_that_stop_reading_or_leave_mid_body(trove_factory, tmp_path):
    # Short timeouts so a client that stops reading is cut within the test.
    trove = trove_factory(env={"TROVE_SERVER__BODY_TIMEOUT_SECS": "2", "TROVE_SERVER__IDLE_TIMEOUT_SECS": "3"})
    s3 = trove.client()
    s3.create_bucket(Bucket="leavers")
    body = os.urandom(32 << 20)
    s3.put_object(Bucket="leavers", Key="big", Body=body)
    path = key_path("leavers", "big")
    baseline = open_fds(trove)
    # Ten clients read a few bytes of a 32 MiB body and vanish.
    for _ in range(10):
        sock = connect(trove)
        sock.sendall(signed_head(trove, "GET", path))
        assert sock.recv(1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        sock.close()
    # One stops reading with the socket open: closed after the body timeout.
    stalled = connect(trove)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(signed_head(trove, "GET", path))
    time.sleep(5)
    deadline = time.time() + 20
    while open_fds(trove) > baseline and time.time() < deadline:
        time.sleep(0.2)
    assert open_fds(trove) <= baseline, "connections of clients that left are still open"
    stalled.close()
    # The node still serves, whole.
    assert raw_request("GET", trove.endpoint, path).content == body


def test_direct_reads_can_be_switched_off(trove_factory):
    trove = trove_factory(env={"TROVE_SERVER__DIRECT_READS": "false"})
    s3 = trove.client()
    s3.create_bucket(Bucket="through-hyper")
    s3.put_object(Bucket="through-hyper", Key="k", Body=b"x" * (1 << 20), ContentType="application/x-test",
                  Metadata={"Mixed-Case": "v"}, Tagging="a=1")
    assert raw_request("GET", trove.endpoint, key_path("through-hyper", "k")).content == b"x" * (1 << 20)
    # hyper's fast path (the header lines kept with the open object, turned back into a header map) answers
    # as s3s does.
    for method in ("GET", "HEAD"):
        fast = raw_request(method, trove.endpoint, key_path("through-hyper", "k"))
        slow = raw_request(method, trove.endpoint, key_path("through-hyper", "k"),
                           headers={"x-amz-expected-bucket-owner": MAIN.access_key})
        assert fast.status_code == slow.status_code == 200
        assert comparable(fast) == comparable(slow), method
    assert metric(trove, "trove_direct_reads_total") == 0
    assert metric(trove, "trove_sendfile_bytes_total") == 0


def test_ranges_and_presigned_urls_are_read_directly(trove, objects):
    import requests

    bucket, bodies = objects
    before = metric(trove, "trove_direct_reads_total")
    sent = metric(trove, "trove_sendfile_bytes_total")
    r = raw_request("GET", trove.endpoint, key_path(bucket, "big"), headers={"Range": "bytes=1000-2000999"})
    assert r.status_code == 206 and r.content == bodies["big"][1000:2001000]
    assert r.headers["content-range"] == f"bytes 1000-2000999/{SIZES['big']}"
    url = trove.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "mib"})
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == bodies["mib"]
    r = requests.get(url, headers={"Range": "bytes=-100"}, timeout=10)
    assert r.status_code == 206 and r.content == bodies["mib"][-100:]
    assert metric(trove, "trove_direct_reads_total") - before == 3
    assert metric(trove, "trove_sendfile_bytes_total") - sent >= 2_000_000 + SIZES["mib"]
