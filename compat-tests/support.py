"""Harness for the Trove compatibility tests.

- `Trove` starts a real `trove serve` process on a free port with temporary mountpaths, waits for
  `/v1/health`, and stops (SIGTERM), kills (SIGKILL) or restarts it.
- `s3_client` builds boto3 clients the way the tests want them (path style, no retries).
- `sign_headers` / `raw_request` / `open_partial_put` send hand-made SigV4 requests for what boto3
  cannot express (virtual-hosted Host headers, aws-chunked bodies, half-sent uploads).
- `s3_error` asserts the S3 error code and HTTP status of a failed boto3 call.
- Checksum helpers compute the values S3 returns (ETag, CRC32, CRC32C, SHA1, SHA256).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

COMPAT_DIR = Path(__file__).resolve().parent
REPO_ROOT = COMPAT_DIR.parent

REGION = "us-east-1"
# TROVE_TEST_CLUSTER=3 runs every Trove a test starts as a cluster of three nodes (see `Trove`).
CLUSTER_SIZE = int(os.environ.get("TROVE_TEST_CLUSTER", "1"))
CLUSTER_SECRET = "compat-tests-cluster-secret-0123"
DOMAIN = "localhost"
MiB = 1024 * 1024


@dataclass(frozen=True)
class User:
    access_key: str
    secret_key: str
    id: str | None = None
    display_name: str | None = None
    email: str | None = None


# The root credential, passed through TROVE_ACCESS_KEY / TROVE_SECRET_KEY.
MAIN = User("TROVEMAINACCESSKEY01", "trove-main-secret-key")
# A second user from the config file.
ALT = User(
    "TROVEALTACCESSKEY001",
    "trove-alt-secret-key",
    id="56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234",
    display_name="john.doe",
    email="john.doe@example.com",
)


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


def trove_binary() -> Path:
    """`$TROVE_BIN`, else `${CARGO_TARGET_DIR:-<repo>/target}/debug/trove`."""
    if os.environ.get("TROVE_BIN"):
        return Path(os.environ["TROVE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "debug" / "trove"


def require_binary() -> Path:
    binary = trove_binary()
    if not binary.is_file():
        pytest.fail(f"trove binary not found at {binary}: build it (cargo build) or set TROVE_BIN")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def config_toml(users=(), domain: str | None = DOMAIN, region: str = REGION, extra: str = "") -> str:
    """The TOML config for `users` (beyond the root user) and the `[s3]` section."""
    q = json.dumps  # a JSON string is a valid TOML basic string for the values used here
    lines = []
    for user in users:
        lines += ["[[auth.users]]", f"access_key = {q(user.access_key)}", f"secret_key = {q(user.secret_key)}"]
        if user.id is not None:
            lines.append(f"id = {q(user.id)}")
        if user.display_name is not None:
            lines.append(f"display_name = {q(user.display_name)}")
        if user.email is not None:
            lines.append(f"email = {q(user.email)}")
        lines.append("")
    lines.append("[s3]")
    if domain:
        lines.append(f"domain = {q(domain)}")
    lines.append(f"region = {q(region)}")
    return "\n".join(lines) + "\n" + extra


def server_env(root_user: User | None, extra: dict | None = None) -> dict:
    """Our environment without TROVE_* settings (so nothing leaks in), plus the root credential."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
    if root_user is not None:
        env["TROVE_ACCESS_KEY"] = root_user.access_key
        env["TROVE_SECRET_KEY"] = root_user.secret_key
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies (Linux prctl), so that a
    crashed or killed pytest leaves no server behind."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


# Every process any Trove instance started, by PID, so that nothing outlives the test session.
_STARTED: dict[int, subprocess.Popen] = {}


def kill_started_processes() -> None:
    for pid, proc in list(_STARTED.items()):
        if proc.poll() is None:
            proc.kill()  # SIGKILL to this PID only
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        _STARTED.pop(pid, None)


atexit.register(kill_started_processes)


def kill_process(proc: subprocess.Popen | None) -> None:
    """SIGKILL `proc` (this PID only) if it still runs, reap it, and forget it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    if proc is not None:
        _STARTED.pop(proc.pid, None)


def spawn_logged(cmd: list[str], log_path: Path, env: dict, cwd: Path) -> subprocess.Popen:
    """Starts `cmd` with stdout and stderr appended to `log_path` (after a header line), no stdin, killed when
    the test process dies, and registered so that nothing outlives the session."""
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(map(str, cmd))}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, preexec_fn=_die_with_parent)
    _STARTED[proc.pid] = proc
    return proc


class Trove:
    """One `trove serve` process with its own mountpaths, config file and log under `root`."""

    def __init__(
        self,
        root: Path,
        *,
        mountpaths: int = 2,
        users=(ALT,),
        root_user: User = MAIN,
        domain: str | None = DOMAIN,
        region: str = REGION,
        extra_config: str = "",
        port: int | None = None,
        env: dict | None = None,
        cluster: int | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.mountpaths = [self.root / f"mp{i}" for i in range(mountpaths)]
        for mp in self.mountpaths:
            mp.mkdir(exist_ok=True)
        self.config_path = self.root / "trove.toml"
        self.config_path.write_text(config_toml(users, domain, region, extra_config))
        self.root_user = root_user
        self.users = (root_user, *users)
        self.port = port or free_port()
        self.log_path = self.root / "trove.log"
        self.proc: subprocess.Popen | None = None
        self._env = env or {}
        # With TROVE_TEST_CLUSTER=N, this node founds a cluster that N-1 peers join, and clients spread their
        # requests over all of them (each signed for the node it goes to).
        self.peers: list[Trove] = []
        self._cluster_size = cluster if cluster is not None else CLUSTER_SIZE
        self._join: str | None = None
        if self._cluster_size > 1:
            self._env.setdefault("TROVE_CLUSTER_SECRET", CLUSTER_SECRET)

    # -- addresses and clients --

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def all_mountpaths(self) -> list[Path]:
        """This node's mountpaths and its peers' (where a cluster keeps its objects)."""
        return self.mountpaths + [m for p in self.peers for m in p.mountpaths]

    @property
    def endpoints(self) -> list[str]:
        """This node's endpoint and its peers'."""
        return [self.endpoint] + [p.endpoint for p in self.peers]

    def client(self, user: User = MAIN, **config):
        return s3_client(self.endpoint, user, spread=self.endpoints[1:], **config)

    # -- process control --

    def command(self) -> list[str]:
        cmd = [str(require_binary()), "serve", "--listen", f"127.0.0.1:{self.port}"]
        for mp in self.mountpaths:
            cmd += ["--mountpath", str(mp)]
        if self._join:
            cmd += ["--join", self._join]
        return cmd + ["--config", str(self.config_path)]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> "Trove":
        assert not self.running, "already running"
        self.proc = spawn_logged(self.command(), self.log_path, server_env(self.root_user, self._env), self.root)
        self.wait_healthy(timeout)
        if self._cluster_size > 1 and not self.peers:
            for i in range(1, self._cluster_size):
                peer = Trove(self.root / f"peer{i}", mountpaths=len(self.mountpaths), users=self.users[1:],
                             root_user=self.root_user, env=dict(self._env), cluster=1)
                peer.config_path.write_text(self.config_path.read_text())
                peer._join = self.endpoint
                self.peers.append(peer.start(timeout=max(timeout, 90)))
        else:
            for peer in self.peers:
                if not peer.running:
                    peer.start(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trove exited with {self.proc.returncode} during start-up\n{self.log_tail()}")
            try:
                if requests.get(f"{self.endpoint}/v1/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"trove was not healthy within {timeout}s\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` (SIGTERM by default), wait for the exit and return the exit code."""
        for peer in self.peers:
            peer.stop(sig, timeout)
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise AssertionError(f"trove did not exit within {timeout}s of signal {sig}\n{self.log_tail()}")
        _STARTED.pop(self.proc.pid, None)
        return self.proc.returncode

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself (after a signal sent elsewhere); return the code."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"trove did not exit within {timeout}s\n{self.log_tail()}")
        _STARTED.pop(self.proc.pid, None)
        return self.proc.returncode

    def kill9(self) -> None:
        for peer in self.peers:
            peer.kill9()
        kill_process(self.proc)

    def restart(self, timeout: float = 30.0) -> "Trove":
        """Stop if running (SIGTERM), then start on the same mountpaths (and port, if still free)."""
        if self.running:
            self.stop()
        deadline = time.monotonic() + 5
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not port_is_free(self.port):
            self.port = free_port()
        return self.start(timeout)

    # -- inspection --

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "--- trove log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def work_files(self) -> list[Path]:
        """Files below any `%wk` directory in the mountpaths (leftovers of unfinished writes)."""
        found = []
        for mp in self.all_mountpaths:
            for dirpath, _dirs, files in os.walk(mp):
                if "%wk" in Path(dirpath).relative_to(mp).parts:
                    found += [Path(dirpath) / f for f in files]
        return found


# ---------------------------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------------------------


def s3_client(endpoint: str, user: User = MAIN, *, addressing_style: str = "path", spread=(), **config):
    cfg = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    if config:
        cfg = cfg.merge(Config(**config))
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=user.access_key,
        aws_secret_access_key=user.secret_key,
        config=cfg,
    )
    if spread and addressing_style == "path":
        # Each request goes to one of the nodes at random, signed for the node it goes to.
        nodes = [endpoint, *spread]

        def to_some_node(request, **_):
            parts = urlsplit(request.url)
            node = urlsplit(random.choice(nodes))
            request.url = urlunsplit(parts._replace(netloc=node.netloc))

        client.meta.events.register("before-sign.s3", to_some_node)
    return client


@contextlib.contextmanager
def s3_error(code: str | tuple[str, ...] | None, status: int | tuple[int, ...]):
    """Expect a boto3 ClientError with this S3 error code and HTTP status.

    `code` None accepts any code (HEAD responses have no body to carry one); a tuple of codes or
    of statuses accepts any of them, for cases where S3 implementations legitimately differ."""
    with pytest.raises(ClientError) as info:
        yield info
    response = info.value.response
    actual_code = response.get("Error", {}).get("Code")
    actual_status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    wanted_codes = (code,) if isinstance(code, str) else code
    wanted_statuses = (status,) if isinstance(status, int) else status
    assert actual_status in wanted_statuses, f"status {actual_status} ({actual_code}), expected {status} ({code})"
    if wanted_codes is not None:
        assert actual_code in wanted_codes, f"error code {actual_code} ({actual_status}), expected {code} ({status})"


def new_bucket_name() -> str:
    return f"trove-test-{uuid.uuid4().hex[:16]}"


def delete_bucket_recursively(client, bucket: str) -> None:
    """Best effort: abort uploads, delete every object, delete the bucket."""
    with contextlib.suppress(ClientError, BotoCoreError):
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            with contextlib.suppress(ClientError, BotoCoreError):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    with contextlib.suppress(ClientError, BotoCoreError):
        previous = None
        while True:  # list the first page again after each round, as deleting moves the listing
            keys = [obj["Key"] for obj in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
            if not keys or keys == previous:
                break
            previous = keys
            try:
                client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
            except (ClientError, BotoCoreError):
                for key in keys:
                    with contextlib.suppress(ClientError, BotoCoreError):
                        client.delete_object(Bucket=bucket, Key=key)
    with contextlib.suppress(ClientError, BotoCoreError):
        # A versioned bucket keeps versions and delete markers: remove each of them by its id.
        previous = None
        while True:
            listed = client.list_object_versions(Bucket=bucket)
            entries = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
            if not entries or entries == previous:
                break
            previous = entries
            client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries], "Quiet": True})
    with contextlib.suppress(ClientError, BotoCoreError):
        client.delete_bucket(Bucket=bucket)


# ---------------------------------------------------------------------------------------------
# Hand-made signed requests
# ---------------------------------------------------------------------------------------------

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class _Signer(S3SigV4Auth):
    """botocore's S3 SigV4 signer with an optional fixed x-amz-content-sha256 value."""

    def __init__(self, user: User, payload_hash: str | None = None):
        super().__init__(Credentials(user.access_key, user.secret_key), "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash if self._payload_hash is not None else super().payload(request)


def sign_headers(
    method: str,
    url: str,
    *,
    user: User = MAIN,
    host: str | None = None,
    headers: dict | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    when: datetime | None = None,
) -> dict:
    """Headers (Host, X-Amz-Date, X-Amz-Content-SHA256, Authorization, ...) for a SigV4 request.

    `url` carries the already-encoded path and query. `host` overrides the Host header, e.g.
    `bucket.localhost:PORT` for virtual-hosted style while the request goes to 127.0.0.1.
    `payload_hash` fixes x-amz-content-sha256 (e.g. UNSIGNED-PAYLOAD); `when` (naive UTC) fakes
    the signing time."""
    hdrs = dict(headers or {})
    hdrs["Host"] = host or urlsplit(url).netloc
    request = AWSRequest(method=method, url=url, data=body, headers=hdrs)
    clock = mock.patch("botocore.auth.get_current_datetime", return_value=when) if when else contextlib.nullcontext()
    with clock:
        _Signer(user, payload_hash).add_auth(request)
    return dict(request.headers.items())


def key_path(bucket: str, key: str = "") -> str:
    """`/bucket/key` with the key percent-encoded like the AWS SDKs do."""
    return f"/{bucket}/{quote(key, safe='/~')}" if key else f"/{bucket}"


def raw_request(
    method: str,
    endpoint: str,
    path: str,
    *,
    query: str = "",
    user: User | None = MAIN,
    host: str | None = None,
    headers: dict | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    when: datetime | None = None,
    timeout: float = 60,
    stream: bool = False,
) -> requests.Response:
    """Send one request with `requests`; signed as `user` unless user is None (anonymous).

    `path` and `query` must already be percent-encoded. (requests removes `.`/`..` path segments,
    so keys with such segments go through boto3 instead.)"""
    url = endpoint + path + (f"?{query}" if query else "")
    if user is None:
        hdrs = dict(headers or {})
        if host:
            hdrs["Host"] = host
    else:
        hdrs = sign_headers(method, url, user=user, host=host, headers=headers, body=body,
                            payload_hash=payload_hash, when=when)
    return requests.request(method, url, headers=hdrs, data=body, timeout=timeout, stream=stream)


def xml_error_code(response: requests.Response) -> str | None:
    """The <Code> of an S3 XML error body, or None."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        return None
    code = root.find("Code")
    return code.text if code is not None else None


def open_partial_put(endpoint: str, path: str, total_size: int, first_bytes: bytes = b"", *,
                     query: str = "", user: User = MAIN) -> socket.socket:
    """Start a signed PUT announcing `total_size` bytes (UNSIGNED-PAYLOAD) and send only the headers
    and `first_bytes`.

    Returns the open socket; the caller decides what happens next (send more, close, kill the server)."""
    path = path + (f"?{query}" if query else "")
    split = urlsplit(endpoint)
    headers = sign_headers(
        "PUT",
        endpoint + path,
        user=user,
        headers={"Content-Length": str(total_size)},
        payload_hash=UNSIGNED_PAYLOAD,
    )
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock = socket.create_connection((split.hostname, split.port), timeout=10)
    sock.sendall(head.encode())
    with contextlib.suppress(socket.timeout):  # a server that stops reading still has the upload in flight
        sock.sendall(first_bytes)
    return sock


# ---------------------------------------------------------------------------------------------
# Checksums and data
# ---------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def etag(data: bytes) -> str:
    """The ETag S3 gives a single-part upload: the quoted MD5 hex."""
    return f'"{md5_hex(data)}"'


def multipart_etag(parts: list[bytes]) -> str:
    """The ETag S3 gives a completed multipart upload: md5 of the part digests, dash, part count."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc32_b64(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c_b64(data: bytes) -> str:
    """CRC32C (Castagnoli) as S3 returns it; pure Python, meant for small test bodies."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return b64((crc ^ 0xFFFFFFFF).to_bytes(4, "big"))


def sha1_b64(data: bytes) -> str:
    return b64(hashlib.sha1(data).digest())


def sha256_b64(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    import random

    return random.Random(seed).randbytes(size)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
