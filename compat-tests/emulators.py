"""Offline cloud origins for the backend tests: moto (S3), gcp-storage-emulator (GCS) and Azurite (Azure Blob).

Each class starts one emulator process on 127.0.0.1 (a free port unless one is given), waits until it answers,
and stops it by PID (SIGTERM, then SIGKILL). `restart()` comes back on the SAME port, so a Trove configured with
`endpoint` keeps working, and keeps the data:
- GCS and Azurite always store their data in a directory under `root` (not in memory);
- moto has no persistence, so `stop()` copies every bucket and object out and the next `start()`/`restart()`
  copies them back in (single-part ETags come back equal; multipart ETags do not; `kill()` loses them). With
  `enforce_auth` the IAM user cannot survive: a new access key is made and `access_key`/`secret_key` change.

Binaries come from this directory's environments (see setup.sh): `.venv/bin/moto_server`,
`.venv/bin/gcp-storage-emulator`, `node_modules/.bin/azurite-blob`. Processes are registered in
`support._STARTED` and get SIGKILL when the test process dies (`_die_with_parent`); logs go to `root/*.log`.

Besides `client()` (the provider's own Python client), every emulator has the same small set of object
operations (`create_bucket`, `put_object`, `get_object`, `head_object`, `delete_object`, `list_keys`,
`delete_bucket`) so that tests can be written once for the three providers, and `backend_config()` renders
its `[backends.<provider>]` section of Trove's TOML config.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support import COMPAT_DIR, _STARTED, free_port, kill_process, port_is_free, spawn_logged

VENV_BIN = COMPAT_DIR / ".venv" / "bin"
NODE_BIN = COMPAT_DIR / "node_modules" / ".bin"

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
MOTO_REGION = "us-east-1"


class EmulatorMissing(RuntimeError):
    """The emulator's binary is not installed (run compat-tests/setup.sh)."""


@dataclass
class ObjectInfo:
    """An object's properties as the provider's own client reports them."""

    size: int
    etag: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    metadata: dict = field(default_factory=dict)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string for these values


class Emulator:
    """One emulator process. Subclasses set `provider`, `scheme`, `binary` and implement the hooks."""

    provider = ""  # Trove's provider name: aws | gcp | azure
    scheme = ""  # URI scheme: s3 | gs | az
    binary: Path = Path()
    start_timeout = 30.0

    def __init__(self, root: Path, *, port: int | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = self.root / f"{self.provider}-emulator.log"
        self.proc: subprocess.Popen | None = None

    # -- addresses --

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def uri(self, bucket: str) -> str:
        return f"{self.scheme}://{bucket}"

    # -- process control --

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float | None = None) -> "Emulator":
        assert not self.running, "already running"
        if not self.binary.exists():
            raise EmulatorMissing(f"{self.binary} missing: run compat-tests/setup.sh")
        self.proc = spawn_logged(self.command(), self.log_path, self.env(), self.root)
        self._wait_ready(timeout or self.start_timeout)
        try:
            self.after_start()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                _STARTED.pop(self.proc.pid, None)
                raise RuntimeError(f"{type(self).__name__} exited with {code} during start-up\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{type(self).__name__} not ready on {self.endpoint} within {timeout}s\n{self.log_tail()}")

    def ready(self) -> bool:
        """One readiness probe; may raise requests.RequestException."""
        raise NotImplementedError

    def after_start(self) -> None:
        """Set-up once the process answers (moto: IAM user, restore of a snapshot)."""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; waits until the port is free again."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)  # a paused process must run to act on SIGTERM
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _STARTED.pop(self.proc.pid, None)
        self._wait_port_free()

    def kill(self) -> None:
        """SIGKILL at once (a crash, as seen from Trove)."""
        kill_process(self.proc)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung origin)."""
        assert self.running, "not running"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        if self.running:
            self.proc.send_signal(signal.SIGCONT)

    def _wait_port_free(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, timeout: float | None = None) -> "Emulator":
        """Stop (if running) and start again on the same port, keeping the data."""
        if self.running:
            self.stop()
        self._wait_port_free()
        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} still busy, cannot restart {type(self).__name__}")
        return self.start(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return f"--- {self.log_path.name} (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- state --

    def reset(self) -> None:
        """Remove every bucket (container) and object."""
        raise NotImplementedError

    def client(self):
        """The provider's own Python client, pointed at this emulator."""
        raise NotImplementedError

    def backend_config(self, **extra) -> str:
        """`[backends.<provider>]` for Trove's config; `extra` adds or overrides keys (e.g. auto_attach=True)."""
        settings = {**self.backend_settings(), **extra}
        lines = [f"[backends.{self.provider}]"]
        lines += [f"{k} = {_toml(v)}" for k, v in settings.items() if v is not None]
        return "\n".join(lines) + "\n"

    def backend_settings(self) -> dict:
        raise NotImplementedError

    # -- object operations through the provider's own client --

    def create_bucket(self, bucket: str) -> None:
        raise NotImplementedError

    def bucket_exists(self, bucket: str) -> bool:
        raise NotImplementedError

    def delete_bucket(self, bucket: str) -> None:
        """Best effort: every object, then the bucket."""
        raise NotImplementedError

    def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str | None = None,
                   content_encoding: str | None = None, cache_control: str | None = None,
                   content_disposition: str | None = None, metadata: dict | None = None) -> None:
        raise NotImplementedError

    def get_object(self, bucket: str, key: str) -> bytes:
        raise NotImplementedError

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's properties, None when it does not exist."""
        raise NotImplementedError

    def delete_object(self, bucket: str, key: str) -> None:
        raise NotImplementedError

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under `prefix` (no delimiter), sorted."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# moto (S3)
# ---------------------------------------------------------------------------------------------


class Moto(Emulator):
    """moto_server. `enforce_auth=True` verifies SigV4: the first three requests (unauthenticated) create an
    IAM user and an access key, exposed as `access_key`/`secret_key`; any other key gets 403."""

    provider = "aws"
    scheme = "s3"
    binary = VENV_BIN / "moto_server"
    NO_AUTH_ACTIONS = 3

    def __init__(self, root: Path, *, port: int | None = None, enforce_auth: bool = False):
        super().__init__(root, port=port)
        self.enforce_auth = enforce_auth
        self.access_key = "testing"
        self.secret_key = "testing"
        self._snapshot: list | None = None
        self._clients: dict = {}

    def command(self) -> list[str]:
        return [str(self.binary), "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict:
        env = {k: v for k, v in super().env().items() if not k.startswith(("AWS_", "MOTO_"))}
        if self.enforce_auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.NO_AUTH_ACTIONS)
        env["S3_IGNORE_SUBDOMAIN_BUCKETNAME"] = "true"  # path style only; 127.0.0.1 is no bucket host
        return env

    def ready(self) -> bool:
        # /moto-api/ does not count against INITIAL_NO_AUTH_ACTION_COUNT.
        return requests.get(f"{self.endpoint}/moto-api/", timeout=1).status_code == 200

    def after_start(self) -> None:
        if self.enforce_auth:
            iam = self._boto("iam", "unused", "unused")
            iam.create_user(UserName="trove")  # request 1 of NO_AUTH_ACTIONS
            iam.put_user_policy(  # request 2
                UserName="trove", PolicyName="all",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key = iam.create_access_key(UserName="trove")["AccessKey"]  # request 3
            self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        if self._snapshot is not None:
            self._restore(self._snapshot)
            self._snapshot = None

    def stop(self, timeout: float = 10.0) -> None:
        """Copies the buckets and objects out first, so that a later `start()`/`restart()` brings them back."""
        if self.running:
            self.resume()  # a paused moto cannot hand its data over
            try:
                self._snapshot = self._take_snapshot()
            except Exception as e:  # noqa: BLE001 - stopping must not fail; the data is lost then
                self._snapshot = None
                with open(self.log_path, "a") as log:
                    log.write(f"\n--- snapshot before stop failed, data not kept: {e!r}\n")
        super().stop(timeout)

    def _take_snapshot(self) -> list:
        s3 = self._boto("s3", self.access_key, self.secret_key, read_timeout=10, attempts=1)
        snapshot = []
        for b in s3.list_buckets().get("Buckets", []):
            objects = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b["Name"]):
                for obj in page.get("Contents", []):
                    got = s3.get_object(Bucket=b["Name"], Key=obj["Key"])
                    args = {"Body": got["Body"].read(), "Metadata": got.get("Metadata", {})}
                    for name in ("ContentType", "ContentEncoding", "CacheControl", "ContentDisposition"):
                        if got.get(name):
                            args[name] = got[name]
                    objects.append((obj["Key"], args))
            snapshot.append((b["Name"], objects))
        return snapshot

    def _restore(self, snapshot: list) -> None:
        s3 = self.client()
        for bucket, objects in snapshot:
            s3.create_bucket(Bucket=bucket)
            for key, args in objects:
                s3.put_object(Bucket=bucket, Key=key, **args)

    def reset(self) -> None:
        if self.enforce_auth:  # /moto-api/reset would also drop the IAM user and with it our key
            s3 = self.client()
            for b in s3.list_buckets().get("Buckets", []):
                self.delete_bucket(b["Name"])
        else:
            requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def _boto(self, service: str, access_key: str, secret_key: str, *, read_timeout: float = 30, attempts: int = 2):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=MOTO_REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": attempts, "mode": "standard"},
                          connect_timeout=5, read_timeout=read_timeout),
        )

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        """A boto3 S3 client (path style) with this emulator's key, or the given one (cached per key)."""
        key = (access_key or self.access_key, secret_key or self.secret_key)
        if key not in self._clients:
            self._clients[key] = self._boto("s3", *key)
        return self._clients[key]

    def backend_settings(self) -> dict:
        return {"endpoint": self.endpoint, "region": MOTO_REGION, "access_key": self.access_key,
                "secret_key": self.secret_key, "path_style": True}

    # -- object operations --

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client().head_bucket(Bucket=bucket)
            return True
        except ClientError:
            return False

    def delete_bucket(self, bucket: str) -> None:
        from support import delete_bucket_recursively

        delete_bucket_recursively(self.client(), bucket)

    def put_object(self, bucket, key, data, *, content_type=None, content_encoding=None, cache_control=None,
                   content_disposition=None, metadata=None) -> None:
        args = {"Bucket": bucket, "Key": key, "Body": data, "Metadata": dict(metadata or {})}
        for name, value in (("ContentType", content_type), ("ContentEncoding", content_encoding),
                            ("CacheControl", cache_control), ("ContentDisposition", content_disposition)):
            if value is not None:
                args[name] = value
        self.client().put_object(**args)

    def get_object(self, bucket, key) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def head_object(self, bucket, key) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            h = self.client().head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return ObjectInfo(size=h["ContentLength"], etag=h.get("ETag"), content_type=h.get("ContentType"),
                          content_encoding=h.get("ContentEncoding"), cache_control=h.get("CacheControl"),
                          content_disposition=h.get("ContentDisposition"), metadata=h.get("Metadata", {}))

    def delete_object(self, bucket, key) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def list_keys(self, bucket, prefix="") -> list[str]:
        keys = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)


# ---------------------------------------------------------------------------------------------
# gcp-storage-emulator (GCS JSON API)
# ---------------------------------------------------------------------------------------------


class GcsEmulator(Emulator):
    """gcp-storage-emulator with its data under `root/data` (kept across restarts). Anonymous; single-threaded;
    ignores paging parameters; HEAD answers 501 (see reference/emulators.md)."""

    provider = "gcp"
    scheme = "gs"
    binary = VENV_BIN / "gcp-storage-emulator"
    PROJECT = "test"

    def __init__(self, root: Path, *, port: int | None = None):
        super().__init__(root, port=port)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(exist_ok=True)
        self._client = None

    def command(self) -> list[str]:
        return [str(self.binary), "-d", str(self.data_dir), "start", "--host", "127.0.0.1",
                "--port", str(self.port), "-q"]

    def env(self) -> dict:
        return {k: v for k, v in super().env().items() if k != "STORAGE_EMULATOR_HOST"}

    def ready(self) -> bool:
        r = requests.get(f"{self.endpoint}/", timeout=1)
        return r.status_code == 200 and r.text.strip() == "OK"

    def reset(self) -> None:
        requests.get(f"{self.endpoint}/wipe", timeout=10).raise_for_status()

    def client(self):
        """A `google.cloud.storage.Client` (anonymous, JSON API at this endpoint)."""
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(project=self.PROJECT, credentials=AnonymousCredentials(),
                                          client_options=ClientOptions(api_endpoint=self.endpoint))
        return self._client

    def backend_settings(self) -> dict:
        return {"endpoint": self.endpoint}

    # -- object operations --

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        return self.client().lookup_bucket(bucket) is not None

    def delete_bucket(self, bucket: str) -> None:
        from google.api_core.exceptions import GoogleAPIError

        client = self.client()
        with contextlib.suppress(GoogleAPIError):
            for blob in list(client.list_blobs(bucket)):
                with contextlib.suppress(GoogleAPIError):
                    blob.delete()
        with contextlib.suppress(GoogleAPIError):
            client.bucket(bucket).delete()

    def put_object(self, bucket, key, data, *, content_type=None, content_encoding=None, cache_control=None,
                   content_disposition=None, metadata=None) -> None:
        blob = self.client().bucket(bucket).blob(key)
        blob.content_encoding = content_encoding
        blob.cache_control = cache_control
        blob.content_disposition = content_disposition
        blob.metadata = dict(metadata) if metadata else None
        blob.upload_from_string(data, content_type=content_type or "application/octet-stream")

    def get_object(self, bucket, key) -> bytes:
        # raw_download: no decompressive transcoding of a gzip Content-Encoding, the stored bytes as they are
        return self.client().bucket(bucket).blob(key).download_as_bytes(raw_download=True)

    def head_object(self, bucket, key) -> ObjectInfo | None:
        blob = self.client().bucket(bucket).get_blob(key)
        if blob is None:
            return None
        return ObjectInfo(size=blob.size, etag=blob.etag, content_type=blob.content_type,
                          content_encoding=blob.content_encoding, cache_control=blob.cache_control,
                          content_disposition=blob.content_disposition, metadata=dict(blob.metadata or {}))

    def delete_object(self, bucket, key) -> None:
        self.client().bucket(bucket).blob(key).delete()

    def list_keys(self, bucket, prefix="") -> list[str]:
        return sorted(b.name for b in self.client().list_blobs(bucket, prefix=prefix or None))


# ---------------------------------------------------------------------------------------------
# Azurite (Azure Blob)
# ---------------------------------------------------------------------------------------------


class Azurite(Emulator):
    """azurite-blob with its data under `root/data` (kept across restarts); account `devstoreaccount1` with
    the well-known key (SharedKey signatures are verified). Container names: 3-63 chars, lowercase."""

    provider = "azure"
    scheme = "az"
    binary = NODE_BIN / "azurite-blob"
    account = AZURITE_ACCOUNT
    key = AZURITE_KEY

    def __init__(self, root: Path, *, port: int | None = None):
        super().__init__(root, port=port)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(exist_ok=True)
        self._client = None

    @property
    def blob_endpoint(self) -> str:
        return f"{self.endpoint}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
                f"BlobEndpoint={self.blob_endpoint};")

    def command(self) -> list[str]:
        return [str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", str(self.data_dir), "--loose", "--skipApiVersionCheck", "--disableTelemetry",
                "--silent"]

    def env(self) -> dict:
        return {k: v for k, v in super().env().items() if not k.startswith("AZURE_")}

    def ready(self) -> bool:
        # Any HTTP answer (an authentication error for this unsigned request) means the service is up.
        requests.get(f"{self.blob_endpoint}?comp=list", timeout=1)
        return True

    def reset(self) -> None:
        service = self.client()
        for container in service.list_containers():
            service.delete_container(container.name)

    def client(self):
        """A `BlobServiceClient` for the well-known account."""
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            self._client = BlobServiceClient.from_connection_string(self.connection_string, retry_total=2,
                                                                    connection_timeout=5, read_timeout=30)
        return self._client

    def backend_settings(self) -> dict:
        return {"account": self.account, "key": self.key, "endpoint": self.blob_endpoint}

    # -- object operations --

    def create_bucket(self, bucket: str) -> None:
        self.client().create_container(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        return self.client().get_container_client(bucket).exists()

    def delete_bucket(self, bucket: str) -> None:
        from azure.core.exceptions import AzureError

        with contextlib.suppress(AzureError):
            self.client().delete_container(bucket)

    def put_object(self, bucket, key, data, *, content_type=None, content_encoding=None, cache_control=None,
                   content_disposition=None, metadata=None) -> None:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type=content_type or "application/octet-stream",
                                   content_encoding=content_encoding, cache_control=cache_control,
                                   content_disposition=content_disposition)
        self.client().get_blob_client(bucket, key).upload_blob(
            data, overwrite=True, content_settings=settings, metadata=dict(metadata) if metadata else None)

    def get_object(self, bucket, key) -> bytes:
        # decompress=False: the stored bytes as they are, also with a gzip Content-Encoding
        return self.client().get_blob_client(bucket, key).download_blob(decompress=False).readall()

    def head_object(self, bucket, key) -> ObjectInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            p = self.client().get_blob_client(bucket, key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        cs = p.content_settings
        return ObjectInfo(size=p.size, etag=p.etag, content_type=cs.content_type,
                          content_encoding=cs.content_encoding, cache_control=cs.cache_control,
                          content_disposition=cs.content_disposition, metadata=dict(p.metadata or {}))

    def delete_object(self, bucket, key) -> None:
        self.client().get_blob_client(bucket, key).delete_blob()

    def list_keys(self, bucket, prefix="") -> list[str]:
        container = self.client().get_container_client(bucket)
        return sorted(b.name for b in container.list_blobs(name_starts_with=prefix or None))


EMULATORS = {"aws": Moto, "gcp": GcsEmulator, "azure": Azurite}


def standard_env(emu: Emulator, endpoint: str | None = None) -> dict:
    """The provider's standard environment (what aws-cli, gsutil and az read) pointing at `emu`, or at
    `endpoint` instead: Trove needs no `[backends.*]` section with it."""
    endpoint = endpoint or emu.endpoint
    if isinstance(emu, Moto):
        return {"AWS_ACCESS_KEY_ID": emu.access_key, "AWS_SECRET_ACCESS_KEY": emu.secret_key,
                "AWS_REGION": MOTO_REGION, "AWS_ENDPOINT_URL": endpoint}
    if isinstance(emu, GcsEmulator):
        return {"STORAGE_EMULATOR_HOST": endpoint}
    if isinstance(emu, Azurite):
        return {"AZURE_STORAGE_CONNECTION_STRING": emu.connection_string.replace(emu.endpoint, endpoint)}
    raise AssertionError(f"no standard environment for {emu!r}")
