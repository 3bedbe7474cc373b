"""Security hardening: each test proves one hole closed, black-box, against a real `trove serve`.

1. anonymous browser-form uploads (POST multipart/form-data) are refused before the file is read, and
   allowed ones are streamed to disk (memory stays flat);
2. anonymous XML bodies are refused before they are read, and signed XML bodies are bounded (a few MiB);
3. slow clients are timed out (request head, idle keep-alive, stalled body) and connections are capped;
4. weak or empty credentials stop start-up with one line on stderr;
5. SigV2: the Date is checked for skew, presigned V2 URLs live at most 7 days, SigV2 can be switched off;
6. auto-attach only happens for authenticated requests;
7. hostile `backend_bck` names and invalid bucket names are refused (no path escapes from a mountpath);
8. a deleted and re-created bucket starts empty, also while writes race with the delete;
9. object ACLs of attached cloud buckets: a public-read bucket does not make its objects public;
10. `If-None-Match: *` on a cloud bucket sees objects that are only in the cloud;
11. anonymous GETs cannot use `response-*` header overrides;
12. anonymous listings do not reveal the owner's id (the root access key);
13. CompleteMultipartUpload with more than 10,000 parts is refused quickly;
14. prefetch templates that expand to an absurd number of names are refused.

Wire details the fixed server is expected to match are stated in each test's docstring.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import select
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError

from support import (
    _STARTED,
    ALT,
    MAIN,
    MiB,
    Trove,
    User,
    _die_with_parent,
    free_port,
    key_path,
    new_bucket_name,
    open_partial_put,
    raw_request,
    s3_error,
    server_env,
    sign_headers,
    wait_until,
    xml_error_code,
)
from test_backends import ADMIN_TOKEN, TROVE_ENV, attach, backends_toml, describe, listed_buckets, native


# ---------------------------------------------------------------------------------------------
# Servers shared by the module (tests that need their own config use trove_factory)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A plain node (root user MAIN, second user ALT, admin token), shared by the module."""
    server = Trove(tmp_path_factory.mktemp("hardening-node"), env=TROVE_ENV).start()
    yield server
    server.kill9()


@pytest.fixture(scope="module")
def cloud_node(tmp_path_factory, moto):
    """A node with the session's moto as its aws backend (auto_attach off)."""
    server = Trove(tmp_path_factory.mktemp("hardening-cloud"), extra_config=backends_toml(moto), env=TROVE_ENV).start()
    yield server
    server.kill9()


@pytest.fixture
def local_bucket(node):
    s3 = node.client()
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def origin(moto):
    """A fresh moto bucket, removed afterwards."""
    name = new_bucket_name()
    moto.create_bucket(name)
    yield name
    moto.delete_bucket(name)


# ---------------------------------------------------------------------------------------------
# Raw HTTP helpers
# ---------------------------------------------------------------------------------------------


def host_port(trove: Trove) -> tuple[str, int]:
    return "127.0.0.1", trove.port


def request_head(method: str, target: str, headers: dict) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class Outcome:
    """What came back on a raw connection: a response, a closed connection, or nothing before the timeout."""

    def __init__(self, kind: str, status: int | None = None, headers: dict | None = None, body: bytes = b"",
                 elapsed: float = 0.0):
        self.kind = kind  # "response" | "closed" | "timeout"
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.elapsed = elapsed

    @property
    def code(self) -> str | None:
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        found = root.find("Code")
        return found.text if found is not None else None

    def __repr__(self) -> str:
        return f"Outcome({self.kind}, status={self.status}, after {self.elapsed:.2f}s, body={self.body[:300]!r})"


def read_response(sock: socket.socket, timeout: float, method: str = "GET") -> Outcome:
    """Reads one HTTP response (status, headers, body) from `sock` within `timeout` seconds."""
    started = time.monotonic()
    sock.setblocking(True)
    sock.settimeout(timeout)
    resp = http.client.HTTPResponse(sock, method=method)
    try:
        resp.begin()
    except (socket.timeout, TimeoutError):
        return Outcome("timeout", elapsed=time.monotonic() - started)
    except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine, OSError):
        return Outcome("closed", elapsed=time.monotonic() - started)
    try:
        body = resp.read()
    except http.client.IncompleteRead as e:
        body = e.partial
    except (socket.timeout, TimeoutError, ConnectionError, OSError):
        body = b""
    return Outcome("response", resp.status, {k.lower(): v for k, v in resp.getheaders()}, body,
                   time.monotonic() - started)


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Waits until the peer closes `sock` (EOF or reset). Returns (closed, bytes received meanwhile)."""
    deadline = time.monotonic() + timeout
    got = b""
    sock.setblocking(True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, got
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False, got
        except (ConnectionError, OSError):
            return True, got
        if not data:
            return True, got
        got += data


def pump_body(sock: socket.socket, first: bytes, chunk: bytes, cap: int, deadline: float) -> tuple[int, str]:
    """Sends `first`, then `chunk` again and again, until `cap` bytes are sent, the server answers (the socket
    turns readable), the connection breaks, or `deadline` passes. Returns (bytes sent, why it stopped)."""
    sock.setblocking(False)
    pending = memoryview(first)
    sent = 0
    try:
        while True:
            if not pending:
                if sent >= cap:
                    return sent, "cap"
                pending = memoryview(chunk)
            left = deadline - time.monotonic()
            if left <= 0:
                return sent, "deadline"
            readable, writable, _ = select.select([sock], [sock], [], min(left, 1.0))
            if readable:
                return sent, "answered"
            if writable:
                try:
                    n = sock.send(pending)
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return sent, "broken"
                sent += n
                pending = pending[n:]
    finally:
        sock.setblocking(True)


def connect(trove: Trove, timeout: float = 10) -> socket.socket:
    return socket.create_connection(host_port(trove), timeout=timeout)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def socket_count(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
    return n


class RssSampler:
    """Samples a process's VmRSS every 20 ms in the background; `peak` is the highest seen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError, AssertionError):
                self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError, AssertionError):
            self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def anonymous(method: str, trove: Trove, path: str, query: str = "", **kwargs) -> requests.Response:
    return raw_request(method, trove.endpoint, path, query=query, user=None, **kwargs)


def raw_native(trove: Trove, method: str, raw_path: str, body: dict | None = None) -> tuple[int, str]:
    """A native call whose path is sent byte for byte (requests would resolve `.`/`..` segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", trove.port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, raw_path, body=data, headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                           "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def healthy(trove: Trove) -> bool:
    try:
        return requests.get(f"{trove.endpoint}/v1/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


# ---------------------------------------------------------------------------------------------
# 1. Anonymous browser-form upload (POST Object) must not be buffered
# ---------------------------------------------------------------------------------------------

FORM_DECLARED = 1024 * MiB  # what the client announces
FORM_CAP = 256 * MiB  # what it is willing to send before giving up
RSS_LIMIT = 100 * 1000 * 1000


@pytest.mark.parametrize("bucket_exists", [True, False], ids=["existing-bucket", "missing-bucket"])
def test_anonymous_form_upload_refused_before_body(trove_factory, bucket_exists):
    """Hole: an anonymous `POST /<bucket>` with multipart/form-data had its whole file part buffered in
    memory (s3s aggregates POST Object files up to 5 GB) before anything was decided. Fixed: Trove reads a
    form's fields (at most 20 KB), decides, and refuses (403 AccessDenied, or 404 NoSuchBucket) before the
    file part is read, while the client is still sending; RSS grows < 100 MB."""
    trove = trove_factory()
    bucket = new_bucket_name()
    if bucket_exists:
        trove.client().create_bucket(Bucket=bucket)
    boundary = "----trovehardening7d9f2a"
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nupload.bin\r\n"
              f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.bin\"\r\n"
              "Content-Type: application/octet-stream\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    head = request_head("POST", f"/{bucket}", {
        "Host": f"127.0.0.1:{trove.port}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(prefix) + FORM_DECLARED + len(suffix)),
    })
    chunk = b"a" * MiB
    sock = connect(trove)
    try:
        with RssSampler(trove.proc.pid) as rss:
            sent, why = pump_body(sock, head + prefix, chunk, FORM_CAP, time.monotonic() + 60)
            outcome = read_response(sock, timeout=3, method="POST")
            time.sleep(0.3)  # let a late allocation show
    finally:
        sock.close()
    assert outcome.kind == "response", (
        f"no answer while sending (stopped: {why} after {sent / MiB:.0f} MiB; {outcome}); RSS grew "
        f"{rss.growth / 1e6:.0f} MB")
    assert why != "cap", f"the answer came only after {sent / MiB:.0f} MiB had been sent: {outcome}"
    assert (outcome.status, outcome.code) in {(403, "AccessDenied"), (404, "NoSuchBucket")}, outcome
    assert rss.growth < RSS_LIMIT, f"RSS grew {rss.growth / 1e6:.0f} MB while {sent / MiB:.0f} MiB were sent"
    assert healthy(trove)


# ---------------------------------------------------------------------------------------------
# 2. XML bodies: anonymous ones are not read, signed ones are bounded
# ---------------------------------------------------------------------------------------------

XML_DECLARED = 20 * MiB


@pytest.mark.parametrize("method,target,xml_start", [
    ("POST", "/{bucket}?delete", b"<Delete><Object><Key>k</Key></Object>"),
    ("PUT", "/{bucket}?tagging", b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet>"),
    ("POST", "/{bucket}/k?uploadId=x", b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                                        b"<ETag>\"x\"</ETag></Part>"),
], ids=["DeleteObjects", "PutBucketTagging", "CompleteMultipartUpload"])
def test_anonymous_xml_body_refused_unread(node, local_bucket, method, target, xml_start):
    """Hole: anonymous requests with XML bodies (DeleteObjects, PutBucketTagging, CompleteMultipartUpload)
    had up to 20 MiB read into memory before the permission check. Fixed: 403 AccessDenied right after the
    request head, without waiting for the declared 20 MiB."""
    node.client().put_object(Bucket=local_bucket, Key="k", Body=b"keep me")
    head = request_head(method, target.format(bucket=local_bucket), {
        "Host": f"127.0.0.1:{node.port}",
        "Content-Type": "application/xml",
        "Content-Length": str(XML_DECLARED),
    })
    first = xml_start + b" " * (4096 - len(xml_start))
    sock = connect(node)
    try:
        sock.sendall(head + first)
        outcome = read_response(sock, timeout=5, method=method)
    finally:
        sock.close()
    assert outcome.kind == "response", f"no answer within 5 s with the body still outstanding: {outcome}"
    assert (outcome.status, outcome.code) == (403, "AccessDenied"), outcome
    assert node.client().get_object(Bucket=local_bucket, Key="k")["Body"].read() == b"keep me"


def test_signed_xml_body_over_cap_refused(node, local_bucket):
    """Hole: signed XML bodies up to 20 MiB were buffered and parsed. Fixed: XML bodies are capped (at 2-3 MiB;
    the largest real ones, 10,000 parts with checksums, stay below): a 4 MiB DeleteObjects body (valid XML
    padded with whitespace) gets 400 MaxMessageLengthExceeded (or MalformedXML)."""
    s3 = node.client()
    s3.put_object(Bucket=local_bucket, Key="k", Body=b"keep me")
    start, end = b"<Delete><Object><Key>k</Key></Object>", b"</Delete>"
    body = start + b" " * (4 * MiB - len(start) - len(end)) + end
    path = f"/{local_bucket}?delete"
    url = node.endpoint + path
    headers = sign_headers("POST", url, headers={
        "Content-Type": "application/xml",
        "Content-Length": str(len(body)),
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }, body=body)
    sock = connect(node)
    try:
        sent, why = pump_body(sock, request_head("POST", path, headers) + body, b"", 0, time.monotonic() + 30)
        outcome = read_response(sock, timeout=10, method="POST")
    finally:
        sock.close()
    assert outcome.kind == "response", f"{outcome} (sending stopped: {why})"
    assert outcome.status == 400 and outcome.code in ("MaxMessageLengthExceeded", "MalformedXML"), outcome
    assert s3.get_object(Bucket=local_bucket, Key="k")["Body"].read() == b"keep me"


# ---------------------------------------------------------------------------------------------
# 3. Timeouts and the connection limit
# ---------------------------------------------------------------------------------------------

HEADER_TIMEOUT, IDLE_TIMEOUT, BODY_TIMEOUT = 2, 3, 3
TIMEOUTS_TOML = (f"[server]\nheader_read_timeout_secs = {HEADER_TIMEOUT}.0\nidle_timeout_secs = {IDLE_TIMEOUT}.0\n"
                 f"body_timeout_secs = {BODY_TIMEOUT}.0\n")


@pytest.fixture
def timed_trove(trove_factory):
    return trove_factory(extra_config=TIMEOUTS_TOML, env=TROVE_ENV)


def test_half_sent_request_heads_are_closed(timed_trove):
    """Hole: a request head that never ends held its connection forever (slowloris). Fixed with
    `[server] header_read_timeout_secs` (float, default 30): 50 such connections are all closed within
    the timeout + 2 s."""
    socks = []
    try:
        for _ in range(50):
            s = connect(timed_trove)
            s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            socks.append(s)
        started = time.monotonic()
        deadline = started + HEADER_TIMEOUT + 2
        open_socks = set(socks)
        for s in socks:
            s.setblocking(False)
        while open_socks and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_socks), [], [], max(0.0, min(0.5, deadline - time.monotonic())))
            for s in readable:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except (ConnectionError, OSError):
                    open_socks.discard(s)
                    continue
                if not data:
                    open_socks.discard(s)
        assert not open_socks, (f"{len(open_socks)} of 50 half-sent request heads still open "
                                f"{time.monotonic() - started:.1f}s later")
    finally:
        for s in socks:
            s.close()
    assert healthy(timed_trove)


def test_idle_keepalive_connection_is_closed(timed_trove):
    """Hole: an idle keep-alive connection was kept forever. Fixed with `[server] idle_timeout_secs`
    (float, default 60): closed within the timeout + 2 s after its last response."""
    sock = connect(timed_trove)
    try:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n")
        first = read_response(sock, timeout=10)
        assert first.kind == "response" and first.status == 200, first
        closed, extra = wait_closed(sock, IDLE_TIMEOUT + 2)
    finally:
        sock.close()
    assert closed, f"idle keep-alive connection still open {IDLE_TIMEOUT + 2}s after its response (got {extra!r})"


def test_stalled_upload_body_times_out(timed_trove):
    """Hole: an upload whose body stops arriving held its connection (and the staged write) forever. Fixed
    with `[server] body_timeout_secs` (float, default 60): within the timeout + 3 s the server answers
    400 RequestTimeout or closes the connection, and no object appears."""
    s3 = timed_trove.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    sock = open_partial_put(timed_trove.endpoint, key_path(bucket, "stalled"), MiB, b"s" * 100_000)
    try:
        outcome = read_response(sock, timeout=BODY_TIMEOUT + 3, method="PUT")
    finally:
        sock.close()
    assert outcome.kind == "closed" or (outcome.kind == "response" and outcome.status == 400
                                        and outcome.code == "RequestTimeout"), outcome
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket, Key="stalled")


def test_connection_limit(trove_factory):
    """Hole: unlimited connections. Fixed with `[server] max_connections` (integer, default 4096): with 20,
    a 21st connection is closed at once (EOF/reset within 2 s, or a 503), and works again once the first 20
    are closed."""
    trove = trove_factory(extra_config="[server]\nmax_connections = 20\n", env=TROVE_ENV)
    pid = trove.proc.pid
    # Let the health checks of the start-up finish on the server side.
    previous = None
    for _ in range(20):
        now = socket_count(pid)
        if now == previous:
            break
        previous = now
        time.sleep(0.1)
    held = []
    try:
        for i in range(20):
            s = connect(trove)
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n")
            r = read_response(s, timeout=10)
            assert r.kind == "response" and r.status == 200, f"connection {i + 1} of 20: {r}"
            held.append(s)
        assert socket_count(pid) >= 20, f"server holds {socket_count(pid)} sockets with 20 clients connected"
        extra = connect(trove)
        try:
            with contextlib.suppress(OSError):
                extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n")
            outcome = read_response(extra, timeout=3)
        finally:
            extra.close()
        assert outcome.kind == "closed" or (outcome.kind == "response" and outcome.status == 503), (
            f"21st connection with max_connections = 20: {outcome}")
    finally:
        for s in held:
            s.close()

    def works() -> bool:
        try:
            with connect(trove, timeout=3) as s:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                r = read_response(s, timeout=3)
                return r.kind == "response" and r.status == 200
        except OSError:
            return False

    assert wait_until(works, timeout=10, interval=0.2), "no new connection works after the first 20 were closed"


# ---------------------------------------------------------------------------------------------
# 4. Weak credentials stop start-up
# ---------------------------------------------------------------------------------------------

WEAK_USER = "TROVEWEAKUSERKEY0001"
STARTUP_CASES = {
    # id: (environment overrides, extra config users, words of which one must name the setting)
    "admin-token-empty": ({"TROVE_ADMIN_TOKEN": ""}, (), ("admin_token",)),
    "admin-token-short": ({"TROVE_ADMIN_TOKEN": "short"}, (), ("admin_token",)),
    "admin-token-15-chars": ({"TROVE_ADMIN_TOKEN": "x" * 15}, (), ("admin_token",)),
    "root-secret-empty": ({"TROVE_SECRET_KEY": ""}, (), ("secret_key",)),
    "root-secret-7-chars": ({"TROVE_SECRET_KEY": "tiny-sk"}, (), ("secret_key",)),  # not digits: figment would parse a number
    "user-secret-empty": ({}, (User(WEAK_USER, ""),), ("secret_key", "auth.users")),
    "user-secret-3-chars": ({}, (User(WEAK_USER, "abc"),), ("secret_key", "auth.users")),
}


@pytest.fixture(scope="module")
def startup_results(tmp_path_factory):
    """Starts `trove serve` once per case, all at the same time, and gives each 10 s to exit.
    Returns {case: (exit code or None if still running, stderr, seconds)}."""
    procs = {}
    started = time.monotonic()
    for case, (env_extra, users, _) in STARTUP_CASES.items():
        root = tmp_path_factory.mktemp(f"startup-{case}")
        trove = Trove(root, users=(ALT, *users), port=free_port())
        env = {k: v for k, v in server_env(MAIN, {"TROVE_ADMIN_TOKEN": ADMIN_TOKEN, **env_extra}).items()
               if k != "RUST_LOG"}
        proc = subprocess.Popen(trove.command(), env=env, cwd=root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_die_with_parent)
        _STARTED[proc.pid] = proc
        procs[case] = proc
    results = {}
    for case, proc in procs.items():
        try:
            _out, err = proc.communicate(timeout=max(0.1, started + 10 - time.monotonic()))
            results[case] = (proc.returncode, err, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate(timeout=10)
            results[case] = (None, err, time.monotonic() - started)
        _STARTED.pop(proc.pid, None)
    return results


@pytest.mark.parametrize("case", list(STARTUP_CASES))
def test_weak_credentials_stop_startup(startup_results, case):
    """Hole: an empty or short admin token, an empty or short root secret (TROVE_SECRET_KEY), or a user with
    an empty or 3-character secret_key were accepted. Fixed: `trove serve` exits non-zero within 10 s with
    exactly one line on stderr naming the setting (admin token: >= 16 chars; secrets: >= 8 chars)."""
    code, stderr, _ = startup_results[case]
    names = STARTUP_CASES[case][2]
    assert code is not None, f"trove kept running (no exit within 10 s); stderr: {stderr!r}"
    assert code != 0, f"exit code 0; stderr: {stderr!r}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert any(n in lines[0].lower() for n in names), f"the line does not name {' or '.join(names)}: {lines[0]!r}"


# ---------------------------------------------------------------------------------------------
# 5. SigV2
# ---------------------------------------------------------------------------------------------

OLD_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


def sigv2_signature(secret: str, string_to_sign: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


def sigv2_request(method: str, trove: Trove, resource: str, *, date: str | None = None, user: User = MAIN,
                  body: bytes = b"", content_type: str = "") -> requests.Response:
    """A SigV2 header-authenticated request: `Authorization: AWS <access>:<signature>`."""
    date = date or formatdate(usegmt=True)
    sts = f"{method}\n\n{content_type}\n{date}\n{resource}"
    headers = {"Date": date, "Authorization": f"AWS {user.access_key}:{sigv2_signature(user.secret_key, sts)}"}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, trove.endpoint + resource, headers=headers, data=body or None, timeout=30)


def sigv2_presigned(trove: Trove, resource: str, expires: int, user: User = MAIN) -> str:
    sig = sigv2_signature(user.secret_key, f"GET\n\n\n{expires}\n{resource}")
    return f"{trove.endpoint}{resource}?AWSAccessKeyId={user.access_key}&Expires={expires}&Signature={quote(sig, safe='')}"


def test_sigv2_date_is_checked_for_skew(node, local_bucket):
    """Hole: SigV2 header auth ignored the Date, so a captured request could be replayed forever. Fixed:
    a Date from 2001 gets 403 RequestTimeTooSkewed (GET and DELETE), and the object stays; a current Date works."""
    s3 = node.client()
    s3.put_object(Bucket=local_bucket, Key="v2", Body=b"sigv2 body")
    resource = f"/{local_bucket}/v2"
    for method in ("GET", "DELETE"):
        r = sigv2_request(method, node, resource, date=OLD_DATE)
        assert (r.status_code, xml_error_code(r)) == (403, "RequestTimeTooSkewed"), f"{method}: {describe(r)}"
    assert s3.get_object(Bucket=local_bucket, Key="v2")["Body"].read() == b"sigv2 body"
    r = sigv2_request("GET", node, resource)
    assert r.status_code == 200 and r.content == b"sigv2 body", describe(r)
    r = sigv2_request("DELETE", node, resource)
    assert r.status_code == 204, describe(r)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=local_bucket, Key="v2")


def test_sigv2_presigned_expiry_is_bounded(node, local_bucket):
    """Hole: presigned V2 URLs could live forever. Fixed: Expires more than 7 days ahead (here 30 days) gets
    403 AccessDenied; one hour ahead works; an expired URL gets 403."""
    node.client().put_object(Bucket=local_bucket, Key="v2", Body=b"presigned v2")
    resource = f"/{local_bucket}/v2"
    now = int(time.time())
    r = requests.get(sigv2_presigned(node, resource, now + 30 * 86400), timeout=30)
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied"), describe(r)
    r = requests.get(sigv2_presigned(node, resource, now + 3600), timeout=30)
    assert r.status_code == 200 and r.content == b"presigned v2", describe(r)
    r = requests.get(sigv2_presigned(node, resource, now - 60), timeout=30)
    assert r.status_code == 403, describe(r)


def test_sigv2_can_be_disabled(trove_factory):
    """Hole: SigV2 (HMAC-SHA1) could not be switched off. Fixed with `[s3] sigv2 = false` (bool): a valid
    SigV2 request (header or presigned) gets 400 or 403 with a code saying the mechanism is not supported
    (InvalidRequest, AccessDenied or InvalidArgument); SigV4 still works."""
    trove = trove_factory(extra_config="sigv2 = false\n", env=TROVE_ENV)  # lands in [s3], the last section
    s3 = trove.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="v2", Body=b"sigv4 only")
    resource = f"/{bucket}/v2"
    for r in (sigv2_request("GET", trove, resource),
              requests.get(sigv2_presigned(trove, resource, int(time.time()) + 3600), timeout=30)):
        assert r.status_code in (400, 403), describe(r)
        assert xml_error_code(r) in ("InvalidRequest", "AccessDenied", "InvalidArgument"), describe(r)
    r = sigv2_request("DELETE", trove, resource)
    assert r.status_code in (400, 403), describe(r)
    assert s3.get_object(Bucket=bucket, Key="v2")["Body"].read() == b"sigv4 only"


# ---------------------------------------------------------------------------------------------
# 6. Auto-attach only for authenticated requests
# ---------------------------------------------------------------------------------------------


def test_anonymous_request_does_not_auto_attach(trove_factory, moto, origin):
    """Hole: any anonymous request naming a bucket that exists at the provider attached it (and then served
    it). Fixed: anonymous `GET /<name>/key` gets 403 AccessDenied (or 404 NoSuchBucket) and the bucket is not
    attached; a signed request of the root user still auto-attaches it."""
    trove = trove_factory(extra_config=backends_toml(moto, aws={"auto_attach": True}), env=TROVE_ENV)
    moto.put_object(origin, "key", b"cloud data")
    r = anonymous("GET", trove, f"/{origin}/key")
    attached = [b.get("name") for b in listed_buckets(trove)]
    # The brief asked for 403 AccessDenied; 404 NoSuchBucket (the name is not in Trove's namespace) closes the
    # hole as well. What matters: no attach, no data.
    assert (r.status_code, xml_error_code(r)) in {(403, "AccessDenied"), (404, "NoSuchBucket")}, describe(r)
    assert origin not in attached, f"an anonymous request attached {origin}: {attached}"
    r = anonymous("HEAD", trove, f"/{origin}/key")
    assert r.status_code in (403, 404), describe(r)
    assert origin not in [b.get("name") for b in listed_buckets(trove)], "an anonymous HEAD attached it"

    assert trove.client().get_object(Bucket=origin, Key="key")["Body"].read() == b"cloud data"
    assert origin in [b.get("name") for b in listed_buckets(trove)]


# ---------------------------------------------------------------------------------------------
# 7. Hostile backend_bck names, invalid bucket names
# ---------------------------------------------------------------------------------------------

HOSTILE_BACKEND_NAMES = ["/etc", "../x", "a/b", ".trove", "", "x" * 300, "..", ".", "../.trove", "a\x00b"]


def test_hostile_backend_bucket_names_refused(trove_factory, moto):
    """Hole: `create-bck` with `{"backend_bck": {"name": ...}}` took any string as the cloud bucket's name, and
    that name becomes a directory under the mountpath (`@aws/<name>`): `/etc`, `..`, `../.trove` escape it.
    Fixed: every such name gets 400 (also with `dont_head_remote_bck=true`) and nothing is attached;
    `destroy-bck` of `..`, `.trove`, `../.trove` answers 400/404 and the mountpath's `.trove` stays."""
    trove = trove_factory(extra_config=backends_toml(moto), env=TROVE_ENV)
    answers = []
    s3_names = []
    for i, hostile in enumerate(HOSTILE_BACKEND_NAMES):
        for no_head in (False, True):
            s3_name = f"hostile-{i}-{int(no_head)}-{new_bucket_name()[-8:]}"
            s3_names.append(s3_name)
            params = {"provider": "ais"}
            if no_head:
                params["dont_head_remote_bck"] = "true"
            r = native(trove, "POST", f"/v1/buckets/{s3_name}", {
                "action": "create-bck", "value": {"backend_bck": {"name": hostile, "provider": "aws"}}},
                params=params)
            answers.append((hostile, no_head, r.status_code, r.text[:200]))
    wrong = [a for a in answers if a[2] != 400]
    listed = listed_buckets(trove)
    made = [b for b in listed if b.get("name") in s3_names]
    # destroy-bck never reaches outside the mountpath (only relative names here: nothing absolute is destroyed).
    destroyed = []
    for name in ("..", ".trove", "../.trove"):
        for query in ("", "?provider=aws", "?provider=ais"):
            status, text = raw_native(trove, "DELETE", f"/v1/buckets/{name}{query}", {"action": "destroy-bck"})
            destroyed.append((name, query, status, text[:200]))
    assert (trove.mountpaths[0] / ".trove").is_dir(), "the mountpath's .trove directory is gone"
    assert healthy(trove)
    assert not wrong, "hostile backend_bck names not answered 400:\n" + "\n".join(map(repr, wrong))
    assert not made, f"attached under hostile backend names: {made}"
    bad_destroy = [d for d in destroyed if d[2] not in (400, 404)]
    assert not bad_destroy, "destroy-bck of hostile names:\n" + "\n".join(map(repr, bad_destroy))


INVALID_BUCKET_NAMES = ["Upper", "a..b", "192.168.1.1", "a" * 64, "v1"]


@pytest.mark.parametrize("name", INVALID_BUCKET_NAMES, ids=["uppercase", "double-dot", "ip", "64-chars", "v1"])
def test_invalid_bucket_names_refused(node, name):
    """Regression guard next to the hole above: S3 CreateBucket and native create-bck with invalid names get
    400 (InvalidBucketName for S3) and nothing is created."""
    with s3_error("InvalidBucketName", 400):
        node.client().create_bucket(Bucket=name)
    if name != "v1":  # `/v1/buckets/v1` is covered by test_native.py; the rest go through the native API too
        r = native(node, "POST", f"/v1/buckets/{name}", {"action": "create-bck"}, params={"provider": "ais"})
        assert r.status_code == 400, describe(r)
    assert name not in [b.get("name") for b in listed_buckets(node)]


# ---------------------------------------------------------------------------------------------
# 8. A re-created bucket is empty
# ---------------------------------------------------------------------------------------------


def test_recreated_bucket_is_empty(node):
    """Hole: deleting and re-creating a bucket could bring back data of the old one. A re-created bucket
    (here by another user) lists nothing, GET of an old key is NoSuchKey, and it has no uploads or tags."""
    s3, alt = node.client(), node.client(ALT)
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"old data")
    s3.put_object(Bucket=bucket, Key="dir/k2", Body=b"old data 2")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}, {"Key": "dir/k2"}]})
    s3.delete_bucket(Bucket=bucket)
    alt.create_bucket(Bucket=bucket)
    try:
        assert alt.list_objects_v2(Bucket=bucket).get("Contents", []) == []
        assert alt.list_objects(Bucket=bucket).get("Contents", []) == []
        with s3_error("NoSuchKey", 404):
            alt.get_object(Bucket=bucket, Key="k")
        with s3_error("NoSuchKey", 404):
            alt.get_object(Bucket=bucket, Key="dir/k2")
        assert alt.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        with s3_error("NoSuchTagSet", 404):
            alt.get_bucket_tagging(Bucket=bucket)
    finally:
        with contextlib.suppress(ClientError):
            alt.delete_bucket(Bucket=bucket)


def test_upload_in_flight_does_not_land_in_recreated_bucket(node):
    """Hole: a PUT whose request head arrived before DeleteBucket, and whose body finished after the bucket
    was re-created, wrote its object into the new bucket. Fixed: the object never appears in the new bucket
    (the PUT fails, or the delete is refused while the upload runs)."""
    s3 = node.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    size, first = 200_000, 50_000
    body = os.urandom(size)
    socks = [open_partial_put(node.endpoint, key_path(bucket, f"inflight-{i}"), size, body[:first])
             for i in range(3)]
    try:
        time.sleep(0.5)  # the server has the heads and is reading the bodies
        try:
            s3.delete_bucket(Bucket=bucket)
        except ClientError as e:  # refusing the delete while uploads run is a valid fix
            code = e.response["Error"]["Code"]
            assert code in ("BucketNotEmpty", "OperationAborted", "Conflict"), e.response
            recreated = False
        else:
            s3.create_bucket(Bucket=bucket)
            recreated = True
        outcomes = []
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(body[first:])
            outcomes.append(read_response(s, timeout=15, method="PUT"))
    finally:
        for s in socks:
            s.close()
    if recreated:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert keys == [], f"uploads that began before the delete landed in the re-created bucket: {keys} ({outcomes})"


RACE_ITERATIONS = 200
RACE_BUDGET_SECS = 25
SLOW_PAUSE = 0.6  # between a slow PUT's head and its body


def test_recreate_race(node):
    """Hole: writes racing with DeleteBucket + CreateBucket ended up in the new bucket (or were acknowledged
    and then lost). 200 rounds of: empty the bucket, delete it, create it again, list it, while one thread
    PUTs small objects continuously and another sends slow PUTs (head, 0.6 s pause, body). After each
    re-create, no listed object may come from a PUT that finished before that re-create began, or from a slow
    PUT whose head was sent more than 0.25 s before the DeleteBucket; a PUT answered NoSuchBucket never
    creates an object; an acknowledged PUT is never lost without a delete."""
    s3 = node.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    stop = threading.Event()
    puts: dict[str, dict] = {}
    errors: list[str] = []

    def fast_writer():
        client = node.client()
        i = 0
        while not stop.is_set():
            i += 1
            key = f"fast-{i:06d}"
            rec = {"start": time.monotonic(), "slow": False}
            puts[key] = rec
            try:
                client.put_object(Bucket=bucket, Key=key, Body=key.encode())
                rec["status"] = 200
            except ClientError as e:
                rec["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
                rec["code"] = e.response["Error"]["Code"]
            except Exception as e:  # noqa: BLE001 - a connection error is an outcome, not a test error
                rec["status"], rec["code"] = None, repr(e)
            rec["end"] = time.monotonic()

    def slow_writer():
        i = 0
        while not stop.is_set():
            i += 1
            key = f"slow-{i:06d}"
            body = key.encode() * 100
            rec = {"slow": True}
            try:
                sock = open_partial_put(node.endpoint, key_path(bucket, key), len(body), body[:100])
            except OSError as e:
                errors.append(f"slow writer connect: {e!r}")
                time.sleep(0.1)
                continue
            rec["head_sent"] = rec["start"] = time.monotonic()
            puts[key] = rec
            try:
                time.sleep(SLOW_PAUSE)
                with contextlib.suppress(OSError):
                    sock.sendall(body[100:])
                out = read_response(sock, timeout=15, method="PUT")
                rec["status"] = out.status if out.kind == "response" else None
                rec["code"] = out.code if out.kind == "response" else out.kind
            finally:
                sock.close()
            rec["end"] = time.monotonic()

    rounds = []  # per re-create: times and the keys listed right after it
    deleted: set[str] = set()
    threads = [threading.Thread(target=fast_writer, daemon=True), threading.Thread(target=slow_writer, daemon=True)]
    for t in threads:
        t.start()
    budget_end = time.monotonic() + RACE_BUDGET_SECS
    try:
        for _ in range(RACE_ITERATIONS):
            if time.monotonic() > budget_end:
                break
            delete_sent = None
            for _attempt in range(40):
                keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
                if keys:
                    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False})
                    deleted.update(d["Key"] for d in r.get("Deleted", []))
                delete_sent = time.monotonic()
                try:
                    s3.delete_bucket(Bucket=bucket)
                    break
                except ClientError as e:
                    if e.response["Error"]["Code"] not in ("BucketNotEmpty", "OperationAborted", "Conflict"):
                        raise
                    delete_sent = None
            if delete_sent is None:
                continue
            create_start = time.monotonic()
            s3.create_bucket(Bucket=bucket)
            create_end = time.monotonic()
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            rounds.append({"delete_sent": delete_sent, "create_start": create_start, "create_end": create_end,
                           "listed": listed})
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    final = []
    token = None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, **({"ContinuationToken": token} if token else {}))
        final += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]

    # Rounds are slow on a loaded 2-core CI machine (each DeleteBucket races the writers); a few suffice.
    assert len(rounds) >= 5, f"only {len(rounds)} delete/re-create rounds completed in {RACE_BUDGET_SECS}s"
    violations = []
    for n, rnd in enumerate(rounds):
        for key in rnd["listed"]:
            rec = puts.get(key, {})
            if "end" in rec and rec["end"] < rnd["create_start"]:
                violations.append(f"round {n}: {key} (PUT done {rnd['create_start'] - rec['end']:.3f}s before the "
                                  f"re-create began, status {rec.get('status')}) listed in the new bucket")
            if rec.get("slow") and rec["head_sent"] < rnd["delete_sent"] - 0.25:
                violations.append(f"round {n}: slow {key} (head sent {rnd['delete_sent'] - rec['head_sent']:.3f}s "
                                  f"before DeleteBucket) listed in the new bucket")
    seen = {k for rnd in rounds for k in rnd["listed"]} | set(final) | deleted
    for key, rec in puts.items():
        if rec.get("code") == "NoSuchBucket" and key in seen:
            violations.append(f"{key}: answered NoSuchBucket, but the object exists")
        if rec.get("status") == 200 and key not in seen:
            violations.append(f"{key}: PUT acknowledged (200) but the object was never seen and never deleted")
    assert not violations, f"{len(violations)} violations in {len(rounds)} rounds:\n" + "\n".join(violations[:30])


# ---------------------------------------------------------------------------------------------
# 9. Object ACLs on attached cloud buckets
# ---------------------------------------------------------------------------------------------


def test_public_bucket_acl_does_not_publish_objects(node, cloud_node, moto, origin):
    """Hole: in an attached cloud bucket, an object without a cached copy has no ACL in Trove, and the bucket's
    public-read ACL was applied to it: anonymous GETs read private cloud objects. Fixed: 403 AccessDenied (the
    object is not public), while anonymous listing (bucket READ) is 200 — as on a local bucket (checked first)."""
    # Reference: an AIS-local bucket with a public-read ACL and a private object.
    s3 = node.client()
    local = new_bucket_name()
    s3.create_bucket(Bucket=local)
    s3.put_bucket_acl(Bucket=local, ACL="public-read")
    s3.put_object(Bucket=local, Key="private", Body=b"local secret")
    r = anonymous("GET", node, f"/{local}/private")
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied"), f"local reference: {describe(r)}"
    assert anonymous("GET", node, f"/{local}").status_code == 200

    moto.put_object(origin, "private", b"cloud secret")
    attach(cloud_node, moto, origin)
    gw = cloud_node.client()
    try:
        gw.put_bucket_acl(Bucket=origin, ACL="public-read")
    except ClientError as e:
        pytest.skip(f"PutBucketAcl on an attached cloud bucket is refused: {e.response['Error']}")
    r = anonymous("GET", cloud_node, f"/{origin}/private")
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied"), f"cold cloud object: {describe(r)}"
    r = anonymous("HEAD", cloud_node, f"/{origin}/private")
    assert r.status_code == 403, f"cold cloud object (HEAD): {describe(r)}"
    r = anonymous("GET", cloud_node, f"/{origin}")
    assert r.status_code == 200 and "private" in r.text, f"anonymous listing: {describe(r)}"
    assert gw.get_object(Bucket=origin, Key="private")["Body"].read() == b"cloud secret"  # now cached
    r = anonymous("GET", cloud_node, f"/{origin}/private")
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied"), f"cached cloud object: {describe(r)}"


# ---------------------------------------------------------------------------------------------
# 10. If-None-Match: * on cloud buckets
# ---------------------------------------------------------------------------------------------


def test_if_none_match_sees_cloud_only_object(cloud_node, moto, origin):
    """Hole: `If-None-Match: *` on a PUT into an attached cloud bucket only looked at Trove's cache, so an object
    that exists only in the cloud was overwritten. Fixed: 412 PreconditionFailed; the cloud object is unchanged."""
    moto.put_object(origin, "exists", b"original in the cloud")
    attach(cloud_node, moto, origin)
    with s3_error("PreconditionFailed", 412):
        cloud_node.client().put_object(Bucket=origin, Key="exists", Body=b"overwrite", IfNoneMatch="*")
    assert moto.client().get_object(Bucket=origin, Key="exists")["Body"].read() == b"original in the cloud"
    # A new key is still written through.
    cloud_node.client().put_object(Bucket=origin, Key="new", Body=b"fresh", IfNoneMatch="*")
    assert moto.get_object(origin, "new") == b"fresh"


# ---------------------------------------------------------------------------------------------
# 11. response-* overrides are not for anonymous GETs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("override", ["response-content-type=text%2Fhtml",
                                      "response-content-disposition=attachment%3B%20filename%3Devil.html"])
def test_anonymous_response_overrides_refused(node, override):
    """Hole: anonymous GETs of public objects could set Content-Type/Content-Disposition of the response
    (content spoofing on the gateway's origin). Fixed, as S3: 400 InvalidRequest ("Request specific response
    headers cannot be used for anonymous GET requests."); the plain anonymous GET and signed overrides work."""
    s3 = node.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="page", Body=b"<b>hi</b>", ContentType="text/plain", ACL="public-read")
    r = anonymous("GET", node, f"/{bucket}/page", query=override)
    assert (r.status_code, xml_error_code(r)) == (400, "InvalidRequest"), describe(r)
    r = anonymous("GET", node, f"/{bucket}/page")
    assert r.status_code == 200 and r.content == b"<b>hi</b>", describe(r)
    r = raw_request("GET", node.endpoint, f"/{bucket}/page", query=override)
    assert r.status_code == 200, describe(r)


# ---------------------------------------------------------------------------------------------
# 12. Anonymous listings do not reveal the owner's id
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "list-type=2&fetch-owner=true", "uploads="],
                         ids=["ListObjects-v1", "ListObjectsV2-fetch-owner", "ListMultipartUploads"])
def test_anonymous_listing_hides_owner_id(node, query):
    """Hole: anonymous listings of a public-read bucket showed the owner's canonical id, which for the root
    user is its access key. Fixed: the root access key appears nowhere in the response (v1 is the reported
    case; V2 with fetch-owner and the uploads listing carry the same Owner/Initiator fields; an anonymous uploads
    listing may also be refused with 403 AccessDenied)."""
    s3 = node.client()
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="listed", Body=b"x")
    s3.create_multipart_upload(Bucket=bucket, Key="pending")
    r = anonymous("GET", node, f"/{bucket}", query=query)
    if query.startswith("uploads") and (r.status_code, xml_error_code(r)) == (403, "AccessDenied"):
        return  # listing uploads is the owner's: nothing leaks
    assert r.status_code == 200, describe(r)
    assert MAIN.access_key not in r.text, f"root access key in an anonymous listing: {r.text[:1000]}"


# ---------------------------------------------------------------------------------------------
# 13. CompleteMultipartUpload with too many parts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ascending", "repeated"])
def test_complete_with_more_than_10000_parts_refused(node, local_bucket, kind):
    """Hole: a CompleteMultipartUpload list was not bounded (10,001 entries of one real part were accepted).
    Fixed: more than 10,000 parts get 400 (MalformedXML, InvalidArgument or InvalidPart; for the repeated list
    also InvalidPartOrder) in under 5 s, and the upload can still be completed properly afterwards.
    `ascending`: parts 1..10001, only part 1 uploaded; `repeated`: part 1 (uploaded) listed 10,001 times."""
    s3 = node.client()
    upload = s3.create_multipart_upload(Bucket=local_bucket, Key="many")["UploadId"]
    e1 = s3.upload_part(Bucket=local_bucket, Key="many", UploadId=upload, PartNumber=1, Body=b"one")["ETag"]
    if kind == "ascending":
        entries = [(n, e1 if n == 1 else '"00000000000000000000000000000000"') for n in range(1, 10_002)]
        codes = ("MalformedXML", "InvalidArgument", "InvalidPart")
    else:
        entries = [(1, e1)] * 10_001
        codes = ("MalformedXML", "InvalidArgument", "InvalidPart", "InvalidPartOrder")
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{xml_text(e)}</ETag></Part>" for n, e in entries)
    body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
    started = time.monotonic()
    r = raw_request("POST", node.endpoint, f"/{local_bucket}/many", query=f"uploadId={quote(upload, safe='')}",
                    body=body, headers={"Content-Type": "application/xml"}, timeout=30)
    elapsed = time.monotonic() - started
    assert r.status_code == 400 and xml_error_code(r) in codes, describe(r)
    assert elapsed < 5, f"answered after {elapsed:.1f}s"
    s3.complete_multipart_upload(Bucket=local_bucket, Key="many", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=local_bucket, Key="many")["Body"].read() == b"one"


# ---------------------------------------------------------------------------------------------
# 14. Prefetch templates are bounded
# ---------------------------------------------------------------------------------------------


def test_prefetch_absurd_template_refused(trove_factory, moto, origin):
    """Hole: a prefetch template may name any number of objects (here 10^15), a job that never ends and
    floods the backend. Fixed: 400 within 5 s, no job, the server stays healthy."""
    trove = trove_factory(extra_config=backends_toml(moto), env=TROVE_ENV)
    attach(trove, moto, origin)
    started = time.monotonic()
    r = native(trove, "POST", f"/v1/buckets/{origin}", {
        "action": "prefetch-listrange", "name": "",
        "value": {"template": "x-{0000000000..9999999999}-{0..99999}"}}, params={"provider": "aws"}, timeout=30)
    elapsed = time.monotonic() - started
    still_healthy = healthy(trove)
    if r.status_code == 200:
        trove.kill9()  # a job was started: stop it before it floods the shared moto
    assert r.status_code == 400, describe(r)
    assert elapsed < 5, f"answered after {elapsed:.1f}s"
    assert still_healthy


def test_concurrent_anonymous_form_uploads_stay_bounded(trove_factory):
    """A crowd of anonymous 15 MiB forms to a private bucket: each is refused after its fields, before its
    file is read, so RSS grows by well under 100 MB."""
    from concurrent.futures import ThreadPoolExecutor

    trove = trove_factory()
    bucket = new_bucket_name()
    trove.client().create_bucket(Bucket=bucket)
    body = b"a" * (15 * MiB)

    def post(_):
        try:
            r = requests.post(f"{trove.endpoint}/{bucket}", data={"key": "k"}, files={"file": ("f", body)}, timeout=60)
        except requests.ConnectionError:
            return "closed"  # refused and closed while the file was still being sent
        return r.status_code

    with RssSampler(trove.proc.pid) as rss:
        with ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(post, range(32)))
    assert set(codes) <= {403, "closed"} and 403 in codes, codes
    assert rss.growth < RSS_LIMIT, f"RSS grew {rss.growth / 1e6:.0f} MB"
    assert healthy(trove)


def test_large_form_upload_streams_to_disk(trove_factory):
    """A 300 MiB browser form upload into a public-write bucket (anonymous) is stored whole while RSS grows by
    well under 100 MB: the file part is streamed to disk, never held."""
    trove = trove_factory()
    bucket = new_bucket_name()
    s3 = trove.client()
    s3.create_bucket(Bucket=bucket, ACL="public-read-write")
    size = 300 * MiB
    boundary = "----trovestream5e1c"
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nbig.bin\r\n"
              f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
              "Content-Type: application/octet-stream\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.md5()

    class Body:
        """A file-like body of known length, made as it is read (requests streams it with Content-Length)."""

        def __init__(self):
            self.parts = iter([prefix, *([chunk] * (size // len(chunk))), suffix])

        def __len__(self):
            return len(prefix) + size + len(suffix)

        def read(self, _n=-1):
            part = next(self.parts, b"")
            if part is chunk:
                digest.update(chunk)
            return part

    with RssSampler(trove.proc.pid) as rss:
        r = requests.post(f"{trove.endpoint}/{bucket}", data=Body(), timeout=300,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 204, describe(r)
    assert r.headers["ETag"] == f'"{digest.hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size and head["ETag"] == f'"{digest.hexdigest()}"'
    assert rss.growth < RSS_LIMIT, f"RSS grew {rss.growth / 1e6:.0f} MB for a {size // MiB} MiB form"
