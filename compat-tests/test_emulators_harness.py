"""The emulator harness itself (emulators.py), without Trove: start, restart on the same port with the data
kept, reset, pause, stop by PID, the providers' own clients, and moto's SigV4 enforcement."""

import gzip
import os
import socket
import time

import pytest
from botocore.exceptions import ClientError

from emulators import Moto
from support import _STARTED, random_bytes

PROVIDERS = ["aws", "gcp", "azure"]
FIXTURE = {"aws": "moto", "gcp": "gcs", "azure": "azurite"}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie that nobody reaped yet counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_lifecycle(emulator_factory, provider):
    emu = emulator_factory(provider)
    port, first_pid = emu.port, emu.pid
    assert first_pid in _STARTED
    emu.create_bucket("harness-bucket")
    body = random_bytes(100 * 1024, seed=1)
    emu.put_object("harness-bucket", "dir/obj.bin", body, content_type="application/x-test",
                   cache_control="max-age=60", content_disposition='attachment; filename="o.bin"',
                   metadata={"color": "blue"})

    emu.restart()
    assert emu.port == port and emu.endpoint.endswith(f":{port}")
    assert emu.pid != first_pid and not pid_alive(first_pid) and first_pid not in _STARTED
    assert emu.get_object("harness-bucket", "dir/obj.bin") == body  # data survives a restart
    info = emu.head_object("harness-bucket", "dir/obj.bin")
    assert info.size == len(body)
    assert info.content_type == "application/x-test"
    assert info.cache_control == "max-age=60"
    assert info.content_disposition == 'attachment; filename="o.bin"'
    assert info.metadata == {"color": "blue"}

    emu.stop()  # stop, then start: the data is kept as well
    emu.start()
    assert emu.port == port
    assert emu.get_object("harness-bucket", "dir/obj.bin") == body

    emu.reset()
    assert not emu.bucket_exists("harness-bucket")

    pid = emu.pid
    emu.stop()
    assert not emu.running and not pid_alive(pid) and pid not in _STARTED
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_object_operations(request, provider):
    emu = request.getfixturevalue(FIXTURE[provider])
    bucket = f"harness-ops-{provider}"
    emu.create_bucket(bucket)
    try:
        keys = ["a/1", "a/2", "b/trailing/", "x//y", "100%.txt", "sp ace+plus#hash~", "unicodé/日本語"]
        for k in keys:
            emu.put_object(bucket, k, k.encode())
        assert emu.list_keys(bucket) == sorted(keys)
        assert emu.list_keys(bucket, "a/") == ["a/1", "a/2"]
        for k in keys:
            assert emu.get_object(bucket, k) == k.encode()
        # gzip Content-Encoding: the clients give the stored bytes, not decompressed ones
        gz = gzip.compress(b"compressible " * 100)
        emu.put_object(bucket, "g", gz, content_type="text/plain", content_encoding="gzip")
        assert emu.get_object(bucket, "g") == gz
        assert emu.head_object(bucket, "g").content_encoding == "gzip"
        emu.delete_object(bucket, "a/1")
        assert emu.head_object(bucket, "a/1") is None
    finally:
        emu.delete_bucket(bucket)
    assert not emu.bucket_exists(bucket)


def test_native_clients(moto, gcs, azurite):
    s3 = moto.client()
    s3.create_bucket(Bucket="harness-native")
    s3.put_object(Bucket="harness-native", Key="k", Body=b"v")
    assert s3.get_object(Bucket="harness-native", Key="k")["Body"].read() == b"v"
    moto.delete_bucket("harness-native")

    gc = gcs.client()
    b = gc.create_bucket("harness-native")
    b.blob("k").upload_from_string(b"v")
    assert [x.name for x in gc.list_blobs("harness-native")] == ["k"]
    gcs.delete_bucket("harness-native")

    az = azurite.client()
    cc = az.create_container("harness-native")
    cc.upload_blob("k", b"v")
    assert cc.download_blob("k").readall() == b"v"
    azurite.delete_bucket("harness-native")


def test_backend_config(moto, gcs, azurite):
    assert moto.backend_config(auto_attach=True).splitlines() == [
        "[backends.aws]", f'endpoint = "{moto.endpoint}"', 'region = "us-east-1"', 'access_key = "testing"',
        'secret_key = "testing"', "path_style = true", "auto_attach = true"]
    assert gcs.backend_config() == f'[backends.gcp]\nendpoint = "{gcs.endpoint}"\n'
    assert f'endpoint = "{azurite.endpoint}/devstoreaccount1"' in azurite.backend_config()
    assert moto.uri("b") == "s3://b" and gcs.uri("b") == "gs://b" and azurite.uri("b") == "az://b"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pause_makes_requests_hang(emulator_factory, provider):
    emu = emulator_factory(provider)
    emu.pause()
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=2)  # the kernel still accepts
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(1)
    with pytest.raises(socket.timeout):
        sock.recv(1)
    sock.close()
    emu.resume()
    emu.create_bucket("after-pause")
    assert emu.bucket_exists("after-pause")
    emu.pause()  # stop() must also end a paused emulator
    pid = emu.pid
    t = time.monotonic()
    emu.stop()
    assert time.monotonic() - t < 5 and not pid_alive(pid)


def test_moto_enforces_sigv4(emulator_factory):
    emu = emulator_factory("aws", enforce_auth=True)
    assert emu.access_key.startswith("AKIA") and emu.secret_key not in ("", "testing")
    emu.create_bucket("auth-bucket")
    emu.put_object("auth-bucket", "k", b"v")
    assert emu.get_object("auth-bucket", "k") == b"v"

    with pytest.raises(ClientError) as info:
        emu.client(emu.access_key, "wrong-secret").get_object(Bucket="auth-bucket", Key="k")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as info:
        emu.client("AKIAUNKNOWNKEY000000", "x").list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    emu.reset()  # keeps the IAM user: the key still works
    assert emu.client().list_buckets()["Buckets"] == []
    emu.create_bucket("auth-bucket")
    emu.put_object("auth-bucket", "k", b"v2")
    old_key = emu.access_key
    emu.restart()  # a new IAM user and key; objects are copied over
    assert emu.access_key != old_key
    assert emu.get_object("auth-bucket", "k") == b"v2"
    with pytest.raises(ClientError):
        emu.client(old_key, "anything").list_buckets()


def test_moto_default_accepts_any_key(moto):
    moto.client("any", "thing").list_buckets()


def test_start_failure_reports_log_tail(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        emu = Moto(tmp_path / "moto", port=busy.getsockname()[1])
        emu.start_timeout = 5
        with pytest.raises(RuntimeError, match="(?s)aws-emulator.log.*in use"):
            emu.start()
        assert not emu.running
    finally:
        busy.close()
